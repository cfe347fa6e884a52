"""What every registered model tells the rest of the package, and the checks of its config.

Inference (tiling, temporal windows), export and training read a model's `facts` instead of
guessing from its config's attributes:

    facts = model.facts                 # ModelFacts
    facts.kind                          # "image": (B, C, H, W); "video": (B, C, T, H, W)
    facts.multiple                      # (H, W) multiples the input must have (video: (T, H, W))
    facts.train_size                    # (H, W) it was built for (video: (T, H, W))
    model.plane_model()                 # the module to run on single planes (image kinds)
"""
import dataclasses
import math
import typing
from dataclasses import dataclass
from numbers import Integral, Real

from torch import nn

from ..errors import ConfigError

KINDS = ("image", "video")


@dataclass(frozen=True)
class ModelFacts:
    kind: str              # "image" | "video"
    in_chans: int
    multiple: tuple        # image: (H, W); video: (T, H, W)
    train_size: tuple      # image: (H, W); video: (T, H, W)

    @property
    def frames(self):
        """Frames per clip of a video model (1 for image models)."""
        return self.train_size[0] if self.kind == "video" else 1


class DenoisingModel(nn.Module):
    """Base of every registered model: subclasses set `config` and implement `facts`."""

    @property
    def facts(self) -> ModelFacts:
        raise NotImplementedError

    def plane_model(self):
        """The module that denoises (B, C, H, W) planes: the model itself for image models."""
        return self


def image_size(value, key="img_size"):
    """An int or a pair of positive ints as (H, W); ConfigError naming `key` otherwise."""
    if isinstance(value, Integral) and not isinstance(value, bool):
        hw = (int(value), int(value))
    elif (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, Integral) and not isinstance(v, bool) for v in value)):
        hw = (int(value[0]), int(value[1]))
    else:
        raise ConfigError(f"{key} must be an int or [height, width] of ints, not {value!r}")
    if min(hw) < 1:
        raise ConfigError(f"{key} must be at least 1 pixel on each side, not {value!r}")
    return hw


def _type_ok(value, annotation):
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, Integral) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if annotation is str:
        return isinstance(value, str)
    if typing.get_origin(annotation) is typing.Union:
        return any(_type_ok(value, a) for a in typing.get_args(annotation)
                   if a is not type(None)) or (value is None and type(None) in
                                               typing.get_args(annotation))
    return True   # tuples and the like are checked by their own code


def _type_name(annotation):
    return {bool: "true or false", int: "an integer", float: "a finite number",
            str: "a string"}.get(annotation, str(annotation))


def check_config(cfg, *, positive=(), fractions=(), positive_numbers=()):
    """The one validator of model configs, called by every config's __post_init__.

    Every field must have its annotated type (bool, int, float, str; ints pass for floats);
    `positive`: integers >= 1; `fractions`: numbers in [0, 1); `positive_numbers`: > 0.
    """
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value, annotation = getattr(cfg, f.name), hints.get(f.name)
        if annotation is None or f.name == "img_size":
            continue
        if not _type_ok(value, annotation):
            raise ConfigError(f"{f.name} must be {_type_name(annotation)}, not {value!r}")
        if annotation is float and isinstance(value, Integral):
            object.__setattr__(cfg, f.name, float(value))
    for key in positive:
        value = getattr(cfg, key)
        if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{key} must be a positive integer, not {value!r}")
    for key in fractions:
        if not 0 <= getattr(cfg, key) < 1:
            raise ConfigError(f"{key} must be in [0, 1), not {getattr(cfg, key)!r}")
    for key in positive_numbers:
        if not getattr(cfg, key) > 0:
            raise ConfigError(f"{key} must be greater than 0, not {getattr(cfg, key)!r}")
