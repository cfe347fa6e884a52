"""The one validator of configuration values: model configs and training configs use it.

Every error is a ConfigError naming the key, with its prefix where it has one (`model.depth`,
`data.size`), so a mistake in a config file or an override is found before any work starts.
"""
import dataclasses
import math
import typing
from numbers import Integral, Real

from data_gen.checks import image_size as data_gen_image_size

from .errors import ConfigError


def image_size(value, key="img_size"):
    """An int or a pair of positive ints as (H, W) (data_gen's one parser of sizes);
    ConfigError naming `key` otherwise."""
    try:
        return data_gen_image_size(value, key)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _type_ok(value, annotation):
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, Integral) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if annotation is str:
        return isinstance(value, str)
    if annotation is dict:
        return isinstance(value, dict)
    if typing.get_origin(annotation) is typing.Union:
        args = typing.get_args(annotation)
        return (value is None and type(None) in args) or any(
            _type_ok(value, a) for a in args if a is not type(None))
    return True   # sizes and the like are checked by their own code


def _type_name(annotation):
    if typing.get_origin(annotation) is typing.Union:
        names = [_type_name(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(names) + " (or left out)"
    return {bool: "true or false", int: "an integer", float: "a finite number",
            str: "a string", dict: "a table"}.get(annotation, str(annotation))


def check_config(cfg, *, positive=(), nonnegative=(), fractions=(), positive_numbers=(),
                 prefix=""):
    """Check a dataclass config in place (the one validator of every config).

    Every field must have its annotated type (bool, int, float, str, dict, Optional[...]);
    ints are accepted for floats and stored as floats. Then `positive`: integers >= 1;
    `nonnegative`: numbers >= 0; `fractions`: numbers in [0, 1); `positive_numbers`: > 0.
    Fields that are None (optional and left out) skip the range checks.
    """
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value, annotation = getattr(cfg, f.name), hints.get(f.name)
        if annotation is None or f.name == "img_size":
            continue
        if not _type_ok(value, annotation):
            raise ConfigError(f"{prefix}{f.name} must be {_type_name(annotation)}, not {value!r}")
        if isinstance(value, Integral) and not isinstance(value, bool) and (
                annotation is float or float in typing.get_args(annotation)):
            object.__setattr__(cfg, f.name, float(value))

    def bad(key, what):
        raise ConfigError(f"{prefix}{key} must be {what}, not {getattr(cfg, key)!r}")

    for key in positive:
        value = getattr(cfg, key)
        if value is not None and (not isinstance(value, Integral) or isinstance(value, bool)
                                  or value < 1):
            bad(key, "a positive integer")
    for key in nonnegative:
        if getattr(cfg, key) is not None and not getattr(cfg, key) >= 0:
            bad(key, "at least 0")
    for key in fractions:
        if getattr(cfg, key) is not None and not 0 <= getattr(cfg, key) < 1:
            bad(key, "in [0, 1)")
    for key in positive_numbers:
        if getattr(cfg, key) is not None and not getattr(cfg, key) > 0:
            bad(key, "greater than 0")


def check_choice(key, value, choices):
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value


def check_int_range(key, value, lo, hi):
    if not isinstance(value, Integral) or isinstance(value, bool) or not lo <= value <= hi:
        raise ConfigError(f"{key} must be an integer in [{lo}, {hi}], not {value!r}")
    return value
