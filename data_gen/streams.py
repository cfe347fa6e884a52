"""Training batches generated on the fly, and fixed evaluation sets.

Nothing is stored on disk: a training run draws a fresh batch every step on the model's
device, and an evaluation set is regenerated from its seed whenever it is needed.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import torch
from torch import Tensor

from data_gen import compiled
from data_gen.checks import check_count
from data_gen.images import generate_images, generate_noise2noise
from data_gen.settings import SETTING_NAMES, GeneratorSettings, unknown_key
from data_gen.video import generate_videos

__all__ = ["KINDS", "SyntheticStream", "check_generator_options", "make_eval_set"]

KINDS = ("images", "videos", "noise2noise")


def _check_kind(kind) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")
    return kind


# what each kind's generator draws by default
_PRESETS = {
    "images": GeneratorSettings,
    "videos": GeneratorSettings,
    "noise2noise": GeneratorSettings.noise2noise,
}

# arguments of generate_videos that a stream or a config does not set through generator options
_NOT_OPTIONS = {"generator", "device", "dtype", "settings"}


def _video_keys() -> tuple[str, ...]:
    """The keywords generate_videos takes besides the settings fields (speed, jitter, ...)."""
    return tuple(
        name for name, p in inspect.signature(generate_videos).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in _NOT_OPTIONS
    )


def check_generator_options(kind: str, options: Mapping) -> dict:
    """Check a config's generator options (``[data.generator]``) for data of ``kind``.

    kind: "images", "noise2noise" or "videos". options: keywords of that kind's generator: the
    ``GeneratorSettings`` fields, and for videos also generate_videos' own keywords (speed,
    jitter, persistent_clutter, redraw_pixel_noise, ...). Returns them as a plain dict,
    unchanged. Raises ValueError: "unknown generator key 'k'; valid keys: ..." for a key that is
    not one of them, or a message starting with the key for a bad value.
    """
    kind = _check_kind(kind)
    if not isinstance(options, Mapping):
        raise ValueError(f"generator options must be a table of keys, got {options!r}")
    video_keys = _video_keys() if kind == "videos" else ()
    for key in options:
        if key not in SETTING_NAMES and key not in video_keys:
            raise unknown_key(key, SETTING_NAMES + video_keys)
    settings = GeneratorSettings.from_options(
        {k: v for k, v in options.items() if k not in video_keys}, base=_PRESETS[kind]())
    if video_keys:
        # generate_videos checks its own keywords before it draws anything: an empty draw
        # checks them without this function repeating (or falling behind) those checks
        generate_videos(0, 1, 1, settings=settings,
                        **{k: v for k, v in options.items() if k in video_keys})
    return dict(options)


def _draw(kind: str, n: int, size, frames: int, generator: torch.Generator, kwargs: dict):
    """The raw generator output for ``kind``: a pair, or a triple for noise2noise."""
    if kind == "images":
        return generate_images(n, size, generator=generator, **kwargs)
    if kind == "videos":
        return generate_videos(n, frames, size, generator=generator, **kwargs)
    return generate_noise2noise(n, size, generator=generator, **kwargs)


def _check_kwargs(kind: str, size, frames: int, kwargs: dict, device) -> None:
    """Fail on a misspelt or invalid generator keyword now rather than at the first batch."""
    if "generator" in kwargs:
        raise TypeError("pass seed=..., not generator=...; the stream owns its generator")
    # an empty draw from a throwaway generator runs every check without touching the stream
    _draw(kind, 0, size, frames, torch.Generator(device=device), {**kwargs, "device": device})


class SyntheticStream:
    """Endless training batches, freshly generated on ``device`` each step.

    kind="images": (input, target), each (B, 1, H, W), from ``generate_images``.
    kind="videos": (input, target), each (B, 1, T, H, W), from ``generate_videos``.
    kind="noise2noise": (noisy_a, noisy_b), each (B, 1, H, W), from ``generate_noise2noise``:
        the training target is the second noisy copy, never the clean image.
    Any other keyword goes to the generator (rates, ranges, noise); unknown keywords raise
    TypeError at construction. ``state_dict`` / ``load_state_dict`` resume the exact stream.
    """

    def __init__(self, batch_size: int, *, kind: str = "images", size=64, frames: int = 8,
                 seed: int = 0, device="cpu", **generator_kwargs):
        self.batch_size = check_count("batch_size", batch_size, minimum=1)
        self.kind = _check_kind(kind)
        self.size = size
        self.frames = frames
        self.seed = check_count("seed", seed, minimum=-(2**63))
        self.device = torch.device(device)
        if "device" in generator_kwargs:
            raise TypeError("device is given once, as SyntheticStream(..., device=...)")
        _check_kwargs(self.kind, size, frames, generator_kwargs, self.device)
        if self.device.type == "cpu":
            compiled.warm_up()  # now, not inside the first training step and its clock
        self.generator_kwargs = dict(generator_kwargs)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed)
        self.step = 0

    def __iter__(self):
        return self

    def __next__(self) -> tuple[Tensor, Tensor]:
        batch = _draw(self.kind, self.batch_size, self.size, self.frames, self.generator,
                      self.generator_kwargs)
        self.step += 1
        return batch[0], batch[1]

    def state_dict(self) -> dict:
        """Everything needed to resume: plain tensors and numbers (safe for weights_only)."""
        return {
            "generator_state": self.generator.get_state(),
            "step": self.step,
            "seed": self.seed,
            "kind": self.kind,
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict) -> None:
        """Resume a stream saved by ``state_dict``; the next batch is the one it would have made."""
        for key in ("kind", "batch_size"):
            if key in state and state[key] != getattr(self, key):
                raise ValueError(
                    f"state was saved from a stream with {key}={state[key]!r}, "
                    f"this one has {key}={getattr(self, key)!r}"
                )
        self.generator.set_state(state["generator_state"].cpu())
        self.step = int(state.get("step", 0))
        self.seed = int(state.get("seed", self.seed))


def make_eval_set(n: int, *, kind: str = "images", size=64, frames: int = 8, seed: int = 1234,
                  **generator_kwargs) -> tuple[Tensor, Tensor]:
    """A fixed evaluation set: (input, target) on the CPU, identical on every machine.

    Always drawn with a CPU generator seeded with ``seed`` (GPU random streams differ from the
    CPU's). Shapes: (n, 1, H, W), or (n, 1, T, H, W) for kind="videos". For
    kind="noise2noise" the target is the clean image: evaluation is always against clean cells.
    """
    kind = _check_kind(kind)
    n = check_count("n", n)
    for key in ("generator", "device"):
        if key in generator_kwargs:
            raise TypeError(f"make_eval_set does not take {key}=; it always uses a CPU generator")
    seed = check_count("seed", seed, minimum=-(2**63))
    generator = torch.Generator(device="cpu").manual_seed(seed)
    batch = _draw(kind, n, size, frames, generator, generator_kwargs)
    return batch[0], batch[-1]
