import pytest

from mobiledeploy.errors import ConfigError
from mobiledeploy.registry import (
    build_model, canonical_name, config_slug, get_spec, list_models, parse_label, parse_model_ref, register_model,
)


def test_aliases_resolve_to_canonical_names():
    assert canonical_name("v1") == "shufflenet_v1"
    assert canonical_name("V2") == "shufflenet_v2"
    assert canonical_name("shufflenet-v1") == "shufflenet_v1"
    assert canonical_name("mobilenet") == "mobilenet_v1"


def test_list_models_filters_by_pattern_and_alias():
    assert list_models("shufflenet*") == ["shufflenet_v1", "shufflenet_v2"]
    assert "shufflenet_v1" in list_models("v1")
    assert {"alexnet", "mobilenet_v1", "shufflenet_v1", "shufflenet_v2"} <= set(list_models())


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="already registered"):
        register_model("alexnet", family="x", paper="x")(lambda: None)
    with pytest.raises(ValueError, match="already registered"):
        register_model("brand_new_name", family="x", paper="x", aliases=("v1",))(lambda: None)
    assert "brand_new_name" not in list_models()


def test_unknown_arch_lists_known_names():
    with pytest.raises(ConfigError, match="unknown architecture 'resnet9000'.*shufflenet_v1"):
        canonical_name("resnet9000")


@pytest.mark.parametrize("config, message", [
    ({"g": 5}, r"g=5 is not valid \(choose from 1, 2, 3, 4, 8\)"),
    ({"scale": 0.3}, r"scale=0.3 is not valid \(choose from 0.25, 0.5, 1.0, 1.5, 2.0\)"),
    ({"groups": 3}, r"has no option groups"),
])
def test_invalid_configs_name_the_valid_choices(config, message):
    with pytest.raises(ConfigError, match=message):
        build_model("v1", **config)


def test_seeded_init_is_deterministic_and_seed_dependent():
    a = build_model("v1", g=3, scale=0.25, seed=1).state_dict()
    b = build_model("v1", g=3, scale=0.25, seed=1).state_dict()
    c = build_model("v1", g=3, scale=0.25, seed=2).state_dict()
    key = "stage2.0.gconv1.weight"
    assert (a[key] == b[key]).all()
    assert not (a[key] == c[key]).all()


def test_parse_label_and_model_ref_cast_values():
    assert parse_label("g=3,scale=0.5,shuffle=False") == {"g": 3, "scale": 0.5, "shuffle": False}
    assert parse_model_ref("v1:g=3,scale=0.5") == ("shufflenet_v1", {"g": 3, "scale": 0.5})
    assert parse_model_ref("alexnet") == ("alexnet", {})


def test_config_slug_names_choices_and_changed_options():
    assert config_slug("v1", {"g": 3}, (224, 224)) == "shufflenet_v1-g3-scale1.0-224x224"
    assert config_slug("v1", {"g": 3, "shuffle": False}) == "shufflenet_v1-g3-scale1.0-shuffle0"
    assert config_slug("alexnet", {}, (160, 160)) == "alexnet-160x160"


def test_spec_records_paper_and_defaults():
    spec = get_spec("v1")
    assert "1707.01083" in spec.paper
    assert spec.defaults["g"] == 3 and spec.defaults["scale"] == 1.0


# --- the table: the zoo named, validated and listed without torch -------------------------------------------

def test_the_table_file_is_what_the_registrations_render():
    from mobiledeploy.registry_table import TABLE_PATH, render_table

    assert TABLE_PATH.read_text() == render_table(), (
        "mobiledeploy/model_table.py differs from the @register_model declarations in models/: "
        "run `python -m mobiledeploy.registry_table --write`")


def test_every_registered_builtin_is_in_the_table_and_equal_to_its_registration():
    from dataclasses import fields

    from mobiledeploy.registry import TableBuilder, _table
    from mobiledeploy.registry_table import builtin_registrations

    table = _table()[0]
    registered = builtin_registrations()
    assert sorted(table) == sorted(registered), "run `python -m mobiledeploy.registry_table --write`"
    for name, spec in registered.items():
        row = table[name]
        assert isinstance(row.builder, TableBuilder) and row.builder.load() is spec.builder, name
        for f in fields(spec):
            if f.name != "builder":
                assert getattr(row, f.name) == getattr(spec, f.name), (name, f.name)


def test_a_name_taken_in_the_table_cannot_be_registered_by_another_builder():
    def alexnet():  # same name and qualname as the table's, another module
        return None

    with pytest.raises(ValueError, match="'alexnet' is already registered"):
        register_model("alexnet", family="x", paper="x")(alexnet)
    with pytest.raises(ValueError, match="'mbv2' is already registered"):
        register_model("fresh_name_2", family="x", paper="x", aliases=("mbv2",))(lambda: None)
    assert "fresh_name_2" not in list_models()


_NO_TORCH = r"""
import sys
from mobiledeploy.errors import ConfigError
from mobiledeploy.registry import canonical_name, config_slug, get_spec, list_models, parse_model_ref, _table
from mobiledeploy.converters.provenance import code_digest
assert canonical_name("mobilenet") == "mobilenet_v1" and parse_model_ref("v1:g=8") == ("shufflenet_v1", {"g": 8})
assert config_slug("v1", {"g": 3, "scale": 0.5}, (64, 64)) == "shufflenet_v1-g3-scale0.5-64x64"
assert len(list_models()) == len(_table()[0]) and get_spec("v1").declared["g=3,scale=1.0"].macs == 137e6
try:
    get_spec("v1").resolve({"g": 5})
except ConfigError as exc:
    assert "choose from 1, 2, 3, 4, 8" in str(exc)
assert code_digest(get_spec("levit_128s"))["model_files"] == ["blocks.py", "common.py", "levit.py", "repvit.py"]
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("mobiledeploy.models"))
assert not loaded, loaded
del _table()[0]["alexnet"]  # a family registered but missing from the table: found by importing the families
assert canonical_name("alexnet") == "alexnet" and "torch" in sys.modules
assert not type(get_spec("alexnet").builder).__name__ == "TableBuilder"
print("ok")
"""


def test_naming_validating_and_the_request_import_neither_torch_nor_the_families(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _NO_TORCH], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr
