"""A user's own model: a callable, an ONNX file or an ExportedProgram through the whole toolkit.

Fast tests cover refs, shapes, the ONNX-level count, third-party entry points and every one-line
error (each fails before TensorFlow is imported). The slow ones run the README's "Your own model"
section as written, once per module, in a sandbox (HOME, results database), and read what it left:
three exports of a net with squeeze-excite, hard-swish and a channel split, each with parity at every
stage, benched locally and on qemu:cortex-a76 and gated on exact Arm instructions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mobiledeploy.errors import ConfigError
from mobiledeploy.sources import parse_input_shape, split_source_ref
from tests.cli_checks import one_error_line

REPO = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("mobiledeploy")
OWN = REPO / "tests" / "fixtures" / "own_model" / "sesplit.py"


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env or sandbox(cwd), capture_output=True, text=True, timeout=timeout)


def sandbox(root: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh user: their own results database and cache; the Arm environment kept."""
    env = {k: v for k, v in os.environ.items() if k not in ("MOBILEDEPLOY_DB", "PYTHONPATH")}
    return {**env, "MOBILEDEPLOY_DB": str(root / "results.db"), "COLUMNS": "200", "NO_COLOR": "1",
            "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": f"{CLI.parent}{os.pathsep}{env.get('PATH', '')}", **extra}


# --- refs and shapes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("ref, expected", [
    ("net.py:build", ("net.py:build", "")),
    ("models/net.py:build:width=8,input_shape=1x3x32x32", ("models/net.py:build", "width=8,input_shape=1x3x32x32")),
    ("mypkg.nets:build", ("mypkg.nets:build", "")),
    ("mypkg.nets:build:width=8", ("mypkg.nets:build", "width=8")),
    ("exports/net.onnx", ("exports/net.onnx", "")),
    ("net.onnx:input_shape=1x3x64x64", ("net.onnx", "input_shape=1x3x64x64")),
    ("net.pt2", ("net.pt2", "")),
    ("v1:g=3,scale=0.5", None),
    ("shufflenet_v1", None),
    ("squeezenet_1.1", None),
    ("mobilenet_v1:alpha=0.25,resolution=224", None),
])
def test_split_source_ref(ref: str, expected: tuple[str, str] | None) -> None:
    assert split_source_ref(ref) == expected


def test_parse_input_shape() -> None:
    assert parse_input_shape("1x3x224x160") == (1, 3, 224, 160)
    assert parse_input_shape([1, 3, 32, 32]) == (1, 3, 32, 32)
    for bad in ("1x3xHxW", "1x0x3x3", ""):
        with pytest.raises(ConfigError, match="--input-shape"):
            parse_input_shape(bad)


def test_a_source_is_registered_with_its_keyword_options_and_hash() -> None:
    from mobiledeploy.registry import config_slug, get_spec, list_models, parse_model_ref

    name, config = parse_model_ref(f"{OWN}:build:width=8,input_shape=1x3x32x32")
    spec = get_spec(name)
    assert (name, config) == ("sesplit_build", {"width": 8, "input_shape": "1x3x32x32"})
    assert spec.defaults == {"width": 16, "num_classes": 10}
    assert spec.input_shape == (1, 3, 32, 32)
    assert spec.source["sha256"] == hashlib.sha256(OWN.read_bytes()).hexdigest()
    assert config_slug(name, {"width": 8}, (32, 32)) == "sesplit_build-width8-32x32"
    assert name not in list_models()  # `models` lists architectures, not files named on a command line
    with pytest.raises(ConfigError, match="has no option depth"):
        spec.resolve({"depth": 3})


def test_a_callable_that_does_not_return_a_module_is_refused() -> None:
    from mobiledeploy.registry import build_model, canonical_name

    with pytest.raises(ConfigError, match=r"sesplit.py:not_a_module returned int, not a torch.nn.Module"):
        build_model(canonical_name(f"{OWN}:not_a_module"))


# --- the ONNX-level count ------------------------------------------------------------------------------

