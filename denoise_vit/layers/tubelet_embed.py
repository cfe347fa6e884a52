"""Tubelet embedding: a Conv3d whose kernel and stride are (frames, patch, patch)."""
from einops import rearrange
from torch import nn


class TubeletEmbed(nn.Module):
    """(B, C, T, H, W) -> tokens (B, nt, ns, D), nt = T/t, ns = (H/p)(W/p), patches row-major.

    ViViT's tubelet embedding; `tubelet_size=1` is its uniform frame sampling (every frame
    embedded on its own, like `PatchEmbed`). T, H and W must be multiples of the tubelet and
    patch sizes (the model checks this with a clear message).
    """

    def __init__(self, tubelet_size, patch_size, in_chans, embed_dim):
        super().__init__()
        self.tubelet_size = tubelet_size
        self.patch_size = patch_size
        size = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=size, stride=size)

    def forward(self, x):
        return rearrange(self.proj(x), "b d nt gh gw -> b nt (gh gw) d")
