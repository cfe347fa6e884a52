"""Axial attention on a feature map: every position attends along its row, then along its column.

Axial attention (Ho et al. 2019; Wang et al. 2020, Axial-DeepLab) factorises 2-D self-attention
into two 1-D passes, as TimeSformer's divided attention does for space and time: a map of
H x W positions costs H*W*(H + W) attention scores instead of (H*W)**2, so it can run at full
or half resolution, where a U-Net restores detail. Its reach suits the synthetic clutter:
rectangles are axis-aligned bars up to 50 pixels long, and a pixel inside a bar can weigh the
bar's other pixels along the same row or column (those not under a cell) to tell the bar's level
from the cell beneath it.
"""
from einops import rearrange
from torch import nn

from .attention import Attention
from .timm_parts import Mlp


class AxialBlock(nn.Module):
    """(B, C, H, W) -> (B, C, H, W), pre-norm residual branches on the positions' channels:

        x += row_attn(norm(x))   each row's W positions attend to each other
        x += col_attn(norm(x))   each column's H positions
        x += mlp(norm(x))

    No position embedding: the convolutions around the block give each position its context.
    `attention=False` keeps the MLP branch only (the ablation: positions never mix here).
    """

    def __init__(self, dim, num_heads, *, mlp_ratio=2.0, qkv_bias=True, fused_attn=True,
                 attention=True):
        super().__init__()
        if attention:
            self.norm_row, self.norm_col = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.row = Attention(dim, num_heads, qkv_bias=qkv_bias, fused=fused_attn)
            self.col = Attention(dim, num_heads, qkv_bias=qkv_bias, fused=fused_attn)
        else:
            self.row = self.col = None
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def zero_branches(self):
        """Zero the last layer of every residual branch: the block starts as the identity."""
        for layer in (self.mlp.fc2, *(a.proj for a in (self.row, self.col) if a is not None)):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        h, w = x.shape[-2:]
        t = rearrange(x, "b c h w -> b h w c")   # a view when x is channels-last
        if self.row is not None:
            rows = self.row(rearrange(self.norm_row(t), "b h w c -> (b h) w c"))
            t = t + rearrange(rows, "(b h) w c -> b h w c", h=h)
            cols = self.col(rearrange(self.norm_col(t), "b h w c -> (b w) h c"))
            t = t + rearrange(cols, "(b w) h c -> b h w c", w=w)
        t = t + self.mlp(self.norm_mlp(t))
        return rearrange(t, "b h w c -> b c h w")