def _tiny_onnx(path: Path, extra_op: str | None = None) -> Path:
    """1x3x8x8 → Conv 3→8 3x3 pad 1 → Relu [→ extra_op] → GlobalAveragePool → Flatten → Gemm 8→4."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in (("w", (8, 3, 3, 3)), ("b", (8,)), ("fc", (4, 8)), ("fcb", (4,)))]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"])]
    last = "r"
    if extra_op:
        nodes.append(helper.make_node(extra_op, ["r"], ["e"]))
        last = "e"
    nodes += [helper.make_node("GlobalAveragePool", [last], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
              helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_onnx_count_is_exact_per_node(tmp_path: Path) -> None:
    from mobiledeploy.analysis_onnx import analyse_onnx

    report = analyse_onnx(_tiny_onnx(tmp_path / "tiny.onnx"))
    assert report.macs == 8 * 8 * 8 * 3 * 9 + 4 * 8  # conv: outputs × (in-channels × 3×3); gemm: 4 × 8
    assert report.params == 8 * 3 * 9 + 8 + 4 * 8 + 4
    assert report.elementwise == 8 * 8 * 8  # the ReLU's outputs
    assert report.unknown_ops == []
    assert report.input_shape == [1, 3, 8, 8]


def test_onnx_count_lists_unknown_ops_instead_of_counting_zero(tmp_path: Path) -> None:
    from mobiledeploy.analysis_onnx import analyse_onnx

    report = analyse_onnx(_tiny_onnx(tmp_path / "erf.onnx", extra_op="Erf"))
    assert report.unknown_ops == ["Erf"]
    assert [layer.op for layer in report.layers if layer.op.startswith("unknown:")] == ["unknown:Erf"]
    assert report.to_dict()["unknown_ops"] == ["Erf"]


def test_onnx_count_matches_the_pytorch_count_of_the_same_net(tmp_path: Path) -> None:
    """Conv and linear mult-adds of sesplit counted on its modules and on its exported ONNX graph agree."""
    from mobiledeploy.analysis import analyse_model
    from mobiledeploy.analysis_onnx import analyse_onnx
    from mobiledeploy.converters.onnx_export import export_onnx
    from mobiledeploy.registry import build_model, canonical_name

    model = build_model(canonical_name(f"{OWN}:build"))
    torch_count = analyse_model(model, (1, 3, 32, 32))
    onnx_count = analyse_onnx(export_onnx(model, (1, 3, 32, 32), tmp_path / "m.onnx"))
    assert onnx_count.macs == torch_count.macs > 0
    assert onnx_count.unknown_ops == []


# --- third-party architectures through entry points --------------------------------------------------

PLUGIN = '''
from torch import nn

def tinyplug(width: int = 8):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(width, 10))
'''


def test_an_entry_point_architecture_appears_in_models_and_info(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "tinyplug-0.1.dist-info").mkdir(parents=True)
    (site / "tinyplug_models.py").write_text(PLUGIN)
    (site / "tinyplug-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyplug\nVersion: 0.1\n")
    (site / "tinyplug-0.1.dist-info" / "entry_points.txt").write_text(
        "[mobiledeploy.models]\ntinyplug = tinyplug_models:tinyplug\n")
    env = sandbox(tmp_path, PYTHONPATH=str(site))
    listed = run([str(CLI), "models", "--json"], tmp_path, env)
    assert listed.returncode == 0, listed.stderr
    row = next(m for m in json.loads(listed.stdout)["models"] if m["name"] == "tinyplug")
    assert row["defaults"] == {"width": 8} and row["family"] == "third-party"
    info = run([str(CLI), "info", "--arch", "tinyplug", "--set", "width=4", "--resolution", "16", "--json"], tmp_path, env)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["macs"] == 16 * 16 * 4 * 3 * 9 + 4 * 10


# --- errors: one line, exit 2, nothing left behind ----------------------------------------------------

def _two_input_onnx(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "two",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 3, "H", "W"]),
                               helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, "H", "W"])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _dynamic_onnx(path: Path) -> Path:
    import onnx

    model = onnx.load(str(_tiny_onnx(path)))
    for dim, name in zip(model.graph.input[0].type.tensor_type.shape.dim, ("N", None, "H", "W")):
        if name:
            dim.dim_param = name
    onnx.save(model, str(path))
    return path


ERROR_CASES = {
    "not_a_module": (["--model-fn", f"{OWN}:not_a_module", "--input-shape", "1x3x32x32"], "returned int, not a torch.nn.Module"),
    "no_input_shape": (["--model-fn", f"{OWN}:undeclared"], "sesplit.py:undeclared declares no input shape: give one with --input-shape"),
    "not_an_image_input": (["--model-fn", f"{OWN}:build", "--input-shape", "1x1x28x28"], "takes input 1x1x28x28; mobiledeploy exports batch-1 RGB image models"),
    "forward_fails": (["--model-fn", f"{OWN}:wrong_input"], "fails on input 1x3x32x32 at stage 'build the model': RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
    "export_fails": (["--model-fn", f"{OWN}:unexportable"], "ONNX export failed at input (1, 3, 32, 32): Exporting the operator 'aten::fft_rfft2'"),
    "no_such_callable": (["--model-fn", f"{OWN}:nothing"], "has no callable 'nothing'"),
    "unknown_option": (["--model-fn", f"{OWN}:build", "--set", "depth=3"], "sesplit_build has no option depth (options: num_classes, width)"),
    "dynamic_onnx": (["--onnx", "{dynamic}"], "declares no static input shape (dynamic dimensions): give one with --input-shape"),
    "two_input_onnx": (["--onnx", "{two}"], "two.onnx has 2 inputs (a, b) and no static shapes: mobiledeploy exports models with one image input"),
    "weights_for_onnx": (["--onnx", "{tiny}", "--weights", "{tiny}"], "holds its own weights"),
    "two_models": (["--arch", "v1", "--onnx", "{tiny}"], "give one model: --arch NAME, --model-fn FILE.py:NAME"),
}


@pytest.mark.parametrize("name", list(ERROR_CASES))
def test_bad_own_model_is_one_line_exit_2_and_leaves_nothing(name: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """In-process through the CLI's entry point (its error boundary), so torch is imported once for all cases."""
    from mobiledeploy.cli import main

    files = {"dynamic": str(_dynamic_onnx(tmp_path / "dyn.onnx")), "two": str(_two_input_onnx(tmp_path / "two.onnx")),
             "tiny": str(_tiny_onnx(tmp_path / "tiny.onnx"))}
    args, expected = ERROR_CASES[name]
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["export", *[a.format(**files) for a in args], "--out", str(tmp_path / "out"), "--formats", "onnx"])
    captured = capsys.readouterr()
    proc = subprocess.CompletedProcess([], code, captured.out, captured.err)
    assert expected in one_error_line(proc)
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_an_error_from_the_console_script_is_one_line(tmp_path: Path) -> None:
    """The same boundary as an installed command: exit 2, one line, no traceback."""
    proc = run([str(CLI), "export", "--model-fn", f"{OWN}:not_a_module", "--input-shape", "1x3x32x32",
                "--out", str(tmp_path / "out")], tmp_path)
    assert "returned int, not a torch.nn.Module" in one_error_line(proc)
    assert not (tmp_path / "out").exists()


