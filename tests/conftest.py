"""Fixtures shared across the suite live in plugin modules, one per subsystem."""

pytest_plugins = ["tests.conftest_adb", "tests.conftest_bench", "tests.conftest_export", "tests.conftest_qemu"]
