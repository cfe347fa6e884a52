"""The pre-norm transformer block of the ViT paper (figure 1)."""
from torch import nn

from .attention import Attention
from .timm_parts import DropPath, LayerScale, Mlp


class Block(nn.Module):
    """x = x + attn(norm1(x)); x = x + mlp(norm2(x)) on tokens (B, N, D).

    The course's Q14 block drops both residual connections; this is the corrected form.
    `attn` may be replaced by any module mapping (B, N, D) -> (B, N, D) with the same
    parameters (the video models wrap it to regroup tokens). With `attention=False` the
    block has no attention branch (x = x + mlp(norm2(x)) only): tokens never mix, the ablation
    that asks what attention adds.

    `layer_scale` (a small number such as 1e-4; 0 or None: off) multiplies each branch by a
    learned per-channel factor starting there (`LayerScale`, as timm's `Block(init_values=)`);
    `qk_norm` normalises queries and keys and `distance_bias` adds a learned distance penalty
    to the logits, `rel_pos_grid` a learned relative position bias (see `Attention`; with
    either, `forward(x, grid)` takes the tokens' 2-D grid).
    """

    def __init__(self, dim, num_heads, *, mlp_ratio=4.0, qkv_bias=True, drop=0.0, attn_drop=0.0,
                 drop_path=0.0, act_layer=nn.GELU, norm_layer=nn.LayerNorm, fused_attn=True,
                 attention=True, qk_norm=False, layer_scale=None, distance_bias=False,
                 rel_pos_grid=None):
        super().__init__()
        self.norm1 = norm_layer(dim) if attention else None
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop,
                              proj_drop=drop, fused=fused_attn,
                              qk_norm=qk_norm, distance_bias=distance_bias,
                              rel_pos_grid=rel_pos_grid) if attention else None
        self.ls1 = LayerScale(dim, layer_scale) if layer_scale and attention else nn.Identity()
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=drop)
        self.ls2 = LayerScale(dim, layer_scale) if layer_scale else nn.Identity()
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x, grid=None):
        if self.attn is not None:
            y = self.norm1(x)
            y = self.attn(y, grid) if grid is not None else self.attn(y)
            x = x + self.drop_path1(self.ls1(y))
        x = x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))
        return x