# --- the README section, as written (slow) -------------------------------------------------------------

def readme_section() -> tuple[str, list[str]]:
    """The python file and the shell commands of README's 'Your own model'."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Your own model"):]
    section = section[:section.index("\n## ", 1)]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, re.S)
    python = next(body for lang, body in blocks if lang == "python")
    shell = next(body for lang, body in blocks if lang == "sh")
    return python, [ln.split("  #")[0].strip() for ln in shell.splitlines() if ln.strip()]


def _needs_arm(command: str) -> bool:
    return "qemu:" in command or command.startswith("mobiledeploy gate --baseline mynet-arm.json")


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The README's commands run in order in a fresh folder; those needing `make arm` skipped without it."""
    from mobiledeploy.qemu.env import EmulatorMissingError, environment

    try:
        environment()
        arm = True
    except EmulatorMissingError:
        arm = False
    root = tmp_path_factory.mktemp("readme-own-model")
    python, commands = readme_section()
    (root / "mynet.py").write_text(python)
    runs: dict[str, subprocess.CompletedProcess] = {}
    # A user's exports run the Arm stage (the suite turns it off). The first route's export runs it here; the
    # other two routes export the same network, so their Arm stage (~10 s each) would check nothing new.
    checked = next(c for c in commands if c.startswith("mobiledeploy export"))
    for command in commands:
        if _needs_arm(command) and not arm:
            continue
        argv = command.split()
        argv[0] = sys.executable if argv[0] == "python" else str(CLI.parent / argv[0])
        runs[command] = run(argv, root, sandbox(root, MOBILEDEPLOY_ARM_CHECK="on" if command == checked else "off"))
    return {"root": root, "runs": runs, "arm": arm, "commands": commands}


