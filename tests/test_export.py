"""The export pipeline: torch → ONNX → TFLite fp32 / int8, manifest, reuse, atomicity.

Conversions go through TensorFlow and are marked slow; the shared exports (`exports` in
tests/conftest_export.py) are built once per session and reused by every test that reads them.
Tests that need their own export use small models and the cheapest formats that show the point.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from mobiledeploy.converters.manifest import Manifest
from mobiledeploy.errors import ConfigError, ExportError, ParityError
from tests.conftest_export import EXPORT_CASES, NetworkBlocked, OfflineGuard, tflite_graph

REPO = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("mobiledeploy")
ALL_CASES = list(EXPORT_CASES)
SHUFFLE_CASES = [k for k in EXPORT_CASES if EXPORT_CASES[k][0] == "shufflenet_v1"]
FRESH_SEED = 4242  # not the calibration (0) or held-out (1) seed the pipeline uses
TFLITE_FORMATS = ("fp32", "int8")


# --- helpers ------------------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fresh_inputs(manifest: Manifest, n: int = 3) -> np.ndarray:
    """New normalised NCHW inputs, (n, 3, H, W) float32, none of which the pipeline has seen."""
    from mobiledeploy.converters.calibration import normalise, synthetic_images

    h, w = manifest.resolution
    return normalise(synthetic_images(n, (h, w), FRESH_SEED), manifest.mean, manifest.std)


def _torch_reference(result, inputs: np.ndarray) -> np.ndarray:
    """Outputs of a model rebuilt from the recorded config and the saved model.pt."""
    import torch

    from mobiledeploy.registry import build_model

    manifest = result.manifest
    model = build_model(manifest.arch, seed=123, **manifest.config)  # other init: weights must come from the file
    model.load_state_dict(torch.load(result.artifact("weights"), map_location="cpu", weights_only=True))
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(inputs)).numpy()


def _run_tflite(path: Path, inputs_nchw: np.ndarray, quant: dict | None = None, delegates: bool = True) -> np.ndarray:
    """Feed NHWC inputs one by one. int8 models get inputs quantised with `quant` (the manifest's)."""
    graph = tflite_graph(path, delegates=delegates)
    interp = graph.interpreter
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    outputs = []
    for x in inputs_nchw:
        x = x.transpose(1, 2, 0)[None]  # NCHW sample → NHWC batch of one
        if quant is not None:
            x = np.clip(np.round(x / quant["scale"]) + quant["zero_point"], -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        outputs.append(interp.get_tensor(out["index"]).copy())
    return np.concatenate(outputs)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _count_channel_shuffles(manifest: Manifest) -> int:
    from mobiledeploy.models.common import ChannelShuffle
    from mobiledeploy.registry import build_model

    model = build_model(manifest.arch, **manifest.config)
    return sum(isinstance(m, ChannelShuffle) and m.groups > 1 for m in model.modules())


def _count_depthwise_convs(manifest: Manifest) -> int:
    from mobiledeploy.models.common import count_depthwise_convs
    from mobiledeploy.registry import build_model

    return count_depthwise_convs(build_model(manifest.arch, **manifest.config))


def _snapshot(directory: Path) -> dict[str, tuple[int, str]]:
    """name → (mtime_ns, sha256) of every file in an artifact directory."""
    return {p.name: (p.stat().st_mtime_ns, _sha256(p)) for p in sorted(directory.iterdir()) if p.is_file()}


def _leftovers(out_root: Path, target: Path | None = None) -> list[str]:
    return sorted(p.name for p in out_root.iterdir() if target is None or p != target)


# --- 1. end to end: fp32 and int8 TFLite vs PyTorch on fresh inputs ----------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("key", ALL_CASES)
def test_fp32_tflite_matches_torch_on_fresh_inputs(exports, key):
    res = exports(key).result
    x = _fresh_inputs(res.manifest)
    reference = _torch_reference(res, x)
    span = float(reference.max() - reference.min())
    assert span > 0
    for delegates in (True, False):  # XNNPACK (LiteRT's default) and the builtin kernels
        got = _run_tflite(res.artifact("fp32"), x, delegates=delegates)
        assert got.shape == reference.shape
        rel = float(np.abs(got - reference).max()) / span
        assert rel <= 1e-4, f"fp32 TFLite (delegates={delegates}) deviates from torch by {rel:.2e} of the output range"


@pytest.mark.slow
@pytest.mark.parametrize("key", ALL_CASES)
def test_int8_tflite_tracks_fp32_on_fresh_inputs(exports, key):
    res = exports(key).result
    x = _fresh_inputs(res.manifest)
    fp32 = _run_tflite(res.artifact("fp32"), x)
    io = res.manifest.artifacts["int8"]
    q_in, q_out = io.inputs[0]["quantization"], io.outputs[0]["quantization"]
    raw = _run_tflite(res.artifact("int8"), x, quant=q_in)
    assert raw.dtype == np.int8
    dequantised = (raw.astype(np.float32) - q_out["zero_point"]) * q_out["scale"]
    cosines = _cosines(fp32, dequantised)
    assert cosines.min() >= 0.98, f"int8 vs fp32 cosines {cosines}"
    # Dequantising with the recorded params must land on fp32's scale, not just its direction.
    assert np.abs(dequantised - fp32).max() < 0.25 * (fp32.max() - fp32.min())


# --- 2. int8 tensor types and quantisation ------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("key", ALL_CASES)
def test_int8_io_is_int8_with_the_manifests_quant_params(exports, key):
    res = exports(key).result
    interp = tflite_graph(res.artifact("int8")).interpreter
    entry = res.manifest.artifacts["int8"]
    for recorded, actual in ((entry.inputs, interp.get_input_details()), (entry.outputs, interp.get_output_details())):
        assert len(recorded) == len(actual) == 1
        rec, act = recorded[0], actual[0]
        assert act["dtype"] == np.int8 and rec["dtype"] == "int8"
        scale, zero_point = act["quantization"]
        assert scale > 0 and -128 <= zero_point <= 127
        assert rec["quantization"]["scale"] == pytest.approx(scale, rel=1e-6)
        assert rec["quantization"]["zero_point"] == zero_point
        assert rec["shape"] == [int(d) for d in act["shape"]]
    fp32 = tflite_graph(res.artifact("fp32")).interpreter
    assert fp32.get_input_details()[0]["dtype"] == np.float32
    assert fp32.get_output_details()[0]["dtype"] == np.float32


@pytest.mark.slow
@pytest.mark.parametrize("key", ALL_CASES)
def test_int8_conv_weights_are_quantised_per_channel(exports, key):
    graph = tflite_graph(exports(key).result.artifact("int8"))
    convs = [op for op in graph.ops if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert convs
    for op in convs:
        weights = graph.tensors[int(op["inputs"][1])]
        q = weights["quantization_parameters"]
        out_channels = int(weights["shape"][0] if op["op_name"] == "CONV_2D" else weights["shape"][-1])
        assert weights["dtype"] == np.int8, weights["name"]
        assert out_channels > 1
        assert len(q["scales"]) == out_channels, (weights["name"], len(q["scales"]), out_channels)
        assert np.all(q["scales"] > 0)
        if len(op["inputs"]) > 2 and op["inputs"][2] >= 0:
            assert graph.tensors[int(op["inputs"][2])]["dtype"] == np.int32  # bias: int32 as full-integer asks


# --- 3. builtin ops only; a channel shuffle is one TRANSPOSE -----------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("key", ALL_CASES)
def test_only_builtin_ops_and_manifest_op_counts_are_true(exports, key):
    res = exports(key).result
    for fmt in TFLITE_FORMATS:
        counts = tflite_graph(res.artifact(fmt)).op_counts()
        bad = [op for op in counts if "CUSTOM" in op.upper() or "FLEX" in op.upper() or op.startswith("DELEGATE")]
        assert not bad, (fmt, bad)
        assert counts == res.manifest.artifacts[fmt].op_counts, fmt
        assert counts.get("CONV_2D", 0) + counts.get("DEPTHWISE_CONV_2D", 0) > 0


@pytest.mark.slow
@pytest.mark.parametrize("key", SHUFFLE_CASES)
def test_each_channel_shuffle_lowers_to_a_single_transpose(exports, key):
    res = exports(key).result
    shuffles = _count_channel_shuffles(res.manifest)
    assert shuffles > 0  # g > 1 in every case here
    for fmt in TFLITE_FORMATS:
        counts = tflite_graph(res.artifact(fmt)).op_counts()
        assert res.manifest.artifacts[fmt].channel_shuffles == shuffles, fmt
        assert counts.get("TRANSPOSE", 0) == shuffles, f"{fmt}: {counts.get('TRANSPOSE', 0)} TRANSPOSE for {shuffles} shuffles"
        assert counts.get("RESHAPE", 0) >= 2 * shuffles, fmt
        assert "GATHER" not in counts, fmt


@pytest.mark.slow
@pytest.mark.parametrize("key", ALL_CASES)
def test_depthwise_convs_stay_depthwise(exports, key):
    """Each depthwise conv of the torch model is a DEPTHWISE_CONV_2D, never a CONV_2D with groups =
    channels (a different kernel: onnx2tf picks it when a shuffle's NCHW exit feeds the conv). Each
    average pool of the ONNX graph is one more: it is exported as a depthwise conv (converters/delegable.py)."""
    res = exports(key).result
    depthwise = _count_depthwise_convs(res.manifest) + res.manifest.artifacts["onnx"].op_counts.get("AveragePool", 0)
    for fmt in TFLITE_FORMATS:
        graph = tflite_graph(res.artifact(fmt))
        assert graph.op_counts().get("DEPTHWISE_CONV_2D", 0) == depthwise, fmt
        for op in graph.ops:
            if op["op_name"] == "CONV_2D":
                x, w = graph.tensors[int(op["inputs"][0])], graph.tensors[int(op["inputs"][1])]
                assert not (int(w["shape"][-1]) == 1 and int(x["shape"][-1]) > 1), f"{fmt}: {w['name']} is a per-channel CONV_2D"


@pytest.mark.slow
def test_shuffle_transposes_permute_the_group_axes(exports):
    """Each TRANSPOSE swaps (g, C/g) of a 5-D NHWC view: the shuffle itself, not a layout change."""
    res = exports("v1_g8").result
    graph = tflite_graph(res.artifact("fp32"))
    transposes = [op for op in graph.ops if op["op_name"] == "TRANSPOSE"]
    assert transposes
    for op in transposes:
        shape = [int(d) for d in graph.tensors[int(op["inputs"][0])]["shape"]]
        assert len(shape) == 5 and shape[3] == 8, shape  # (N, H, W, g, C/g)
        perm = graph.interpreter.get_tensor(int(op["inputs"][1])).tolist()
        assert perm == [0, 1, 2, 4, 3]


# --- 4. the manifest ------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("key", ALL_CASES)
def test_manifest_records_the_export(exports, key):
    from mobiledeploy.analysis import analyse
    from mobiledeploy.converters import SCHEMA_VERSION, STAGES, Manifest, read_manifest
    from mobiledeploy.converters.executorch import PTE_STAGES
    from mobiledeploy.registry import get_spec

    exp = exports(key)
    res = exp.result
    m = res.manifest
    assert isinstance(m, Manifest)
    assert read_manifest(res.path).to_dict() == json.loads(json.dumps(m.to_dict()))  # what is on disk was returned
    assert m.schema_version == SCHEMA_VERSION
    assert m.arch == exp.arch
    assert m.config == get_spec(exp.arch).resolve(exp.config)
    assert m.resolution == [exp.resolution, exp.resolution]
    assert res.path == exp.out_root / m.slug

    cost = analyse(exp.arch, exp.resolution, **exp.config)
    assert m.complexity["macs"] == cost.macs > 0
    assert m.complexity["params"] == cost.params > 0
    assert {"memory_access", "elementwise"} <= set(m.complexity)

    assert set(m.artifacts) == {"weights", "onnx", "fp32", "int8"}
    parity = m.parity
    assert set(parity) == {"onnx", "fp32", "int8", "arm"}
    assert all(parity[f]["passed"] is True for f in parity)
    for fmt in ("onnx", "fp32"):
        assert parity[fmt]["reference"] == "torch" and parity[fmt]["max_rel"] <= parity[fmt]["tolerance"] == 1e-4
    assert parity["int8"]["reference"] == "fp32" and parity["int8"]["cosine"] >= parity["int8"]["floor"] == 0.98
    assert all(parity[f]["samples"] > 0 for f in ("onnx", "fp32", "int8"))
    arm = parity["arm"]
    if "skipped" in arm:  # the emulated Arm64 environment is not set up; CI always has it (make arm)
        assert not os.environ.get("CI") and "mobiledeploy qemu setup" in arm["skipped"]
    else:  # the aarch64 LiteRT on cortex-a76 computes what torch and the host's LiteRT compute
        assert arm["device"] == "qemu:cortex-a76" and arm["samples"] == 1
        assert arm["fp32"]["vs_torch"]["passed"] and arm["fp32"]["vs_host_max_rel"] <= 1e-5
        assert arm["int8"]["vs_host_steps"] <= 1 and arm["int8"]["vs_arm_fp32"]["passed"]
        for fmt in ("fp32", "int8"):
            assert arm[fmt]["instructions"] > 0 and arm[fmt]["delegation"]["partitions"] >= 1

    assert m.calibration["source"] == "synthetic" and m.calibration["samples"] == 32

    for tool, dist in {"torch": "torch", "onnx": "onnx", "onnxruntime": "onnxruntime", "tensorflow": "tensorflow",
                       "onnx2tf": "onnx2tf", "mobiledeploy": "mobiledeploy"}.items():
        assert m.versions[tool] == metadata.version(dist), tool

    seconds = m.stage_seconds
    assert set(STAGES) - set(PTE_STAGES) - {"int16x8", "int16x8_parity"} | {"total"} == set(seconds)  # none on request
    assert all(isinstance(s, (int, float)) and s >= 0 for s in seconds.values())
    assert seconds["total"] + 0.05 >= sum(s for k, s in seconds.items() if k != "total")
    assert seconds["total"] <= exp.seconds + 0.05


@pytest.mark.slow
@pytest.mark.parametrize("key", ALL_CASES)
def test_manifest_artifacts_match_the_files_on_disk(exports, key):
    from mobiledeploy.converters import FILE_NAMES

    res = exports(key).result
    for fmt, entry in res.manifest.artifacts.items():
        path = res.path / entry.path
        assert entry.path == FILE_NAMES[fmt] and path.is_file()
        assert entry.bytes == path.stat().st_size > 0
        assert entry.sha256 == _sha256(path)
    # Only the artifacts and the manifest: the work directory (onnx2tf output, logs) is gone.
    from mobiledeploy.artifact_kinds import ON_REQUEST_FORMATS

    made = [name for key, name in FILE_NAMES.items() if key not in ON_REQUEST_FORMATS]  # no .pte asked for
    assert sorted(p.name for p in res.path.iterdir()) == sorted([*made, "manifest.json"])
    assert _leftovers(res.path.parent) == [res.path.name]


@pytest.mark.slow
@pytest.mark.parametrize("key", ALL_CASES)
def test_manifest_io_names_shapes_dtypes_layouts(exports, key):
    res = exports(key).result
    m = res.manifest
    h, w = m.resolution
    onnx_entry = m.artifacts["onnx"]
    assert onnx_entry.inputs == [{"name": "input", "shape": [1, 3, h, w], "dtype": "float32", "layout": "NCHW",
                                     "quantization": None}]
    assert onnx_entry.outputs == [{"name": "logits", "shape": [1, 1000], "dtype": "float32", "layout": "NC",
                                      "quantization": None}]
    for fmt, dtype in (("fp32", "float32"), ("int8", "int8")):
        entry = m.artifacts[fmt]
        interp = tflite_graph(res.artifact(fmt)).interpreter
        (inp,), (out,) = entry.inputs, entry.outputs
        assert inp["layout"] == "NHWC" and inp["shape"] == [1, h, w, 3] and inp["dtype"] == dtype
        assert out["layout"] == "NC" and out["shape"] == [1, 1000] and out["dtype"] == dtype
        assert inp["name"] == interp.get_input_details()[0]["name"]
        assert out["name"] == interp.get_output_details()[0]["name"]
        assert [int(d) for d in interp.get_input_details()[0]["shape"]] == inp["shape"]
        if fmt == "fp32":
            assert inp["quantization"] is None and out["quantization"] is None


# --- 5. reuse, --force, tampering -----------------------------------------------------------------------

@pytest.mark.slow
def test_same_request_reuses_the_files(exports):
    from mobiledeploy.converters import export_model

    exp = exports("v1_g8")
    before = _snapshot(exp.result.path)
    inode = exp.result.path.stat().st_ino
    events = []
    start = time.perf_counter()
    again = export_model(exp.arch, exp.config, resolution=exp.resolution, out_dir=exp.out_root,
                         progress=lambda *e: events.append(e))
    elapsed = time.perf_counter() - start
    assert again.reused is True
    assert again.path == exp.result.path and again.path.stat().st_ino == inode
    assert again.manifest.to_dict() == json.loads(json.dumps(exp.result.manifest.to_dict()))
    assert [e[:2] for e in events] == [("reuse", "done")]
    assert _snapshot(again.path) == before
    assert elapsed < min(10.0, exp.seconds / 2), f"reuse took {elapsed:.1f} s"
    # A subset of formats is satisfied by the same directory too.
    assert export_model(exp.arch, exp.config, resolution=exp.resolution, out_dir=exp.out_root, formats="onnx").reused


@pytest.mark.slow
def test_reuse_refuses_an_int8_model_below_a_stricter_floor(exports):
    from mobiledeploy.converters import export_model

    exp = exports("v1_g8")
    before = _snapshot(exp.result.path)
    cosine = exp.result.manifest.parity["int8"]["cosine"]
    assert cosine < 1.0
    with pytest.raises(ParityError, match="below the floor"):
        export_model(exp.arch, exp.config, resolution=exp.resolution, out_dir=exp.out_root,
                     int8_cosine_floor=(cosine + 1.0) / 2)
    assert _snapshot(exp.result.path) == before


class _Stop(Exception):
    """Raised from a progress callback to end an export at a chosen stage."""


def _stop_at(stage: str, event: str, exc: BaseException | type[BaseException] = _Stop):
    events = []

    def progress(*e):
        events.append(e)
        if e[:2] == (stage, event):
            raise exc

    return progress, events


def _onnx_only(out_root: Path, **kwargs):
    from mobiledeploy.converters import export_model

    return export_model("shufflenet_v1", {"g": 3, "scale": 0.25}, resolution=64, out_dir=out_root, formats="onnx",
                        **kwargs)


@pytest.fixture(scope="session")
def onnx_only_export(tmp_path_factory):
    """A (cheap) onnx-only export of ShuffleNet v1 g=3 0.25x at 64x64; copy it before changing anything."""
    pytest.importorskip("onnxslim")
    return _onnx_only(tmp_path_factory.mktemp("onnx-only"))


@pytest.fixture
def onnx_only_copy(onnx_only_export, tmp_path):
    """A private copy of `onnx_only_export`, in tmp_path/out, which an export can reuse."""
    target = tmp_path / "out" / onnx_only_export.path.name
    shutil.copytree(onnx_only_export.path, target)
    return target


def test_force_rebuilds_what_would_be_reused(onnx_only_export, onnx_only_copy):
    out_root = onnx_only_copy.parent
    assert onnx_only_export.reused is False
    assert set(onnx_only_export.manifest.artifacts) == {"weights", "onnx"}
    assert "fp32" not in onnx_only_export.manifest.parity
    before = _snapshot(onnx_only_copy)
    reused = _onnx_only(out_root)
    assert reused.reused is True and reused.path == onnx_only_copy
    assert _snapshot(onnx_only_copy) == before
    events = []
    forced = _onnx_only(out_root, force=True, progress=lambda *e: events.append(e))
    assert forced.reused is False and forced.path == onnx_only_copy
    assert [e[0] for e in events if e[1] == "start"] == ["model", "analysis", "calibration", "onnx", "onnx_parity",
                                                         "manifest"]
    after = _snapshot(forced.path)
    assert set(after) == set(before)
    assert all(after[name][0] != before[name][0] for name in before), "--force left files untouched"
    assert after["model.onnx"][1] == before["model.onnx"][1]  # the same request builds the same graph
    assert _leftovers(out_root) == [forced.path.name]


@pytest.mark.parametrize("change", ["flip_a_byte", "delete_a_file", "other_format"])
def test_a_changed_or_incomplete_directory_is_rebuilt_not_reused(onnx_only_copy, change):
    """The export starts over (stopped at its first stage here, to stay cheap) and leaves the old files."""
    out_root = onnx_only_copy.parent
    onnx_file = onnx_only_copy / "model.onnx"
    formats = "onnx"
    if change == "flip_a_byte":
        data = bytearray(onnx_file.read_bytes())
        data[len(data) // 2] ^= 0xFF  # same size, other sha256
        onnx_file.write_bytes(bytes(data))
    elif change == "delete_a_file":
        onnx_file.unlink()
    else:
        formats = "fp32"  # an onnx-only directory cannot stand for an fp32 request
    before = _snapshot(onnx_only_copy)
    progress, events = _stop_at("model", "start")
    from mobiledeploy.converters import export_model

    with pytest.raises(_Stop):
        export_model("shufflenet_v1", {"g": 3, "scale": 0.25}, resolution=64, out_dir=out_root, formats=formats,
                     progress=progress)
    assert events == [("model", "start", None)]  # no ("reuse", "done")
    assert _snapshot(onnx_only_copy) == before
    assert _leftovers(out_root) == [onnx_only_copy.name]


def test_a_users_file_in_the_folder_is_never_deleted(onnx_only_copy):
    """A rebuild would replace the folder and with it NOTES.txt: refused, with one error, before any stage."""
    (onnx_only_copy / "NOTES.txt").write_text("my notes\n")
    before = _snapshot(onnx_only_copy)
    events = []
    with pytest.raises(ExportError, match=r"holds files mobiledeploy did not write \(NOTES\.txt\)"):
        _onnx_only(onnx_only_copy.parent, force=True, progress=lambda *e: events.append(e))
    assert events == [] and _snapshot(onnx_only_copy) == before
    assert _leftovers(onnx_only_copy.parent) == [onnx_only_copy.name]
    assert _onnx_only(onnx_only_copy.parent).reused  # reuse touches nothing: still fine


def test_other_weights_get_their_own_folder_and_never_replace_the_default(onnx_only_copy, tmp_path):
    """Weights named by --weights (even the seeded ones) are another input: another folder, the default intact."""
    weights = tmp_path / "mine.pt"
    shutil.copy(onnx_only_copy / "model.pt", weights)
    before = _snapshot(onnx_only_copy)
    mine = _onnx_only(onnx_only_copy.parent, weights=str(weights))
    assert mine.path.name == f"{onnx_only_copy.name}-w{_sha256(weights)[:8]}" and not mine.reused
    assert mine.manifest.slug == mine.path.name
    assert _snapshot(onnx_only_copy) == before
    assert _onnx_only(onnx_only_copy.parent, weights=str(weights)).reused


def test_a_folder_built_from_other_weights_is_not_rebuilt_in_place(onnx_only_copy):
    """A folder from before keyed names, recorded with other weights: the default export refuses to replace it."""
    manifest = json.loads((onnx_only_copy / "manifest.json").read_text())
    manifest["request"]["weights_sha256"] = "ab" * 32  # the file on disk, edited as JSON
    (onnx_only_copy / "manifest.json").write_text(json.dumps(manifest))
    before = _snapshot(onnx_only_copy)
    with pytest.raises(ExportError, match=r"holds an export from other weights \(abab"):
        _onnx_only(onnx_only_copy.parent)
    assert _snapshot(onnx_only_copy) == before


@pytest.mark.parametrize("calibration, samples, suffix", [("synthetic", 32, ""), ("synthetic", 8, "-syn8"),
                                                          ("images", 4, "-cal")])
def test_the_folder_name_says_when_calibration_is_not_the_default(tmp_path, calibration, samples, suffix):
    pytest.importorskip("PIL")
    from mobiledeploy.converters import artifact_slug

    source = "synthetic"
    if calibration == "images":
        source = str(tmp_path / "images")
        _write_images(Path(source), 3)
    slug = artifact_slug("shufflenet_v1-g3-scale0.25-64x64", None, source, samples)
    assert slug.startswith("shufflenet_v1-g3-scale0.25-64x64" + suffix)
    assert len(slug) == len("shufflenet_v1-g3-scale0.25-64x64" + suffix) + (8 if calibration == "images" else 0)


@pytest.mark.slow
def test_a_tampered_tflite_file_is_rebuilt(exports, tmp_path):
    from mobiledeploy.converters import export_model

    exp = exports("v1_g8")
    out_root = tmp_path / "out"
    target = out_root / exp.result.path.name
    shutil.copytree(exp.result.path, target)
    int8 = target / "model_int8.tflite"
    data = bytearray(int8.read_bytes())
    data[len(data) // 2] ^= 0xFF
    int8.write_bytes(bytes(data))
    tampered = _sha256(int8)
    events = []
    res = export_model(exp.arch, exp.config, resolution=exp.resolution, out_dir=out_root,
                       progress=lambda *e: events.append(e))
    assert res.reused is False and res.path == target
    assert ("int8", "start", None) in events and ("reuse", "done") not in [e[:2] for e in events]
    assert _sha256(int8) != tampered
    for entry in res.manifest.artifacts.values():
        assert _sha256(target / entry.path) == entry.sha256
    assert _leftovers(out_root) == [target.name]


# --- 6. atomicity ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_failure_mid_export_leaves_no_directory(exports, tmp_path, monkeypatch):
    """int8 conversion fails after model.onnx and model_fp32.tflite were written: nothing survives."""
    import mobiledeploy.converters.tflite as tflite
    from mobiledeploy.converters import export_model

    exports("v1_g3")  # TensorFlow already imported; keeps this test's own cost to one conversion
    real_convert = tflite._convert
    seen = {}

    def failing_convert(converter, path, what):
        if what == "int8":
            seen["tmp"] = path.parent
            seen["files"] = sorted(p.name for p in path.parent.iterdir())

            def boom():
                raise RuntimeError("injected converter crash")

            converter.convert = boom
        return real_convert(converter, path, what)

    monkeypatch.setattr(tflite, "_convert", failing_convert)
    out_root = tmp_path / "out"
    with pytest.raises(ExportError, match="TFLite int8 conversion failed: injected converter crash"):
        export_model("shufflenet_v1", {"g": 3, "scale": 0.25}, resolution=64, out_dir=out_root)
    assert {"model.pt", "model.onnx", "model_fp32.tflite"} <= set(seen["files"])  # failed late, as intended
    assert seen["tmp"].parent == out_root and seen["tmp"].name.startswith(".")
    assert not seen["tmp"].exists()
    assert not out_root.exists()  # the --out folder it created, empty again, is removed too


@pytest.mark.slow
def test_onnx2tf_strict_mode_only_when_the_fast_graph_fails_parity(exports, tmp_path, monkeypatch):
    """onnx2tf converts without its strict mode (a transposition search at every Reshape, 80% of its time);
    when that graph fails fp32 parity the conversion is made again in strict mode, and the manifest says so."""
    import mobiledeploy.converters.tflite as tflite
    from mobiledeploy.converters import export_model

    assert exports("v1_g3").result.manifest.parity["fp32"]["onnx2tf_strict"] is False
    real = tflite.onnx_to_keras
    calls = []

    def wrong_unless_strict(onnx_path, workdir, sample_data, strict=False):
        import tf_keras

        calls.append(strict)
        model = real(onnx_path, workdir, sample_data, strict=strict)
        return model if strict else tf_keras.Model(model.inputs, [model.outputs[0] * 1.5])

    monkeypatch.setattr(tflite, "onnx_to_keras", wrong_unless_strict)
    result = export_model("shufflenet_v1", {"g": 3, "scale": 0.25}, resolution=64, out_dir=tmp_path, formats="fp32")
    assert calls == [False, True]
    fp32 = result.manifest.parity["fp32"]
    assert fp32["passed"] and fp32["onnx2tf_strict"] is True and fp32["max_rel"] < fp32["tolerance"]


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), ExportError("injected")], ids=["ctrl_c", "export_error"])
def test_a_failed_rebuild_keeps_the_existing_directory_intact(onnx_only_copy, exc):
    """--force over a good directory, failing after model.pt was written: the old files stay, nothing else."""
    out_root = onnx_only_copy.parent
    before = _snapshot(onnx_only_copy)
    seen = {}

    def progress(stage, event, seconds):
        if (stage, event) == ("analysis", "done"):
            seen["temps"] = [p for p in out_root.iterdir() if p.name.startswith(".")]
            raise exc

    with pytest.raises(type(exc)):
        _onnx_only(out_root, force=True, progress=progress)
    (tmp,) = seen["temps"]  # the build happened in one hidden directory next to the target
    assert not tmp.exists()
    assert _snapshot(onnx_only_copy) == before
    assert _leftovers(out_root) == [onnx_only_copy.name]


# --- 7. offline -----------------------------------------------------------------------------------------

def test_offline_guard_blocks_connections():
    originals = (socket.socket.connect, socket.create_connection, socket.getaddrinfo)
    with OfflineGuard() as guard:
        with pytest.raises(NetworkBlocked):
            socket.create_connection(("127.0.0.1", 9), timeout=1)
        with pytest.raises(NetworkBlocked):
            socket.getaddrinfo("localhost", 80)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s, pytest.raises(NetworkBlocked):
            s.connect(("127.0.0.1", 9))
    assert len(guard.attempts) == 3
    assert (socket.socket.connect, socket.create_connection, socket.getaddrinfo) == originals  # undone on exit


@pytest.mark.slow
def test_export_runs_offline(exports):
    """Every shared export ran under OfflineGuard; this one (first to import TensorFlow, usually) too."""
    exp = exports("v1_g3")
    assert exp.network_attempts == []
    assert exp.result.reused is False and exp.result.artifact("int8").is_file()


# --- 8. calibration from an image directory ------------------------------------------------------------

def _write_images(directory: Path, n: int, size=(72, 88)) -> list[Path]:
    from PIL import Image

    from mobiledeploy.converters.calibration import synthetic_images

    directory.mkdir(parents=True, exist_ok=True)
    images = (synthetic_images(n, size, seed=77) * 255).round().astype(np.uint8)
    paths = []
    for i, image in enumerate(images):
        path = directory / f"img{i:02d}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(image).save(path)
        paths.append(path)
    (directory / "notes.txt").write_text("not an image\n")
    return paths


@pytest.mark.slow
def test_int8_calibrated_on_an_image_directory(exports, tmp_path):
    pytest.importorskip("PIL")
    from mobiledeploy.converters import export_model

    exports("v1_g3")  # share the TensorFlow import
    images = tmp_path / "images"
    _write_images(images, 6)
    res = export_model("shufflenet_v1", {"g": 3, "scale": 0.25}, resolution=64, out_dir=tmp_path / "out",
                       formats="int8", calibration=images, calib_samples=4)
    cal = res.manifest.calibration
    assert cal["source"] == str(images.resolve())
    assert cal["samples"] == 4
    assert cal["holdout"] == {"source": "directory", "samples": 2}
    assert res.manifest.request["calibration"].startswith("dir:")
    assert res.manifest.request["calib_samples"] == 4
    assert set(res.manifest.artifacts) == {"weights", "onnx", "fp32", "int8"}  # int8 derives from fp32
    assert res.manifest.parity["int8"]["passed"] and res.manifest.parity["int8"]["samples"] == 2
    # Calibrated on other inputs than the synthetic export of the same model: other activation ranges.
    synthetic = exports("v1_g3").result.manifest.artifacts["int8"].inputs[0]["quantization"]
    assert res.manifest.artifacts["int8"].inputs[0]["quantization"] != synthetic
    # Changing an image changes the request: no reuse of int8 calibrated on other data.
    first = images / "img00.jpg"
    first.write_bytes(first.read_bytes() + b"\0")
    from mobiledeploy.converters.pipeline import _request
    from mobiledeploy.registry import get_spec

    full = get_spec("shufflenet_v1").resolve({"g": 3, "scale": 0.25})
    assert _request("shufflenet_v1", full, (64, 64), images, 4, None, 0)["calibration"] != res.manifest.request["calibration"]


def _bad_calibration_dirs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    empty = tmp_path / "empty"
    empty.mkdir()
    text_only = tmp_path / "text_only"
    text_only.mkdir()
    (text_only / "readme.txt").write_text("x")
    a_file = tmp_path / "a_file.png"
    a_file.write_bytes(b"\x89PNG")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "broken.png").write_bytes(b"this is not a png")
    return {
        "missing": (tmp_path / "does-not-exist", "does not exist"),
        "empty": (empty, "holds no images"),
        "no_images": (text_only, "holds no images"),
        "a_file": (a_file, "is not a directory"),
        "corrupt": (corrupt, "cannot be read"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "no_images", "a_file", "corrupt"])
def test_unusable_calibration_source_is_a_clear_config_error(tmp_path, case):
    if case == "corrupt":
        pytest.importorskip("PIL")
    from mobiledeploy.converters import export_model

    source, message = _bad_calibration_dirs(tmp_path)[case]
    out_root = tmp_path / "out"
    with pytest.raises(ConfigError, match=message) as info:
        export_model("shufflenet_v1", {"g": 3, "scale": 0.25}, resolution=64, out_dir=out_root,
                     formats="int8", calibration=source, calib_samples=2)
    assert str(source) in str(info.value)
    assert not out_root.exists() or _leftovers(out_root) == []


@pytest.mark.parametrize("samples", [0, -3, 2.5, True])
def test_calib_samples_must_be_a_positive_integer(tmp_path, samples):
    from mobiledeploy.converters import export_model

    with pytest.raises(ConfigError, match="calib_samples"):
        export_model("shufflenet_v1", {"g": 3}, resolution=64, out_dir=tmp_path, calib_samples=samples)
    assert _leftovers(tmp_path) == []


# --- 9. the CLI -----------------------------------------------------------------------------------------

def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([str(CLI), "export", *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


CLI_ERRORS = {
    "unknown_arch": (["--arch", "no_such_net"], "unknown architecture"),
    "invalid_g": (["--arch", "v1", "--g", "5"], "g=5"),
    "missing_calibration": (["--arch", "v1", "--g", "3", "--scale", "0.25", "-r", "64", "--calibration", "{tmp}/nope"],
                            "does not exist"),
    "unwritable_out": (["--arch", "v1", "--g", "3", "--scale", "0.25", "-r", "64", "--out", "{file}/sub"],
                       "cannot create output directory"),
    "unknown_format": (["--arch", "v1", "--g", "3", "--formats", "fp16"], "unknown format"),
}


@pytest.fixture(scope="module")
def cli_error_runs(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """Every CLI_ERRORS case, run at once (each pays torch's import; in parallel they share the wait)."""
    if not CLI.exists():
        pytest.skip("the mobiledeploy console script is not installed in this venv")
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    running = {}
    for case, (args, _) in CLI_ERRORS.items():
        tmp = tmp_path_factory.mktemp(f"cli-{case}")
        regular_file = tmp / "regular_file"
        regular_file.write_text("not a directory\n")
        args = [a.format(tmp=tmp, file=regular_file) for a in args]
        if "--out" not in args:
            args += ["--out", str(tmp / "out")]
        running[case] = (tmp, args, subprocess.Popen([str(CLI), "export", *args], cwd=tmp, env=env, text=True,
                                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    done = {}
    for case, (tmp, args, proc) in running.items():
        stdout, stderr = proc.communicate(timeout=300)
        done[case] = (tmp, subprocess.CompletedProcess(args, proc.returncode, stdout, stderr))
    return done


@pytest.mark.parametrize("case", list(CLI_ERRORS))
def test_cli_bad_input_is_one_error_line_and_exit_2(cli_error_runs, case):
    tmp, proc = cli_error_runs[case]
    expected = CLI_ERRORS[case][1]
    lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert len(lines) == 1, lines
    assert "error" in lines[0] and expected in lines[0], lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp / "out").exists() or _leftovers(tmp / "out") == []
    assert not (tmp / "artifacts").exists()  # --out was honoured, nothing went to the default


@pytest.mark.slow
@pytest.mark.skipif(not CLI.exists(), reason="the mobiledeploy console script is not installed in this venv")
def test_cli_json_prints_one_object(exports, tmp_path):
    exp = exports("v1_g8")
    before = _snapshot(exp.result.path)
    proc = _cli("--arch", "shufflenet_v1", "--g", "8", "--scale", "0.25", "-r", str(exp.resolution),
                "--out", str(exp.out_root), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)  # the whole of stdout is one JSON document
    assert isinstance(payload, dict)
    assert payload["reused"] is True
    assert Path(payload["path"]) == exp.result.path
    assert payload["manifest"]["artifacts"]["int8"]["sha256"] == exp.result.manifest.artifacts["int8"].sha256
    assert "Traceback" not in proc.stderr
    assert _snapshot(exp.result.path) == before


# --- 10. ONNX rewrites before onnx2tf -------------------------------------------------------------------

@pytest.mark.parametrize("ceil_mode, relu, size, slices", [
    (False, True, 22, 2), (True, True, 22, 2), (False, False, 22, 2), (True, False, 22, 2), (False, False, 23, 4)],
    ids=["padded_after_relu", "ceil_mode_after_relu", "padded_signed", "ceil_mode_signed", "padded_odd_size"])
def test_max_pool_padding_becomes_real_values(tmp_path, ceil_mode, relu, size, slices):
    """-inf padding (PADV2 with -FLT_MAX after onnx2tf) ruins int8 calibration: edge copies (slices of the
    border, concatenated) give the same maxima over any input, and only the padding a window reads is
    made: a 3x3 stride-2 pool of an even size reads no bottom/right pad (2 slices), of an odd size both (4)."""
    import onnx
    import onnxruntime as ort
    import torch

    from mobiledeploy.converters.layout import maxpool_explicit_padding

    torch.manual_seed(0)
    layers = [torch.nn.Conv2d(3, 8, 3, padding=1)] + ([torch.nn.ReLU()] if relu else [])
    layers.append(torch.nn.MaxPool2d(3, stride=2, padding=0 if ceil_mode else 1, ceil_mode=ceil_mode))
    model = torch.nn.Sequential(*layers).eval()
    path = tmp_path / "pool.onnx"
    x = torch.randn(1, 3, size, size) - 2.0  # mostly negative: -inf vs 0 padding would differ
    torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17, input_names=["input"], output_names=["out"])
    rewritten, count = maxpool_explicit_padding(onnx.load(str(path)))
    ops = [n.op_type for n in rewritten.graph.node]
    assert count == 1
    # no Pad: a zero PAD is not fused into XNNPACK's max pool, an edge Pad lowers to MIRROR_PAD (not XNNPACK's)
    assert "Pad" not in ops and ops.count("Slice") == slices and ops.count("Concat") == 2
    pool = next(n for n in rewritten.graph.node if n.op_type == "MaxPool")
    assert all(a.name not in ("pads", "ceil_mode") for a in pool.attribute)
    onnx.checker.check_model(rewritten)
    got = ort.InferenceSession(rewritten.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        expected = model(x).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("stride, moved", [(2, 1), (1, 0)], ids=["stride2_moved", "stride1_kept"])
def test_a_shuffle_before_a_strided_depthwise_conv_moves_after_it(tmp_path, stride, moved):
    """A ShuffleNet v1 unit: the shuffle before a stride-2 depthwise conv moves after it (a quarter of the
    data), the conv's weights and bias permuted: the same function; one before a stride-1 conv stays."""
    import onnx
    import onnxruntime as ort
    import torch

    from mobiledeploy.converters.layout import nhwc_channel_shuffles, shuffle_after_strided_depthwise
    from mobiledeploy.models.shufflenet_v1 import ShuffleV1Unit

    torch.manual_seed(0)
    unit = ShuffleV1Unit(48 if stride == 2 else 240, 240, stride, groups=3, first_grouped=True, shuffle=True).eval()
    for bn in (m for m in unit.modules() if isinstance(m, torch.nn.BatchNorm2d)):  # a bias that differs per channel
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 2)
        bn.bias.data.uniform_(-1, 1)
    x = torch.randn(1, unit.gconv1.in_channels, 14, 14)
    path = tmp_path / "unit.onnx"
    torch.onnx.export(unit, (x,), str(path), dynamo=False, opset_version=17, input_names=["input"], output_names=["out"])
    original = onnx.load(str(path))
    rewritten, count = shuffle_after_strided_depthwise(original)
    assert count == moved
    ops = [n.op_type for n in rewritten.graph.node]
    depthwise = [i for i, n in enumerate(rewritten.graph.node) if n.op_type == "Conv"
                 and next(a.i for a in n.attribute if a.name == "group") == unit.dwconv.in_channels]
    assert ops.count("Transpose") == 1 and len(depthwise) == 1
    assert (ops.index("Transpose") > depthwise[0]) == bool(moved)
    onnx.checker.check_model(rewritten)
    got = ort.InferenceSession(rewritten.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        expected = unit(x).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * float(np.abs(expected).max()))
    assert nhwc_channel_shuffles(rewritten)[1] == 1  # still one shuffle for the NHWC rewrite to find


def test_calibration_inputs_only_for_int8_and_within_memory(monkeypatch):
    """No calibration inputs for an export without int8 (the held-out ones are the same), and
    inputs that would not fit in half the free memory are refused before anything is built."""
    import numpy as np

    from mobiledeploy.converters import calibration
    from mobiledeploy.errors import ConfigError

    full = calibration.calibration_set("synthetic", 4, (16, 16), (0.5,) * 3, (0.25,) * 3, seed=0)
    held = calibration.calibration_set("synthetic", 4, (16, 16), (0.5,) * 3, (0.25,) * 3, seed=0, calibrate=False)
    assert full.calibration.shape == (4, 3, 16, 16) and held.calibration.shape == (0, 3, 16, 16)
    assert np.array_equal(full.holdout, held.holdout) and held.fingerprint == full.fingerprint
    assert held.info["samples"] == 0 and held.info["requested_samples"] == 4
    monkeypatch.setattr(calibration, "_available_bytes", lambda: 24 << 30)
    calibration.check_input_memory((4000, 4000), 0)  # 8 held-out inputs: 1.4 GiB
    with pytest.raises(ConfigError, match=r"input 4000x4000 with 32 calibration and 8 held-out samples needs 7\.2 GiB"):
        calibration.check_input_memory((4000, 4000), 32)
