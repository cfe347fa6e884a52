"""The image denoiser: shapes, configurations, gradients, fused vs plain attention, bad input."""
import pytest
import torch

from denoise_vit import ConfigError, build_model, list_models
from denoise_vit.layers import Attention
from denoise_vit.layers.attention import set_fused_attention
from denoise_vit.layers.pos_embed import sincos_2d
from denoise_vit.models.peers import missing_library


def test_course_preset():
    model = build_model("vit_denoiser")
    cfg = model.config
    assert (cfg.img_size, cfg.patch_size, cfg.in_chans, cfg.embed_dim, cfg.num_heads,
            cfg.mlp_ratio, cfg.depth) == ((64, 64), 8, 1, 32, 4, 4.0, 12)
    x = torch.rand(3, 1, 64, 64)
    assert model.forward_features(x).shape == (3, 64, 32)
    assert model(x).shape == x.shape


def test_every_listed_model_builds_with_its_defaults_and_states_its_facts():
    for name in list_models():
        if missing_library(name):   # a peer whose library is absent (tests/test_peers.py)
            continue
        model = build_model(name)
        assert model.model_name == name and model.facts.kind in ("image", "video")


CONFIGS = [
    dict(),
    dict(img_size=(48, 80), patch_size=16, embed_dim=48, num_heads=3, depth=2),
    dict(img_size=(40, 24), patch_size=4, depth=2, decoder="linear"),
    dict(img_size=36, patch_size=6, depth=1, decoder="linear", pos_embed="sincos"),
    dict(img_size=32, patch_size=2, depth=1, embed_dim=24, num_heads=2, in_chans=3),
    dict(img_size=16, patch_size=1, depth=1, embed_dim=8, num_heads=2),
    dict(img_size=32, patch_size=8, depth=2, pos_embed="sincos", residual=True),
    dict(img_size=(32, 48), depth=1, embed="conv_stem"),
    dict(img_size=(32, 48), depth=1, embed="conv_stem", stem_skips=True, image_skip=True,
         decoder_width=16),
    dict(img_size=32, patch_size=4, depth=1, embed_dim=16, num_heads=2, image_skip=True),
    dict(img_size=32, patch_size=2, depth=1, embed_dim=16, num_heads=2, embed="conv_stem",
         stem_skips=True, in_chans=2),
    dict(img_size=(32, 48), depth=1, embed="conv_stem", stem_skips=True, stem_full_res=8,
         decoder_width=16),
    dict(img_size=32, depth=1, embed="conv_stem", stem_skips=True, gate=True, in_chans=2),
]