def _manifest(root: Path, prefix: str) -> dict[str, Any]:
    (folder,) = [p for p in (root / "artifacts").iterdir() if p.name.startswith(prefix)]
    return json.loads((folder / "manifest.json").read_text()) | {"folder": str(folder)}


@pytest.mark.slow
def test_readme_commands_run_as_written(readme_run: dict[str, Any]) -> None:
    assert len(readme_run["commands"]) == 8
    for command, proc in readme_run["runs"].items():
        assert proc.returncode == 0, f"{command}\n{proc.stderr[-2000:]}"
        assert "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("prefix, source, reference", [
    ("mynet_build-64x64-m", "mynet.py", "torch"),
    ("mynet_onnx-64x64-m", "mynet.onnx", "onnxruntime"),
    ("mynet_pt2-64x64-m", "mynet.pt2", "torch"),
])
def test_each_route_exports_with_parity_at_every_stage(readme_run: dict[str, Any], prefix: str, source: str,
                                                       reference: str) -> None:
    root = readme_run["root"]
    manifest = _manifest(root, prefix)
    sha = hashlib.sha256((root / source).read_bytes()).hexdigest()
    assert manifest["source"]["sha256"] == sha and Path(manifest["folder"]).name.startswith(prefix + sha[:8])
    parity = manifest["parity"]
    assert parity["onnx"]["passed"] and parity["onnx"]["reference"] == reference
    assert parity["fp32"]["passed"] and parity["fp32"]["max_rel"] < 1e-4
    assert parity["int8"]["passed"] and parity["int8"]["cosine"] >= 0.98
    if source != "mynet.py":  # only the first route's export ran the Arm stage (readme_run), and says so
        assert parity["arm"]["skipped"].startswith("turned off")
    elif readme_run["arm"]:
        assert parity["arm"]["passed"] and parity["arm"]["fp32"]["instructions"] > 0
    assert manifest["complexity"]["unknown_ops"] == []
    assert manifest["artifacts"]["int8"]["inputs"][0]["shape"] == [1, 64, 64, 3]


