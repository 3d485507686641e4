"""A runtime is one file: this toy one (the sha256 of the model file, timed in this process) is registered by
name, offered on `local`, built by the device like every runtime, and timed end to end by `bench`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mobiledeploy.artifact_kinds import artifacts_read_as
from mobiledeploy.cli import main
from mobiledeploy.devices.kinds import KINDS
from mobiledeploy.results import ResultsStore
from mobiledeploy.runtimes import RUNTIMES
from mobiledeploy.runtimes.inprocess import fill_timing, time_phases


class ToyRuntime:
    """Times hashing the model file's bytes: a real, measured loop, not a model inference."""

    name = "toy"
    artifacts = artifacts_read_as(".tflite")
    built_on: list[Any] = []

    def __init__(self, device: Any) -> None:
        ToyRuntime.built_on.append(device)

    def run(self, target: Any, options: Any, result: Any, workdir: str = "") -> None:
        def prepare(data: bytes) -> tuple[Any, dict[str, Any]]:
            return (lambda: hashlib.sha256(data).digest()), {}

        timing = time_phases(lambda: Path(target.artifact).read_bytes(), prepare, threads=options.threads,
                             runs=options.runs, warmup=options.warmup, cpu_mask=options.cpu_mask)
        fill_timing(result, timing)
        result.observed["runner"] = "sha256 of the file"


@pytest.fixture
def toy_on_local(monkeypatch):
    monkeypatch.setitem(RUNTIMES, "toy", f"{__name__}:ToyRuntime")
    monkeypatch.setitem(KINDS, "local", replace(KINDS["local"], runtimes=(*KINDS["local"].runtimes, "toy")))
    ToyRuntime.built_on.clear()


def test_a_runtime_in_one_file_is_timed_by_bench_on_local(toy_on_local, tiny_tflite, results_db, capsys):
    code = main(["bench", "--device", "local", "--runtime", "toy", "--model", str(tiny_tflite["int8"]),
                 "--runs", "6", "--warmup", "1", "--json"])
    assert code in (0, None), capsys.readouterr().err
    (run,) = json.loads(capsys.readouterr().out)["results"]
    assert (run["runtime"], run["precision"], run["status"], run["runs"]) == ("toy", "int8", "ok", 6)
    assert len(run["timings_us"]) == 6 and all(t > 0 for t in run["timings_us"])
    assert run["observed"]["runner"] == "sha256 of the file" and run["device_info"]["thermal_after"] is not None
    assert [type(d).__name__ for d in ToyRuntime.built_on] == ["LocalDevice"]  # built once, from its device
    with ResultsStore(results_db) as store:
        (stored,) = store.list()
    assert (stored["runtime"], stored["run_id"], stored["status"]) == ("toy", run["run_id"], "ok")


def test_the_toy_runtime_is_offered_only_where_its_kind_lists_it(toy_on_local, tiny_tflite, results_db, capsys):
    code = main(["bench", "--device", "qemu:cortex-a53", "--runtime", "toy", "--model", str(tiny_tflite["int8"])])
    assert code == 2
    assert "--runtime toy is not available on qemu devices (runtimes there: counted, executorch, onnxruntime)" in capsys.readouterr().err
