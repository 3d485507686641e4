"""Machine classes: what a latency baseline is only valid on, and how the gate picks and refuses baselines."""

from __future__ import annotations

import json

import pytest

from mobiledeploy.gating.baseline import load_baseline, save_baseline
from mobiledeploy.cli import main
from mobiledeploy.devices.base import machine_class, machine_slug
from mobiledeploy.devices.local import cpu_identity, host_facts
from mobiledeploy.gating.status import OTHER_MACHINE
from mobiledeploy.gating.wallclock import judge
from tests.test_gate import MEDIANS_US, session, session_results, slower

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni hypervisor

processor\t: 1
vendor_id\t: GenuineIntel
"""
ZEN3_FLAGS = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 hypervisor"
ARM64 = """processor\t: 0
BogoMIPS\t: 38.40
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x1
CPU part\t: 0xd0d

processor\t: 1
"""


def host(cpuinfo: str, abi: str = "x86_64") -> dict:
    return {"kind": "host", "abi": abi, "cpu": cpu_identity(cpuinfo)}


def zen3() -> dict:
    return host(ZEN4.replace("model\t\t: 17", "model\t\t: 1").split("flags")[0] + f"flags\t\t: {ZEN3_FLAGS}\n")


def test_cpu_identity_reads_the_first_processor():
    assert cpu_identity(ZEN4) == {"vendor": "AuthenticAMD", "family": "25", "model": "17", "name": "AMD EPYC",
                                  "isa": ["sse4_1", "avx", "f16c", "fma", "avx2", "avx512f", "avx512bw", "avx512dq",
                                          "avx512vl", "avx512_vnni"]}
    assert cpu_identity(ARM64) == {"vendor": "0x41", "family": "8", "model": "0xd0d",
                                   "isa": ["asimd", "asimdhp", "asimddp"]}
    assert cpu_identity("") == {"isa": []}


def test_machine_class_tells_cpus_with_the_same_name_apart():
    new, old = machine_class(host(ZEN4)), machine_class(zen3())
    assert new == ("x86_64 AuthenticAMD family 25 model 17 "
                   "[sse4_1 avx f16c fma avx2 avx512f avx512bw avx512dq avx512vl avx512_vnni]")
    assert old != new and "family 25 model 1 [" in old
    assert machine_class(host(ARM64, "aarch64")) == "aarch64 0x41 family 8 model 0xd0d [asimd asimdhp asimddp]"
    phone = {"kind": "android", "model": "Pixel 7", "soc": "Tensor G2", "abi": "arm64-v8a"}
    assert machine_class(phone) == "Pixel 7 / Tensor G2 / arm64-v8a"
    assert machine_class({"kind": "host", "abi": "x86_64"}) is None  # recorded before the CPU was
    assert machine_class({"kind": "android"}) is None
    assert machine_class(host_facts()) is not None  # this machine says what it is


def test_machine_slug_is_a_stable_file_name():
    slug = machine_slug("local", machine_class(host(ZEN4)))
    assert slug.startswith("local-authenticamd-25-17-") and len(slug.rsplit("-", 1)[1]) == 8
    assert slug == machine_slug("local", machine_class(host(ZEN4)))
    assert slug != machine_slug("local", machine_class(zen3()))
    assert machine_slug("adb:R58M", "Pixel 7 / Tensor G2 / arm64-v8a").startswith("adb-pixel-7-tensor-g2-")
    assert machine_slug("local", None) == "local"


def on(facts: dict, baseline):
    baseline.device_info = dict(facts)
    return baseline


def test_the_gate_does_not_compare_across_machine_classes():
    verdict = judge(on(zen3(), session(seed=1)), on(host(ZEN4), session(slower(1.5), seed=2)))
    assert verdict.exit_code == 2 and {m.status for m in verdict.models} == {OTHER_MACHINE}
    assert verdict.summary_line().startswith("the baseline was recorded on another machine class")
    assert len(verdict.models) == 2 and verdict.summary_line().count("another machine class") == 1  # once, not per model
    same = judge(on(host(ZEN4), session(seed=1)), on(host(ZEN4), session(slower(1.5), seed=2)))
    assert same.exit_code == 1  # same class: judged, and the regression is found


def test_a_baseline_without_a_machine_class_is_judged_with_a_warning():
    verdict = judge(session(seed=1), on(host(ZEN4), session(seed=2)))
    assert verdict.exit_code == 0
    assert any("does not record its machine class" in w for w in verdict.warnings)


@pytest.fixture
def folder(tmp_path):
    """benchmarks/baselines-like folder with a baseline of the other class; result files of this class."""
    baselines = tmp_path / "baselines"
    save_baseline(on(zen3(), session(seed=1)), baselines / f"{machine_slug('local', machine_class(zen3()))}.json")

    def results(medians=MEDIANS_US, seed=2) -> str:
        path = tmp_path / f"results{seed}-{len(list(tmp_path.iterdir()))}.json"
        runs = session_results(medians, seed=seed)
        for r in runs:
            r.device_info = host(ZEN4)
        path.write_text(json.dumps({"device": "local", "results": [r.to_dict() for r in runs]}))
        return str(path)

    return baselines, results


def test_cli_folder_without_this_machine_class(folder, tmp_path, capsys):
    baselines, results = folder
    assert main(["gate", "--baseline", str(baselines), "--results", results()]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mobiledeploy: error: no baseline for this machine class") and err.count("\n") == 1
    md = tmp_path / "gate.md"
    assert main(["gate", "--baseline", str(baselines), "--results", results(), "--if-no-baseline", "skip",
                 "--markdown", str(md), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "skipped" and out["machine_class"] == machine_class(host(ZEN4))
    assert "Latency gate skipped" in md.read_text()
    assert main(["gate", "--baseline", str(baselines), "--results", results(), "--if-no-baseline", "maybe"]) == 2


def test_cli_folder_records_then_picks_this_machine_class(folder, capsys):
    baselines, results = folder
    assert main(["gate", "--baseline", str(baselines), "--update-baseline", "--results", results(seed=3)]) == 0
    mine = baselines / f"{machine_slug('local', machine_class(host(ZEN4)))}.json"
    assert mine.is_file() and len(list(baselines.glob("*.json"))) == 2
    assert machine_class(load_baseline(mine).device_info) == machine_class(host(ZEN4))
    assert load_baseline(mine).reference == load_baseline(next(p for p in baselines.glob("*.json") if p != mine)).reference
    capsys.readouterr()
    assert main(["gate", "--baseline", str(baselines), "--results", results(seed=4), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "pass"
    assert main(["gate", "--baseline", str(baselines), "--results", results(slower(1.2), seed=5), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "regression"


def test_cli_single_file_of_another_class_exits_2(folder, capsys):
    baselines, results = folder
    [other] = baselines.glob("*.json")
    assert main(["gate", "--baseline", str(other), "--results", results(slower(1.5))]) == 2
    assert "another machine class" in capsys.readouterr().err
