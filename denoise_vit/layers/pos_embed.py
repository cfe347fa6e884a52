"""Absolute position embeddings for a 2-D grid of patches: learned or fixed sin-cos."""
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..errors import ConfigError
from .timm_parts import build_sincos2d_pos_embed, trunc_normal_

POS_EMBED_KINDS = ("learned", "sincos")


def exporting():
    """True while torch.export (the ONNX exporter) or torch.jit.trace records the model.

    Shortcuts that compare the input's grid with the training grid would then be frozen into the
    graph for the example input's size; exported graphs take the general path, which gives the
    same numbers (resampling a grid to its own size is the identity).
    """
    return torch.jit.is_tracing() or torch.compiler.is_exporting()


def resample_grid(weight, old_grid, new_grid):
    """(1, gh*gw, D) on `old_grid` -> (1, gh'*gw', D) on `new_grid`: antialiased bicubic.

    The same maths as timm's `resample_abs_pos_embed` (bicubic, antialias, in float32), written
    without its size shortcuts so that it traces and exports with the new grid as a dynamic size.
    """
    grid = rearrange(weight.float(), "1 (gh gw) d -> 1 d gh gw", gh=old_grid[0], gw=old_grid[1])
    grid = F.interpolate(grid, size=(new_grid[0], new_grid[1]), mode="bicubic", antialias=True)
    return rearrange(grid, "1 d gh gw -> 1 (gh gw) d").to(weight.dtype)


def sincos_2d(grid, dim):
    """Fixed embedding (1, gh*gw, dim): sin/cos of row and column at geometric frequencies."""
    return build_sincos2d_pos_embed(list(grid), dim=dim).unsqueeze(0)


class PosEmbed2d(nn.Module):
    """Adds a position embedding to tokens (B, gh*gw, D) laid out row-major on a (gh, gw) grid.

    "learned": a parameter, trunc-normal std 0.02 (the course's init), resampled bicubically
    when the input grid differs from the training grid (as timm and TimeSformer do), so a model
    trained on 64x64 also runs on whole images of other sizes. "sincos": fixed, recomputed
    exactly for any grid.
    """

    def __init__(self, grid, embed_dim, kind="learned"):
        super().__init__()
        if kind not in POS_EMBED_KINDS:
            raise ConfigError(f"pos_embed must be one of {POS_EMBED_KINDS}, not {kind!r}")
        if kind == "sincos" and embed_dim % 4:
            raise ConfigError(f"pos_embed='sincos' needs embed_dim divisible by 4 (got {embed_dim})")
        self.grid = tuple(grid)
        self.kind = kind
        self.embed_dim = embed_dim
        if kind == "learned":
            self.weight = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], embed_dim))
            trunc_normal_(self.weight, std=0.02)
        else:
            self.register_buffer("weight", sincos_2d(self.grid, embed_dim), persistent=False)

    def embedding(self, grid):
        """(1, gh*gw, D) for the given grid."""
        grid = tuple(grid)
        if not exporting() and grid == self.grid:
            return self.weight
        if self.kind == "sincos":
            return sincos_2d(grid, self.embed_dim).to(self.weight)
        return resample_grid(self.weight, self.grid, grid)

    def forward(self, x, grid):
        return x + self.embedding(grid)


POS_EMBED_LAYOUTS = ("separate", "joint")


def sincos_1d(length, dim):
    """Fixed embedding (1, length, dim) of positions 0..length-1: sin and cos halves."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float32) / (dim // 2))
    angles = torch.arange(length, dtype=torch.float32)[:, None] * omega[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1).unsqueeze(0)


class PosEmbedSpaceTime(nn.Module):
    """Adds positions to video tokens (B, nt, ns, D) laid out on an (nt, gh, gw) grid.

    layout "separate" (TimeSformer's pos_embed + time_embed): a 2-D embedding of the patch
    position, shared by every frame (a `PosEmbed2d`), plus an embedding of the temporal index
    (1, nt, 1, D), shared by every position. layout "joint" (ViViT): one learned vector per
    space-time token (1, nt, ns, D); learned only.

    Learned embeddings adapt to clips of another length or size, as TimeSformer does: the
    temporal one is resampled linearly over time, the spatial one bicubically (PosEmbed2d), the
    joint one trilinearly. Fixed sin-cos ones are recomputed for the new grid.
    """

    def __init__(self, num_tubelets, grid, embed_dim, kind="learned", layout="separate"):
        super().__init__()
        if layout not in POS_EMBED_LAYOUTS:
            raise ConfigError(f"pos_embed_layout must be one of {POS_EMBED_LAYOUTS}, "
                              f"not {layout!r}")
        if layout == "joint" and kind != "learned":
            raise ConfigError("pos_embed_layout='joint' needs pos_embed='learned' (a fixed sin-cos "
                              "embedding is always the sum of a spatial and a temporal one)")
        self.num_tubelets = num_tubelets
        self.grid = tuple(grid)
        self.kind, self.layout, self.embed_dim = kind, layout, embed_dim
        if layout == "joint":
            self.weight = nn.Parameter(torch.zeros(1, num_tubelets, self.grid[0] * self.grid[1],
                                                   embed_dim))
            trunc_normal_(self.weight, std=0.02)
            return
        self.space = PosEmbed2d(self.grid, embed_dim, kind)
        if kind == "learned":
            self.time = nn.Parameter(torch.zeros(1, num_tubelets, 1, embed_dim))
            trunc_normal_(self.time, std=0.02)
        else:
            self.register_buffer("time", sincos_1d(num_tubelets, embed_dim).unsqueeze(2),
                                 persistent=False)

    def time_embedding(self, nt):
        """(1, nt, 1, D)."""
        if not exporting() and nt == self.num_tubelets:
            return self.time
        if self.kind == "sincos":
            return sincos_1d(nt, self.embed_dim).unsqueeze(2).to(self.time)
        w = torch.nn.functional.interpolate(self.time[:, :, 0].transpose(1, 2), size=nt,
                                            mode="linear", align_corners=False)
        return w.transpose(1, 2).unsqueeze(2)

    def embedding(self, nt, grid):
        """(1, nt, gh*gw, D) for a clip of nt tubelets on a (gh, gw) grid."""
        grid = tuple(grid)
        if self.layout == "separate":
            return self.space.embedding(grid).unsqueeze(1) + self.time_embedding(nt)
        if not exporting() and (nt, grid) == (self.num_tubelets, self.grid):
            return self.weight
        w = self.weight.reshape(1, self.num_tubelets, *self.grid, self.embed_dim)
        w = torch.nn.functional.interpolate(w.permute(0, 4, 1, 2, 3), size=(nt, *grid),
                                            mode="trilinear", align_corners=False)
        return w.permute(0, 2, 3, 4, 1).reshape(1, nt, grid[0] * grid[1], self.embed_dim)

    def forward(self, x, grid):
        return x + self.embedding(x.shape[1], grid)
