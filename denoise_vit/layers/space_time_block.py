"""The video transformer layer: the image model's Attention and Mlp, applied to token groups.

A layer is a list of token mixers, each a pre-norm residual attention within the token groups
of `layers.token_groups` ("joint", "space", "time"), or "split_heads" (ViViT Model 4: one
attention whose heads are split between "space" and "time"), followed by the MLP. The variants
differ only in that list:

    joint                      ("joint",)              ViViT Model 1
    factorised_encoder         ("space",) x Ls, then ("time",) x Lt     ViViT Model 2
    factorised_self_attention  ("space", "time")       ViViT Model 3
    factorised_dot_product     ("split_heads",)        ViViT Model 4
    divided_space_time         ("time", "space"), temporal_fc after "time"   TimeSformer

With one mixer this is exactly `layers.Block` run on each group of tokens. TimeSformer's
`temporal_fc` starts at zero (`SpaceTimeBlock.zero_temporal_fc`, as its code does for every
block), so a fresh divided block is the space-only block and learns how much time to mix in.
"""
import torch
from einops import rearrange
from .timm_parts import DropPath, Mlp
from torch import nn

from ..errors import ConfigError
from .attention import Attention
from .token_groups import GROUPINGS, group, ungroup, within

MIXINGS = (*GROUPINGS, "split_heads")


def split_head_attention(attn, x):
    """ViViT Model 4 with one `Attention`: tokens (B, nt, ns, D) -> (B, nt, ns, D).

    q, k, v come from one projection of all tokens; the first half of the heads attends within
    each frame, the second half across frames at each position; the heads are concatenated
    again and projected by the same `proj`. Token (t, s) thus sees (t, s') and (t', s) but never
    (t', s') with t' != t and s' != s.
    """
    b, nt, ns, _ = x.shape
    q, k, v = attn.split_heads(group(x, "joint"))              # each (B, h, nt*ns, d)
    half = attn.num_heads // 2
    outputs = []
    for over, heads in (("space", slice(None, half)), ("time", slice(half, None))):
        # heads fold into the batch, then the same grouping as a whole-token attention
        seqs = [group(rearrange(t[:, heads], "b h (t s) d -> (b h) t s d", t=nt), over)
                for t in (q, k, v)]
        out = ungroup(attn.attend(*seqs), over, nt=nt, ns=ns)
        outputs.append(rearrange(out, "(b h) t s d -> b h (t s) d", b=b))
    return ungroup(attn.merge_heads(torch.cat(outputs, dim=1)), "joint", nt=nt, ns=ns)


class TokenMixer(nn.Module):
    """Residual branch drop_path(fc(attn(norm(x)))) on tokens (B, nt, ns, D), attention within
    the groups named by `over`. `out_fc` adds TimeSformer's `temporal_fc` after the attention."""

    def __init__(self, dim, num_heads, over, *, out_fc=False, qkv_bias=True, drop=0.0,
                 attn_drop=0.0, drop_path=0.0, norm_layer=nn.LayerNorm, fused_attn=True):
        super().__init__()
        if over not in MIXINGS:
            raise ConfigError(f"token mixing must be one of {MIXINGS}, not {over!r}")
        if over == "split_heads" and num_heads % 2:
            raise ConfigError(f"factorised_dot_product splits the heads between space and time: "
                              f"num_heads must be even (got {num_heads})")
        self.over = over
        self.norm = norm_layer(dim)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop,
                              proj_drop=drop, fused=fused_attn)
        self.fc = nn.Linear(dim, dim) if out_fc else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def zero_fc(self):
        """Zero `out_fc` (weight and bias): the branch adds nothing until it has learnt to."""
        if isinstance(self.fc, nn.Linear):
            nn.init.zeros_(self.fc.weight)
            nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        y = self.norm(x)
        if self.over == "split_heads":
            y = split_head_attention(self.attn, y)
        else:
            y = within(self.attn, y, self.over)
        return self.drop_path(self.fc(y))


class SpaceTimeBlock(nn.Module):
    """x = x + mixer(x) for each mixer in `mixing`, then x = x + mlp(norm2(x)).

    Tokens (B, nt, ns, D) -> (B, nt, ns, D).
    """

    def __init__(self, dim, num_heads, mixing=("joint",), *, temporal_fc=False, mlp_ratio=4.0,
                 qkv_bias=True, drop=0.0, attn_drop=0.0, drop_path=0.0, act_layer=nn.GELU,
                 norm_layer=nn.LayerNorm, fused_attn=True):
        super().__init__()
        self.mixing = tuple(mixing)
        self.mixers = nn.ModuleList(
            TokenMixer(dim, num_heads, over, out_fc=temporal_fc and over == "time",
                       qkv_bias=qkv_bias, drop=drop, attn_drop=attn_drop, drop_path=drop_path,
                       norm_layer=norm_layer, fused_attn=fused_attn)
            for over in self.mixing)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=drop)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def zero_temporal_fc(self):
        """TimeSformer's init: every `temporal_fc` zero, so the block starts as the same block
        without its temporal mixer (an image ViT's block run on each frame)."""
        for mixer in self.mixers:
            mixer.zero_fc()

    def forward(self, x):
        for mixer in self.mixers:
            x = x + mixer(x)
        return x + self.drop_path2(self.mlp(self.norm2(x)))
