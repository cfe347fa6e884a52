"""Absolute position embeddings for a 2-D grid of patches: learned or fixed sin-cos."""
import torch
from timm.layers import resample_abs_pos_embed, trunc_normal_
from timm.layers.pos_embed_sincos import build_sincos2d_pos_embed
from torch import nn

from ..errors import ConfigError

POS_EMBED_KINDS = ("learned", "sincos")


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
        if grid == self.grid:
            return self.weight
        if self.kind == "sincos":
            return sincos_2d(grid, self.embed_dim).to(self.weight)
        return resample_abs_pos_embed(self.weight, new_size=list(grid), old_size=list(self.grid),
                                      num_prefix_tokens=0)

    def forward(self, x, grid):
        return x + self.embedding(grid)
