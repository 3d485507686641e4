"""The trained model of the accuracy tests (tests/test_accuracy.py and any file that wants a real classifier).

* `digits_model` (session): ShuffleNet v1 0.25x g=3 at 32x32 trained on scikit-learn's digits
  (`benchmarks/digits.py`), its image folders (train/, test/), and its export (ONNX, TFLite fp32, int8
  calibrated on 64 training images) under `out_root`. Built once per test run and shared across
  pytest-xdist workers like the shared exports (tests/conftest_export.py: a file lock, the result pickled;
  an error is remembered and re-raised, not retried).
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest_export import _shared_root

DIGITS_CALIB_SAMPLES = 64


@dataclass
class TrainedDigits:
    trained: Any  # benchmarks.digits.DigitsModel
    out_root: Path  # the artifacts root holding its export
    export: Any  # ExportResult
    export_seconds: float

    def cli_model_args(self) -> list[str]:
        """The options naming this model and its export, for `mobiledeploy accuracy` / `export`."""
        t = self.trained
        return ["--arch", t.arch, "--g", str(t.config["g"]), "--scale", str(t.config["scale"]), "--set",
                f"num_classes={t.config['num_classes']}", "--resolution", str(t.resolution), "--weights",
                str(t.weights), "--calibration", str(t.train_dir), "--calib-samples", str(DIGITS_CALIB_SAMPLES),
                "--out", str(self.out_root)]


def _build(folder: Path) -> TrainedDigits | BaseException:
    try:
        from benchmarks.digits import train_digits
        from mobiledeploy.converters import export_model

        trained = train_digits(folder / "digits")
        start = time.perf_counter()
        result = export_model(trained.arch, trained.config, resolution=trained.resolution, out_dir=folder / "artifacts",
                              weights=str(trained.weights), calibration=str(trained.train_dir),
                              calib_samples=DIGITS_CALIB_SAMPLES)
        return TrainedDigits(trained, folder / "artifacts", result, time.perf_counter() - start)
    except Exception as exc:
        return exc


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedDigits:
    pytest.importorskip("sklearn")
    pytest.importorskip("onnx2tf")
    from filelock import FileLock

    shared = _shared_root(tmp_path_factory) / "shared-digits"
    shared.mkdir(exist_ok=True)
    record = shared / "digits.pickle"
    with FileLock(str(shared / "digits.lock")):
        if record.exists():
            value = pickle.loads(record.read_bytes())
        else:
            value = _build(shared)
            try:
                data = pickle.dumps(value)
            except Exception:
                data = pickle.dumps(RuntimeError(f"the digits model failed: {value!r}"))
            record.write_bytes(data)
    if isinstance(value, BaseException):
        raise value
    return value
