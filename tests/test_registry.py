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
