"""A lab of phones: a DeviceFarmer (STF) farm as a source of adb devices, and bench/compare fanned out over them.

The farm is tests/fakestf.py (DeviceFarmer's REST API on 127.0.0.1) handing out fake device-side adb servers
(tests/adbd.py) that the real Debian adb client connects to; the "benchmark binary" on them is the host
stand-in (android_harness/host_benchmark_model.py), as in tests/test_bench_adb.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from mobiledeploy.cli import main
from mobiledeploy.devices.stf import Farm, StfClient, matches, parse_farm_uri
from mobiledeploy.errors import ConfigError, DeviceNotFoundError, FarmAuthError, FarmError
from mobiledeploy.results import ResultsStore
from tests.conftest_adb import free_port
from tests.conftest_bench import adb_env, fake_device, host_runner, results_db, tiny_tflite  # noqa: F401
from tests.fakestf import FakeStf, FarmPhoneSpec

TOKEN = "stf-secret-token-4f1c9a"
PHONES = [FarmPhoneSpec("PX7-0001", "Pixel 7", "gs201", "34"), FarmPhoneSpec("PX8-0002", "Pixel 8", "zuma", "34"),
          FarmPhoneSpec("S23-0003", "SM-S911B", "kalama", "33", manufacturer="samsung"),
          FarmPhoneSpec("PX6-0004", "Pixel 6", "gs101", "33", owner={"email": "someone@example.org"}),
          FarmPhoneSpec("OLD-0005", "Nexus 5", "msm8974", "23", abi="armeabi-v7a")]


# ---------------------------------------------------------------------------------------------- pure parts

def test_farm_uri_filters_and_options():
    q = parse_farm_uri("stf:http://farm.lan:7100/?model=Pixel*&sdk=>=30&abi=arm64-v8a&count=2&timeout=60")
    assert q.url == "http://farm.lan:7100" and q.count == 2 and q.reserve_s == 60.0
    assert q.filters == (("model", "Pixel*"), ("sdk", ">=30"), ("abi", "arm64-v8a"))
    assert parse_farm_uri("stf:https://user:pw@farm.example/stf/").url == "https://farm.example/stf"  # no credentials
    assert parse_farm_uri("stf:http://h/?soc=gs*").filters == (("cpuPlatform", "gs*"),)
    for bad in ("stf:farm.example", "stf:ftp://h/", "stf:http://h/?sdk=>=x", "stf:http://h/?count=0",
                "stf:http://h/?count=1.5", "stf:http://h/?model="):
        with pytest.raises(ConfigError):
            parse_farm_uri(bad)


def test_what_is_a_lab():
    from mobiledeploy.devices.lab import is_lab

    assert is_lab("stf:http://farm/") and is_lab("adb:A,adb:B") and is_lab("adb:A,local")  # the last: refused later
    assert not is_lab("adb:A") and not is_lab("local") and not is_lab("qemu:cortex-a76,qemu:cortex-a53")  # exact gate's


def test_filters_match_globs_alternatives_and_numbers():
    pixel = {"model": "Pixel 7", "sdk": "34", "abi": "arm64-v8a", "cpuPlatform": "gs201"}
    assert matches(pixel, (("model", "pixel*"), ("sdk", ">=30")))
    assert matches(pixel, (("abi", "armeabi-v7a,arm64-v8a"), ("sdk", "<35")))
    assert not matches(pixel, (("sdk", ">34"),))
    assert not matches(pixel, (("model", "Galaxy*"),))
    assert not matches(pixel, (("marketName", "*"),))  # a field the phone lacks matches nothing
    assert matches(pixel, ())


# ---------------------------------------------------------------------------------------------- fixtures

@pytest.fixture
def farm(adb_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStf]:  # noqa: F811
    fake = FakeStf(tmp_path / "farm", PHONES, TOKEN)
    monkeypatch.setenv("STF_TOKEN", TOKEN)
    try:
        yield fake
    finally:
        for serial in fake.adbd:
            adb_env.run("disconnect", fake.address(serial), timeout=15)
        fake.stop()


def adb_sees(adb_env, farm: FakeStf) -> set[str]:  # noqa: F811
    addresses = {farm.address(s): s for s in farm.adbd}
    return {addresses[a] for a in adb_env.devices() if a in addresses}


def released(farm: FakeStf, serials: list[str]) -> None:
    """Every serial reserved was given back: remoteConnect deleted, then the reservation."""
    for serial in serials:
        deletes = [p for m, p, _ in farm.calls if m == "DELETE" and f"/devices/{serial}" in p]
        assert deletes == [f"/api/v1/user/devices/{serial}/remoteConnect", f"/api/v1/user/devices/{serial}"], serial
    assert farm.held() == []


def stored(db: Path) -> list[dict]:
    with ResultsStore(db) as store:
        return store.list()


def cli(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mobiledeploy", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


# ---------------------------------------------------------------------------------------------- the farm

@pytest.mark.adb
def test_reservation_lifecycle_releases_on_success_and_on_error(farm, adb_env):
    notes: list[str] = []
    lab = Farm.open(farm.uri("model=Pixel*&sdk=>=30&timeout=120"), say=notes.append)
    with lab.reserve() as phones:
        assert [p.serial for p in phones] == ["PX7-0001", "PX8-0002"]
        assert [p.address for p in phones] == [farm.address("PX7-0001"), farm.address("PX8-0002")]
        assert farm.held() == ["PX7-0001", "PX8-0002"]
        assert farm.phones["PX7-0001"]["reserve_timeout_ms"] == 120_000
    assert notes == ["PX6-0004 skipped: in use or not ready on the farm"]
    released(farm, ["PX7-0001", "PX8-0002"])
    calls = [(m, p) for m, p, _ in farm.calls if "PX7-0001" in p or (m == "POST" and p == "/api/v1/user/devices")]
    assert calls[:2] == [("POST", "/api/v1/user/devices"), ("POST", "/api/v1/user/devices/PX7-0001/remoteConnect")]
    assert farm.calls[1][2] == {"serial": "PX7-0001", "timeout": 120_000}

    farm.calls.clear()
    with pytest.raises(RuntimeError, match="boom"):
        with Farm.open(farm.uri("serial=S23-0003")).reserve():
            raise RuntimeError("boom")
    released(farm, ["S23-0003"])


@pytest.mark.adb
def test_a_phone_not_answering_is_skipped_and_said(farm):
    farm.not_responding.add("PX7-0001")
    notes: list[str] = []
    with Farm.open(farm.uri("abi=arm64-v8a"), say=notes.append).reserve() as phones:
        assert [p.serial for p in phones] == ["PX8-0002", "S23-0003"]
    assert notes == ["PX7-0001 skipped: PX7-0001: Device is not responding (504)",
                     "PX6-0004 skipped: in use or not ready on the farm"]
    assert farm.held() == []
    with pytest.raises(DeviceNotFoundError, match="no phone of the farm .* matches .*model=iPhone"):
        Farm.open(farm.uri("model=iPhone*")).candidates()


@pytest.mark.adb
def test_a_refused_token_and_a_farm_that_does_not_answer(farm, tmp_path, capsys, monkeypatch):
    with pytest.raises(FarmAuthError) as refused:
        StfClient(farm.url, "wrong-token").devices()
    assert "wrong-token" not in str(refused.value) and "401: Bad Credentials" in str(refused.value)
    monkeypatch.setenv("STF_TOKEN", "wrong-token")
    assert main(["devices", "--device", farm.uri()]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refused the token in $STF_TOKEN" in err and "wrong-token" not in err
    dead = f"stf:http://127.0.0.1:{free_port()}/"
    with pytest.raises(FarmError, match="does not answer"):
        Farm.open(dead, token=TOKEN).phones()
    assert main(["bench", "--device", dead, "--model", "x.tflite"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mobiledeploy: error: ") and "does not answer" in err
    monkeypatch.delenv("STF_TOKEN")
    assert main(["devices", "--device", farm.uri()]) == 2
    assert "needs an access token in $STF_TOKEN" in capsys.readouterr().err


@pytest.mark.adb
def test_devices_lists_what_the_farm_and_the_adb_server_offer(farm, fake_device, capsys):
    assert main(["devices", "--device", farm.uri("sdk=>=30"), "--json"]) == 0
    listed = {d["serial"]: d for d in json.loads(capsys.readouterr().out)["devices"]}
    assert set(listed) == {p.serial for p in PHONES}
    assert (listed["PX7-0001"]["model"], listed["PX7-0001"]["soc"], listed["PX7-0001"]["free"]) == ("Pixel 7", "gs201", True)
    assert listed["PX6-0004"]["free"] is False and listed["OLD-0005"]["matches"] is False
    assert main(["devices", "--device", farm.uri()]) == 0
    table = capsys.readouterr().out
    assert "PX8-0002" in table and "zuma" in table and "TOKEN" not in table
    assert main(["devices", "--json"]) == 0
    [local] = [d for d in json.loads(capsys.readouterr().out)["devices"] if d["serial"] == fake_device.serial]
    assert (local["model"], local["soc"], local["abi"], local["free"]) == ("MD-Fake", "fakeboard", "arm64-v8a", True)


# ---------------------------------------------------------------------------------------------- fan-out

def intervals(rows: list[dict]) -> list[tuple[float, float]]:
    import datetime as dt

    return [(dt.datetime.fromisoformat(r["started_at"]).timestamp(),
             dt.datetime.fromisoformat(r["started_at"]).timestamp() + r["wall_s"]) for r in rows]


@pytest.mark.adb
def test_bench_on_three_farm_phones_at_once_one_lost_mid_run(farm, adb_env, tiny_tflite, host_runner, results_db):
    """Three phones reserved, timed concurrently; one drops in its run: its runs fail, the others' are stored ok,
    the exit code says not every phone succeeded, every reservation is given back, and the token is nowhere."""
    farm.lose_on["S23-0003"] = ("run.sh --binary", 0.5)
    env = {**adb_env.env, "MOBILEDEPLOY_DB": str(results_db), "STF_TOKEN": TOKEN}
    proc = cli("bench", "--device", farm.uri("abi=arm64-v8a&sdk=>=30"), "--model", str(tiny_tflite["fp32"]),
               "--benchmark-binary", str(host_runner), "--runs", "5", "--warmup", "1", "--min-secs", "2", "--json", env=env)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and TOKEN not in proc.stdout + proc.stderr
    assert "PX6-0004 skipped: in use or not ready on the farm" in proc.stderr
    lost = [line for line in proc.stderr.splitlines() if line.startswith("mobiledeploy: error:")]
    assert len(lost) == 1 and "S23-0003" in lost[0] and "went away" in lost[0]
    out = {d["phone"]: d for d in json.loads(proc.stdout)["devices"]}
    assert set(out) == {"PX7-0001", "PX8-0002", "S23-0003"}
    assert [out[s]["status"] for s in ("PX7-0001", "PX8-0002", "S23-0003")] == ["ok", "ok", "failed"]
    assert out["PX8-0002"]["machine_class"] == "Pixel 8 / zuma / arm64-v8a"
    rows = {r["config"]["phone"]["serial"]: r for r in stored(results_db)}
    assert set(rows) == {"PX7-0001", "PX8-0002", "S23-0003"}
    assert [rows[s]["status"] for s in ("PX7-0001", "PX8-0002", "S23-0003")] == ["ok", "ok", "failed"]
    assert rows["PX7-0001"]["device"] == f"adb:{farm.address('PX7-0001')}"
    assert rows["PX7-0001"]["config"]["phone"]["machine_class"] == "Pixel 7 / gs201 / arm64-v8a"
    assert rows["PX7-0001"]["config"]["phone"]["farm"] == farm.url
    (a0, a1), (b0, b1) = intervals([rows["PX7-0001"], rows["PX8-0002"]])
    assert max(a0, b0) < min(a1, b1)  # the two phones ran at the same time
    assert TOKEN.encode() not in results_db.read_bytes()
    released(farm, ["PX7-0001", "PX8-0002", "S23-0003"])
    assert adb_sees(adb_env, farm) == set()


@contextlib.contextmanager
def stopped_at_the_end(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """The CLI process of a test, killed on the way out if the test failed before it ended."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()


def wait_while_running(proc: subprocess.Popen, waiting: Callable[[], bool], *, seconds: float) -> None:
    """Poll until `waiting()` is false, the process ended or `seconds` passed (the test's asserts say which)."""
    deadline = time.monotonic() + seconds
    while waiting() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)


@pytest.mark.adb
def test_an_interrupt_releases_every_reservation(farm, adb_env, tiny_tflite, host_runner, results_db):
    env = {**adb_env.env, "MOBILEDEPLOY_DB": str(results_db), "STF_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "mobiledeploy", "bench", "--device", farm.uri("sdk=>=33"),
                             "--model", str(tiny_tflite["fp32"]), "--benchmark-binary", str(host_runner),
                             "--runs", "5", "--warmup", "1", "--min-secs", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    running = lambda: [s for s, d in farm.adbd.items() if any("--binary" in c for c in d.shell_commands)]  # noqa: E731
    with stopped_at_the_end(proc):
        wait_while_running(proc, lambda: len(running()) < 3, seconds=120)
        assert sorted(running()) == ["PX7-0001", "PX8-0002", "S23-0003"], proc.stderr.read() if proc.poll() else ""
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert time.monotonic() - started < 45
    assert "interrupted by SIGTERM" in err and "Traceback" not in err
    released(farm, ["PX7-0001", "PX8-0002", "S23-0003"])
    assert adb_sees(adb_env, farm) == set()


@pytest.fixture(scope="session")
def artifacts_root(request: pytest.FixtureRequest) -> Path:
    """Exports for this file, kept in pytest's cache between sessions. Not test_compare.py's folder: under
    pytest-xdist that file may run at the same time in another process, and two exports of one model into one
    folder would replace each other under the runs."""
    return Path(request.config.cache.mkdir("mobiledeploy-lab-artifacts")).resolve()


@pytest.mark.adb
@pytest.mark.slow
def test_compare_across_three_farm_phones(farm, adb_env, host_runner, results_db, artifacts_root, tmp_path, capsys,
                                          monkeypatch):
    """The issue's 'done when': a compare across three phones reserved from the farm stores every phone's runs,
    releases every reservation and prints the speedups side by side; the stored runs give the same per phone."""
    monkeypatch.setattr("mobiledeploy.converters.pipeline.DEFAULT_OUT", artifacts_root)  # export_model's default
    code = main(["compare", "--device", farm.uri("sdk=>=30&abi=arm64-v8a&count=3"), "--models", "v1:g=3,scale=0.25",
                 "--baseline", "mobilenet_v1:alpha=0.25", "--resolutions", "64x64", "--formats", "fp32",
                 "--rounds", "1", "--runs", "3", "--warmup", "1", "--benchmark-binary", str(host_runner),
                 "--report", str(tmp_path / "report")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "measured speedup over" in out and "per phone" in out
    table = out[out.index("measured speedup over"):]
    assert all(serial in table for serial in ("PX7-0001", "PX8-0002", "S23-0003"))
    assert "Pixel 8 / zuma / arm64-v8a" in out and "SM-S911B / kalama / arm64-v8a" in out
    rows = stored(results_db)
    per_phone = {}
    for row in rows:
        per_phone.setdefault(row["config"]["phone"]["serial"], []).append(row)
    assert sorted(per_phone) == ["PX7-0001", "PX8-0002", "S23-0003"]
    assert all(sorted(r["model"] for r in runs) == ["mobilenet_v1-alpha0.25-64x64", "shufflenet_v1-g3-scale0.25-64x64"]
               and {r["status"] for r in runs} == {"ok"} for runs in per_phone.values())
    released(farm, ["PX7-0001", "PX8-0002", "S23-0003"])
    assert adb_sees(adb_env, farm) == set()
    report = tmp_path / "report"
    assert {"by_device.html", "by_device.md", "speedups_by_device.png", "PX7-0001"} <= {p.name for p in report.iterdir()}
    markdown = (report / "by_device.md").read_text()
    assert "| model | precision | resolution | theoretical | PX7-0001 | PX8-0002 | S23-0003 |" in markdown
    assert "data:image/png;base64," in (report / "by_device.html").read_text()

    runs_json = tmp_path / "runs.json"
    assert main(["results", "--json"]) == 0
    runs_json.write_text(capsys.readouterr().out)
    assert main(["compare", "--results", str(runs_json), "--by-device", "--json", "--models", "v1:g=3,scale=0.25",
                 "--baseline", "mobilenet_v1:alpha=0.25", "--resolutions", "64x64", "--formats", "fp32"]) in (0, None)
    data = json.loads(capsys.readouterr().out)
    by_phone = {d["phone"]: d for d in data["by_device"]}
    assert sorted(by_phone) == ["PX7-0001", "PX8-0002", "S23-0003"]
    for serial, entry in by_phone.items():
        v1 = next(r for r in entry["rows"] if r["key"] == "shufflenet_v1-g3-scale0.25")
        base, model = (next(r["median_ms"] for r in per_phone[serial] if r["model"].startswith(k))
                       for k in ("mobilenet", "shufflenet"))
        assert v1["measured_speedup"] == pytest.approx(base / model)  # each phone against its own baseline
        assert entry["machine_class"] == per_phone[serial][0]["config"]["phone"]["machine_class"]


@pytest.mark.adb
def test_bench_on_a_list_of_adb_phones_one_not_there(fake_device, tiny_tflite, host_runner, results_db, capsys):
    """`--device adb:A,adb:B`: no farm, the same fan-out; a phone adb does not see fails alone (exit 1)."""
    code = main(["bench", "--device", f"adb:{fake_device.serial},adb:no-such-phone", "--model", str(tiny_tflite["int8"]),
                 "--benchmark-binary", str(host_runner), "--runs", "3", "--warmup", "1"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("mobiledeploy: error:")]
    assert len(errors) == 1 and errors[0].startswith("mobiledeploy: error: no-such-phone: adb does not see no-such-phone")
    assert "latency in ms, per phone" in out and "MD-Fake / fakeboard / arm64-v8a" in out
    rows = {r["config"]["phone"]["label"]: r for r in stored(results_db)}
    assert (rows[fake_device.serial]["status"], rows["no-such-phone"]["status"]) == ("ok", "failed")
    assert rows[fake_device.serial]["config"]["phone"]["machine_class"] == "MD-Fake / fakeboard / arm64-v8a"
    assert main(["bench", "--device", "adb:A,local", "--model", str(tiny_tflite["int8"])]) == 2
    assert "takes phones only" in capsys.readouterr().err


@pytest.mark.adb
@pytest.mark.slow
def test_a_farm_gate_judges_each_phone_against_its_own_class(farm, adb_env, host_runner, results_db, artifacts_root,
                                                              tmp_path, capsys, monkeypatch):
    """gate --baseline DIR on a farm: recording writes one baseline per phone class; judging picks each phone's."""
    monkeypatch.setattr("mobiledeploy.converters.pipeline.DEFAULT_OUT", artifacts_root)  # export_model's default
    monkeypatch.setenv("MOBILEDEPLOY_BENCHMARK_MODEL", str(host_runner))
    folder = tmp_path / "baselines"
    folder.mkdir()
    common = ["--device", farm.uri("model=Pixel*"), "--baseline", str(folder), "--rounds", "3", "--runs", "3",
              "--warmup", "1", "--reference", "none"]
    code = main(["gate", *common, "--update-baseline", "--model", "v1:g=3,scale=0.25,resolution=64"])
    out, err = capsys.readouterr()
    assert code == 0, err
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 2 and all(n.startswith("adb-pixel-") for n in names), names
    released(farm, ["PX7-0001", "PX8-0002"])
    farm.calls.clear()
    code = main(["gate", *common, "--max-regression", "900%", "--junit", str(tmp_path / "gate.xml")])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "== PX7-0001: gate exit 0" in out and "== PX8-0002: gate exit 0" in out
    assert f"{names[0]}" in out and f"{names[1]}" in out  # each phone judged against its own class's file
    assert {p.name for p in tmp_path.glob("gate.*.xml")} == {"gate.PX7-0001.xml", "gate.PX8-0002.xml"}
    released(farm, ["PX7-0001", "PX8-0002"])


@pytest.mark.adb
@pytest.mark.slow
def test_profile_on_farm_phones_gives_one_json(farm, adb_env, host_runner, results_db, artifacts_root, capsys,
                                               monkeypatch):
    monkeypatch.setattr("mobiledeploy.converters.pipeline.DEFAULT_OUT", artifacts_root)  # export_model's default
    code = main(["profile", "--device", farm.uri("model=Pixel*"), "--arch", "v1", "--g", "3", "--scale", "0.25",
                 "--resolution", "64", "--runs", "3", "--benchmark-binary", str(host_runner), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["command"] == "profile" and [d["phone"] for d in data["devices"]] == ["PX7-0001", "PX8-0002"]
    for item in data["devices"]:
        assert item["exit_code"] == 0 and item["result"]["device"] == item["device"]
        assert item["result"]["phone"]["serial"] == item["phone"] and item["result"]["categories"]
    released(farm, ["PX7-0001", "PX8-0002"])


@pytest.mark.adb
def test_no_matching_phone_is_bad_input_and_no_free_one_is_a_failed_run(farm, tiny_tflite, host_runner, results_db,
                                                                        capsys):
    args = ["--model", str(tiny_tflite["fp32"]), "--benchmark-binary", str(host_runner), "--runs", "3"]
    assert main(["bench", "--device", farm.uri("model=iPhone*"), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no phone of the farm" in err and "matches" in err
    assert main(["bench", "--device", farm.uri("serial=PX6-0004"), *args]) == 1  # listed, but someone else's
    err = capsys.readouterr().err
    assert "PX6-0004 skipped: in use" in err and err.strip().endswith("could be reserved: PX6-0004 skipped: in use "
                                                                      "or not ready on the farm")
    assert farm.held() == [] and not results_db.exists()


def test_a_phone_run_says_why_it_failed_and_the_exit_code_is_the_worst():
    from mobiledeploy.bench import BenchRun
    from mobiledeploy.devices.lab import Phone
    from mobiledeploy.fanout import PhoneRun, lab_exit_code
    from mobiledeploy.records import RunResult

    def result(ok: bool, kind: str | None = None) -> RunResult:
        r = RunResult(model="m", precision="fp32", device="adb:x", artifact="a", sha256="0", threads=1, runs=0, warmup=0)
        if ok:
            return r.with_timings([1000.0, 1100.0])
        r.failed("boom")
        r.error_kind = kind
        return r

    good = PhoneRun(Phone("adb:a", {"label": "a"}), bench=BenchRun([result(True)], Path("db"), "s"))
    half = PhoneRun(Phone("adb:b", {"label": "b"}), bench=BenchRun([result(True), result(False, "run")], Path("db"), "s"))
    setup = PhoneRun(Phone("adb:c", {"label": "c"}), bench=BenchRun([result(False, "setup")], Path("db"), "s"))
    refused = PhoneRun(Phone("adb:d", {"label": "d", "farm": "http://farm"}),
                       error="127.0.0.1:5555 is unauthorized: accept the USB debugging prompt on the phone")
    assert (good.failure(), half.failure()) == (None, "1 of 2 run(s) failed: boom")
    assert "Settings → Keys → ADB Keys" in refused.failure()
    assert [lab_exit_code(runs) for runs in ([good], [good, half], [good, half, setup], [refused], [])] == [0, 1, 2, 1, 1]
    assert good.to_dict()["status"] == "ok" and half.to_dict() | {"identity": None} == {
        "phone": "b", "device": "adb:b", "identity": None, "machine_class": None, "status": "failed",
        "error": "1 of 2 run(s) failed: boom", "session_id": "s"}


@pytest.mark.adb
@pytest.mark.slow
def test_an_interrupted_compare_releases_every_phone_and_writes_its_report(farm, adb_env, host_runner, results_db,
                                                                          artifacts_root, tmp_path):
    env = {**adb_env.env, "MOBILEDEPLOY_DB": str(results_db), "STF_TOKEN": TOKEN}
    report = tmp_path / "report"
    proc = subprocess.Popen([sys.executable, "-m", "mobiledeploy", "compare", "--device", farm.uri("sdk=>=33"),
                             "--models", "v1:g=3,scale=0.25", "--baseline", "mobilenet_v1:alpha=0.25",
                             "--resolutions", "64x64", "--formats", "fp32", "--rounds", "2", "--runs", "3",
                             "--warmup", "1", "--out", str(artifacts_root), "--benchmark-binary", str(host_runner),
                             "--report", str(report)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    with stopped_at_the_end(proc):
        wait_while_running(proc, lambda: len(stored_ok(results_db)) < 2, seconds=240)
        assert proc.poll() is None  # two runs stored, the session (2 rounds x 2 models x 3 phones) still going
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted by SIGINT" in err and "Traceback" not in err
    released(farm, ["PX7-0001", "PX8-0002", "S23-0003"])
    markdown = (report / "by_device.md").read_text()
    assert "status: interrupted" in markdown and "| model | precision | resolution | theoretical |" in markdown


def stored_ok(db: Path) -> list[dict]:
    try:
        return [r for r in stored(db) if r["status"] == "ok"]
    except Exception:  # not created yet
        return []
