"""Estimated milliseconds on named phones: the profiles file, the pipeline model on blocks whose cycles can be
counted by hand, the simulated cache on a streaming loop, and the timing model that joins them."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mobiledeploy.errors import ConfigError
from mobiledeploy.estimate.blocks import BlockRecord, parse_blocks
from mobiledeploy.estimate.phones import PACKAGED, load_phones, phone
from mobiledeploy.estimate.timing import estimate, hot_blocks
from tests.conftest_qemu import build_static, window_program

REQUIRED = ("sd820", "pixel", "pixel2", "pixel3a", "pixel4", "sd8gen3", "rpi3bplus", "rpi4", "rpi5")


@pytest.fixture(scope="session")
def llvm_mca() -> str:
    tool = shutil.which("llvm-mca") or shutil.which("llvm-mca-14")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("llvm-mca is missing: make arm installs llvm-14")
        pytest.skip("llvm-mca is not installed (make arm)")
    return tool


# --- phone profiles ------------------------------------------------------------------------------

def test_every_required_phone_loads_with_a_source_for_each_figure():
    phones = load_phones([])
    assert set(REQUIRED) <= set(phones)
    for p in phones.values():
        assert p.clock_ghz > 0 and p.l1_kib > 0 and p.l2_kib > 0 and p.single_core_gbs > 0
        text = " ".join(p.sources)
        for figure in ("soc", "caches", "single_core_gbs", "qemu_cpu"):
            assert figure in text, (p.name, figure)
    assert phones["pixel4"].qemu_cpu == "cortex-a76" and phones["rpi3bplus"].qemu_cpu == "cortex-a53"
    assert phones["sd820"].llvm_mcpu == "kryo" and phones["rpi4"].llvm_mcpu == "cortex-a72"


def test_unknown_phone_lists_the_profiles():
    with pytest.raises(ConfigError) as err:
        phone("pixel9", [])
    message = str(err.value)
    assert "unknown phone 'pixel9'" in message and all(name in message for name in REQUIRED)


def _user_file(tmp_path: Path, mutate) -> Path:
    data = json.loads(PACKAGED.read_text())
    entry = json.loads(json.dumps(data["phones"]["pixel4"]))
    mutate(entry)
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"phones": {"myphone": entry}}))
    return path


@pytest.mark.parametrize("mutate, field", [
    (lambda e: e["big"].pop("clock_ghz"), "myphone.big.clock_ghz"),
    (lambda e: e["memory"].update(single_core_gbs="fast"), "myphone.memory.single_core_gbs"),
    (lambda e: e.pop("caches_kib"), "myphone.caches_kib"),
    (lambda e: e.update(qemu_cpu="cortex-x9"), "myphone.qemu_cpu"),
])
def test_a_bad_field_is_named(tmp_path, mutate, field):
    path = _user_file(tmp_path, mutate)
    with pytest.raises(ConfigError) as err:
        load_phones([path])
    assert str(err.value).startswith(f"phone profile {field}")
    assert "\n" not in str(err.value)


def test_a_users_profile_is_found_through_the_environment(tmp_path, monkeypatch):
    path = _user_file(tmp_path, lambda e: e["big"].update(clock_ghz=1.0))
    monkeypatch.setenv("MOBILEDEPLOY_PHONES", str(path))
    monkeypatch.setenv("MOBILEDEPLOY_CACHE", str(tmp_path / "cache"))
    assert phone("myphone").clock_ghz == 1.0 and phone("myphone").origin == str(path)


# --- the timing model on records (pure) -----------------------------------------------------------

def _profile(**changes):
    return dataclasses.replace(load_phones([])["rpi3bplus"], **changes)


def test_memory_bound_blocks_cost_their_lines_over_the_bandwidth():
    """A block that fetches 1000 lines per execution at 64 B/cycle... of bandwidth costs lines x 64 / (B/cycle)."""
    p = _profile(single_core_gbs=1.4, clock_ghz=1.4, cycle_scale=1.0)  # 1 byte per cycle
    record = BlockRecord(0x1000, 3, 10, 20, (10, 10, 0), bytes(12))
    est = estimate([record], p, runs=1, cycles_per_block={0: 5.0})
    assert est.core_cycles == pytest.approx(50.0)
    assert est.cycles == pytest.approx(10 * 64)               # memory-bound: 640 cycles
    assert est.memory_bound_cycles == pytest.approx(640 - 50)
    assert est.ms == pytest.approx(640 / 1.4e9 * 1e3)
    assert est.kind == "estimated" and est.coverage == 1.0


def test_uncovered_blocks_get_the_mean_cpi_and_widen_the_band():
    p = _profile(band_pct=10.0)
    read = BlockRecord(0x1000, 4, 100, 0, (0, 0, 0), bytes(16))
    unread = BlockRecord(0x2000, 4, 100, 0, (0, 0, 0), bytes(16))
    est = estimate([read, unread], p, runs=2, cycles_per_block={0: 8.0, 1: None})
    assert est.coverage == pytest.approx(0.5)
    assert est.core_cycles == pytest.approx(2 * 400)         # 400 per inference each, the unread at 2 cycles/insn
    assert est.band_pct == pytest.approx(60.0)
    assert est.low_ms == pytest.approx(est.ms * 0.4) and est.high_ms == pytest.approx(est.ms * 1.6)


def test_hot_blocks_cover_99_percent():
    records = [BlockRecord(i, 1, n, 0, (0, 0, 0), b"") for i, n in enumerate([9000, 890, 100, 10])]
    assert [r.address for r in hot_blocks(records)] == [0, 1, 2]


def test_parse_blocks_merges_retranslations_and_leaves_out_the_main_executable():
    text = ("X 400000 500000\nB 1000 2 5 3 1 1 0 1f2003d51f2003d5\nB 1000 2 7 1 1 0 0 1f2003d51f2003d5\n"
            "B 400100 1 9 0 0 0 0 1f2003d5\nE\n")
    assert len(parse_blocks(text)) == 2
    (record,) = parse_blocks(text, skip_main=True)
    assert (record.executions, record.accesses, record.misses) == (12, 4, (2, 1, 0))
    assert record.code == bytes.fromhex("1f2003d5") * 2


# --- the pipeline model on blocks counted by hand ---------------------------------------------------

def test_pipeline_model_on_a_straight_line_block(llvm_mca):
    """8 independent single-cycle adds: both cores issue two integer ops a cycle (the A53 is dual-issue; LLVM
    schedules the A76 with its Cortex-A57 model, two integer pipes I0/I1): 4 cycles per execution."""
    from mobiledeploy.estimate.pipeline import block_cycles, disassemble

    block = disassemble([bytes.fromhex("21040091" "42040091" "63040091" "84040091"
                                       "a5040091" "c6040091" "e7040091" "29050091")])
    assert block[0] == [f"add x{r}, x{r}, #1" for r in (1, 2, 3, 4, 5, 6, 7, 9)]
    for mcpu in ("cortex-a53", "cortex-a76"):
        (cycles,) = block_cycles(block, mcpu)
        assert cycles == pytest.approx(4.0, abs=0.05), mcpu


def test_an_unreadable_block_is_uncovered_not_zero(llvm_mca):
    from mobiledeploy.estimate.pipeline import block_cycles, disassemble

    blocks = disassemble([bytes.fromhex("ffffffff21040091"), bytes.fromhex("21040091")])
    assert blocks[0] is None and blocks[1] == ["add x1, x1, #1"]
    assert block_cycles(blocks, "cortex-a76")[0] is None


CHAIN = window_program("""    mov x0, #{n}
1:  add x1, x1, x2
    add x1, x1, x2
    add x1, x1, x2
    add x1, x1, x2
    subs x0, x0, #1
    b.ne 1b
