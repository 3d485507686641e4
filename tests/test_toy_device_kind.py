"""A device kind is one file plus its table entry: this toy kind (`toy:NAME`, this host under another name)
parses and prints its own URIs, is opened by its class, shows in --device's help and errors, and `bench`
runs on it end to end."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mobiledeploy.bench import BenchOptions, run_bench, target_from_file
from mobiledeploy.cli import main
from mobiledeploy.devices import canonical_uri, check_device, open_device, parse_device_uri
from mobiledeploy.devices.base import Device
from mobiledeploy.devices.kinds import KINDS, NotThisForm, device_help, device_uri, kind_of
from mobiledeploy.errors import ConfigError
from mobiledeploy.results import ResultsStore


class ToyDevice(Device):
    """toy:NAME, NAME in lower-case letters (written lower-case whatever the case given)."""

    opened: list[str] = []

    def __init__(self, name: str) -> None:
        self.name = name
        self.uri = f"toy:{name}"

    @classmethod
    def parse_arg(cls, arg: str | None) -> str | None:
        if not arg or not re.fullmatch(r"[a-zA-Z]+", arg.strip()):
            raise NotThisForm(arg)
        return arg.strip().lower()

    @classmethod
    def from_uri(cls, arg: str | None, *, adb_server: str | None = None) -> "ToyDevice":
        cls.opened.append(arg or "")
        return cls(arg or "")

    def info(self) -> dict[str, Any]:
        return {"kind": "toy", "model": self.name, "soc": "toy", "abi": "toy", "cores": 1}

    def push(self, local: Path, remote: str) -> None:
        shutil.copy2(local, remote)

    def pull(self, remote: str, local: Path) -> None:
        shutil.copy2(remote, local)

    def start_run(self, result: Any, options: Any) -> str:
        result.device_info = self.info()
        return ""


@pytest.fixture
def toy_kind(monkeypatch):
    entry = replace(KINDS["local"], name="toy", device_class=f"{__name__}:ToyDevice", form="toy:NAME",
                    about="a toy board", examples="toy:board", runtimes=("litert",), host_cpus=False)
    monkeypatch.setitem(KINDS, "toy", entry)
    ToyDevice.opened.clear()


def test_the_toy_kind_reads_prints_and_opens_its_own_uris(toy_kind):
    assert parse_device_uri(" toy:Board ") == ("toy", "board") and canonical_uri("toy:Board") == "toy:board"
    assert kind_of("toy:x").name == "toy" and "toy:NAME (a toy board, e.g. toy:board)" in device_help()
    assert device_uri("toy", "Board") == "toy:board" and device_uri("qemu") == "qemu:cortex-a76"
    with pytest.raises(ConfigError, match=r"^a toy device is written toy:NAME \(e\.g\. toy:board\), not with None$"):
        device_uri("toy")
    check_device("toy:board")
    device = open_device("toy:Board")
    assert isinstance(device, ToyDevice) and device.uri == "toy:board" and ToyDevice.opened == ["board"]
    for bad in ("toy:", "toy", "toy:b0ard"):
        with pytest.raises(ConfigError, match=r"^unknown device .*: use local, .* or toy:NAME \(e\.g\. toy:board\)$"):
            parse_device_uri(bad)


def test_bench_runs_on_the_toy_kind_and_stores_its_runs(toy_kind, tiny_tflite, results_db):
    target = target_from_file(tiny_tflite["fp32"])
    report = run_bench("toy:board", [target], BenchOptions(runs=4, warmup=1), rounds=2, db=results_db)
    assert report.ok and [(r.device, r.runtime, r.round, r.runs) for r in report.results] == [
        ("toy:board", "litert", 0, 4), ("toy:board", "litert", 1, 4)]
    assert all(r.device_info["kind"] == "toy" and len(r.timings_us) == 4 for r in report.results)
    with ResultsStore(results_db) as store:
        assert sorted(run["round"] for run in store.list(device="toy:board")) == [0, 1]


def test_the_cli_benches_on_the_toy_kind(toy_kind, tiny_tflite, results_db, capsys):
    code = main(["bench", "--device", "toy:Board", "--model", str(tiny_tflite["int8"]), "--runs", "3", "--json"])
    assert code in (0, None), capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert out["device"] == "toy:board" and [(r["device"], r["status"]) for r in out["results"]] == [("toy:board", "ok")]
