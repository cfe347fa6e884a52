"""Restormer's transformer block on a feature map: attention across channels, not positions.

Restormer (Zamir et al. 2022) makes self-attention affordable at full resolution by transposing
it: each head's queries and keys are the maps of its channels, each L2-normalised over all H*W
positions, and the attention map is channels x channels (MDTA, multi-Dconv head transposed
attention). Its cost grows with H*W, not (H*W)**2, and every output position draws on the whole
map through the channel weights. Local context comes from 3 x 3 depthwise convs on the queries,
keys and values; the feed-forward branch is gated and depthwise too (GDFN). Written after
swz30/Restormer's `basicsr/models/archs/restormer_arch.py` (the same layers, bias-free, its
ffn_expansion_factor 2.66 and LayerNorm over channels with a bias).
"""
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class ChannelLayerNorm(nn.LayerNorm):
    """nn.LayerNorm over the channels of each position of a (B, C, H, W) map."""

    def forward(self, x):
        t = rearrange(x, "b c h w -> b h w c")   # a view when x is channels-last
        return rearrange(super().forward(t), "b h w c -> b c h w")


class TransposedAttention(nn.Module):
    """MDTA: (B, C, H, W) -> (B, C, H, W); per head a (C/h x C/h) attention map with a learned
    temperature, over queries and keys L2-normalised across positions."""

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=False)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, padding=1, groups=dim * 3,
                                    bias=False)
        self.proj = nn.Conv2d(dim, dim, kernel_size=1, bias=False)

    def forward(self, x):
        h, w = x.shape[-2:]
        q, k, v = (rearrange(t, "b (head c) h w -> b head c (h w)", head=self.num_heads)
                   for t in self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)
        out = rearrange(attn @ v, "b head c (h w) -> b (head c) h w", h=h, w=w)
        return self.proj(out)


class GatedDconvFeedForward(nn.Module):
    """GDFN: 1 x 1 conv to two maps of `hidden` channels, 3 x 3 depthwise conv, GELU(one) *
    other, 1 x 1 conv back; each position sees its 3 x 3 neighbourhood."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=False)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, padding=1,
                                groups=hidden * 2, bias=False)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=False)

    def forward(self, x):
        a, b = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(a) * b)


class TransposedAttentionBlock(nn.Module):
    """(B, C, H, W) -> (B, C, H, W), Restormer's pre-norm block:

        x += mdta(norm(x))
        x += gdfn(norm(x))

    `attention=False` keeps the GDFN branch only (the ablation: no channel-mixing over the whole
    map, only the 3 x 3 depthwise reach).
    """

    def __init__(self, dim, num_heads, *, ffn_expansion=2.66, attention=True):
        super().__init__()
        if attention:
            self.norm_attn = ChannelLayerNorm(dim)
            self.attn = TransposedAttention(dim, num_heads)
        else:
            self.attn = None
        self.norm_ffn = ChannelLayerNorm(dim)
        self.ffn = GatedDconvFeedForward(dim, int(dim * ffn_expansion))

    def zero_branches(self):
        """Zero the last layer of every residual branch: the block starts as the identity."""
        for layer in (self.ffn.project_out, *([self.attn.proj] if self.attn is not None else [])):
            nn.init.zeros_(layer.weight)

    def forward(self, x):
        if self.attn is not None:
            x = x + self.attn(self.norm_attn(x))
        return x + self.ffn(self.norm_ffn(x))
