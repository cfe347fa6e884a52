"""Test-only registered models: `shift_test` adds a constant to its input (0: the identity),
`shift_video_test` the same on (B, C, T, H, W) clips. Saved as ordinary checkpoints, they drive
the real command line, so any change to the pixels between the file and the model and back is
the pipeline's own."""
from dataclasses import dataclass

import torch
from torch import nn

from denoise_vit import registry
from denoise_vit.checkpoint import atomic_save, make_checkpoint
from denoise_vit.models.base import DenoisingModel, ModelFacts

INTENSITY = {"percentiles": [1.0, 99.8], "low": 0.0, "high": 0.8}


@dataclass
class ShiftConfig:
    img_size: int = 16
    patch_size: int = 8
    in_chans: int = 1
    shift: float = 0.0   # added to every pixel, in the model's units; 0: output == input


@dataclass
class ShiftVideoConfig(ShiftConfig):
    num_frames: int = 4
    tubelet_size: int = 1


class Shift(DenoisingModel):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.anchor = nn.Parameter(torch.zeros(1))   # a checkpoint holds at least one weight

    @property
    def facts(self):
        c, p = self.config, self.config.patch_size
        if hasattr(c, "num_frames"):
            return ModelFacts("video", c.in_chans, (1, p, p), (c.num_frames, c.img_size, c.img_size))
        return ModelFacts("image", c.in_chans, (p, p), (c.img_size, c.img_size))

    def forward(self, x):
        return x if self.config.shift == 0 else x + self.config.shift


def _register():
    for name, config in (("shift_test", ShiftConfig), ("shift_video_test", ShiftVideoConfig)):
        if name not in registry._MODELS:
            registry.register_model(name, config)(
                type(f"Shift_{name}", (Shift,), {"facts": Shift.facts}))


_register()


def save(path, shift=0.0, *, video=False, **extra):
    """A checkpoint of the shift model (the identity for shift=0) at `path`."""
    name = "shift_video_test" if video else "shift_test"
    model = registry.build_model(name, shift=shift)
    extra.setdefault("intensity", INTENSITY)
    atomic_save(make_checkpoint(model, **extra), path)
    return path
