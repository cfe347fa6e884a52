"""Patch embedding: a Conv2d whose kernel and stride are the patch size."""
from einops import rearrange
from torch import nn


class PatchEmbed(nn.Module):
    """(B, C, H, W) -> tokens (B, N, D), N = (H/p)(W/p), patches in row-major order.

    H and W must be multiples of the patch size (the model checks this with a clear message).
    """

    def __init__(self, patch_size, in_chans, embed_dim):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return rearrange(self.proj(x), "b d gh gw -> b (gh gw) d")
