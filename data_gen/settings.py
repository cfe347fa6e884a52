"""The generator's settings: the twelve rates, ranges and noise levels, typed and checked once.

``GeneratorSettings()`` is the course's distribution (the law of each field is in the
``data_gen.images`` docstring and docs/GENERATOR.md); ``GeneratorSettings.noise2noise()`` is the
course's Noise2Noise variant. Settings are checked when they are built, so a bad value (or, via
``from_options``, a misspelt key) fails where it is written rather than at the first batch.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from collections.abc import Mapping
from dataclasses import dataclass, field

from data_gen.checks import (
    check_nonnegative,
    check_optional_positive,
    check_range,
)

__all__ = ["GeneratorSettings", "SETTING_NAMES", "settings_from_keywords", "unknown_key"]


def _setting(default, check):
    """A field whose value is checked (and normalised) by ``check(name, value)``."""
    return field(default=default, metadata={"check": check})


def _rate(default: float):
    return _setting(default, check_nonnegative)


def _range(default: tuple[float, float]):
    return _setting(default, check_range)


def _sides(default: tuple[int, int]):
    """A range of integer pixel sizes, at least 1."""
    return _setting(default, lambda name, value: check_range(name, value, integer=True,
                                                             minimum=1))


@dataclass(frozen=True)
class GeneratorSettings:
    """What the synthetic images contain; the defaults are the course's.

    Rates are objects per pixel (count ~ Poisson(rate * H * W)), ranges are (lo, hi) pairs
    (integer ranges inclusive; a list is accepted and stored as a tuple). ``photons`` (None: no
    shot noise) and ``gaussian_sigma`` (0: none) are the sensor noise on the input.
    """

    cell_rate: float = _rate(0.002)
    cell_radius: tuple[int, int] = _sides((5, 10))
    cell_amplitude: tuple[float, float] = _range((0.6, 1.0))
    filled_rate: float = _rate(0.0003)
    filled_long: tuple[int, int] = _sides((20, 50))
    filled_short: tuple[int, int] = _sides((2, 10))
    filled_value: tuple[float, float] = _range((0.0, 0.8))
    noisy_rate: float = _rate(0.0003)
    noisy_side: tuple[int, int] = _sides((10, 30))
    noisy_value: tuple[float, float] = _range((0.0, 0.8))
    gaussian_sigma: float = _rate(0.0)
    photons: float | None = _setting(None, check_optional_positive)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, f.metadata["check"](f.name, getattr(self, f.name)))

    @classmethod
    def noise2noise(cls, **changes) -> GeneratorSettings:
        """The course's Noise2Noise data: rectangles at 0.0005 per pixel (of each kind)."""
        return cls(**{"filled_rate": 0.0005, "noisy_rate": 0.0005, **changes})

    @classmethod
    def from_options(cls, options: Mapping, *, base: GeneratorSettings | None = None
                     ) -> GeneratorSettings:
        """``base`` (default: the course's settings) with the keys of ``options`` changed.

        For options read from a file: an unknown key is a ValueError naming it and the valid
        keys; a bad value is a ValueError starting with its key.
        """
        if not isinstance(options, Mapping):
            raise ValueError(f"generator options must be a table of keys, got {options!r}")
        for key in options:
            if key not in SETTING_NAMES:
                raise unknown_key(key, SETTING_NAMES)
        base = cls() if base is None else base
        return dataclasses.replace(base, **options) if options else base


SETTING_NAMES = tuple(f.name for f in dataclasses.fields(GeneratorSettings))


def unknown_key(key, valid) -> ValueError:
    return ValueError(f"unknown generator key {key!r}; valid keys: {', '.join(valid)}")


@lru_cache(maxsize=8)
def _default(preset) -> GeneratorSettings:
    """``preset()``, made and checked once (settings are frozen): every generator call without
    settings asks for it."""
    return preset()


def settings_from_keywords(caller: str, settings: GeneratorSettings | None, options: Mapping,
                           preset=GeneratorSettings) -> GeneratorSettings:
    """The settings a generator call asked for: ``settings`` (default: ``preset()``) with the
    keyword arguments ``options`` changed. An unknown keyword is a TypeError naming it, as for
    any function."""
    for key in options:
        if key not in SETTING_NAMES:
            raise TypeError(f"{caller}() got an unexpected keyword argument {key!r}")
    if settings is None:
        return preset(**options) if options else _default(preset)
    if not isinstance(settings, GeneratorSettings):
        raise ValueError(f"settings must be a GeneratorSettings or None, got {settings!r}")
    return dataclasses.replace(settings, **options) if options else settings
