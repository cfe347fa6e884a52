"""Building blocks written once and shared by every model."""
from .attention import Attention
from .axial import AxialBlock
from .block import Block
from .conv_stem import ConvStem
from .patch_embed import PatchEmbed
from .pos_embed import PosEmbed2d, PosEmbedSpaceTime
from .space_time_block import SpaceTimeBlock
from .timm_parts import DropPath, Mlp
from .tubelet_embed import TubeletEmbed

__all__ = ["Attention", "AxialBlock", "Block", "ConvStem", "PatchEmbed", "PosEmbed2d", "PosEmbedSpaceTime",
           "SpaceTimeBlock", "TubeletEmbed", "Mlp", "DropPath"]
