"""The field's own denoisers as registered models, so the benchmark trains them like ours.

    care_unet          CAREamics' U-Net (careamics.models.unet.UNet) as its CARE configuration
                       builds it: depth 2, 32 initial channels, batch norm (334 k weights)
    deepinv_drunet     deepinv's DRUNet, channels 16-32-64-128, 2 residual blocks (1.06 M)
    deepinv_scunet     deepinv's SCUNet at dim 64 (the smallest width whose heads fit), blocks
                       (1, 1, 0, 0, 0, 1, 1) per stage (1.77 M)
    deepinv_restormer  deepinv's Restormer at dim 16, blocks (1, 2, 2, 2), 1 refinement (1.14 M)
    deepinv_swinir     deepinv's SwinIR, the "lightweight" SwinIR widths: embed 60, 4 stages
                       of 6 layers, 6 heads, window 8 (0.90 M)

Every config key keeps the library's own name, so a preset can restore the library's defaults
(listed in each config's docstring). Weights are always initialised at random
(`pretrained=None`): nothing is downloaded. The libraries are imported when a model is built,
never when this package is imported; a missing one is a ConfigError saying how to install it.

Each adapter pads its input to the multiple the network needs and crops back, so every size
runs, and maps (B, C, H, W) -> (B, C, H, W).
"""
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import types
from dataclasses import dataclass
from typing import Tuple, Union

import torch.nn.functional as F

from ..errors import ConfigError
from ..registry import register_model
from .base import DenoisingModel, ModelFacts, check_config, image_size

PEERS_EXTRA = 'pip install "denoise-vit[peers]"'
# careamics 0.3.5 pins torch < 2.14; its U-Net is plain torch, so it is installed without its
# dependencies (README, "The field's models"): an extra cannot pass --no-deps.
CAREAMICS_INSTALL = 'pip install --no-deps "careamics==0.3.5"'
INSTALL = {"careamics": CAREAMICS_INSTALL, "deepinv": PEERS_EXTRA}


def library_version(dist):
    """ "deepinv 0.5.0", or None when the distribution is not installed."""
    try:
        return f"{dist} {importlib.metadata.version(dist)}"
    except importlib.metadata.PackageNotFoundError:
        return None


def installed(dist):
    return importlib.util.find_spec(dist) is not None


def missing_library(model_name):
    """The install line of a registered peer whose library is absent (None otherwise)."""
    from ..registry import _MODELS
    cls = _MODELS.get(model_name, (None,))[0]
    dist = getattr(cls, "library", None)
    if dist is None or installed(dist):
        return None
    return f"{model_name} needs {dist}, which is not installed: {INSTALL[dist]}"


def _require(model_name):
    line = missing_library(model_name)
    if line:
        raise ConfigError(line)


_CAREAMICS_UNET = None


def careamics_unet_class():
    """careamics.models.unet.UNet, from a full careamics install or from one without its
    training stack.

    `import careamics` first runs the package's __init__, which imports CAREamist and so
    lightning, pydantic and bioimageio. With careamics installed by `--no-deps` those are
    absent; the U-Net's own modules need only torch and careamics' enums of supported options.
    Then the three parent packages are stood in for by empty packages on careamics' own folders
    (so their __init__ files are skipped), the U-Net modules are imported from the installed
    files, and the stand-ins are removed from sys.modules again.
    """
    global _CAREAMICS_UNET
    if _CAREAMICS_UNET is not None:
        return _CAREAMICS_UNET
    try:
        from careamics.models.unet import UNet
    except ImportError:
        spec = importlib.util.find_spec("careamics")
        if spec is None or not spec.submodule_search_locations:
            raise
        for name in [n for n in sys.modules if n == "careamics" or n.startswith("careamics.")]:
            del sys.modules[name]   # what the failed import left half-done
        root = spec.submodule_search_locations[0]
        stand_ins = {"careamics": "", "careamics.config": "config", "careamics.models": "models"}
        for name, sub in stand_ins.items():
            package = types.ModuleType(name)
            package.__path__ = [os.path.join(root, sub)]
            sys.modules[name] = package
        try:
            UNet = importlib.import_module("careamics.models.unet").UNet
        finally:
            for name in stand_ins:
                sys.modules.pop(name, None)
    _CAREAMICS_UNET = UNet
    return UNet


