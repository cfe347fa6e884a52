"""What every registered model tells the rest of the package, and the checks of its config.

Inference (tiling, temporal windows), export and training read a model's `facts` instead of
guessing from its config's attributes:

    facts = model.facts                 # ModelFacts
    facts.kind                          # "image": (B, C, H, W); "video": (B, C, T, H, W)
    facts.multiple                      # (H, W) multiples the input must have (video: (T, H, W))
    facts.train_size                    # (H, W) it was built for (video: (T, H, W))
    model.plane_model()                 # the module to run on single planes (image kinds)
"""
from dataclasses import dataclass

import torch
from torch import nn

from ..checks import check_config, image_size  # noqa: F401  (the models' validators)
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

    def check_input(self, x):
        """One message for an input of the wrong rank or channel count."""
        facts = self.facts
        ndim, layout = (4, "images (B, C, H, W)") if facts.kind == "image" else \
            (5, "clips (B, C, T, H, W)")
        if x.ndim != ndim:
            raise ConfigError(f"{self.model_name} expects {layout}, got shape {tuple(x.shape)}")
        if x.shape[1] != facts.in_chans:
            raise ConfigError(f"{self.model_name} was built for {facts.in_chans} channel(s), "
                              f"got {x.shape[1]}")


def check_output(cfg):
    """`residual` and `gate` both say how the network's maps become the image: one of them."""
    if getattr(cfg, "gate", False) and cfg.residual:
        raise ConfigError("gate and residual are two ways of composing the output: choose one")


def output_chans(cfg):
    """Channels the network itself predicts: two per image channel with `gate` (gate, offset)."""
    return cfg.in_chans * (2 if getattr(cfg, "gate", False) else 1)


# the gate's bias at initialisation: sigmoid(-3) = 0.05, nearly shut, so that a new network
# starts as a direct predictor and opens the gate where copying the input pays (initialised
# half open, vit_fast scored 2 dB less after 1 CPU min: docs/VARIANTS.md, rounds 3 and 4)
GATE_INIT_BIAS = -3.0


def close_gate(conv, cfg):
    """Initialise the gate channels of the output conv `conv` (the first in_chans) nearly shut."""
    with torch.no_grad():
        conv.bias[:cfg.in_chans] = GATE_INIT_BIAS


def init_output(layer, cfg):
    """The output layer's start: zeroed with `zero_init_out` (the network first predicts 0, or
    the input itself with `residual`, on every seed alike, instead of a random map whose size
    depends on the seed), then the gate nearly shut with `gate`."""
    if getattr(cfg, "zero_init_out", False):
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
    if getattr(cfg, "gate", False):
        close_gate(layer, cfg)


def compose_output(x, out, cfg):
    """The denoised image from the input `x` and the network's maps `out`:
    direct (out), residual (x - out: out is the clutter) or gated (sigmoid(g) * x + b, with
    out = [g, b]: where the input is clean the gate opens and copies it; where clutter covers
    it the gate closes and b paints what lies beneath, or subtracts a constant)."""
    if getattr(cfg, "gate", False):
        gate, offset = out.chunk(2, dim=1)
        return torch.sigmoid(gate) * x + offset
    return x - out if cfg.residual else out