@pytest.mark.slow
def test_the_three_routes_give_the_same_model(readme_run: dict[str, Any]) -> None:
    """The callable with the saved weights, the ONNX file and the program: the same mult-adds and outputs."""
    from mobiledeploy.converters.parity import onnx_outputs

    root = readme_run["root"]
    manifests = [_manifest(root, p) for p in ("mynet_build-", "mynet_onnx-", "mynet_pt2-")]
    assert len({m["complexity"]["macs"] for m in manifests}) == 1
    x = np.random.default_rng(7).standard_normal((2, 3, 64, 64)).astype(np.float32)
    outs = [onnx_outputs(Path(m["folder"]) / "model.onnx", x) for m in manifests]
    for out in outs[1:]:
        np.testing.assert_allclose(out, outs[0], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_bench_and_gate_name_the_own_model(readme_run: dict[str, Any]) -> None:
    runs = readme_run["runs"]
    local = next(p for c, p in runs.items() if c.startswith("mobiledeploy bench --device local"))
    assert re.search(r"mynet_onnx-64x64\s+fp32\s+litert\s+ok", local.stdout) and re.search(r"mynet_onnx-64x64\s+int8\s+litert\s+ok", local.stdout)
    if not readme_run["arm"]:
        pytest.skip("qemu:cortex-a76 is not set up (make arm)")
    arm = next(p for c, p in runs.items() if c.startswith("mobiledeploy bench --device qemu"))
    assert re.search(r"mynet_pt2-64x64\s+fp32\s+ok\s+1\.\d+M", arm.stdout), arm.stdout
    baseline = json.loads((readme_run["root"] / "mynet-arm.json").read_text())
    assert {(e["ref"], e["precision"]) for e in baseline["entries"]} == {("mynet.pt2", "fp32"), ("mynet.pt2", "int8")}
    gate = runs["mobiledeploy gate --baseline mynet-arm.json"]
    assert "2 artifact(s) within +1% Arm instructions" in gate.stdout


@pytest.mark.slow
def test_gate_fails_when_the_own_model_grows(readme_run: dict[str, Any], tmp_path: Path) -> None:
    """The user's baseline, then their file edited to a wider net under the same name: exit 1."""
    if not readme_run["arm"]:
        pytest.skip("qemu:cortex-a76 is not set up (make arm)")
    shutil.copy(readme_run["root"] / "mynet.py", tmp_path / "mynet.py")
    shutil.copy(readme_run["root"] / "mynet-arm.json", tmp_path / "mynet-arm.json")
    script = "import torch, mynet; torch.manual_seed(0); m = mynet.build(width=32).eval(); " \
             "torch.export.save(torch.export.export(m, (torch.zeros(1, 3, 64, 64),)), 'mynet.pt2')"
    assert run([sys.executable, "-c", script], tmp_path).returncode == 0
    proc = run([str(CLI), "gate", "--baseline", "mynet-arm.json", "--json"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    verdict = json.loads(proc.stdout)
    assert verdict["status"] == "regression", verdict


def test_ab_export_argv_names_an_own_model_by_absolute_path(tmp_path: Path) -> None:
    """The A/B gate exports in another checkout: the user's file is passed by its absolute path."""
    from mobiledeploy.ab import export_argv

    ref = f"{os.path.relpath(OWN)}:build:width=8,input_shape=1x3x32x32"
    assert export_argv(ref, tmp_path) == ["export", "--model-fn", f"{OWN}:build", "--out", str(tmp_path), "--json",
                                          "--input-shape", "1x3x32x32", "--set", "width=8"]


@pytest.mark.slow
def test_an_op_onnx2tf_cannot_convert_is_one_line(tmp_path: Path) -> None:
    """LpPool runs in ONNX Runtime (so the ONNX stages pass) but onnx2tf has no rule for it."""
    import onnx
    from onnx import helper

    model = onnx.load(str(_tiny_onnx(tmp_path / "tiny.onnx")))
    relu = next(n for n in model.graph.node if n.op_type == "Relu")
    relu.CopyFrom(helper.make_node("LpPool", ["c"], ["r"], kernel_shape=[2, 2], strides=[2, 2], p=2))
    onnx.save(model, str(tmp_path / "lp.onnx"))
    proc = run([str(CLI), "export", "--onnx", "lp.onnx", "--formats", "fp32", "--out", "out"], tmp_path)
    line = one_error_line(proc)  # the op, before TensorFlow is imported; not the pipeline's intermediate file
    assert "onnx2tf has no conversion for LpPool: no TFLite file can be made" in line and "model_nhwc" not in line
    assert not (tmp_path / "out").exists()


def test_suite_and_compare_refs_key_an_own_model_without_its_input_or_hash() -> None:
    from mobiledeploy.cli.compare_cmd import resolve_ref
    from mobiledeploy.compare import parse_suite, slug_key

    own = f"{OWN}:build:width=8,input_shape=1x3x32x32"
    suite = parse_suite({"schema_version": 1, "baseline": "v1:g=3", "resolutions": ["32x32"], "models": [{"ref": "v1:g=3"}, {"ref": own}]})
    assert resolve_ref(suite.models[1].ref) == ("sesplit_build", {"width": 8, "input_shape": "1x3x32x32"},
                                                 "sesplit_build-width8")
    assert slug_key("sesplit_build-width8-32x32-m1145dcea-w45dac5ea") == "sesplit_build-width8"