class PeerModel(DenoisingModel):
    """An external network behind the project's model interface (pad, run, crop back)."""

    library = None    # the distribution that provides the network

    def __init__(self, config):
        super().__init__()
        self.config = config
        _require(self.model_name)

    @property
    def library_version(self):
        return library_version(self.library)

    @property
    def facts(self):
        m = self.multiple
        return ModelFacts("image", self.config.in_chans, (m, m), tuple(self.config.img_size))

    def run(self, x):
        return self.net(x)

    def forward(self, x):
        """(B, C, H, W) -> (B, C, H, W), any H, W (replicate-padded to the network's multiple)."""
        self.check_input(x)
        h, w = x.shape[-2:]
        m = self.multiple
        y = F.pad(x, (0, -w % m, 0, -h % m), mode="replicate") if (h % m or w % m) else x
        return self.run(y)[..., :h, :w]


def _sizes(cfg, *, positive=(), lists=()):
    cfg.img_size = image_size(cfg.img_size)
    check_config(cfg, positive=("in_chans",) + positive)
    for key in lists:
        value = getattr(cfg, key)
        if not isinstance(value, (list, tuple)) or not value or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
            raise ConfigError(f"{key} must be a list of non-negative integers, not {value!r}")
        setattr(cfg, key, tuple(value))


# ---------------------------------------------------------------- CAREamics

@dataclass
class CareUNetConfig:
    """CAREamics' UNetConfig defaults, which its CARE configuration uses (depth 2, 32 channels,
    batch norm, no residual, no final activation)."""
    img_size: Union[int, Tuple[int, int]] = 64   # accepted for the training driver; any size works
    in_chans: int = 1
    depth: int = 2
    num_channels_init: int = 32
    use_batch_norm: bool = True
    residual: bool = False

    def __post_init__(self):
        _sizes(self, positive=("depth", "num_channels_init"))


@register_model("care_unet", CareUNetConfig)
class CareUNet(PeerModel):
    """careamics.models.unet.UNet(conv_dims=2, ...), (B, C, H, W) -> (B, C, H, W)."""

    library = "careamics"

    def __init__(self, config: CareUNetConfig):
        super().__init__(config)
        self.multiple = 2 ** config.depth
        self.net = careamics_unet_class()(
            conv_dims=2, num_classes=config.in_chans, in_channels=config.in_chans,
            depth=config.depth, num_channels_init=config.num_channels_init,
            use_batch_norm=config.use_batch_norm, residual=config.residual)


# ---------------------------------------------------------------- deepinv

def _deepinv_models():
    return importlib.import_module("deepinv.models")


@dataclass
class DRUNetConfig:
    """deepinv.models.DRUNet; library default nc=(64, 128, 256, 512), nb=4 (32.6 M).

    DRUNet takes a noise-level map as an extra input channel; the clutter here has no single
    level, so a constant `sigma` is fed (with a bias-free head, the map acts as a learned bias).
    """
    img_size: Union[int, Tuple[int, int]] = 64
    in_chans: int = 1
    nc: tuple = (16, 32, 64, 128)
    nb: int = 2
    sigma: float = 0.1

    def __post_init__(self):
        _sizes(self, positive=("nb",), lists=("nc",))
        if len(self.nc) != 4 or 0 in self.nc:
            raise ConfigError(f"nc must be 4 positive channel counts, not {list(self.nc)}")


@register_model("deepinv_drunet", DRUNetConfig)
class DeepinvDRUNet(PeerModel):
    library = "deepinv"

    def __init__(self, config: DRUNetConfig):
        super().__init__(config)
        self.multiple = 8   # three stride-2 convolutions
        self.net = _deepinv_models().DRUNet(
            in_channels=config.in_chans, out_channels=config.in_chans, nc=config.nc,
            nb=config.nb, pretrained=None)

    def run(self, x):
        return self.net(x, self.config.sigma)


