"""Building blocks written once and shared by every model."""
from .attention import Attention
from .block import Block
from .patch_embed import PatchEmbed
from .pos_embed import PosEmbed2d

__all__ = ["Attention", "Block", "PatchEmbed", "PosEmbed2d"]
