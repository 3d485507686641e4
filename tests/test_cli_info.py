import json
import subprocess
import sys

import pytest

from mobiledeploy.cli import main


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_info_json_schema_and_paper_numbers(capsys):
    code, out, _ = run(["info", "--arch", "v1", "--g", "3", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["arch"] == "shufflenet_v1"
    assert data["config"]["g"] == 3 and data["config"]["scale"] == 1.0
    assert 137e6 <= data["macs"] <= 140e6
    assert isinstance(data["params"], int) and isinstance(data["memory_access"], int)
    assert {"name", "op", "out_shape", "macs", "params", "memory_access"} <= set(data["layers"][0])
    assert [s["out_channels"] for s in data["stages"]] == [240, 480, 960]
    assert [s["name"] for s in data["stages"]] == ["stage2", "stage3", "stage4"]


def test_info_scale_and_resolution(capsys):
    code, out, _ = run(["info", "--arch", "v1", "--g", "3", "--scale", "0.5", "--resolution", "224", "--json"], capsys)
    assert code == 0 and json.loads(out)["macs"] == pytest.approx(38e6, rel=0.02)
    code, out, _ = run(["info", "--arch", "mobilenet_v1", "--alpha", "0.5", "-r", "160", "--json"], capsys)
    assert json.loads(out)["input_shape"] == [1, 3, 160, 160]


def test_info_tables_mention_flops_convention(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run(["info", "--arch", "v1", "--g", "3", "--per-layer"], capsys)
    assert code == 0
    assert "FLOPs" in out and "stage2.0.gconv1" in out and "channel_shuffle" in out


def test_models_lists_registry(capsys):
    code, out, _ = run(["models", "--json"], capsys)
    names = {m["name"] for m in json.loads(out)["models"]}
    assert {"shufflenet_v1", "shufflenet_v2", "mobilenet_v1", "alexnet"} <= names
    code, out, _ = run(["models", "shufflenet*", "--json"], capsys)
    assert {m["name"] for m in json.loads(out)["models"]} == {"shufflenet_v1", "shufflenet_v2"}


@pytest.mark.parametrize("args, fragment", [
    (["info", "--arch", "v1", "--g", "5"], "g=5 is not valid (choose from 1, 2, 3, 4, 8)"),
    (["info", "--arch", "v1", "--scale", "0.3"], "scale=0.3 is not valid"),
    (["info", "--arch", "resnet9000"], "unknown architecture"),
    (["info", "--arch", "alexnet", "--g", "3"], "alexnet has no option g"),
    (["info", "--arch", "v1", "-r", "abc"], "is not N or HxW"),
    (["info", "--arch", "v1", "--set", "nokey"], "--set takes KEY=VALUE"),
])
def test_bad_input_is_one_line_exit_2(args, fragment, capsys):
    code, out, err = run(args, capsys)
    assert code == 2
    assert fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("args", [["--help"], ["info", "--help"], ["models", "--help"]])
def test_help_has_an_example(args):
    proc = subprocess.run([sys.executable, "-m", "mobiledeploy", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "Example" in proc.stdout


def test_usage_error_exits_2_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "mobiledeploy", "info", "--bogus"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_help_does_not_import_torch():
    code = "import sys; from mobiledeploy.cli import main; main(['--help']); print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip().endswith("False")
