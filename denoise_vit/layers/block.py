"""The pre-norm transformer block of the ViT paper (figure 1)."""
from torch import nn

from .attention import Attention
from .timm_parts import DropPath, Mlp


class Block(nn.Module):
    """x = x + attn(norm1(x)); x = x + mlp(norm2(x)) on tokens (B, N, D).

    The course's Q14 block drops both residual connections; this is the corrected form.
    `attn` may be replaced by any module mapping (B, N, D) -> (B, N, D) with the same
    parameters (the video models wrap it to regroup tokens). With `attention=False` the
    block has no attention branch (x = x + mlp(norm2(x)) only): tokens never mix, the ablation
    that asks what attention adds.
    """

    def __init__(self, dim, num_heads, *, mlp_ratio=4.0, qkv_bias=True, drop=0.0, attn_drop=0.0,
                 drop_path=0.0, act_layer=nn.GELU, norm_layer=nn.LayerNorm, fused_attn=True,
                 attention=True):
        super().__init__()
        self.norm1 = norm_layer(dim) if attention else None
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop,
                              proj_drop=drop, fused=fused_attn) if attention else None
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=drop)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x):
        if self.attn is not None:
            x = x + self.drop_path1(self.attn(self.norm1(x)))
        x = x + self.drop_path2(self.mlp(self.norm2(x)))
        return x
