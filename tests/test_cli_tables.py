"""The terminal tables that show a precision, rendered at 80 and 120 columns: the column says "precision" whole,
and the figures and verdicts stay on their row (the gate's rows are read by people and by tests line by line)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from mobiledeploy.records import RunResult

MODELS = ("shufflenet_v1-g3-scale0.5-224x224", "mobilenet_v1-alpha0.25-224x224")
PRECISIONS = ("fp32", "int8")


def _run(model: str, precision: str, **figures) -> RunResult:
    return RunResult(model=model, precision=precision, device=figures.pop("device", "local"), artifact="/a/m.tflite",
                     sha256="0" * 64, threads=1, runs=20, warmup=3, runtime=figures.pop("runtime", "litert"), **figures)


@pytest.fixture
def render(monkeypatch):
    """render(width, print_function, *args) -> the text the function printed on a terminal of that width."""
    import mobiledeploy.cli.console as console
    from mobiledeploy.cli import bench_cmd, lab, profile_cmd

    def run(width: int, show, *args) -> str:
        made: list[Console] = []

        def make(*a, **kw) -> Console:
            made.append(Console(width=kw.get("width", width), record=True, file=io.StringIO(), emoji=False,
                                highlight=False))
            return made[-1]

        for module in (console, bench_cmd, lab, profile_cmd):
            monkeypatch.setattr(module, "stdout_console", make)
        monkeypatch.setattr("rich.console.Console", make)  # the wall-clock gate makes its own (at least 120 wide)
        show(*args)
        return "".join(c.export_text() for c in made)

    return run


def _rows(text: str, first_word: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip().startswith(first_word)]


def _header(text: str) -> str:
    return next(line for line in text.splitlines() if " precision " in f"{line} ")


@pytest.mark.parametrize("width", [80, 120])
def test_the_gate_tables_say_precision_and_keep_each_row_on_one_line(render, width):
    from mobiledeploy.cli.gate_report import print_exact, print_verdict
    from mobiledeploy.gating.exact import EntryVerdict, ExactVerdict
    from mobiledeploy.gating.wallclock import ModelVerdict, Verdict

    models = [ModelVerdict(key=f"{m}/{p}", status="inconclusive", message="", name=m, precision=p, ratio=1.05,
                           low=0.97, high=1.13, p_value=0.21, baseline_median_ms=12.3, candidate_median_ms=12.9)
              for m in MODELS for p in PRECISIONS]
    text = render(width, print_verdict, Verdict(models, 0.1, 0.99, MODELS[1], "local", "local"), "baselines/gate.json")
    assert "format" not in _header(text).split()
    rows = [line for line in text.splitlines() if line.split()[:1] and line.split()[0] in MODELS]
    assert len(rows) == 4 and all(r.split()[-1] == "inconclusive" and "-3.0% … +13.0%" in r for r in rows)
    assert not any(line.strip().startswith("+13.0%") for line in text.splitlines())  # no folded interval
    entries = [EntryVerdict(key=f"v1/{p}", status="unchanged", message="", ref="v1:g=3", precision=p, cpu="cortex-a76",
                            baseline=31.85e6, candidate=31.9e6, ratio=1.0016) for p in PRECISIONS]
    text = render(width, print_exact, ExactVerdict(entries, 0.005), "baselines/arm.json")
    rows = _rows(text, "v1:g=3")
    assert "precision" in _header(text) and [r.split()[1] for r in rows] == list(PRECISIONS)
    assert all(r.split()[-1] == "unchanged" and "31.8500M" in r for r in rows)


@pytest.mark.parametrize("width", [80, 120])
def test_the_bench_tables_say_precision_whole(render, width):
    from mobiledeploy.cli.bench_cmd import print_counts, print_results
    from mobiledeploy.cli.lab import print_lab_results
    from mobiledeploy.cli.results_cmd import print_rows

    timed = [_run(m, p, median_ms=12.3, p90_ms=13.1, mean_ms=12.5, std_ms=0.4, cv=0.03, min_ms=11.9, init_ms=40.2,
                  first_ms=15.1, peak_memory_mb=35.2, macs=137_000_000) for m in MODELS for p in PRECISIONS]
    counted = [_run(m, p, device="qemu:cortex-a76", runtime="counted", instructions=31.85e6, macs=137_000_000,
                    instruction_counts=[31_850_000, 31_850_014], init_instructions=90e6, first_instructions=40e6)
               for m in MODELS for p in PRECISIONS]
    stored = [{"id": i, "started_at": "2026-12-03T22:10:00", "model": r.model, "precision": r.precision,
               "device": "local", "runtime": "litert", "threads": 1, "status": "ok", "median_ms": 12.3, "mean_ms": 12.5,
               "init_ms": 40.2, "warnings": [], "error": None} for i, r in enumerate(timed)]
    phone = type("Phone", (), {"label": "Pixel 4 (R58M123ABC)"})
    lab = [type("Run", (), {"phone": phone, "machine_class": "sm8150", "results": timed})]
    for text in (render(width, print_results, timed, "r.db"), render(width, print_counts, counted, "r.db"),
                 render(width, print_rows, stored, "r.db"), render(width, print_lab_results, lab, "r.db")):
        header = _header(text)
        assert "format" not in header.split() and "precisi…" not in text
        cells = [w for line in text.splitlines() for w in line.split() if w in PRECISIONS]
        assert cells.count("fp32") == cells.count("int8") == 2, text
    if width == 120:  # the figures of a row stay whole on its line (the model's name folds)
        text = render(width, print_results, timed, "r.db")
        assert sum("137.0M" in line and "11.14" in line for line in text.splitlines()) == 4, text
        text = render(width, print_counts, counted, "r.db")
        assert sum("31.85M" in line and "137.0M" in line for line in text.splitlines()) == 4, text


def test_the_arm_profile_title_names_the_artifact_counted(render):
    from mobiledeploy.cli.profile_cmd import print_arm_profile
    from mobiledeploy.qemu.profile import ArmProfile, KernelCost

    kinds = [{"kind": "depthwise conv", "instructions": 2e6, "share": 1.0, "mac_share": 0.1, "instructions_per_mac": 2.0}]
    for artifact, runtime in (("int8", "LiteRT"), ("pte_int8", "ExecuTorch runtime")):
        profile = ArmProfile(model="net", precision="int8", artifact=artifact, cpu="cortex-a76", instructions=2e6,
                             kernels=[KernelCost("xnn_qs8_dwconv", "libxnn.so", "depthwise conv", 2e6)], kinds=kinds)
        text = render(120, print_arm_profile, profile, "qemu:cortex-a76")
        assert f"net ({artifact}) on qemu:cortex-a76" in text and f"aarch64 {runtime}" in text
