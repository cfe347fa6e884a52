"""Configs: experiment files, overrides, and clear errors for keys that do not exist."""
from pathlib import Path

import pytest

from denoise_vit import ConfigError, build_model
from denoise_vit.presets import list_presets
from denoise_vit.training.config import load_config
from denoise_vit.training.run import model_args_for

PRESETS = list_presets()


def test_defaults_are_the_course_recipe():
    cfg = load_config()
    assert (cfg.epochs, cfg.optimizer, cfg.lr, cfg.model_name) == (30, "adam", 1e-3, "vit_denoiser")


def test_presets_ship_inside_the_package():
    assert {"quick", "course", "vit_fast", "unet"} <= set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads_and_builds(name):
    cfg = load_config(name)
    assert cfg.name == name
    build_model(cfg.model_name, **model_args_for(cfg))


def test_overrides_are_typed_and_nested(tmp_path):
    cfg = load_config(None, ["lr=3e-4", "epochs=2", "model.depth=3", "data.size=[48, 80]",
                             "data.generator.gaussian_sigma=0.1", 'name="x"', "amp=true"])
    assert cfg.lr == 3e-4 and cfg.epochs == 2 and cfg.model["depth"] == 3 and cfg.amp is True
    assert cfg.data.size == [48, 80] and cfg.data.generator == {"gaussian_sigma": 0.1}
    assert model_args_for(cfg)["img_size"] == [48, 80]


@pytest.mark.parametrize("overrides, message", [
    (["learning_rate=1e-3"], "unknown config key 'learning_rate'"),
    (["data.sise=32"], "unknown config key 'data.sise'"),
    (["epochs=two"], "'epochs' must be a int"),
    (["amp=1"], "must be true or false"),
    (["epochs=0"], "epochs must be at least 1"),
    (["schedule=linear"], "schedule must be"),
    (["data.kind=audio"], "data.kind must be one of"),
    (["lr"], "not of the form key=value"),
])
def test_bad_keys_and_values(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_missing_and_invalid_config_files(tmp_path):
    with pytest.raises(ConfigError, match="neither a file nor a preset"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 3")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(bad)
