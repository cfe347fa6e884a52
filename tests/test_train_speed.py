"""Training speed levers that change code paths: fused Adam, and the CUDA-side options
(bf16 autocast, compile, channels_last-free fused attention) staying usable on the CPU."""
import torch

from denoise_vit.registry import build_model
from denoise_vit.training.config import load_config
from denoise_vit.training.setup import fused_kind, make_optimizer


def tiny_cfg(*extra):
    return load_config(None, ["model.depth=1", "model.embed_dim=16", "model.num_heads=2",
                              "data.size=16", *extra], {})


def test_cpu_float_model_gets_fused_adam():
    model = build_model("vit_denoiser", img_size=16, depth=1, embed_dim=16, num_heads=2)
    assert fused_kind(model) == {"fused": True}
    for extra in ((), ("weight_decay=0.05", "optimizer=adamw")):
        opt = make_optimizer(tiny_cfg(*extra), model)
        assert all(group["fused"] for group in opt.param_groups)
    assert fused_kind(model.double()) == {}


def test_unfused_optimizer_state_of_earlier_versions_loads_and_steps():
    model = build_model("vit_denoiser", img_size=16, depth=1, embed_dim=16, num_heads=2)
    old = torch.optim.Adam(model.parameters(), lr=1e-3)           # as earlier versions made it
    model(torch.rand(2, 1, 16, 16)).square().mean().backward()
    old.step()
    new = make_optimizer(tiny_cfg(), model)
    new.load_state_dict(old.state_dict())
    before = [p.detach().clone() for p in model.parameters()]
    new.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))


def test_fused_and_loop_adam_agree():
    torch.manual_seed(0)
    a = build_model("vit_denoiser", img_size=16, depth=1, embed_dim=16, num_heads=2)
    b = build_model("vit_denoiser", img_size=16, depth=1, embed_dim=16, num_heads=2)
    b.load_state_dict(a.state_dict())
    opts = [torch.optim.Adam(a.parameters(), lr=1e-2, foreach=False),
            make_optimizer(tiny_cfg("lr=1e-2"), b)]
    x = torch.rand(4, 1, 16, 16)
    for _ in range(1):   # one step: later ones amplify rounding where a gradient is ~0
        for model, opt in zip((a, b), opts):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)


def test_cpu_bf16_autocast_and_plain_attention_paths_run():
    from denoise_vit.layers.attention import set_fused_attention
    from denoise_vit.training.engine import autocast
    model = build_model("vit_denoiser", img_size=16, depth=1, embed_dim=16, num_heads=2)
    x = torch.rand(2, 1, 16, 16)
    with autocast(torch.device("cpu"), True):
        fused = model(x)
    set_fused_attention(model, False)
    with autocast(torch.device("cpu"), True):
        plain = model(x)
    assert fused.shape == plain.shape == x.shape and torch.isfinite(fused).all()
    torch.testing.assert_close(fused.float(), plain.float(), rtol=0.05, atol=0.05)


def test_channels_last_key_gives_the_same_model_and_outputs():
    from denoise_vit.training.setup import build_run_model
    plain = build_run_model(tiny_cfg("model.embed=\"conv_stem\"", "model.stem_skips=true"))
    nhwc = build_run_model(tiny_cfg("model.embed=\"conv_stem\"", "model.stem_skips=true",
                                    "channels_last=true"))
    conv = nhwc.encoder.patch_embed.stages[0][0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(plain.state_dict().values(), nhwc.state_dict().values()):
        assert torch.equal(a, b)
    x = torch.rand(3, 1, 16, 16)
    torch.testing.assert_close(plain(x), nhwc(x), rtol=1e-4, atol=1e-5)
    nhwc(x).square().mean().backward()   # trains
    fresh = build_run_model(tiny_cfg("model.embed=\"conv_stem\"", "model.stem_skips=true"))
    fresh.load_state_dict(nhwc.state_dict())   # its checkpoints load into a plain model