@pytest.mark.parametrize("kwargs", CONFIGS)
def test_shapes_and_gradients(kwargs):
    model = build_model("vit_denoiser", **kwargs)
    h, w = model.config.img_size
    p = model.config.patch_size
    x = torch.rand(2, model.config.in_chans, h, w)
    tokens = model.forward_features(x)
    assert tokens.shape == (2, (h // p) * (w // p), model.config.embed_dim)
    out = model(x)
    assert out.shape == x.shape
    out.square().mean().backward()
    missing = [n for n, prm in model.named_parameters() if prm.grad is None or not prm.grad.abs().sum() > 0]
    assert not missing, f"parameters without gradient: {missing}"


def test_conv_decoder_halves_channels_per_stage():
    model = build_model("vit_denoiser", embed_dim=64, patch_size=16, img_size=32, depth=1)
    ups = [m for m in model.decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [m.in_channels for m in ups] == [64, 32, 16, 8]
    assert model.decoder.out.in_channels == 4


def test_conv_stem_halves_resolution_and_doubles_channels_per_stage():
    model = build_model("vit_denoiser", embed="conv_stem", embed_dim=64, patch_size=16,
                        img_size=32, depth=1, stem_skips=True, image_skip=True)
    x = torch.rand(2, 1, 32, 32)
    tokens, maps = model.encoder(x, stem_maps=True)
    assert [tuple(m.shape[1:]) for m in maps] == [(8, 16, 16), (16, 8, 8), (32, 4, 4), (64, 2, 2)]
    assert tokens.shape == (2, 4, 64)
    # each decoder stage takes the stem map of its output resolution, the last one the image
    assert model.decoder.skip_chans == [32, 16, 8, 1]


def test_skips_carry_the_input_past_the_tokens():
    # with the transformer's output zeroed, only the skip connections can pass the input on
    x1, x2 = torch.rand(2, 1, 1, 32, 32)
    for kwargs, skips in [(dict(), False), (dict(image_skip=True), True),
                          (dict(embed="conv_stem", stem_skips=True), True)]:
        model = build_model("vit_denoiser", img_size=32, depth=1, **kwargs).eval()
        model.encoder.norm.register_forward_hook(lambda m, a, out: torch.zeros_like(out))
        with torch.no_grad():
            differs = not torch.allclose(model(x1), model(x2))
        assert differs == skips, kwargs


@pytest.mark.parametrize("n_tokens", [1, 7, 64])
def test_fused_attention_equals_plain(n_tokens):
    attn = Attention(32, 4).eval()
    x = torch.randn(3, n_tokens, 32)
    fused = attn(x)
    attn.fused = False
    assert torch.allclose(fused, attn(x), atol=1e-5)


def test_fused_model_equals_plain_model():
    model = build_model("vit_denoiser", depth=3).eval()
    x = torch.rand(2, 1, 64, 64)
    fused = model(x)
    set_fused_attention(model, False)
    assert torch.allclose(fused, model(x), atol=1e-5)


def test_qk_norm_makes_attention_blind_to_the_scale_of_queries_and_keys():
    """With qk_norm the logits depend on the directions of q and k only: scaling the query and
    key projections by 10 changes nothing; without it the softmax sharpens."""
    x = torch.randn(2, 6, 16)
    for qk_norm in (True, False):
        torch.manual_seed(0)
        attn = Attention(16, 2, qk_norm=qk_norm, qkv_bias=False).eval()
        before = attn(x)
        with torch.no_grad():
            attn.qkv.weight[:32] *= 10   # the rows that make q and k
        assert torch.allclose(before, attn(x), atol=1e-4) == qk_norm


@pytest.mark.parametrize("name,extra", [("vit_denoiser", {"depth": 2}),
                                        ("vit_unet", {"levels": 2})])
def test_layer_scale_starts_blocks_near_the_identity(name, extra):
    """layer_scale=v multiplies every branch by a learned factor starting at v: at 1e-6 the
    blocks barely change their tokens (a plain block does);
    without it the keys are those of earlier checkpoints (no ls / q_norm parameters)."""
    plain = build_model(name, **extra)
    keys = set(plain.state_dict())
    assert not any(".ls1." in k or ".q_norm." in k for k in keys)
    scaled = build_model(name, layer_scale=1e-6, qk_norm=True, **extra)
    gammas = [p for n, p in scaled.named_parameters() if n.endswith(".gamma")]
    assert gammas and all(torch.all(g == 1e-6) for g in gammas)
    block, plain_block = ([m for m in model.modules() if type(m).__name__ == "Block"][0]
                          for model in (scaled, plain))
    tokens = torch.randn(2, 16, block.norm2.normalized_shape[0])
    with torch.no_grad():
        assert torch.allclose(block(tokens), tokens, atol=1e-4)
        assert not torch.allclose(plain_block(tokens), tokens, atol=1e-4)
    with pytest.raises(ConfigError, match="layer_scale"):
        build_model(name, layer_scale=-0.1, **extra)


def test_attention_mixes_all_tokens():
    """Full self-attention: each output token depends on every input token."""
    attn = Attention(16, 2).eval()
    x = torch.randn(1, 5, 16, requires_grad=True)
    attn(x)[0, 2].sum().backward()
    assert (x.grad[0].abs().sum(-1) > 0).all()


def test_seed_reproduces_weights_and_outputs():
    x = torch.rand(2, 1, 64, 64)
    torch.manual_seed(3)
    a = build_model("vit_denoiser", depth=2).eval()
    torch.manual_seed(3)
    b = build_model("vit_denoiser", depth=2).eval()
    torch.manual_seed(4)
    c = build_model("vit_denoiser", depth=2).eval()
    assert torch.equal(a(x), b(x))
    assert not torch.equal(a(x), c(x))


def test_other_input_sizes_via_position_interpolation():
    model = build_model("vit_denoiser", depth=2).eval()
    assert model(torch.rand(1, 1, 96, 128)).shape == (1, 1, 96, 128)
    sincos = build_model("vit_denoiser", depth=1, pos_embed="sincos")
    emb = sincos.encoder.pos_embed
    assert torch.equal(emb.embedding((12, 16)), sincos_2d((12, 16), 32))
    assert emb.embedding((8, 8)).shape == (1, 64, 32)


def test_learned_pos_embed_init_std_002():
    # timm's trunc_normal_ cuts at +-2 (absolute), as in timm's ViT: at std 0.02 a plain normal
    w = build_model("vit_denoiser").encoder.pos_embed.weight
    assert w.requires_grad and 0.018 < w.std().item() < 0.022 and abs(w.mean().item()) < 0.003


def test_residual_mode_subtracts_the_prediction():
    model = build_model("vit_denoiser", depth=1, residual=True).eval()
    torch.nn.init.zeros_(model.decoder.out.weight)
    torch.nn.init.zeros_(model.decoder.out.bias)
    x = torch.rand(2, 1, 64, 64)
    assert torch.equal(model(x), x)


@pytest.mark.parametrize("name, kwargs", [
    ("vit_denoiser", dict(depth=1, embed="conv_stem", stem_skips=True)),
    ("unet_denoiser", dict(base_channels=4, levels=2, in_chans=2)),
])
def test_gate_copies_the_input_where_open_and_paints_the_offset_where_shut(name, kwargs):
    model = build_model(name, gate=True, **kwargs).eval()
    out = model.decoder.out if name == "vit_denoiser" else model.out
    c = model.config.in_chans
    assert out.out_channels == 2 * c          # a gate and an offset per image channel
    torch.nn.init.zeros_(out.weight)
    x = torch.rand(2, c, 32, 32)
    with torch.no_grad():
        out.bias[:c], out.bias[c:] = 30.0, 0.0   # gate open, no offset: the input itself
        assert torch.allclose(model(x), x)
        out.bias[:c], out.bias[c:] = -30.0, 0.25  # gate shut: the offset alone
        assert torch.allclose(model(x), torch.full_like(x, 0.25))


@pytest.mark.parametrize("name, kwargs", [
    ("vit_denoiser", dict(depth=1, embed="conv_stem", stem_skips=True)),
    ("vit_denoiser", dict(depth=1, decoder="linear")),
    ("unet_denoiser", dict(base_channels=4, levels=2)),
    ("vit_unet", dict(base_channels=4, levels=2, depth=1, num_heads=2, img_size=32)),
])
def test_zero_init_out_starts_at_zero_on_every_seed_and_still_trains(name, kwargs):
    x = torch.rand(2, 1, 32, 32)
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = build_model(name, zero_init_out=True, **kwargs)
        assert torch.equal(model(x), torch.zeros_like(x))
    torch.manual_seed(0)
    assert build_model(name, **kwargs)(x).abs().max() > 0       # off by default
    residual = build_model(name, zero_init_out=True, residual=True, **kwargs)
    assert torch.equal(residual(x), x)                          # residual: starts as identity
    gated = (build_model(name, zero_init_out=True, gate=True, **kwargs)
             if "linear" not in kwargs.values() and name != "vit_unet" else None)   # no gate
    if gated is not None:                  # the gate is shut after the zeroing, not opened by it
        assert torch.allclose(gated(x), torch.sigmoid(torch.tensor(-3.0)) * x)
    # the zeroed layer still learns: one step moves the output off zero
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.nn.functional.mse_loss(model(x), x).backward()
    opt.step()
    assert model(x).abs().max() > 0


def test_the_gate_needs_the_conv_decoder():
    with pytest.raises(ConfigError, match="gate needs decoder='conv'"):
        build_model("vit_denoiser", gate=True, decoder="linear")


@pytest.mark.parametrize("name", ["vit_denoiser", "unet_denoiser"])
def test_gate_and_residual_exclude_each_other(name):
    with pytest.raises(ConfigError, match="gate and residual"):
        build_model(name, gate=True, residual=True)


@pytest.mark.parametrize("kwargs, message", [
    (dict(img_size=60), "not divisible by patch_size"),
    (dict(img_size=(64, 60)), "not divisible by patch_size"),
    (dict(patch_size=6, img_size=48), "power-of-two patch_size"),
    (dict(embed_dim=30), "divisible by num_heads"),
    (dict(pos_embed="rope"), "pos_embed must be one of"),
    (dict(decoder="unet"), "decoder must be one of"),
    (dict(pos_embed="sincos", embed_dim=30, num_heads=3), "divisible by 4"),
    (dict(depth=-1), "depth must be at least 0"),
    (dict(emb_dim=64), "unknown vit_denoiser key(s) 'emb_dim'"),
    (dict(embed="convs"), "embed must be one of"),
    (dict(embed="conv_stem", patch_size=6, img_size=48), "power-of-two patch_size >= 2"),
    (dict(stem_skips=True), "stem_skips needs embed='conv_stem'"),
    (dict(image_skip=True, decoder="linear"), "need decoder='conv'"),
    (dict(decoder_width=16, decoder="linear"), "need decoder='conv'"),
    (dict(image_skip=True, patch_size=1, img_size=8), "image_skip needs patch_size > 1"),
    (dict(embed="conv_stem", stem_full_res=8), "stem_full_res needs embed='conv_stem' and stem_skips"),
    (dict(embed="conv_stem", stem_skips=True, stem_full_res=-1), "stem_full_res must be channels"),
    (dict(embed="conv_stem", stem_skips=True, stem_full_res=8, image_skip=True), "choose one"),
])
def test_bad_config_is_one_clear_error(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_model("vit_denoiser", **kwargs)


def test_unknown_model_name():
    with pytest.raises(ConfigError, match="unknown model 'vit_denoizer'; available: .*vit_denoiser"):
        build_model("vit_denoizer")


@pytest.mark.parametrize("shape, message", [
    ((1, 1, 60, 64), "not divisible by patch_size 8"),
    ((1, 3, 64, 64), "built for 1 channel"),
    ((1, 64, 64), r"expects images \(B, C, H, W\)"),
])
def test_bad_input_shape(shape, message):
    model = build_model("vit_denoiser", depth=1)
    with pytest.raises(ConfigError, match=message):
        model(torch.rand(*shape))


# --- the one validator of model configs, and the facts every model gives inference ----------

@pytest.mark.parametrize("name, kwargs, message", [
    ("vit_denoiser", dict(depth=True), "depth must be an integer, not True"),
    ("vit_denoiser", dict(embed_dim=2.5), "embed_dim must be an integer"),
    ("vit_denoiser", dict(num_heads="4"), "num_heads must be an integer"),
    ("vit_denoiser", dict(mlp_ratio=-1), "mlp_ratio must be greater than 0"),
    ("vit_denoiser", dict(mlp_ratio=float("nan")), "mlp_ratio must be a finite number"),
    ("vit_denoiser", dict(drop_path_rate=1.5), r"drop_path_rate must be in \[0, 1\)"),
    ("vit_denoiser", dict(qkv_bias=1), "qkv_bias must be true or false"),
    ("vit_denoiser", dict(img_size="64"), "img_size must be an int or"),
    ("vit_denoiser", dict(decoder_width=-8), "decoder_width must be 0"),
    ("unet_denoiser", dict(levels=True), "levels must be an integer, not True"),
    ("unet_denoiser", dict(base_channels=0), "base_channels must be a positive integer"),
    ("dncnn_denoiser", dict(features=-1), "features must be a positive integer"),
    ("video_denoiser", dict(num_frames=True), "num_frames must be an integer"),
    ("video_denoiser", dict(attn_drop_rate=-0.1), "attn_drop_rate must be in"),
    ("framewise_vit", dict(depth=-1), "depth must be at least 0"),
])
def test_every_model_config_checks_types_and_ranges(name, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        build_model(name, **kwargs)


def test_integer_values_are_accepted_for_float_keys():
    assert build_model("vit_denoiser", depth=1, mlp_ratio=2).config.mlp_ratio == 2.0


@pytest.mark.parametrize("name, kwargs, facts", [
    ("vit_denoiser", dict(img_size=(48, 80), patch_size=4), ("image", 1, (4, 4), (48, 80))),
    ("unet_denoiser", dict(levels=2, img_size=32), ("image", 1, (4, 4), (32, 32))),
    ("dncnn_denoiser", dict(in_chans=3), ("image", 3, (1, 1), (64, 64))),
    ("framewise_vit", dict(img_size=32), ("image", 1, (8, 8), (32, 32))),
    ("video_denoiser", dict(num_frames=6, tubelet_size=2, img_size=32),
     ("video", 1, (2, 8, 8), (6, 32, 32))),
])
def test_every_model_states_what_inference_needs(name, kwargs, facts):
    model = build_model(name, depth=2, **kwargs) if name not in ("unet_denoiser",) else \
        build_model(name, **kwargs)
    f = model.facts
    assert (f.kind, f.in_chans, f.multiple, f.train_size) == facts
    # the plane model of an image kind takes (B, C, H, W) of the training size
    if f.kind == "image":
        h, w = f.train_size
        assert model.plane_model()(torch.rand(1, f.in_chans, h, w)).shape == (1, f.in_chans, h, w)


def test_a_model_without_facts_cannot_be_registered():
    from torch import nn
    from denoise_vit import register_model
    with pytest.raises(TypeError, match="must subclass models.base.DenoisingModel"):
        register_model("no_facts", dict)(type("NoFacts", (nn.Module,), {}))


def test_attention_ablation_keeps_tokens_apart():
    """attention=False (preset vit_fast_no_attention): MLP-only blocks, so a change in the
    corner patch reaches only the tokens the conv stem's receptive field covers (that patch and
    its neighbours); with attention it reaches every token."""
    from denoise_vit.training.config import load_config
    from denoise_vit.training.setup import model_args_for

    cfg = load_config("vit_fast_no_attention")
    plain = build_model(cfg.model["name"], **model_args_for(cfg)).eval()
    assert all(block.attn is None for block in plain.encoder.blocks)
    full = build_model("vit_denoiser", embed="conv_stem", stem_skips=True, embed_dim=64, depth=6,
                       decoder_width=32).eval()
    assert sum(p.numel() for p in full.parameters()) > sum(p.numel() for p in plain.parameters())
    x = torch.rand(1, 1, 64, 64)
    y = x.clone()
    y[..., :8, :8] += 0.5                        # one patch changes
    with torch.no_grad():
        for model, mixes in ((plain, False), (full, True)):
            a, b = model.forward_features(x), model.forward_features(y)
            changed = (a - b).abs().amax(dim=-1)[0] > 1e-6
            assert bool(changed.all()) if mixes else (changed[0] and changed.sum() <= 4)


def test_distance_bias_starts_local_and_learns():
    """distance_bias: each head's logits get -slope x token distance; the slopes start 2 .. 1/4,
    the fused and plain paths agree, the bias changes the output, a neighbour weighs e^-slope of
    the token itself when q.k is zero, the slopes get gradients, any grid works, and a block
    without the grid is refused. Without the option the parameter names are as before."""
    attn = Attention(16, num_heads=4, distance_bias=True)
    assert torch.allclose(attn.distance_slopes, torch.tensor([2.0, 1.0, 0.5, 0.25]))
    logits = attn.distance_logits((3, 4), "cpu", torch.float32).detach()
    assert logits.shape == (4, 12, 12)
    assert logits[0, 0, 1] == -2.0 and logits[3, 0, 5] == pytest.approx(-0.25 * 2 ** 0.5)
    assert torch.all(logits.diagonal(dim1=-2, dim2=-1) == 0)
    with torch.no_grad():
        attn.qkv.weight[:32].zero_()                 # q = k = 0: the weights are the bias's
        attn.qkv.bias[:32].zero_()
    q, k, v = attn.split_heads(torch.rand(2, 12, 16))
    attn.fused = False
    with torch.no_grad():                            # v = one-hot tokens: out = the weights
        out = attn.attend(q, k, torch.eye(12).expand(2, 4, 12, 12), logits)
    assert (out[0, 0, 0, 1] / out[0, 0, 0, 0]).item() == pytest.approx(torch.exp(torch.tensor(-2.0)).item())

    model = build_model("vit_denoiser", embed_dim=32, depth=2, num_heads=4, distance_bias=True)
    plain = build_model("vit_denoiser", embed_dim=32, depth=2, num_heads=4)
    assert set(model.state_dict()) - set(plain.state_dict()) == {
        f"encoder.blocks.{i}.attn.distance_slopes" for i in range(2)}
    model.eval()
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        fused = model.encoder(x)
        set_fused_attention(model, False)
        assert torch.allclose(fused, model.encoder(x), atol=1e-6)
        set_fused_attention(model, True)
        for block in model.encoder.blocks:
            block.attn.distance_slopes.zero_()
        assert (fused - model.encoder(x)).abs().max() > 1e-4
        for block in model.encoder.blocks:
            block.attn.distance_slopes.copy_(torch.tensor([2.0, 1.0, 0.5, 0.25]))
    model.train()
    model(torch.rand(2, 1, 48, 80)).square().mean().backward()
    assert all(b.attn.distance_slopes.grad.abs().sum() > 0 for b in model.encoder.blocks)
    with pytest.raises(ValueError, match="distance_bias and rel_pos_bias need the tokens' grid"):
        model.encoder.blocks[0](torch.rand(1, 64, 32))


def test_rel_pos_bias_is_one_learned_logit_per_head_and_offset():
    """rel_pos_bias (Swin's table): (2 gh - 1)(2 gw - 1) entries per head, zero at the start
    (the network is then plain attention's), the entry of offset (dy, dx) lands on every pair of
    tokens that far apart, offsets beyond the table take its edge, the fused and plain paths
    agree, the table learns and is kept out of weight decay; without the option the parameter
    names are as before."""
    from denoise_vit.training.setup import no_decay_names
    attn = Attention(16, num_heads=2, rel_pos_grid=(2, 3))
    assert attn.rel_pos_table.shape == (2, 3, 5) and not attn.rel_pos_table.any()
    with torch.no_grad():
        attn.rel_pos_table.copy_(torch.arange(30.0).reshape(2, 3, 5))
    logits = attn.rel_pos_logits((2, 3), "cpu", torch.float32).detach()
    assert logits.shape == (2, 6, 6)
    assert torch.all(logits[0].diagonal() == 7) and torch.all(logits[1].diagonal() == 22)
    assert logits[0, 0, 1] == 6 and logits[0, 1, 0] == 8               # dx = -1 / +1
    assert logits[1, 0, 5] == 15 + 0 * 5 + 0                           # dy = -1, dx = -2
    big = attn.rel_pos_logits((4, 3), "cpu", torch.float32).detach()  # dy up to 3: clipped to 1
    assert big[0, 0, 9] == big[0, 0, 3] == 2                           # (dy, dx) = (-3 | -1, 0)

    plain = build_model("vit_denoiser", embed_dim=32, depth=2, num_heads=4)
    model = build_model("vit_denoiser", embed_dim=32, depth=2, num_heads=4, rel_pos_bias=True)
    names = {f"encoder.blocks.{i}.attn.rel_pos_table" for i in range(2)}
    assert set(model.state_dict()) - set(plain.state_dict()) == names
    assert names <= set(no_decay_names(model))
    model.load_state_dict(plain.state_dict(), strict=False)
    model.eval()
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), plain.eval()(x), atol=1e-6)   # zero table: plain
        for block in model.encoder.blocks:
            block.attn.rel_pos_table.normal_()
        fused = model.encoder(x)
        assert (fused - plain.encoder(x)).abs().max() > 1e-4
        set_fused_attention(model, False)
        assert torch.allclose(fused, model.encoder(x), atol=1e-5)
        set_fused_attention(model, True)
    model.train()
    model(torch.rand(2, 1, 48, 96)).square().mean().backward()       # another grid works
    assert all(b.attn.rel_pos_table.grad.abs().sum() > 0 for b in model.encoder.blocks)


def test_depth_zero_sends_the_stems_tokens_straight_to_the_decoder():
    """depth = 0 (preset vit_fast_no_blocks): no blocks, so the tokens are the stem's (plus
    positions, then the final norm) and a change in one patch reaches only its neighbours; the
    network still denoises end to end and trains. A negative depth is refused."""
    from denoise_vit.errors import ConfigError

    args = dict(embed="conv_stem", stem_skips=True, embed_dim=64, decoder_width=32)
    bare = build_model("vit_denoiser", depth=0, **args)
    assert len(bare.encoder.blocks) == 0
    one = build_model("vit_denoiser", depth=1, **args)
    per_block = sum(p.numel() for p in one.encoder.blocks.parameters())
    assert (sum(p.numel() for p in one.parameters()) - sum(p.numel() for p in bare.parameters())
            == per_block > 0)
    x = torch.rand(2, 1, 64, 64)
    y = x.clone()
    y[0, :, :8, :8] += 0.5                       # one patch of the first image changes
    with torch.no_grad():                        # eval: the stem's batch norms use their stats
        bare.eval()
        changed = (bare.forward_features(x) - bare.forward_features(y)).abs().amax(-1) > 1e-6
        bare.train()
    assert changed[0, 0] and changed[0].sum() <= 4 and not changed[1].any()
    out = bare(x)
    assert out.shape == x.shape
    out.sum().backward()
    assert bare.encoder.patch_embed.stages[0][0].weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="depth must be at least 0"):
        build_model("vit_denoiser", depth=-1, **args)


def test_a_full_resolution_stem_stage_feeds_the_decoders_last_stage():
    """stem_full_res adds a stride-1 stage whose map joins the last up-stage; without it the
    stem and the decoder are what they were (earlier checkpoints keep their parameter names)."""
    base = dict(embed="conv_stem", stem_skips=True, embed_dim=64, num_heads=4, depth=1,
                decoder_width=32)
    plain = build_model("vit_denoiser", **base)
    full = build_model("vit_denoiser", **base, stem_full_res=16)
    assert plain.skip_chans() == [32, 16, 0] and full.skip_chans() == [32, 16, 16]
    assert full.encoder.patch_embed.stages[0][0].stride == (1, 1)
    assert len(full.encoder.patch_embed.stages) == len(plain.encoder.patch_embed.stages) + 1
    assert set(build_model("vit_denoiser", **base).state_dict()) == set(plain.state_dict())
    x = torch.rand(2, 1, 64, 64, requires_grad=True)
    full(x).sum().backward()
    assert full.encoder.patch_embed.stages[0][0].weight.grad.abs().sum() > 0


# --- vit_unet: the U-Net with a transformer bottleneck -------------------------------------

@pytest.mark.parametrize("size", [64, (40, 56), (37, 50)])
def test_vit_unet_keeps_any_shape_and_trains_every_weight(size):
    model = build_model("vit_unet", img_size=64)
    h, w = (size, size) if isinstance(size, int) else size
    x = torch.rand(2, 1, h, w)
    out = model(x)                 # padded to a multiple of 8 inside, the grid resampled
    assert out.shape == x.shape
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_vit_unet_is_the_unet_but_for_its_bottleneck():
    unet = build_model("unet_denoiser")
    hybrid = build_model("vit_unet")
    coarsest = f"down.{unet.levels}."
    keep = lambda m: {k: v.shape for k, v in m.state_dict().items() if not k.startswith(coarsest)}
    assert keep(unet) == keep(hybrid)
    bottleneck = hybrid.down[-1]
    assert len(bottleneck.blocks) == 2 and bottleneck.blocks[0].attn is not None
    assert bottleneck.norm.normalized_shape == (128,)


def test_vit_unet_attention_ablation_keeps_bottleneck_tokens_apart():
    """attention=False: a change at one corner of the bottleneck map reaches only the tokens
    of the embedding's 3 x 3 neighbourhood; with attention it reaches all 64."""
    x = torch.rand(1, 64, 8, 8)
    y = x.clone()
    y[..., 0, 0] += 1.0
    for attention, mixes in ((False, False), (True, True)):
        model = build_model("vit_unet", attention=attention).eval()
        with torch.no_grad():
            a, b = model.down[-1](x), model.down[-1](y)
        changed = (a - b).abs().amax(dim=1)[0] > 1e-6
        assert bool(changed.all()) if mixes else (changed.sum() == 4 and changed[:2, :2].all())


def test_axial_block_mixes_along_rows_and_columns_and_not_without_attention():
    """A change at one position reaches its row through the row pass, and the column pass
    carries that row to every position; without attention (the ablation) it stays put."""
    from denoise_vit.layers import AxialBlock
    torch.manual_seed(0)
    x = torch.rand(1, 8, 6, 7)
    y = x.clone()
    y[0, :, 2, 3] += torch.randn(8)   # not a constant: a LayerNorm would cancel that
    for attention in (False, True):
        block = AxialBlock(8, 2, attention=attention).eval()
        with torch.no_grad():
            changed = (block(x) - block(y)).abs().amax(dim=1)[0] > 1e-6
        if attention:
            assert bool(changed.all())
        else:
            assert changed.sum() == 1 and bool(changed[2, 3])


def test_vit_unet_axial_levels_start_as_identities_after_those_double_convs_and_all_train():
    plain = build_model("vit_unet")
    model = build_model("vit_unet", axial_levels=[0, 1], axial_depth=2)
    keep = {k: v.shape for k, v in plain.state_dict().items() if not k.startswith(("down.0.",
                                                                                  "down.1."))}
    assert keep.items() <= {k: v.shape for k, v in model.state_dict().items()}.items()
    assert len(model.down[0]) == 3 and model.down[1][1].row.num_heads == 2
    conv = build_model("vit_unet", bottleneck="conv", axial_levels=[0])
    assert {k: v.shape for k, v in build_model("unet_denoiser").state_dict().items()}.items() \
        <= {k.replace("down.0.0.", "down.0."): v.shape for k, v in conv.state_dict().items()}.items()
    x = torch.rand(2, 1, 40, 56)
    stage_in = torch.rand(2, 1, 40, 56)   # level 0 takes the image
    with torch.no_grad():   # zero-initialised branches: the blocks pass the map through
        assert torch.equal(model.down[0](stage_in), model.down[0][0](stage_in))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):   # the first step opens the branches; then every weight has a gradient
        optimizer.zero_grad()
        out = model(x)
        assert out.shape == x.shape
        out.square().mean().backward()
        optimizer.step()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    ablated = build_model("vit_unet", axial_levels=[0], attention=False)
    assert ablated.down[0][1].row is None


def test_transposed_attention_block_reaches_the_whole_map_and_only_3x3_without_attention():
    """Restormer's MDTA mixes every position through its channel-by-channel attention map; the
    ablation (GDFN only) reaches a position's 3 x 3 neighbourhood through its depthwise conv."""
    from denoise_vit.layers.transposed_attention import TransposedAttentionBlock
    torch.manual_seed(0)
    x = torch.rand(1, 8, 9, 10)
    y = x.clone()
    y[0, :, 4, 5] += torch.randn(8)
    for attention in (False, True):
        block = TransposedAttentionBlock(8, 2, attention=attention).eval()
        with torch.no_grad():
            changed = (block(x) - block(y)).abs().amax(dim=1)[0] > 1e-6
        if attention:
            assert bool(changed.all())
        else:
            assert changed.sum() == 9 and bool(changed[3:6, 4:7].all())


def test_vit_unet_mdta_levels_start_as_identities_and_train_at_the_coarsest_level_too():
    model = build_model("vit_unet", bottleneck="conv", mdta_levels=[0, 3], mdta_depth=2)
    assert len(model.down[0]) == 3 and model.down[0][1].attn.num_heads == 1
    assert model.down[3][1].attn.num_heads == 4       # 128 channels in heads of 32
    stage_in = torch.rand(2, 1, 40, 56)
    with torch.no_grad():   # zero-initialised branches: the blocks pass the map through
        assert torch.equal(model.down[0](stage_in), model.down[0][0](stage_in))
    x = torch.rand(2, 1, 40, 56)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):   # the first step opens the branches; then every weight has a gradient
        optimizer.zero_grad()
        out = model(x)
        assert out.shape == x.shape
        out.square().mean().backward()
        optimizer.step()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    ablated = build_model("vit_unet", bottleneck="conv", mdta_levels=[1], attention=False)
    assert ablated.down[1][1].attn is None
    assert not any(".attn." in k for k in ablated.state_dict())


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_heads=3), "bottleneck width base_channels \\* 2\\*\\*levels = 128 is not divisible"),
    (dict(img_size=60), "img_size 60x60 is not divisible by 2\\*\\*levels = 8"),
    (dict(depth=0), "depth must be a positive integer"),
    (dict(axial_levels=[3]), "axial_levels must be distinct levels in 0..2"),
    (dict(axial_levels=[0, 0]), "axial_levels must be distinct levels in 0..2"),
    (dict(axial_levels=[1], axial_heads=3), "the width at axial level 1, 32, is not divisible"),
    (dict(bottleneck="mlp"), "bottleneck must be 'transformer' or 'conv', got 'mlp'"),
    (dict(mdta_levels=[3]), "mdta_levels must be distinct levels in 0..2 \\(the coarsest, 3, only"),
    (dict(bottleneck="conv", mdta_levels=[4]), "mdta_levels must be distinct levels in 0..3"),
    (dict(mdta_head_dim=0), "mdta_head_dim must be a positive integer"),
])
def test_vit_unet_bad_config_is_one_clear_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        build_model("vit_unet", **kwargs)


