"""Fixtures shared across the suite live in plugin modules, one per subsystem.

Exports here skip their Arm stage (two emulated processes each, ~10 s) unless a test turns it on:
the shared `exports` fixture does, and tests/test_export.py checks what that stage wrote. The
variable reaches the CLI subprocesses the tests start as well.
"""

import os

os.environ["MOBILEDEPLOY_ARM_CHECK"] = "off"

pytest_plugins = ["tests.conftest_adb", "tests.conftest_bench", "tests.conftest_export", "tests.conftest_qemu",
                  "tests.conftest_accuracy"]