""")

STREAM = window_program("""2:  adrp x1, buf
    add x1, x1, :lo12:buf
    mov x2, #({kib}*1024/16)
1:  ldr q0, [x1], #16
    subs x2, x2, #1
    b.ne 1b
    subs x3, x3, #1
    b.ne 2b
""", setup="    mov x3, #{passes}\n", data="""    .bss
    .balign 64
buf: .skip {kib}*1024
""")


def _blocks_of(arm_env, gcc, tmp_path, source: str, cpu: str, l1: int, l2: int, l3: int) -> list[BlockRecord]:
    from mobiledeploy.estimate.blocks import plugin_argument
    from mobiledeploy.qemu.env import MARKER

    (tmp_path / "p.S").write_text(source)
    program = build_static(gcc, tmp_path / "p.S", tmp_path / "p")
    out = tmp_path / "blocks.txt"
    subprocess.run([arm_env.qemu, "-cpu", cpu, "-plugin", f"{plugin_argument(l1, l2, l3, MARKER)},out={out}",
                    str(program)], check=True, timeout=60)
    return parse_blocks(out.read_text())


@pytest.mark.qemu
def test_a_dependency_chain_costs_its_latency_per_iteration(arm_env, aarch64_gcc, llvm_mca, tmp_path):
    """Four dependent adds (latency 1 each) a loop iteration: 4 cycles an iteration on the A76 model, whatever
    its width; n iterations = 4n cycles, the 3 other instructions of the window within a few cycles."""
    from mobiledeploy.qemu.env import MARKER

    n = 5000
    records = _blocks_of(arm_env, aarch64_gcc, tmp_path, CHAIN.format(marker=MARKER, n=n), "cortex-a76", 64, 512, 0)
    loop = max(records, key=lambda r: r.executions)
    assert (loop.instructions, loop.executions) == (6, n - 1)   # the first iteration runs in the entry block
    est = estimate(records, _profile(llvm_mcpu="cortex-a76", cycle_scale=1.0), runs=1)
    assert est.coverage > 0.999 and est.memory_bound_cycles == 0
    assert est.cycles == pytest.approx(4 * n, rel=0.01)


@pytest.mark.qemu
def test_a_stream_larger_than_the_cache_is_bound_by_bandwidth(arm_env, aarch64_gcc, llvm_mca, tmp_path):
    """4 MiB read once through a 32 KiB L1 and a 512 KiB L2: 65536 lines from memory; at 2.0 GB/s and 1.4 GHz
    (the Pi 3B+ profile) that is 65536 x 64 / (2.0/1.4) = 2.94 M cycles, over the 2 cycles an iteration the
    loop needs on the A53 model. The same reads over 64 KiB, 64 times (it stays in L2), are core-bound."""
    from mobiledeploy.qemu.env import MARKER

    p = _profile(cycle_scale=1.0)
    big = _blocks_of(arm_env, aarch64_gcc, tmp_path, STREAM.format(marker=MARKER, kib=4096, passes=1),
                     "cortex-a53", p.l1_kib, p.l2_kib, 0)
    loop = max(big, key=lambda r: r.executions)
    assert loop.dram_lines(2) == pytest.approx(4096 * 1024 / 64, abs=2)
    est = estimate(big, p, runs=1)
    assert est.cycles == pytest.approx(4096 * 1024 / (2.0 / 1.4), rel=0.01)
    assert est.memory_bound_cycles > est.core_cycles
    small = _blocks_of(arm_env, aarch64_gcc, tmp_path, STREAM.format(marker=MARKER, kib=64, passes=64),
                       "cortex-a53", p.l1_kib, p.l2_kib, 0)
    hot = max(small, key=lambda r: r.executions)
    assert hot.dram_lines(2) <= 64 * 1024 / 64 + 2       # only the first pass comes from memory
    est_small = estimate(small, p, runs=1)
    assert est_small.memory_bound_cycles < 0.1 * est_small.cycles


# --- through the CLI -----------------------------------------------------------------------------

CLI = [__import__("sys").executable, "-m", "mobiledeploy"]


@pytest.mark.parametrize("device, phone_name, words", [
    ("qemu:cortex-a76", "pixel9", ["unknown phone 'pixel9'", "pixel4", "sd820", "rpi5"]),
    ("qemu:cortex-a53", "pixel4", ["runs the kernels of qemu:cortex-a76"]),
    ("local", "pixel4", ["--device qemu:cortex-a76"]),
])
def test_bad_phone_input_is_one_line_exit_2(tmp_path, results_db, device, phone_name, words):
    proc = subprocess.run([*CLI, "bench", "--device", device, "--phone", phone_name, "--model", "x.tflite"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("mobiledeploy: error: ") and all(w in proc.stderr for w in words)
    assert not results_db.exists()


def test_a_bad_profile_file_is_one_line_naming_the_field(tmp_path, results_db):
    path = _user_file(tmp_path, lambda e: e["calibration"].pop("band_pct"))
    proc = subprocess.run([*CLI, "bench", "--device", "qemu:cortex-a76", "--phone", "myphone", "--model", "x.tflite"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "MOBILEDEPLOY_PHONES": str(path)})
    assert proc.returncode == 2 and proc.stderr.strip() == \
        "mobiledeploy: error: phone profile myphone.calibration.band_pct: expected a positive number, got None"


@pytest.mark.qemu
@pytest.mark.slow
def test_bench_with_a_phone_stores_an_estimate_apart_with_the_same_counts(arm_env, exports, results_db, llvm_mca):
    from mobiledeploy.qemu.run import run_guest

    exported = exports("v1_g3")
    model = Path(exported.result.path) / exported.result.manifest.artifacts["fp32"].path
    proc = subprocess.run([*CLI, "bench", "--device", "qemu:cortex-a76", "--phone", "pixel4", "--model", str(model),
                           "--runs", "2", "--warmup", "1", "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    item = json.loads(proc.stdout)["results"][0]
    assert item["unit"] == "instructions" and item["median_ms"] is None  # no measured ms, ever
    est = item["observed"]["estimate"]
    assert est["kind"] == "estimated" and est["phone"] == "pixel4" and "not measured" in est["unit"]
    assert 0 < est["low_ms"] < est["ms"] < est["high_ms"] and est["coverage"] > 0.9
    # the interpreter is left out of both; the window also holds the marker calls between runs (~2k instructions)
    assert est["instructions"] == pytest.approx(item["instructions"], rel=0.01)
    plain = run_guest(arm_env, "cortex-a76", model, runs=2, warmup=1)
    assert item["instruction_counts"] == plain.counts.runs   # the plugin beside changes no count


# --- calibrate on the fake phone ------------------------------------------------------------------

def test_fit_scale_is_the_geometric_mean_and_held_out_rows_leave_their_model_out():
    from mobiledeploy.estimate.calibrate import fit, fit_scale

    assert fit_scale([(2.0, 1.0), (8.0, 1.0)]) == pytest.approx(4.0)
    result = fit(["a", "b", "c"], [2.0, 4.0, 8.0], [1.0, 1.0, 1.0])
    assert result.scale == pytest.approx(4.0)
    assert result.rows[0]["held_out_ms"] == pytest.approx(fit_scale([(4.0, 1.0), (8.0, 1.0)]))  # sqrt(32)
    assert result.rows[0]["held_out_error_pct"] == pytest.approx(100 * (32 ** 0.5 / 2 - 1))
    assert result.band_pct == pytest.approx(max(abs(r["held_out_error_pct"]) for r in result.rows))


@pytest.mark.adb
@pytest.mark.qemu
def test_calibrate_round_trips_on_the_fake_phone(arm_env, llvm_mca, adb_env, fake_device, tiny_tflite, host_runner,
                                                 results_db, tmp_path, monkeypatch):
    """Times the suite through the bench harness on the fake phone, fits, saves; the saved profile then
    estimates a model as its uncalibrated estimate x the fitted scale, without the phone."""
    from mobiledeploy.estimate.run import estimate_artifact

    from mobiledeploy.files import cache_dir

    env = {**adb_env.env, "MOBILEDEPLOY_DB": str(results_db), "MOBILEDEPLOY_PHONES_DIR": str(tmp_path / "phones"),
           "MOBILEDEPLOY_CACHE": str(cache_dir())}  # adb_env's private HOME would hide the Arm64 environment
    proc = subprocess.run([*CLI, "calibrate", "--device", f"adb:{fake_device.serial}", "--phone", "pixel4",
                           "--name", "myphone", "--models", f"{tiny_tflite['fp32']},{tiny_tflite['int8']}",
                           "--benchmark-binary", str(host_runner), "--runs", "5", "--warmup", "1", "--json"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    rows = data["models"]
    assert len(rows) == 2 and all(r["measured_ms"] > 0 and r["raw_ms"] > 0 for r in rows)
    ratios = [r["measured_ms"] / r["raw_ms"] for r in rows]
    assert data["cycle_scale"] == pytest.approx((ratios[0] * ratios[1]) ** 0.5)
    assert rows[0]["held_out_ms"] == pytest.approx(rows[0]["raw_ms"] * ratios[1])
    saved = Path(data["profile"])
    assert saved == tmp_path / "phones" / "myphone.json"
    monkeypatch.setenv("MOBILEDEPLOY_PHONES_DIR", str(tmp_path / "phones"))
    mine = phone("myphone")
    assert mine.cycle_scale == pytest.approx(data["cycle_scale"], rel=1e-3) and "adb:" in mine.calibration_source
    again = estimate_artifact(tiny_tflite["fp32"], mine).estimate
    # the same counts; the window also holds a few thousand interpreter instructions that vary by run
    assert again.ms == pytest.approx(rows[0]["raw_ms"] * mine.cycle_scale, rel=0.01)


def test_the_wall_clock_gate_refuses_estimates(tmp_path, capsys):
    """A counted run carrying a phone's estimate is judged against a wall-clock baseline: no timing comes of the
    estimate; the gate cannot judge (exit 2) and says the estimate is not measured."""
    from mobiledeploy.gating.baseline import baseline_from_results, save_baseline
    from mobiledeploy.cli import main
    from mobiledeploy.records import RunResult

    def result() -> RunResult:
        return RunResult(model="alexnet-224x224", precision="fp32", device="qemu:cortex-a57", artifact="/a/m.tflite",
                         sha256="0", threads=1, runs=2, warmup=1, macs=100, config={"resolution": [224, 224]})

    save_baseline(baseline_from_results([result().with_timings([10_000.0] * 8)]), tmp_path / "base.json")
    mine = result()
    mine.instruction_counts, mine.instructions = [600, 600], 600.0
    mine.observed["estimate"] = {"kind": "estimated", "phone": "sd820", "ms": 9.0, "band_pct": 12.0}
    (tmp_path / "runs.json").write_text(json.dumps({"results": [mine.to_dict()]}))
    assert main(["gate", "--baseline", str(tmp_path / "base.json"), "--results", str(tmp_path / "runs.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mobiledeploy: error: cannot judge") and "estimated ms on sd820 are not measured" in err
