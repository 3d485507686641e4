"""Fixtures shared across the suite live in plugin modules, one per subsystem.

Exports here skip their Arm stage (two emulated processes each, ~10 s) unless a test turns it on:
the shared `exports` fixture does, and tests/test_export.py checks what that stage wrote. The
variable reaches the CLI subprocesses the tests start as well.
"""

import os

os.environ["MOBILEDEPLOY_ARM_CHECK"] = "off"

pytest_plugins = ["tests.conftest_adb", "tests.conftest_bench", "tests.conftest_export", "tests.conftest_qemu",
                  "tests.conftest_accuracy"]


# The suite's heaviest files, heaviest first (setup and calls summed over `--durations` runs). `make test` runs
# pytest-xdist with `--dist loadfile --no-loadscope-reorder`: whole files go to the workers in collection order.
# xdist's default order (most tests first) put a file of a few slow end-to-end tests (test_readme_ci.py: 4 tests,
# ~50 s) near the end, where it ran alone while the other worker idled; the longest file first keeps both busy
# to the end. A file not listed keeps its alphabetical place after these.
HEAVY_FIRST = ("test_own_model.py", "test_executorch.py", "test_faults.py", "test_export.py", "test_gate_exact.py",
               "test_accuracy.py", "test_qemu.py", "test_readme_ci.py", "test_gate_ab.py", "test_estimate.py",
               "test_zoo.py", "test_modern_ops.py", "test_lab.py", "test_compare.py", "test_quant_error.py")


def pytest_collection_modifyitems(items: list) -> None:
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's own order is kept