@dataclass
class SCUNetConfig:
    """deepinv.models.SCUNet; library default dim 64, config (4,) * 7 (17.9 M). dim is at
    least 64: its transformer half (dim / 2) must hold one 32-channel head."""
    img_size: Union[int, Tuple[int, int]] = 64
    in_chans: int = 1
    dim: int = 64
    config: tuple = (1, 1, 0, 0, 0, 1, 1)

    def __post_init__(self):
        _sizes(self, positive=("dim",), lists=("config",))
        if self.dim % 64 or len(self.config) != 7:
            raise ConfigError(f"SCUNet needs dim a multiple of 64 and config of 7 block counts, "
                              f"not dim={self.dim}, config={list(self.config)}")


@register_model("deepinv_scunet", SCUNetConfig)
class DeepinvSCUNet(PeerModel):
    library = "deepinv"

    def __init__(self, config: SCUNetConfig):
        super().__init__(config)
        self.multiple = 64   # SCUNet pads to 64 itself; said here for tiling
        self.net = _deepinv_models().SCUNet(in_nc=config.in_chans, config=config.config,
                                            dim=config.dim, pretrained=None)


@dataclass
class RestormerConfig:
    """deepinv.models.Restormer; library default dim 48, num_blocks (4, 6, 6, 8),
    4 refinement blocks (26.1 M)."""
    img_size: Union[int, Tuple[int, int]] = 64
    in_chans: int = 1
    dim: int = 16
    num_blocks: tuple = (1, 2, 2, 2)
    num_refinement_blocks: int = 1
    heads: tuple = (1, 2, 4, 8)
    ffn_expansion_factor: float = 2.66

    def __post_init__(self):
        _sizes(self, positive=("dim", "num_refinement_blocks"), lists=("num_blocks", "heads"))
        check_config(self, positive_numbers=("ffn_expansion_factor",))
        if len(self.num_blocks) != 4 or len(self.heads) != 4:
            raise ConfigError("num_blocks and heads must have 4 entries each (one per level)")


@register_model("deepinv_restormer", RestormerConfig)
class DeepinvRestormer(PeerModel):
    library = "deepinv"

    def __init__(self, config: RestormerConfig):
        super().__init__(config)
        self.multiple = 8   # three 2x pixel-unshuffles
        self.net = _deepinv_models().Restormer(
            in_channels=config.in_chans, out_channels=config.in_chans, dim=config.dim,
            num_blocks=config.num_blocks, num_refinement_blocks=config.num_refinement_blocks,
            heads=config.heads, ffn_expansion_factor=config.ffn_expansion_factor,
            pretrained=None)


@dataclass
class SwinIRConfig:
    """deepinv.models.SwinIR; library default embed 180, depths (6,) * 6, heads (6,) * 6 (11.5 M).
    The default here is SwinIR's lightweight width (embed 60, (6,) * 4)."""
    img_size: Union[int, Tuple[int, int]] = 64
    in_chans: int = 1
    embed_dim: int = 60
    depths: tuple = (6, 6, 6, 6)
    num_heads: tuple = (6, 6, 6, 6)
    window_size: int = 8
    mlp_ratio: float = 2.0

    def __post_init__(self):
        _sizes(self, positive=("embed_dim", "window_size"), lists=("depths", "num_heads"))
        check_config(self, positive_numbers=("mlp_ratio",))
        if len(self.depths) != len(self.num_heads) or any(
                h == 0 or self.embed_dim % h for h in self.num_heads):
            raise ConfigError("SwinIR needs one head count per stage, each dividing embed_dim")


@register_model("deepinv_swinir", SwinIRConfig)
class DeepinvSwinIR(PeerModel):
    library = "deepinv"

    def __init__(self, config: SwinIRConfig):
        super().__init__(config)
        self.multiple = config.window_size   # SwinIR pads to its window itself
        self.net = _deepinv_models().SwinIR(
            img_size=config.img_size[0], in_chans=config.in_chans, embed_dim=config.embed_dim,
            depths=config.depths, num_heads=config.num_heads, window_size=config.window_size,
            mlp_ratio=config.mlp_ratio, upscale=1, pretrained=None)
