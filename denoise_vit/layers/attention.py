"""Multi-head self-attention with a fused and a plain path."""
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..errors import ConfigError


class Attention(nn.Module):
    """Multi-head self-attention over tokens (B, N, D).

    The work is split in three public steps so that video models can regroup tokens between
    them (e.g. half the heads within a frame, half across frames) without a second copy of the
    layer: `split_heads` (B, N, D) -> q, k, v each (B, h, N, d); `attend` on any leading batch
    shape; `merge_heads` (B, h, N, d) -> (B, N, D) followed by the output projection.

    `fused=True` uses `F.scaled_dot_product_attention` (flash / memory-efficient kernels where
    available); `fused=False` spells the same maths out, for reading and for checking the fused
    path against it.

    `qk_norm=True` normalises each head's queries and keys (LayerNorm over head_dim) before
    their dot products, as timm's `Attention(qk_norm=True)` (Dehghani et al. 2023, ViT-22B): the
    attention logits stay bounded at high learning rates instead of growing until the softmax
    saturates.

    `distance_bias=True` adds -slope_h x (distance between the two tokens on their 2-D grid, in
    tokens) to head h's logits: ALiBi (Press et al. 2022) on the image plane. The slopes are
    learned and start geometric from 2 to 1/4 (with 4 heads: 2, 1, 1/2, 1/4), so that the
    heads start from local (a neighbour weighs e^-2 of the token itself) to nearly global
    attention; the grid comes with each call (`forward(x, grid=(gh, gw))`), so any input size
    works.

    `rel_pos_grid=(gh, gw)` adds Swin's relative position bias (Liu et al. 2021): one learned
    logit per head and per offset (dy, dx) between two tokens, a table of (2 gh - 1)(2 gw - 1)
    entries per head, starting at zero (plain attention). Each head can so learn any static
    spatial pattern over the token grid (a row, a column, a neighbourhood), which its content
    (q k^T) then modulates. On a larger grid than (gh, gw), offsets beyond the table take its
    edge entries (clipped relative positions, Shaw et al. 2018).
    """

    def __init__(self, dim, num_heads=8, *, qkv_bias=True, attn_drop=0.0, proj_drop=0.0, fused=True,
                 qk_norm=False, distance_bias=False, rel_pos_grid=None):
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"embed_dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.fused = fused
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        # Identity has no parameters, so checkpoints without qk_norm keep their keys
        self.q_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        # None without distance_bias, so checkpoints without it keep their keys
        self.distance_slopes = nn.Parameter(
            torch.logspace(1, -2, num_heads, base=2.0)) if distance_bias else None
        # None without rel_pos_grid, likewise
        self.rel_pos_table = nn.Parameter(torch.zeros(
            num_heads, 2 * rel_pos_grid[0] - 1, 2 * rel_pos_grid[1] - 1)) if rel_pos_grid else None

    def split_heads(self, x):
        """(B, N, D) -> q, k, v, each (B, heads, N, head_dim)."""
        qkv = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.num_heads)
        q, k, v = qkv.unbind(0)
        return self.q_norm(q), self.k_norm(k), v

    def attend(self, q, k, v, bias=None):
        """softmax(q k^T / sqrt(d) + bias) v over the token axis (-2); leading axes are batch;
        `bias` (optional) broadcasts against the logits (..., N, N)."""
        drop = self.attn_drop if self.training else 0.0
        if self.fused:
            if q.ndim == 3:  # the ONNX exporter translates the fused op for 4-D inputs only
                return F.scaled_dot_product_attention(
                    q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), attn_mask=bias,
                    dropout_p=drop).squeeze(1)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=drop)
        weights = (q * self.scale) @ k.transpose(-2, -1)
        if bias is not None:
            weights = weights + bias
        weights = weights.softmax(dim=-1)
        if drop:
            weights = F.dropout(weights, p=drop)
        return weights @ v

    def merge_heads(self, x):
        """(B, heads, N, head_dim) -> projected (B, N, D)."""
        return self.proj_drop(self.proj(rearrange(x, "b h n d -> b n (h d)")))

    def distance_logits(self, grid, device, dtype):
        """(heads, N, N): -slope_h x the distance between tokens i and j of a (gh, gw) grid."""
        return -self.distance_slopes.to(dtype)[:, None, None] * grid_distances(grid, device, dtype)

    def rel_pos_logits(self, grid, device, dtype):
        """(heads, N, N): the table's entry for the offset between tokens i and j of a (gh, gw)
        grid, offsets clipped to the table."""
        th, tw = (self.rel_pos_table.shape[1] + 1) // 2, (self.rel_pos_table.shape[2] + 1) // 2
        dy, dx = grid_offsets(grid, device)
        dy = dy.clamp(-(th - 1), th - 1) + th - 1
        dx = dx.clamp(-(tw - 1), tw - 1) + tw - 1
        return self.rel_pos_table.to(dtype)[:, dy, dx]

    def position_logits(self, grid, n, device, dtype):
        """The logits' positional bias (heads, N, N), or None without one."""
        if self.distance_slopes is None and self.rel_pos_table is None:
            return None
        if grid is None or grid[0] * grid[1] != n:
            raise ValueError(f"distance_bias and rel_pos_bias need the tokens' grid (gh, gw) with "
                             f"gh * gw = {n}, got {grid}")
        bias = None
        if self.distance_slopes is not None:
            bias = self.distance_logits(grid, device, dtype)
        if self.rel_pos_table is not None:
            table = self.rel_pos_logits(grid, device, dtype)
            bias = table if bias is None else bias + table
        return bias

    def forward(self, x, grid=None):
        """(B, N, D) -> (B, N, D): every token attends to every token. `grid` (gh, gw), the
        tokens' layout, is needed with distance_bias or rel_pos_bias."""
        q, k, v = self.split_heads(x)
        bias = self.position_logits(grid, x.shape[1], x.device, q.dtype)
        return self.merge_heads(self.attend(q, k, v, bias))


def grid_distances(grid, device=None, dtype=torch.float32):
    """(N, N), N = gh * gw: the Euclidean distance between tokens i and j of a (gh, gw) grid
    (row-major, as the tokens are laid out), in tokens."""
    gy, gx = torch.meshgrid(torch.arange(grid[0], device=device, dtype=dtype),
                            torch.arange(grid[1], device=device, dtype=dtype), indexing="ij")
    pos = rearrange(torch.stack([gy, gx]), "two gh gw -> (gh gw) two")
    return (pos[:, None] - pos[None]).square().sum(-1).sqrt()


def grid_offsets(grid, device=None):
    """(dy, dx), each (N, N) integer, N = gh * gw: row and column of token i minus those of
    token j on a (gh, gw) grid (row-major)."""
    gy, gx = torch.meshgrid(torch.arange(grid[0], device=device),
                            torch.arange(grid[1], device=device), indexing="ij")
    gy, gx = gy.reshape(-1), gx.reshape(-1)
    return gy[:, None] - gy[None], gx[:, None] - gx[None]


def set_fused_attention(model: nn.Module, fused: bool) -> None:
    """Switch every Attention layer of `model` between the fused and the plain path."""
    for module in model.modules():
        if isinstance(module, Attention):
            module.fused = fused
