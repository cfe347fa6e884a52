"""Training presets that install with the package: `denoise-vit train --config NAME`.

Each preset is a TOML file in this folder stating only what differs from TrainConfig's
defaults; its first comment line is its one-line description (`denoise-vit train
--list-configs`). A user's own file is given by path instead (`--config my.toml`).
"""
from importlib import resources


def _files():
    return {p.name[:-5]: p for p in resources.files(__name__).iterdir()
            if p.name.endswith(".toml")}


def list_presets():
    """Names of the shipped presets, sorted."""
    return sorted(_files())


def read_preset(name):
    """The TOML text of preset `name` (KeyError if there is none)."""
    return _files()[name].read_text(encoding="utf-8")


def describe(name):
    """The preset's first comment line, without the '#'."""
    for line in read_preset(name).splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""
