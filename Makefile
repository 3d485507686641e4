# Two commands on a fresh Debian/Ubuntu machine with Python 3.11:
#   make demo   set up, then export ShuffleNet v1 g=3 and benchmark it on this host
#   make test   set up, then run the test suite (what CI runs)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test gate gate-ab gate-local adb arm lock clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -c constraints.txt -e '.[all]'
	touch $(STAMP)

setup: $(STAMP)

# The Debian adb client: the adb tests drive it against a device-side server on 127.0.0.1.
adb:
	@command -v adb >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq adb >/dev/null; }

# The emulated Arm64 environment behind the qemu:CPU devices: Debian's qemu-user and the aarch64 cross
# gcc (it builds the exact-count test program) and g++ (ExecuTorch's Arm runner, built against the aarch64
# executorch wheel), then the arm64 userland, the counting plugin and one view per core under
# ~/.cache/mobiledeploy/arm64. Offline afterwards; a second run does nothing.
# llvm (llvm-mca, llvm-mc: LLVM's scheduling models) is the pipeline model of the timing estimates (--phone).
arm: setup
	@command -v qemu-aarch64 >/dev/null && command -v aarch64-linux-gnu-gcc >/dev/null && command -v aarch64-linux-gnu-g++ >/dev/null \
	  && command -v llvm-mca >/dev/null && command -v llvm-mc >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq qemu-user gcc-aarch64-linux-gnu g++-aarch64-linux-gnu llvm >/dev/null; }
	$(VENV)/bin/mobiledeploy qemu setup

# The main job: cost table, export (ONNX, TFLite fp32 + int8, parity checked), then a local bench.
demo: setup
	$(VENV)/bin/mobiledeploy info --arch v1 --g 3
	$(VENV)/bin/mobiledeploy export --arch v1 --g 3
	$(VENV)/bin/mobiledeploy bench --device local --arch v1 --g 3

# The suite on every core (pytest-xdist), a test file per worker: its module fixtures are built once, and
# the shared exports once per run (tests/conftest_export.py). PYTEST_WORKERS=0 runs it in one process.
# A worker that crashes (a native abort) fails its test and is not replaced: twice here the replaced worker left
# pytest-xdist waiting forever with --dist loadfile, which in CI would be the whole 90-minute cap.
# Files go out heaviest first (tests/conftest.py HEAVY_FIRST, kept by --no-loadscope-reorder); the 25 slowest
# tests are listed at the end, to see where the 15-minute budget goes.
PYTEST_WORKERS ?= auto
test: setup adb arm
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --max-worker-restart=0 --durations=25
	$(MAKE) --no-print-directory gate

# The gate CI runs: exact Arm instructions per inference (ShuffleNet v1 0.5x g=3, MobileNet v1 0.25;
# fp32 and int8; cortex-a76 and cortex-a53) against committed counts, valid on every host: it always
# judges (exit 1 on a regression over 1%, 2 with "re-record" when the LiteRT wheel or core changed).
# GATE_REPORT is where the Markdown summary goes (CI: append it to $$GITHUB_STEP_SUMMARY).
GATE_REPORT ?= $(VENV)/gate.md
GATE_JUNIT  ?= $(VENV)/gate.xml
gate: arm
	$(VENV)/bin/mobiledeploy gate --baseline benchmarks/baselines/arm/instructions.json --junit $(GATE_JUNIT) --markdown $(GATE_REPORT)

# Wall-clock A/B on this host against another revision (default: the previous commit), no stored numbers.
# Not part of `make test`: see README, "Why make test has no wall-clock A/B".
AGAINST ?= HEAD~1
gate-ab: setup
	$(VENV)/bin/mobiledeploy gate --against $(AGAINST) --device local --model 'v1:g=3,scale=0.5' --formats fp32 --markdown $(GATE_REPORT)

# Wall-clock gate on a per-machine-class baseline, for a fixed runner (skips on an unknown class).
gate-local: setup
	$(VENV)/bin/mobiledeploy gate --device local --baseline benchmarks/baselines/ --if-no-baseline skip --markdown $(GATE_REPORT)

lock: setup
	{ echo "# Exact versions the project is tested with (pip install -c constraints.txt). Regenerate: make lock"; \
	  $(PY) -m pip freeze --exclude-editable; } > constraints.txt

clean:
	rm -rf $(VENV) artifacts .pytest_cache
