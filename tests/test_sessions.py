"""The core sessions the commands call: a compare plan built from refs, and a whole command run on every phone
of a lab with each phone's output kept apart (no device, no export: a fake lab)."""

from __future__ import annotations

import contextlib
import sys
import threading

import pytest

from mobiledeploy.compare import load_suite
from mobiledeploy.devices.lab import Phone
from mobiledeploy.errors import DeviceError, NoPhoneError
from mobiledeploy.lab_session import per_phone_jobs
from mobiledeploy.sessions import plan_compare


def test_plan_compare_adds_the_baseline_first_and_counts_a_model_once():
    suite = load_suite("paper-table8")
    plan = plan_compare(suite, ["v1:g=3,scale=0.5", "shufflenet_v1:g=3,scale=0.5", "mobilenet_v2:alpha=0.35"],
                        "alexnet", ((224, 224),), ("fp32",))
    key = "shufflenet_v1-g3-scale0.5"
    assert plan.refs == ("alexnet", "v1:g=3,scale=0.5", "mobilenet_v2:alpha=0.35")  # the alias twice: once
    assert plan.keys["v1:g=3,scale=0.5"] == key and plan.baseline == "alexnet"
    assert plan.labels[key] == next(m.label for m in suite.models if m.ref == "shufflenet_v1:g=3,scale=0.5")
    assert plan.labels[plan.keys["mobilenet_v2:alpha=0.35"]] == "mobilenet_v2:alpha=0.35"  # not the suite's: its ref
    assert set(plan.paper) == {key, "alexnet"} and plan.baseline_label == plan.labels["alexnet"]
    assert plan.configs[key] == ("shufflenet_v1", {"g": 3, "scale": 0.5})
    assert (plan.sizes, plan.precisions, plan.runtimes) == (((224, 224),), ("fp32",), (None,))
    with pytest.raises(AttributeError):
        plan.baseline = "x"  # frozen


class FakeLab:
    def __init__(self, phones: list[Phone], fail: Exception | None = None):
        self.reserved, self.fail, self.released = phones, fail, 0

    @contextlib.contextmanager
    def phones(self):
        if self.fail:
            raise self.fail
        yield self.reserved

    def release_all(self) -> None:
        self.released += 1


def test_per_phone_jobs_keep_each_phones_output_apart():
    phones = [Phone("adb:A", {"label": "a"}), Phone("adb:B", {"label": "b"})]
    both_started = threading.Barrier(2, timeout=10)  # the jobs run at once, each in its own thread

    def job(phone: Phone) -> int:
        both_started.wait()
        print(f"out of {phone.label}")
        sys.stderr.write(f"err of {phone.label}\n")
        return 0 if phone.label == "a" else 3

    real = sys.stdout, sys.stderr
    done: list = []
    assert per_phone_jobs(FakeLab(phones), job, "gate", done) is done
    assert (sys.stdout, sys.stderr) == real
    assert [(d.phone.label, d.exit_code, d.stdout, d.stderr) for d in done] == [
        ("a", 0, "out of a\n", "err of a\n"), ("b", 3, "out of b\n", "err of b\n")]


def test_per_phone_jobs_without_a_phone_is_one_line_exit_one():
    done: list = [object()]
    with pytest.raises(NoPhoneError) as err:
        per_phone_jobs(FakeLab([], DeviceError("no phone of the farm\n  matches")), lambda p: 0, "profile", done)
    assert (str(err.value), err.value.exit_code, done) == ("no phone of the farm matches", 1, [])
