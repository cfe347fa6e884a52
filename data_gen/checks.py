"""Argument checks shared by the generators: each returns the checked value, normalised (ints as
int, numbers as float, pairs as tuples), or raises ValueError whose message starts with the
argument's name."""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch

__all__ = [
    "image_size",
    "check_count",
    "check_nonnegative",
    "check_range",
    "check_optional_positive",
    "check_flag",
    "check_dtype",
    "check_generator",
    "resolve_device",
]


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_finite_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def image_size(size, name: str = "size") -> tuple[int, int]:
    """``size`` as (H, W): an int gives a square image, a pair gives (H, W)."""
    if _is_int(size):
        hw = (int(size), int(size))
    elif isinstance(size, (tuple, list)) and len(size) == 2 and all(map(_is_int, size)):
        hw = (int(size[0]), int(size[1]))
    else:
        raise ValueError(f"{name} must be an int or a pair of ints (H, W), got {size!r}")
    if min(hw) < 1:
        raise ValueError(f"{name} must be at least 1 pixel on each side, got {size!r}")
    return hw


def check_count(name: str, value, minimum: int = 0) -> int:
    if not _is_int(value):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_nonnegative(name: str, value) -> float:
    if not _is_finite_number(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return float(value)


def check_range(name: str, value, *, integer: bool = False, minimum=None) -> tuple:
    """A (lo, hi) pair with lo <= hi (and lo >= minimum when given); a list is accepted."""
    kind = "ints" if integer else "numbers"
    ok = isinstance(value, (tuple, list)) and len(value) == 2
    if ok:
        ok = all(_is_finite_number(v) and (_is_int(v) or not integer) for v in value)
    if not ok:
        raise ValueError(f"{name} must be a pair (lo, hi) of {kind}, got {value!r}")
    lo, hi = (int(v) for v in value) if integer else (float(v) for v in value)
    if lo > hi:
        raise ValueError(f"{name} must have lo <= hi, got {value!r}")
    if minimum is not None and lo < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return lo, hi


def check_optional_positive(name: str, value) -> float | None:
    """None, or a finite number > 0 (as float)."""
    if value is None:
        return None
    if not _is_finite_number(value) or not value > 0:
        raise ValueError(f"{name} must be None or a finite number > 0, got {value!r}")
    return float(value)


def check_flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def check_dtype(dtype) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    return dtype


def check_generator(generator) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {generator!r}")
    return generator


def resolve_device(generator: torch.Generator | None, device) -> torch.device:
    """The device to generate on: ``device`` if given, else the generator's, else the CPU.

    A generator can only drive random numbers on its own device, so a mismatch is an error.
    """
    if device is None:
        return generator.device if generator is not None else torch.device("cpu")
    device = torch.device(device)
    if generator is not None:
        gen = generator.device
        same = gen.type == device.type and (
            gen.index == device.index or device.index is None or gen.index is None
        )
        if not same:
            raise ValueError(
                f"device={device} differs from the generator's device {gen}; "
                "pass a generator created on the same device, or leave device=None"
            )
        return gen
    return device
