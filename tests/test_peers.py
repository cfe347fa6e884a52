"""The field's own models behind the project's interface: each builds, learns, keeps shapes.

Each test is skipped, with the install line as the reason, where its library is absent.
"""
import pytest
import torch
import torch.nn.functional as F

from denoise_vit import ConfigError, build_model
from denoise_vit.models.peers import CAREAMICS_INSTALL, PEERS_EXTRA, missing_library

# tiny sizes: one step each in well under a second on a CPU
PEERS = {
    "care_unet": dict(depth=2, num_channels_init=8),
    "deepinv_drunet": dict(nc=[4, 8, 8, 8], nb=1),
    "deepinv_scunet": dict(dim=64, config=[1, 0, 0, 0, 0, 0, 1]),
    "deepinv_restormer": dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1),
    "deepinv_swinir": dict(embed_dim=12, depths=[1], num_heads=[2]),
}
LIBRARY = {"care_unet": "careamics"}


def needs(name):
    line = missing_library(name)
    return pytest.mark.skipif(line is not None, reason=line or "")


@pytest.mark.parametrize("name", [pytest.param(n, marks=needs(n)) for n in PEERS])
def test_peer_builds_steps_keeps_shapes_and_states_facts(name):
    torch.manual_seed(0)
    model = build_model(name, **PEERS[name])
    x, target = torch.rand(2, 1, 64, 64), torch.rand(2, 1, 64, 64)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    model.train()
    loss = F.mse_loss(model(x), target)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    changed = sum(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert changed > 0.9 * len(before)          # (nearly) every parameter learned something
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (2, 1, 64, 64)
        assert model(torch.rand(1, 1, 40, 52)).shape == (1, 1, 40, 52)   # padded, cropped back
    facts = model.facts
    assert facts.kind == "image" and facts.in_chans == 1 and facts.train_size == (64, 64)
    assert model.library_version.startswith(LIBRARY.get(name, "deepinv") + " ")


@pytest.mark.parametrize("name", [pytest.param(n, marks=needs(n)) for n in PEERS])
def test_peer_defaults_are_the_documented_sizes(name):
    expected = {"care_unet": 333_729, "deepinv_drunet": 1_063_344, "deepinv_scunet": 1_771_142,
                "deepinv_restormer": 1_142_139, "deepinv_swinir": 903_121}[name]
    assert sum(p.numel() for p in build_model(name).parameters()) == expected


def test_bad_peer_config_is_one_line():
    with pytest.raises(ConfigError, match="nc must be 4 positive channel counts"):
        build_model("deepinv_drunet", nc=[8, 8])
    with pytest.raises(ConfigError, match="SCUNet needs dim a multiple of 64"):
        build_model("deepinv_scunet", dim=32)


def test_missing_library_is_a_config_error_with_the_install_line(monkeypatch):
    from denoise_vit.models import peers
    monkeypatch.setattr(peers, "installed", lambda dist: False)
    with pytest.raises(ConfigError) as exc:
        build_model("deepinv_drunet")
    assert str(exc.value) == f"deepinv_drunet needs deepinv, which is not installed: {PEERS_EXTRA}"
    with pytest.raises(ConfigError) as exc:
        build_model("care_unet")
    assert str(exc.value) == f"care_unet needs careamics, which is not installed: {CAREAMICS_INSTALL}"


@pytest.mark.parametrize("name", [pytest.param(n, marks=needs(n))
                                  for n in ("care_unet", "deepinv_drunet")])
def test_peer_checkpoint_round_trips(name, tmp_path):
    from denoise_vit import load_model
    from denoise_vit.checkpoint import atomic_save, make_checkpoint
    model = build_model(name, **PEERS[name]).eval()
    atomic_save(make_checkpoint(model, step=0), tmp_path / "peer.pt")
    loaded = load_model(tmp_path / "peer.pt")
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert loaded.config == model.config
