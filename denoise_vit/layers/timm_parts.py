"""The few timm pieces the models use, written out so that building or loading a model does not
import timm (which imports torchvision and torch._dynamo: about 1.5 s of `denoise-vit denoise`'s
start-up on a 2-core CPU).

Same maths, same random draws and same parameter names as timm 1.0's `Mlp`, `DropPath`,
`trunc_normal_` and `build_sincos2d_pos_embed`: checkpoints load either way, and
tests/test_timm_parts.py compares each with timm's own.
"""
import math

import torch
from torch import nn


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """timm's truncated normal init (bounds a, b absolute, not in std units), in place."""
    def norm_cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    with torch.no_grad():
        lo, hi = norm_cdf((a - mean) / std), norm_cdf((b - mean) / std)
        tensor.uniform_(2 * lo - 1, 2 * hi - 1)
        tensor.erfinv_()
        tensor.mul_(std * math.sqrt(2.0))
        tensor.add_(mean)
        tensor.clamp_(min=a, max=b)
        return tensor


def build_sincos2d_pos_embed(feat_shape, dim=64, temperature=10000.0):
    """(gh*gw, dim) fixed 2-D embedding: [sin(y f), sin(x f), cos(y f), cos(x f)] per token,
    as timm's `build_sincos2d_pos_embed` with its defaults."""
    if dim % 4:
        raise ValueError("embed dimension must be divisible by 4 for a 2-D sin-cos embedding")
    pos_dim = dim // 4
    exp = torch.arange(0, pos_dim, 1, dtype=torch.int64).to(torch.float32) / pos_dim
    bands = 1.0 / (temperature ** exp)
    grid = torch.stack(torch.meshgrid(
        [torch.arange(s, dtype=torch.int64).to(torch.float32) for s in feat_shape],
        indexing="ij")).flatten(1).transpose(0, 1)
    pos2 = grid.unsqueeze(-1) * bands.unsqueeze(0)
    return torch.stack([torch.sin(pos2), torch.cos(pos2)], dim=1).flatten(1).to(torch.float32)


class Mlp(nn.Module):
    """Linear -> activation -> dropout -> Linear -> dropout, on the last axis (timm's `Mlp`)."""

    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU,
                 drop=0.0, bias=True):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.norm = nn.Identity()
        self.fc2 = nn.Linear(hidden_features, out_features, bias=bias)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x):
        return self.drop2(self.fc2(self.norm(self.drop1(self.act(self.fc1(x))))))


class LayerScale(nn.Module):
    """x * gamma, one learned factor per channel starting at `init_values` (timm's `LayerScale`;
    CaiT, Touvron et al. 2021): a residual branch starts near zero, so a deep stack starts near
    the identity and each branch grows in as it becomes useful."""

    def __init__(self, dim, init_values=1e-5):
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


def drop_path(x, drop_prob=0.0, training=False, scale_by_keep=True):
    """Stochastic depth: zero whole samples of a residual branch with probability drop_prob."""
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    random_tensor = x.new_empty(shape).bernoulli_(keep_prob)
    if keep_prob > 0.0 and scale_by_keep:
        random_tensor.div_(keep_prob)
    return x * random_tensor


class DropPath(nn.Module):
    """Stochastic depth per sample, as a module (timm's `DropPath`)."""

    def __init__(self, drop_prob=0.0, scale_by_keep=True):
        super().__init__()
        self.drop_prob = drop_prob
        self.scale_by_keep = scale_by_keep

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training, self.scale_by_keep)

    def extra_repr(self):
        return f"drop_prob={round(self.drop_prob, 3):0.3f}"
