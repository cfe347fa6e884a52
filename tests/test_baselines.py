"""Baselines: the CNN models, the classical filters and their grid search, benchmark records."""
import pytest
import torch

from denoise_vit import ConfigError, build_model

CNN_CASES = [
    ("unet_denoiser", dict()),
    ("unet_denoiser", dict(base_channels=4, levels=2, residual=True, in_chans=2)),
    ("dncnn_denoiser", dict(depth=4, features=8)),
    ("dncnn_denoiser", dict(depth=3, features=4, in_chans=3)),
]


@pytest.mark.parametrize("name,kwargs", CNN_CASES)
@pytest.mark.parametrize("size", [(37, 51), (8, 8), (64, 64)])
def test_cnn_shapes_and_gradients_at_odd_sizes(name, kwargs, size):
    model = build_model(name, **kwargs)
    x = torch.rand(2, model.config.in_chans, *size)
    out = model(x)
    assert out.shape == x.shape
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"parameters without gradient: {missing}"


def test_cnn_defaults_match_the_issue():
    unet, dncnn = build_model("unet_denoiser"), build_model("dncnn_denoiser")
    assert 0.4e6 < sum(p.numel() for p in unet.parameters()) < 0.6e6
    assert unet.config.base_channels == 16
    assert sum(isinstance(m, torch.nn.Conv2d) for m in dncnn.modules()) == 17


def test_unet_pads_and_crops_in_place():
    """An odd-size image gives the output it would have inside a larger image (away from the
    padded bottom/right border): padding and cropping do not shift the picture."""
    model = build_model("unet_denoiser", base_channels=4).eval()
    big = torch.rand(1, 1, 48, 56)
    small = big[..., :37, :45]
    with torch.no_grad():
        ref, out = model(big)[..., :16, :16], model(small)[..., :16, :16]
        # what a model padding at the top/left but cropping [:h, :w] would return
        misplaced = model(torch.nn.functional.pad(small, (3, 0, 3, 0)))[..., :16, :16]
    assert torch.allclose(out, ref, atol=1e-4)
    assert not torch.allclose(misplaced, ref, atol=1e-4)  # the check can tell a 3-pixel shift


def test_dncnn_is_residual():
    model = build_model("dncnn_denoiser", depth=3, features=4)
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    x = torch.rand(1, 1, 9, 9)
    assert torch.equal(model(x), x)


@pytest.mark.parametrize("name,kwargs", [("unet_denoiser", dict(base_channels=0)),
                                         ("dncnn_denoiser", dict(depth=1)),
                                         ("unet_denoiser", dict(width=3))])
def test_cnn_bad_config(name, kwargs):
    with pytest.raises(ConfigError):
        build_model(name, **kwargs)


def test_cnn_wrong_channels():
    with pytest.raises(ConfigError, match="channel"):
        build_model("unet_denoiser", base_channels=4)(torch.rand(1, 3, 16, 16))
