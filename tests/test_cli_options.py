"""The model-selection options, declared once (`cli/options.model_options`): every command that exports a model
offers the same flags with the same help and defaults, and hands them to its body as one `ModelSelection`."""

from __future__ import annotations

import pytest

from mobiledeploy.cli.options import ARCH_HELP, ModelSelection
from mobiledeploy.errors import ConfigError

GROUP = {"--arch", "--model-fn", "--onnx", "--exported-program", "--input-shape", "--g", "--scale", "--alpha", "--set"}


def _options(name: str) -> dict[str, object]:
    """flag → click option of one command, as Typer builds it."""
    import typer

    from mobiledeploy.cli import app

    command = typer.main.get_command(app).commands[name]
    return {opt: p for p in command.params for opt in p.opts if opt.startswith("--")}


def test_each_exporting_command_has_the_one_group_with_the_same_help_and_defaults():
    seen = {}
    for name in ("export", "accuracy", "bench", "profile"):
        options = _options(name)
        assert GROUP <= set(options), (name, GROUP - set(options))
        assert "--groups" in options and "-a" in options["--arch"].opts
        seen[name] = {flag: (options[flag].help, options[flag].default) for flag in GROUP}
    assert seen["export"] == seen["accuracy"] == seen["profile"]
    assert seen["export"]["--arch"] == (ARCH_HELP, None)
    assert seen["bench"]["--arch"][0] == "Architecture to export and time (see `mobiledeploy models`)."
    assert {k: v for k, v in seen["bench"].items() if k != "--arch"} == {
        k: v for k, v in seen["export"].items() if k != "--arch"}
    assert all(default is None for _help, default in seen["export"].values())


def test_a_selection_is_the_model_it_names():
    zoo = ModelSelection(arch="v1", g=3, options=["scale=0.5"])
    assert zoo.config() == {"g": 3, "scale": 0.5}
    assert zoo.choice() == ("v1", {"g": 3, "scale": 0.5})
    with pytest.raises(ConfigError, match="give one model"):
        ModelSelection(arch="v1", onnx="m.onnx").choice()
    with pytest.raises(ConfigError, match="--input-shape is for your own model"):
        ModelSelection(arch="v1", input_shape="1x3x32x32").choice()


def test_bench_takes_an_onnx_model_file_as_the_model_to_export(tmp_path):
    from mobiledeploy.cli.bench_cmd import what_to_time

    assert what_to_time("net.tflite", ModelSelection()) == ("net.tflite", None)
    with pytest.raises(ConfigError, match="give either --model FILE.tflite"):
        what_to_time("net.tflite", ModelSelection(arch="v1"))
    with pytest.raises(ConfigError, match="give --model FILE.tflite to time"):
        what_to_time(None, ModelSelection())
    with pytest.raises(ConfigError, match="model file not found: .*missing.onnx"):  # taken as --onnx
        what_to_time(str(tmp_path / "missing.onnx"), ModelSelection())
    with pytest.raises(ConfigError, match=r"got --arch and --onnx\)"):
        what_to_time("net.onnx", ModelSelection(arch="v1"))
