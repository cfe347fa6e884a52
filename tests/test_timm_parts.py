"""denoise_vit.layers.timm_parts: the timm pieces written out give timm's numbers, draws and
parameter names (so that models are built and checkpoints load without importing timm)."""
import subprocess
import sys

import pytest
import torch

from denoise_vit.layers import timm_parts

timm_layers = pytest.importorskip("timm.layers")


def test_trunc_normal_draws_what_timm_draws():
    a, b = torch.empty(300, 7), torch.empty(300, 7)
    torch.manual_seed(3)
    timm_layers.trunc_normal_(a, std=0.02)
    torch.manual_seed(3)
    timm_parts.trunc_normal_(b, std=0.02)
    assert torch.equal(a, b) and b.abs().max() <= 2


@pytest.mark.parametrize("grid,dim", [((8, 8), 32), ((12, 5), 64), ((1, 3), 4)])
def test_sincos_is_timms(grid, dim):
    from timm.layers.pos_embed_sincos import build_sincos2d_pos_embed
    assert torch.equal(timm_parts.build_sincos2d_pos_embed(list(grid), dim=dim),
                       build_sincos2d_pos_embed(list(grid), dim=dim))


def test_mlp_and_drop_path_match_timm():
    torch.manual_seed(0)
    ours = timm_parts.Mlp(16, 64, drop=0.1)
    theirs = timm_layers.Mlp(16, 64, drop=0.1)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(3, 5, 16)
    ours.eval(), theirs.eval()
    assert torch.equal(ours(x), theirs(x))
    for cls in (timm_parts.DropPath, timm_layers.DropPath):
        torch.manual_seed(1)
        layer = cls(0.5).train()
        out = layer(torch.ones(64, 4))
        assert set(out.unique().tolist()) <= {0.0, 2.0}
    torch.manual_seed(1)
    a = timm_parts.DropPath(0.3).train()(torch.ones(50, 2))
    torch.manual_seed(1)
    assert torch.equal(a, timm_layers.DropPath(0.3).train()(torch.ones(50, 2)))


@pytest.mark.parametrize("qk_norm,layer_scale", [(False, None), (True, None), (True, 0.1),
                                                  (False, 1e-4)])
def test_block_with_qk_norm_and_layer_scale_is_timms(qk_norm, layer_scale):
    """Block(qk_norm=, layer_scale=) has timm's parameter names and gives timm's numbers
    (timm's Block(qk_norm=, init_values=)), so its checkpoints read in either."""
    from denoise_vit.layers import Block
    from timm.models.vision_transformer import Block as TimmBlock

    torch.manual_seed(0)
    ours = Block(32, 4, qkv_bias=True, qk_norm=qk_norm, layer_scale=layer_scale).eval()
    theirs = TimmBlock(32, 4, qkv_bias=True, qk_norm=qk_norm, init_values=layer_scale).eval()
    assert set(ours.state_dict()) == set(theirs.state_dict())
    for p in ours.parameters():   # away from the initial values, which hide a wrong place
        p.data.normal_(std=0.3)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 9, 32)
    assert torch.allclose(ours(x), theirs(x), rtol=1e-4, atol=1e-5)


def test_denoise_path_does_not_import_timm_or_matplotlib():
    code = ("import sys; from denoise_vit.cli import build_parser; "
            "from denoise_vit.inference.denoise import run_denoise; "
            "from denoise_vit import build_model; build_model('vit_denoiser', depth=1); "
            "bad = [m for m in ('timm', 'torchvision', 'matplotlib', 'skimage', 'scipy') "
            "if m in sys.modules]; print(bad); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
