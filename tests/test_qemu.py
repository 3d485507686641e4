"""qemu:CPU devices: exact Arm instruction counts from the aarch64 LiteRT on emulated cores."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mobiledeploy.qemu.counts import CountsError, parse_counts
from mobiledeploy.qemu.env import CPUS, MARKER, cpuinfo_text, guest_env, hwcap_names
from tests.conftest_qemu import build_static, window_program

CLI = [sys.executable, "-m", "mobiledeploy"]

# Between the two marker syscalls: `movz`, `movk` (2), N × (subs, b.ne) (2N), `mov x8`, `svc` (2).
EXACT_PROGRAM = """
    .global _start
_start:
    mov x8, #{marker}
    mov x0, #1
    svc #0
    movz x0, #{low}
    movk x0, #{high}, lsl #16
1:  subs x0, x0, #1
    b.ne 1b
    mov x8, #{marker}
    svc #0
    mov x0, #0
    mov x8, #93
    svc #0
"""


# --- pure parts ----------------------------------------------------------------------------------

def test_parse_counts_subtracts_the_bracket_and_pairs_phases():
    text = "\n".join([
        "M 1 0 100 1", "M 1 0 130 1",          # empty bracket: 30
        "M 1 0 200 1", "M 1 0 231 1",          # a slower bracket: the cheapest is the bracket's cost
        "M 1 1 300 1", "M 1 1 1330 1",         # init: 1030 - 30
        "M 1 2 2000 1", "M 1 2 2530 1",        # first
        "M 1 3 3000 1", "M 1 3 3520 1",        # warm-up
        "M 1 4 4000 1", "M 1 4 4530 1", "M 1 4 5000 1", "M 1 4 5531 1",
        "M 2 0 5600 1", "P 4000a0 12 7", "M 3 0 5700 1",
        "E 9999 1",
    ])
    counts = parse_counts(text)
    assert counts.bracket == 30 and counts.init == 1000 and counts.first == 500
    assert counts.warmup == [490] and counts.runs == [500, 501]
    assert counts.blocks == [(0x4000A0, 12, 7)] and counts.total == 9999 and counts.vcpus == 1


def test_parse_counts_leaves_out_the_interpreter_share():
    """The 6th field counts the main executable (the guest's Python): it varies per call, the model does not."""
    text = "\n".join([
        "M 1 0 100 1 10", "M 1 0 130 1 10",     # empty bracket: 30, none of it in the interpreter
        "M 1 1 300 1 10", "M 1 1 1330 1 10",
        "M 1 2 2000 1 10", "M 1 2 2530 1 40",   # first: 530 - 30 in the interpreter - 30 bracket
        "M 1 4 4000 1 50", "M 1 4 4530 1 60",   # the same model work, the interpreter's share differs
        "M 1 4 5000 1 60", "M 1 4 5670 1 210",
        "E 9999 1 500",
    ])
    counts = parse_counts(text)
    assert counts.first == 470 and counts.runs == [490, 490] and counts.harness == [10, 150]


def test_parse_counts_tells_a_thread_started_inside_the_phases():
    """The 5th field is the guest threads seen so far: one started after the first marker ran in some phase (the
    ExecuTorch pool's worker did, 13,132 instructions in the first inference or the next); one started before the
    first marker, or after the last, did not."""
    phases = ["M 1 0 100 {}", "M 1 0 130 {}", "M 1 1 300 {}", "M 1 1 1330 {}", "M 1 2 2000 {}", "M 1 2 2530 {}",
              "M 1 4 4000 {}", "M 1 4 4530 {}"]
    started_inside = parse_counts("\n".join(line.format(1 if i < 5 else 2) for i, line in enumerate(phases)))
    started_before = parse_counts("\n".join(line.format(2) for line in phases) + "\nE 9999 3")
    assert started_inside.started_in_phases == 1 and started_inside.vcpus == 2
    assert started_before.started_in_phases == 0 and started_before.vcpus == 3


def test_parse_counts_refuses_an_incomplete_run():
    with pytest.raises(CountsError, match="run"):
        parse_counts("M 1 0 1 1\nM 1 0 2 1\nM 1 1 3 1\nM 1 1 9 1\nM 1 2 10 1\nM 1 2 20 1\nM 1 4 30 1\n")


def test_hwcap_names_follow_the_kernel_bit_order():
    assert hwcap_names(0b11, 0) == ["fp", "asimd"]
    assert "asimddp" in hwcap_names(1 << 20, 0) and hwcap_names(0, 1 << 13) == ["i8mm"]


def test_cpuinfo_names_the_emulated_part():
    a53 = cpuinfo_text("cortex-a53", ["fp", "asimd"])
    assert "CPU part\t: 0xd03" in a53 and "CPU implementer\t: 0x41" in a53 and "asimddp" not in a53
    a76 = cpuinfo_text("cortex-a76", ["fp", "asimd", "asimddp"])
    assert "CPU part\t: 0xd0b" in a76 and a76.count("processor\t:") == 2


# --- the plugin and the environment ---------------------------------------------------------------

def test_a_wheel_part_is_built_aside_and_a_failed_build_keeps_the_old_one(tmp_path):
    """ensure_part (ExecuTorch's and ONNX Runtime's parts): found parts are reused, a built one is recorded in its
    env.json, a failing build leaves the part that was there and no scratch folder."""
    from mobiledeploy.qemu.env import EmulatorMissingError
    from mobiledeploy.qemu.parts import ensure_part, read_part

    def find(root: Path) -> dict:
        return read_part(root / "toy", "Toy", "run setup")

    def build(version: str, scratch: Path, part: Path) -> dict:
        (part / "payload").write_text(version)
        return {"numpy": version}

    def broken(version: str, scratch: Path, part: Path) -> dict:
        (part / "half").write_text("")
        raise EmulatorMissingError("the build broke")

    assert ensure_part(tmp_path, "no-such-dist-installed", "toy", find, build) is None
    with pytest.raises(EmulatorMissingError, match="^Toy is not set up in the Arm64 environment: run setup$"):
        find(tmp_path)
    recorded = ensure_part(tmp_path, "numpy", "toy", find, build)
    assert recorded == {"numpy": np.__version__} == json.loads((tmp_path / "toy" / "env.json").read_text())
    assert (tmp_path / "toy" / "payload").read_text() == np.__version__
    assert ensure_part(tmp_path, "numpy", "toy", find, broken) == recorded  # found: not built again
    (tmp_path / "toy" / "env.json").unlink()
    with pytest.raises(EmulatorMissingError, match="the build broke"):
        ensure_part(tmp_path, "numpy", "toy", find, broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["payload"]


@pytest.mark.qemu
@pytest.mark.parametrize("n", [1000, 123_457])
def test_plugin_counts_a_known_program_exactly(arm_env, aarch64_gcc, tmp_path, n):
    source = tmp_path / "exact.S"
    source.write_text(EXACT_PROGRAM.format(marker=MARKER, low=n & 0xFFFF, high=n >> 16))
    program = build_static(aarch64_gcc, source, tmp_path / "exact")
    counts = tmp_path / "counts.txt"
    subprocess.run([arm_env.qemu, "-cpu", "cortex-a53", "-plugin", f"{arm_env.plugin},out={counts},marker={MARKER}",
                    str(program)], check=True, timeout=60)
    marks = [int(line.split()[3]) for line in counts.read_text().splitlines() if line.startswith("M ")]
    assert len(marks) == 2
    assert marks[1] - marks[0] == 2 * n + 4


@pytest.mark.qemu
@pytest.mark.parametrize("cpu", ["cortex-a53", "cortex-a76"])
def test_each_core_sees_its_own_fixed_cpuinfo_and_sys(arm_env, cpu):
    script = ("import os\nprint(open('/proc/cpuinfo').read())\n"
              "print('SYS', sorted(os.listdir('/sys/devices/system/cpu')))\n"
              "print('L2', open('/sys/devices/system/cpu/cpu0/cache/index2/size').read())\n")
    proc = subprocess.run([arm_env.qemu, "-cpu", cpu, "-L", str(arm_env.view(cpu)), str(arm_env.python(cpu)), "-c",
                           script], capture_output=True, text=True, env=guest_env(), timeout=120, check=True)
    part = f"0x{CPUS[cpu] >> 4 & 0xFFF:03x}"
    assert f"CPU part\t: {part}" in proc.stdout
    assert ("asimddp" in proc.stdout) == (cpu == "cortex-a76")  # dot product: A76 yes, A53 no
    assert "SYS ['cpu0', 'cpu1', 'kernel_max', 'offline', 'online', 'possible', 'present']" in proc.stdout
    assert "L2 512K" in proc.stdout  # the view's, whatever the host has


@pytest.mark.qemu
def test_a_crash_under_emulation_is_one_line_naming_the_signal(arm_env, tmp_path):
    from mobiledeploy.qemu.run import _failure

    script = tmp_path / "crash.py"
    script.write_text("import ctypes\nctypes.string_at(0)\n")  # a NULL read: SIGSEGV in the guest
    proc = subprocess.run(arm_env.command("cortex-a76", script), capture_output=True, text=True, env=guest_env(),
                          timeout=120)
    assert proc.returncode != 0
    message = _failure(proc, "cortex-a76")
    assert "crashed under emulation on cortex-a76" in message and "11" in message and "\n" not in message


# --- real models ---------------------------------------------------------------------------------

def _artifact(exported, fmt: str) -> Path:
    return Path(exported.result.path) / exported.result.manifest.artifacts[fmt].path


@pytest.mark.qemu
@pytest.mark.slow
def test_counts_repeat_within_and_across_processes(arm_env, exports, tmp_path):
    """Exact means exact: a second process, the same bytes under a path of another length, counts the same."""
    from mobiledeploy.qemu.run import run_guest

    model = _artifact(exports("v1_g3"), "int8")
    elsewhere = tmp_path / "a-folder-whose-name-shifts-every-allocation" / "copy.tflite"
    elsewhere.parent.mkdir()
    shutil.copyfile(model, elsewhere)
    first = run_guest(arm_env, "cortex-a76", model, runs=3, warmup=2)
    second = run_guest(arm_env, "cortex-a76", elsewhere, runs=3, warmup=2)
    for run in (first, second):
        # the first runs of a process differ by ~14 instructions (the harness's calls into libc and
        # libffi warming up), whatever the model; the same in every process
        assert max(run.counts.runs) - min(run.counts.runs) <= 64
        assert run.counts.vcpus == 1 and run.counts.init > 0 and run.counts.first >= min(run.counts.runs) * 0.9
        assert all(h > 0 for h in run.counts.harness)  # the interpreter's share was there, and left out
    assert first.counts.runs == second.counts.runs
    assert first.delegation["partitions"] >= 1 and first.delegation["nodes"] > 10


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["fp32", "int8"])
def test_arm_outputs_match_the_host(arm_env, exports, fmt):
    from mobiledeploy.qemu.parity import arm_parity

    report = arm_parity(arm_env, "cortex-a76", _artifact(exports("v1_g3"), fmt))
    assert report["passed"], report
    if fmt == "int8":
        assert report["max_steps"] <= 1
    else:
        assert report["max_rel"] <= 1e-5


@pytest.mark.qemu
@pytest.mark.slow
def test_kernels_follow_the_emulated_core(arm_env, exports):
    """int8 gains from the dot product on A76; A53 has none, so its int8/fp32 ratio is worse."""
    from mobiledeploy.qemu.run import run_guest

    exported = exports("v1_g3")
    ratio = {}
    for cpu in ("cortex-a53", "cortex-a76"):
        fp32 = run_guest(arm_env, cpu, _artifact(exported, "fp32"), runs=1, warmup=1).counts.runs[0]
        int8 = run_guest(arm_env, cpu, _artifact(exported, "int8"), runs=1, warmup=1).counts.runs[0]
        ratio[cpu] = int8 / fp32
    assert ratio["cortex-a76"] < ratio["cortex-a53"] * 0.95, ratio


# --- through the CLI -----------------------------------------------------------------------------

@pytest.mark.qemu
@pytest.mark.slow
def test_bench_cli_stores_instructions_never_milliseconds(arm_env, exports, results_db):
    model = _artifact(exports("v1_g3"), "fp32")
    proc = subprocess.run([*CLI, "bench", "--device", "qemu:cortex-a53", "--model", str(model), "--runs", "2",
                           "--warmup", "1", "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    item = json.loads(proc.stdout)["results"][0]
    assert item["unit"] == "instructions" and item["median_ms"] is None and item["device"] == "qemu:cortex-a53"
    assert len(item["instruction_counts"]) == 2 and item["instructions"] > 1e6
    assert item["device_info"]["cpu"]["model"] == "0xd03" and "asimddp" not in item["device_info"]["features"]
    assert item["versions"]["ai-edge-litert (aarch64)"] and item["versions"]["qemu"]
    table = subprocess.run([*CLI, "bench", "--device", "qemu:cortex-a53", "--model", str(model), "--runs", "1",
                            "--warmup", "0"], capture_output=True, text=True, timeout=600)
    assert "Arm instructions per inference" in table.stdout and " ms" not in table.stdout.split("stored in")[0]


def test_bad_qemu_input_is_one_line_exit_2(tmp_path, results_db):
    unknown = subprocess.run([*CLI, "bench", "--device", "qemu:cortex-x9", "--model", "x.tflite"],
                             capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2 and "cortex-a76" in unknown.stderr and "Traceback" not in unknown.stderr
    missing = subprocess.run([*CLI, "bench", "--device", "qemu:cortex-a76", "--arch", "v1", "--g", "3"],
                             capture_output=True, text=True, timeout=120,
                             env={**__import__("os").environ, "MOBILEDEPLOY_CACHE": str(tmp_path / "none")})
    assert missing.returncode == 2 and "mobiledeploy qemu setup" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and not results_db.exists()


# --- where the instructions go -------------------------------------------------------------------

HOT_COLD = window_program("""    bl hot
    bl cold
""", functions="""    .type hot, %function
hot:
    mov x1, #{n}
1:  subs x1, x1, #1
    b.ne 1b
    ret
    .size hot, .-hot
    .type cold, %function
cold:
    nop
    ret
    .size cold, .-cold
""")


@pytest.mark.qemu
def test_profile_names_the_functions_that_ran(arm_env, aarch64_gcc, tmp_path):
    """Blocks counted in the profile window land in the right ELF symbols, with exact counts."""
    from mobiledeploy.qemu.profile import attribute

    source = tmp_path / "hotcold.S"
    source.write_text(HOT_COLD.format(n=500, marker=MARKER))
    program = build_static(aarch64_gcc, source, tmp_path / "hotcold")
    counts = tmp_path / "counts.txt"
    subprocess.run([arm_env.qemu, "-plugin", f"{arm_env.plugin},out={counts},marker={MARKER},profile=1",
                    str(program)], check=True, timeout=60)
    blocks = parse_counts_blocks(counts.read_text())
    maps = f"00400000-00500000 r-xp 00000000 00:00 0 {program}\n"  # a static binary sits at its link address
    profile = attribute(blocks, maps, runs=1)
    by_name = {k.function: k.instructions for k in profile.kernels}
    assert by_name["hot"] == 1 + 2 * 500 + 1 and by_name["cold"] == 2


def _fake_arm_runs(monkeypatch, tmp_path):
    """The guests of both profiles replaced by one block of 10 instructions run 3 times (no qemu)."""
    from types import SimpleNamespace

    from mobiledeploy import profiling
    from mobiledeploy.qemu import env, et_profile, executorch_env, run

    blocks, maps = [(0x400000, 10, 3)], f"00400000-00500000 r-xp 00000000 00:00 0 {tmp_path / 'libabsent.so'}\n"
    monkeypatch.setattr(env, "environment", lambda root=None: SimpleNamespace(root=tmp_path))
    monkeypatch.setattr(run, "run_guest", lambda *a, **kw: SimpleNamespace(counts=SimpleNamespace(blocks=blocks), maps=maps))
    monkeypatch.setattr(executorch_env, "executorch_guest", lambda root: None)
    monkeypatch.setattr(et_profile, "run_pte_profile", lambda *a, **kw: (blocks, maps, [30]))
    monkeypatch.setattr(profiling, "macs_by_op", lambda *a: {})


def test_an_arm_profile_names_its_precision_and_its_artifact(monkeypatch, tmp_path):
    """`profile` on qemu: says the precision it counted and the manifest artifact it ran, two fields: a .tflite's
    artifact key is its precision, a .pte's is pte_* (one `format` field held either before)."""
    from mobiledeploy.profile_session import arm_profile
    from mobiledeploy.profiling_pte import pte_arm_profile
    from mobiledeploy.records import BenchTarget

    _fake_arm_runs(monkeypatch, tmp_path)
    tflite = BenchTarget("net", tmp_path / "model_int8.tflite", "int8", "0")
    pte = BenchTarget("net", tmp_path / "model_fp32.pte", "fp32", "0", runtime="executorch")
    lite = arm_profile("qemu:cortex-a76", tflite, "v1", {}, runs=3)
    et = pte_arm_profile("cortex-a76", pte, "v1", {}, runs=1)
    assert (lite.precision, lite.artifact, lite.cpu, lite.instructions) == ("int8", "int8", "cortex-a76", 10.0)
    assert (et.precision, et.artifact, et.instructions) == ("fp32", "pte_fp32", 30.0)
    data = et.to_dict()
    assert (data["precision"], data["artifact"]) == ("fp32", "pte_fp32") and "format" not in data


def parse_counts_blocks(text: str) -> list[tuple[int, int, int]]:
    return [(int(p[1], 16), int(p[2]), int(p[3])) for p in (line.split() for line in text.splitlines()) if p[0] == "P"]


@pytest.mark.qemu
@pytest.mark.slow
def test_profile_cli_attributes_a_real_model(arm_env, exports):
    exported = exports("v1_g3")
    proc = subprocess.run([*CLI, "profile", "--device", "qemu:cortex-a76", "--arch", "v1", "--g", "3", "--scale", "0.25",
                           "--resolution", "64", "--format", "int8", "--json"], capture_output=True, text=True,
                          timeout=600, cwd=exported.out_root.parent)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["unit"] == "instructions per inference" and data["unattributed"] < 0.01 * data["instructions"]
    assert (data["precision"], data["artifact"], data["cpu"]) == ("int8", "int8", "cortex-a76") and "format" not in data
    kinds = {k["kind"]: k for k in data["kinds"]}
    gemm = kinds["conv / GEMM (1x1, dense, FC)"]
    assert gemm["instructions"] > 0 and gemm["mac_share"] > 0.5
    assert any(k["function"].startswith("xnn_qs8") for k in data["kernels"])  # XNNPACK's int8 micro-kernels


def test_the_exports_arm_stage_can_be_turned_off(monkeypatch, tmp_path):
    """MOBILEDEPLOY_ARM_CHECK=off skips the stage and says so (the suite uses it; `exports` turns it on)."""
    import numpy as np

    from mobiledeploy.converters.arm_check import arm_stage

    monkeypatch.setenv("MOBILEDEPLOY_ARM_CHECK", "off")
    report = arm_stage({"fp32": tmp_path / "never-read.tflite"}, np.zeros((1, 3, 8, 8)), np.zeros((1, 4)), 0.98)
    assert report == {"skipped": "turned off (MOBILEDEPLOY_ARM_CHECK=off)", "passed": True}


@pytest.mark.qemu
def test_the_userland_is_byte_compiled_once(arm_env):
    """Every emulated run imports numpy and LiteRT: from .pyc made at setup, not compiled again each time."""
    site = arm_env.sysroot / "usr/lib/python3/dist-packages"
    assert (arm_env.sysroot / ".compiled").is_file()
    for package in ("numpy", "ai_edge_litert"):
        assert any((site / package / "__pycache__").glob("__init__.cpython-311.pyc")), package