def test_up_stage_with_a_skip_equals_the_convolution_of_the_concatenation():
    from denoise_vit.models.decoders import UpStage
    torch.manual_seed(0)
    stage = UpStage(8, 4, skip_ch=6)
    x, skip = torch.randn(2, 8, 5, 7, requires_grad=True), torch.randn(2, 6, 10, 14,
                                                                        requires_grad=True)
    split = stage(x, skip)
    whole = stage[1](torch.cat([stage[0](x), skip], dim=1))   # the textbook form
    assert split.shape == (2, 4, 10, 14)
    assert torch.allclose(split, whole, atol=1e-5)
    g_split = torch.autograd.grad(split.square().sum(), [x, skip, stage[1][0].weight])
    g_whole = torch.autograd.grad(whole.square().sum(), [x, skip, stage[1][0].weight])
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(g_split, g_whole))


@pytest.mark.parametrize("every, with_attention", [(1, [0, 1, 2, 3, 4, 5]), (2, [1, 3, 5]),
                                                   (3, [2, 5]), (7, [])])
def test_attention_every_kth_block_only(every, with_attention):
    """attention_every=k: blocks k, 2k, ... keep their attention, the others are MLP-only, and
    a model with attention in no block mixes no tokens (as attention=False)."""
    model = build_model("vit_denoiser", embed="conv_stem", stem_skips=True, embed_dim=32, depth=6,
                        decoder_width=16, attention_every=every).eval()
    assert [i for i, b in enumerate(model.encoder.blocks) if b.attn is not None] == with_attention
    x = torch.rand(1, 1, 64, 64)
    y = x.clone()
    y[..., :8, :8] += 0.5
    with torch.no_grad():
        changed = (model.forward_features(x) - model.forward_features(y)).abs().amax(-1)[0] > 1e-6
    assert bool(changed.all()) == bool(with_attention)


def test_attention_every_must_be_positive():
    with pytest.raises(ConfigError, match="attention_every"):
        build_model("vit_denoiser", attention_every=0)
