# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The course, executed: a ViT for denoising, question by question
#
# The course problem *"un ViT pour du denoising"* builds a Vision Transformer denoiser in twenty
# questions (Q1-Q20), trains it for 30 epochs on a GPU and looks at its outputs. This notebook
# answers every question with **this package's own objects**: the layers of `denoise_vit.layers`,
# the model of `build_model("vit_denoiser")` (the course preset), the generator of `data_gen`
# and the training engine behind `denoise-vit train`. It does not copy the course's classes: the
# package holds them, generalised, and the notebook shows where.
#
# Every answer that states a fact is checked by an `assert`, so this notebook fails when the
# package changes an answer (the test suite runs it: `python -m pytest`).
#
# **Running it.** Open `course_vit_denoiser.ipynb` (this `.py` is its reviewable source;
# `python experiments/notebooks/build.py` regenerates and executes both). Training length is
# chosen automatically: the course's 30 epochs when a GPU is present, a few minutes' worth on a
# CPU, and a few seconds under the test suite (`DENOISE_VIT_NOTEBOOK_QUICK=1`).

# %%
import os
import time
from pathlib import Path

import torch
from IPython.display import Image, display


def repo_root(start):
    """The checkout this notebook lives in (figures go to its docs/), else `start`."""
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "denoise_vit").is_dir():
            return folder
    return start


ROOT = repo_root(Path.cwd().resolve())
QUICK = os.environ.get("DENOISE_VIT_NOTEBOOK_QUICK", "0") not in ("", "0")
GPU = torch.cuda.is_available()
# figures: docs/course/ of the checkout, or DENOISE_VIT_NOTEBOOK_OUT (the tests use a temp folder)
OUT = Path(os.environ.get("DENOISE_VIT_NOTEBOOK_OUT") or ROOT / "docs" / "course")
RUNS = OUT / "runs" if os.environ.get("DENOISE_VIT_NOTEBOOK_OUT") else ROOT / "runs" / "notebooks"
OUT.mkdir(parents=True, exist_ok=True)
MODE = "quick (test suite)" if QUICK else ("GPU: the course's 30 epochs" if GPU else "CPU")
torch.manual_seed(0)
print(f"mode: {MODE}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
      f"figures in {OUT}")

# %% [markdown]
# The course's hyper-parameters are the defaults of `build_model("vit_denoiser")`:

# %%
from denoise_vit import build_model

model = build_model("vit_denoiser")          # the course preset, nothing else given
cfg = model.config
print(cfg)
assert cfg.img_size == (64, 64) and cfg.in_chans == 1
assert (cfg.patch_size, cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, cfg.depth) == (8, 32, 4, 4.0, 12)
assert cfg.decoder == "conv" and cfg.pos_embed == "learned"

# %% [markdown]
# ## A. Embedding
#
# The course's `gen(n)` comes from a helper file that is not part of the course; `data_gen`
# reproduces its distribution (cells, i.e. discs, under filled and noisy rectangles; SPEC §1).
#
# **Q1. The input's shape; what is its first axis?**

# %%
from data_gen import generate_images

inputs, targets = generate_images(6, size=64, generator=torch.Generator().manual_seed(0))
print("input:", tuple(inputs.shape), inputs.dtype, "  target:", tuple(targets.shape))
assert inputs.shape == targets.shape == (6, 1, 64, 64)
assert inputs.dtype == torch.float32
# the clutter is added to the cells, never subtracted: input >= target everywhere
assert (inputs >= targets - 1e-6).all()
# the first axis indexes independent images: no two of the six are the same
assert all(not torch.equal(inputs[i], inputs[j]) for i in range(6) for j in range(i + 1, 6))

# %% [markdown]
# The shape is (6, 1, 64, 64): **the first axis (6) is the batch**, six independent images; then
# one channel (grey levels) and 64 x 64 pixels. The targets are the cells alone; the inputs add
# the rectangles to them (so input >= target everywhere, checked above). The course's first figure:

# %%
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def show_rows(path, rows, title=None):
    """Rows of grey images (one colour scale, [0, 1]) saved to `path`, then displayed."""
    fig, axes = plt.subplots(len(rows), 6, figsize=(11, 1.9 * len(rows)), squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        for c, ax in enumerate(axes[r]):
            ax.imshow(images[c, 0].detach(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    display(Image(filename=str(path)))


show_rows(OUT / "course_data.png", {"input": inputs, "target": targets},
          title="data_gen.generate_images(6): inputs (cells + rectangles) and targets (cells)")

# %% [markdown]
# **Q2. The patch embedding, instantiated with the course's hyper-parameters and applied to the
# input.** The course's `PatchEmbedding` is `denoise_vit.layers.PatchEmbed`; the model holds
# one, built from the values above:

# %%
from denoise_vit.layers import PatchEmbed

patch_embed = model.encoder.patch_embed
print(patch_embed)
assert isinstance(patch_embed, PatchEmbed)
x = patch_embed(inputs)

# %% [markdown]
# **Q3. The shape of `x`; why is its second component 64?**

# %%
grid = (64 // cfg.patch_size, 64 // cfg.patch_size)
print("x:", tuple(x.shape), "  patch grid:", grid)
assert x.shape == (6, 64, 32)
assert grid == (8, 8) and grid[0] * grid[1] == x.shape[1] == 64
# token k is the patch at row k // 8, column k % 8 (row-major), embedded on its own
for k in (0, 7, 8, 63):
    r, c = divmod(k, 8)
    patch = inputs[:, :, 8 * r:8 * r + 8, 8 * c:8 * c + 8]
    assert torch.allclose(x[:, k], patch_embed.proj(patch).flatten(1), atol=1e-6)

# %% [markdown]
# `x` is (6, 64, 32): for each of the 6 images, **64 tokens** of 32 numbers (`embed_dim`, the
# course's `d_model`). There are 64 because a 64 x 64 image cut into 8 x 8 patches gives an
# 8 x 8 grid of patches, 8 x 8 = 64; token k is the patch at row k // 8, column k % 8 (checked
# above patch by patch).
#
# **Q4. Does the embedding have trainable parameters? What kind of layer is it? What does
# `stride` do?**

# %%
proj = patch_embed.proj
n_embed = sum(p.numel() for p in patch_embed.parameters() if p.requires_grad)
print(proj, "  weight", tuple(proj.weight.shape), "  bias", tuple(proj.bias.shape),
      "  trainable:", n_embed)
assert isinstance(proj, torch.nn.Conv2d)
assert proj.kernel_size == proj.stride == (8, 8)
assert n_embed == 32 * 1 * 8 * 8 + 32 == 2080
# a stride smaller than the kernel would cut overlapping patches: 15 x 15 = 225 of them
overlapping = torch.nn.Conv2d(1, 32, kernel_size=8, stride=4)(inputs)
print("kernel 8, stride 4:", tuple(overlapping.shape))
assert overlapping.shape[-2:] == (15, 15)

# %% [markdown]
# Yes: **2,080 trainable parameters** (32 filters of 1 x 8 x 8 weights, plus 32 biases). The layer
# is a **convolution** (`nn.Conv2d`) whose kernel is the patch. The **stride** is how far the
# kernel moves between two outputs: with stride = kernel = 8 the patches tile the image without
# overlap, each pixel in exactly one patch, so the convolution *is* "cut into patches, then apply
# the same linear map to each". With stride 4 the patches would overlap (15 x 15 of them).
#
# **Q5. After adding the position embedding, how many trainable parameters?**

# %%
pos_embed = model.encoder.pos_embed                # denoise_vit.layers.PosEmbed2d, learned
n_pos = sum(p.numel() for p in pos_embed.parameters() if p.requires_grad)
x = pos_embed(x, grid)
print("position embedding:", tuple(pos_embed.weight.shape), n_pos, "parameters; x:", tuple(x.shape))
assert pos_embed.weight.shape == (1, 64, 32) and n_pos == 64 * 32 == 2048
assert n_embed + n_pos == 4128
# trunc-normal std 0.02, as the course initialises it
assert 0.015 < pos_embed.weight.std().item() < 0.025

# %% [markdown]
# One learned vector of 32 numbers per patch position: 64 x 32 = 2,048 more, so **4,128
# trainable parameters** so far (2,080 + 2,048). (`pos_embed="sincos"` gives a fixed embedding
# with none.)
#
# ## B. The attention layer
#
# **Q6. Attention applied to `x`: does it keep the input's shape?** The course's `Attention` is
# `denoise_vit.layers.Attention`; here is the first block's:

# %%
from denoise_vit.layers import Attention

attn = model.encoder.blocks[0].attn
assert isinstance(attn, Attention) and attn.num_heads == 4 and attn.head_dim == 8
y = attn(x)
q, k, v = attn.split_heads(x)
scores = (q * attn.scale) @ k.transpose(-2, -1)
weights = scores.softmax(dim=-1)
print("x", tuple(x.shape), "-> attention ->", tuple(y.shape))
print("q, k, v:", tuple(q.shape), "  q @ k^T:", tuple(scores.shape))
assert y.shape == x.shape == (6, 64, 32)
assert q.shape == k.shape == v.shape == (6, 4, 64, 8)       # (batch, heads, tokens, head_dim)
assert weights.shape == (6, 4, 64, 64)                       # one 64 x 64 matrix per head
assert torch.allclose(weights.sum(-1), torch.ones(6, 4, 64))   # each token's weights sum to 1
# the plain path above is what the fused kernel (F.scaled_dot_product_attention) computes
assert torch.allclose(attn.merge_heads(weights @ v), y, atol=1e-6)

# %% [markdown]
# Yes: (6, 64, 32) in, (6, 64, 32) out. Inside, each of the 4 heads has its queries, keys and
# values (6, 4, 64, 8) and a 64 x 64 matrix of weights (token i's attention to token j, each row
# summing to 1).
#
# **Q7. What does `@` do on tensors of order more than two (PEP 465)?**

# %%
by_loop = torch.stack([torch.stack([q[b, h] @ k[b, h].T for h in range(4)]) for b in range(6)])
assert torch.allclose(q @ k.transpose(-2, -1), by_loop)
# leading axes broadcast: one (8 x 8) matrix applied to every (64 x 8) matrix of the stack
m8 = torch.randn(8, 8)
assert (q @ m8).shape == (6, 4, 64, 8)
assert torch.allclose((q @ m8)[5, 3], q[5, 3] @ m8)
print("q @ k^T:", tuple(q.shape), "@", tuple(k.transpose(-2, -1).shape), "->",
      tuple((q @ k.transpose(-2, -1)).shape))

# %% [markdown]
# PEP 465: for N-d arrays, `@` treats the **last two axes as matrices and all others as a stack**
# of them (broadcast like any elementwise operation); it multiplies matrix by matrix, for every
# index of the leading axes. `q @ k^T` is thus 6 x 4 = 24 products of a (64 x 8) by an (8 x 64)
# matrix, the same as the loop checked above.
#
# **Q8. Is multi-head attention linear? Where does the non-linearity come from?**

# %%
x1, x2 = torch.randn(2, 1, 64, 32).unbind(0)
zero = torch.zeros_like(x1)


def gap(a, b):
    """|a - b| relative to |a|."""
    return ((a - b).norm() / a.norm()).item()


with torch.no_grad():
    # the two projections are affine: f(a + b) = f(a) + f(b) - f(0)
    for lin in (attn.qkv, attn.proj):
        assert gap(lin(x1 + x2), lin(x1) + lin(x2) - lin(zero)) < 1e-5
    # the layer as a whole is not, and less so as the inputs grow
    gaps = {}
    for s in (1, 10):
        a, b = s * x1, s * x2
        gaps[s] = (gap(attn(a + b), attn(a) + attn(b) - attn(zero)),
                   gap(attn(3 * a), 3 * attn(a) - 2 * attn(zero)))
        print(f"inputs x {s:>2}: |A(a + b) - (A(a) + A(b) - A(0))| = {gaps[s][0]:.1%} of |A(a + b)|;"
              f"  |A(3a) - (3 A(a) - 2 A(0))| = {gaps[s][1]:.1%} of |A(3a)|")
assert gaps[1][0] > 0.01 and gaps[1][1] > 0.05
assert gaps[10][0] > 0.5 and gaps[10][1] > 0.5

# %% [markdown]
# **No.** The two projections (`qkv` and `proj`) are affine (checked), but the layer is not (an
# affine map would make both gaps zero): the non-linearity comes from **the product of queries
# and keys** (both are functions of `x`, so `q k^T` is quadratic in `x`, and the weights then
# multiply `v`, itself a function of `x`) and from **the softmax** normalisation. With freshly
# initialised weights (std 0.02) and small inputs the scores are near zero and the softmax nearly
# uniform, so the layer is close to an average, nearly affine (a few percent off); with inputs ten
# times larger the gaps pass 50 %.
#
# **Q9. Does the number of weights depend on the number of heads?**

# %%
D = cfg.embed_dim
n_weights = {h: sum(p.numel() for p in Attention(D, h).parameters()) for h in (1, 2, 4, 8)}
print("weights per head count:", n_weights)
assert set(n_weights.values()) == {(3 * D * D + 3 * D) + (D * D + D)} == {4224}
assert n_weights[4] == sum(p.numel() for p in attn.parameters())

# %% [markdown]
# **No: 4,224 weights for 1, 2, 4 or 8 heads.** The projections map D = 32 to 3 x 32 (q, k, v)
# and 32 back to 32 whatever the number of heads; the heads only *cut* those 32 dimensions into
# h slices of 32/h, each slice attending on its own.
#
# **Q10. Does the number of heads change the cost?** The shapes of the matrix products for each
# head count, their floating-point operations (counted by `torch.utils.flop_counter`, attention
# on its plain path so the products are seen), and the time on this machine:

# %%
from torch.utils.flop_counter import FlopCounterMode

tokens = torch.randn(64, 64, D)          # a batch of 64 images' worth of tokens
cost = {}
for h in (1, 2, 4, 8):
    layer = Attention(D, h, fused=False).eval()
    qh, kh, _ = layer.split_heads(tokens)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        layer(tokens)
    with torch.no_grad():
        for _ in range(3):                 # warm-up
            layer(tokens)
        start = time.perf_counter()
        for _ in range(20):
            layer(tokens)
        ms = (time.perf_counter() - start) / 20 * 1e3
    cost[h] = {"q": tuple(qh.shape), "q @ k^T": tuple((qh @ kh.transpose(-2, -1)).shape),
               "attention entries": 64 * h * 64 * 64, "flops": counter.get_total_flops(), "ms": ms}
    print(f"{h} head(s): q {cost[h]['q']}, q @ k^T {cost[h]['q @ k^T']}, "
          f"{cost[h]['flops'] / 1e6:.1f} MFLOP, {ms:.2f} ms per batch of 64 images")
assert len({c["flops"] for c in cost.values()}) == 1           # same matmul work for every h
assert [c["attention entries"] for c in cost.values()] == [64 * 64 * 64 * h for h in (1, 2, 4, 8)]
assert all(cost[h]["q @ k^T"] == (64, h, 64, 64) and cost[h]["q"] == (64, h, 64, D // h)
           for h in cost)

# %% [markdown]
# The matrix products do **the same number of operations** for every head count: h products of
# (64 x 32/h) by (32/h x 64) cost h x 64 x 64 x 32/h = 64 x 64 x 32 multiply-adds, whatever h
# (counted equal above). What grows with h is **the number of attention matrices**: h of them,
# 64 x 64 each, to fill, softmax and keep for the backward pass (the entries are 64 x h x 64 x 64
# for this batch), and the products become smaller and more numerous. The time printed above is
# what this machine makes of that; it is not part of the asserted answer, since it depends on the
# hardware and on what else runs.
#
# ## C. The block
#
# **Q11. The layer after attention: its name, its activation.**

# %%
from denoise_vit.layers import Mlp  # timm's Mlp, written out in the package

block = model.encoder.blocks[0]
mlp = block.mlp
print(mlp)
assert isinstance(mlp, Mlp) and isinstance(mlp.act, torch.nn.GELU)
assert (mlp.fc1.in_features, mlp.fc1.out_features, mlp.fc2.out_features) == (32, 128, 32)
# position-wise: each token goes through the same two layers on its own
with torch.no_grad():
    assert torch.allclose(mlp(x)[:, 10], mlp(x[:, 10:11])[:, 0], atol=1e-6)
# GELU(z) = z * Phi(z), Phi the standard normal CDF
z = torch.linspace(-4, 4, 801)
gelu = torch.nn.functional.gelu(z)
assert torch.allclose(gelu, z * 0.5 * (1 + torch.erf(z / 2 ** 0.5)), atol=1e-6)
print(f"GELU: min {gelu.min():.3f} at z = {z[gelu.argmin()]:.2f}; GELU(3) = {gelu[700]:.3f}")
assert abs(gelu.min().item() + 0.170) < 0.001 and abs(z[gelu.argmin()].item() + 0.75) < 0.02
assert torch.allclose(gelu[z > 3], z[z > 3], atol=5e-3) and (gelu[z < -3].abs() < 5e-3).all()

# %% [markdown]
# A **feed-forward network, a multi-layer perceptron** (timm's `Mlp`, which
# `denoise_vit.layers` writes out so that loading a model need not import timm): two fully connected
# (`Linear`) layers, 32 -> 128 -> 32, applied to each token separately ("position-wise",
# checked above). Its activation is **GELU**, the Gaussian Error Linear Unit: GELU(z) = z Φ(z),
# where Φ is the standard normal's cumulative distribution. It is a smooth ReLU: about z for
# large z, about 0 for very negative z, and slightly negative in between (its minimum is -0.170,
# at z = -0.75).
#
# **Q12. The feed-forward applied to `x`; what is `d_ff`?**

# %%
y = mlp(x)
print("x", tuple(x.shape), "-> feed-forward ->", tuple(y.shape), "  d_ff =", mlp.fc1.out_features)
assert y.shape == x.shape
assert mlp.fc1.out_features == int(cfg.mlp_ratio * cfg.embed_dim) == 128

# %% [markdown]
# The shape is kept. **`d_ff` = 128 is the width of the hidden layer**, `mlp_ratio` (4) times
# `embed_dim` (32): each token is expanded to 128 numbers, passed through GELU, and projected back.
#
# **Q13. Blocks in a row keep the shape.** The model's twelve blocks, one after the other:

# %%
from denoise_vit.layers import Block

h = x
with torch.no_grad():
    for i, blk in enumerate(model.encoder.blocks):
        assert isinstance(blk, Block)
        h = blk(h)
        assert h.shape == (6, 64, 32), (i, h.shape)
print(f"{len(model.encoder.blocks)} blocks: {tuple(x.shape)} -> {tuple(h.shape)}")
assert len(model.encoder.blocks) == cfg.depth == 12

# %% [markdown]
# **Q14. The block of the ViT paper (figure 1).** The course's `Block.forward` as given is
# `y = attn(norm1(x)); y = mlp(norm2(y))`: it has **no residual connections**. The paper's block
# (and `denoise_vit.layers.Block`) is pre-norm with residuals:
# `x = x + attn(norm1(x)); x = x + mlp(norm2(x))`. Below, the course's forward as given, written
# with the package block's own sub-layers (labelled: the course's, not the package's), against the
# package's block, on the same freshly initialised weights:

# %%
def course_block_as_given(blk, tokens):
    """The course's Block.forward as given (Q14 asks to fix it): no residual connections."""
    out = blk.attn(blk.norm1(tokens))
    return blk.mlp(blk.norm2(out))


x0 = pos_embed(patch_embed(inputs), grid).detach()
with torch.no_grad():
    # the package's block is exactly the paper's formula
    blk = model.encoder.blocks[0]
    mid = x0 + blk.attn(blk.norm1(x0))
    assert torch.allclose(blk(x0), mid + blk.mlp(blk.norm2(mid)), atol=1e-6)


def spread(t):
    """How far the tokens of an image are from their mean token (max |difference|)."""
    return (t - t.mean(dim=1, keepdim=True)).abs().max().item()


def through_blocks(fn, t):
    spreads = []
    for blk in model.encoder.blocks:
        t = fn(blk, t)
        spreads.append(spread(t))
    return t, spreads


given_out, given_spread = through_blocks(course_block_as_given, x0)
fixed_out, fixed_spread = through_blocks(lambda blk, t: blk(t), x0)
print("token spread after each block (0 = all 64 tokens of an image identical):")
print("  course's block as given:", " ".join(f"{s:.1e}" for s in given_spread))
print("  pre-norm residual block:", " ".join(f"{s:.1e}" for s in fixed_spread))

grads = {}
for name, fn in (("as given", course_block_as_given), ("residual", lambda blk, t: blk(t))):
    leaf = x0.clone().requires_grad_(True)
    out, _ = through_blocks(fn, leaf)
    out.square().sum().backward()
    grads[name] = leaf.grad.norm().item()
print("gradient reaching the embedding through 12 blocks:",
      ", ".join(f"{k} {v:.3g}" for k, v in grads.items()))

assert spread(x0) > 0.5
assert given_spread[0] < 1e-3 and given_spread[-1] < 1e-6     # collapsed after one block
assert min(fixed_spread) > 0.5                                # the tokens stay distinct
assert grads["residual"] > 20 * grads["as given"]

# %% [markdown]
# The difference, on numbers: the embedded tokens of an image differ from one another by up to
# about 1 (`spread(x0)`). After **one block as given** they differ by less than 0.001, and after
# twelve by nothing that float32 can show: **every token of an image is the same vector**, so
# the decoder would receive one number per channel for the whole image, with no trace of where
# the patches were. At initialisation the attention weights are nearly uniform, so each token's
# output is nearly the mean of all values; without the residual the token's own content is not
# added back. With residuals, the tokens keep their identity (spread stays above 0.5) and the
# gradient reaching the embedding is more than 20 times larger (printed above). This is why
# `denoise_vit.layers.Block` is the residual form.
#
# ## D. The denoising ViT
#
# **Q15. The encoder's forward (embedding, position, blocks, final norm) on the input: its
# output's shape.** The course's `VisionTransformer` is the model's `encoder` (a `ViTEncoder`);
# `model.forward_features` runs it:

# %%
with torch.no_grad():
    encoded = model.forward_features(inputs)
print("encoder:", tuple(inputs.shape), "->", tuple(encoded.shape))
assert encoded.shape == (6, 64, 32)
# the final LayerNorm (fresh weights: scale 1, shift 0): every token has mean 0, std 1
assert torch.allclose(encoded.mean(-1), torch.zeros(6, 64), atol=1e-5)
assert torch.allclose(encoded.std(-1, unbiased=False), torch.ones(6, 64), atol=1e-3)

# %% [markdown]
# (6, 64, 32): 64 tokens of 32 numbers per image, each normalised by the final LayerNorm.
#
# **Q16. What do `nn.ConvTranspose2d` and `rearrange` do in the decoder? How does it differ from
# a U-Net's?** The course's `Decoder` is `denoise_vit.models.decoders.ConvDecoder`:

# %%
from einops import rearrange

decoder = model.decoder
print(decoder)
# rearrange: the sequence of 64 tokens back onto the 8 x 8 grid, channels first
fmap = rearrange(encoded, "b (gh gw) d -> b d gh gw", gh=8, gw=8)
assert fmap.shape == (6, 32, 8, 8)
assert torch.equal(fmap[:, :, 2, 5], encoded[:, 2 * 8 + 5])     # token 21 is grid cell (2, 5)
# ConvTranspose2d(k=2, s=2): doubles height and width; each input pixel paints its own 2 x 2 block
up = decoder.up[0][0]
assert isinstance(up, torch.nn.ConvTranspose2d) and up.kernel_size == up.stride == (2, 2)
delta = torch.zeros(1, 32, 8, 8)
delta[0, :, 3, 6] = 1.0
with torch.no_grad():
    painted = (up(delta) - up(torch.zeros_like(delta))).abs().sum(1)[0]   # remove the bias
assert up(fmap).shape == (6, 32, 16, 16)
assert set(map(tuple, painted.nonzero().tolist())) == {(6, 12), (6, 13), (7, 12), (7, 13)}
# the stages: 8 -> 16 -> 32 -> 64 pixels, 32 -> 16 -> 8 -> 4 channels, then a 1x1 conv to 1
sizes, chans, t = [], [], fmap
with torch.no_grad():
    for stage in decoder.up:
        t = stage(t)
        sizes.append(t.shape[-1])
        chans.append(t.shape[1])
print("up-stages: sizes", sizes, " channels", chans)
assert sizes == [16, 32, 64] and chans == [16, 8, 4] and decoder.out.out_channels == 1
# no skip connection: nothing of the encoder but its 8 x 8 token map reaches the decoder
assert decoder.skip_chans == [0, 0, 0]

# %% [markdown]
# * **`rearrange`** (einops) turns the sequence of 64 tokens (6, 64, 32) back into an image-like
#   map (6, 32, 8, 8): token k goes to grid cell (k // 8, k % 8), its 32 numbers become 32
#   channels.
# * **`ConvTranspose2d(kernel 2, stride 2)`** is a learned upsampling: it doubles height and width,
#   each input pixel painting its own 2 x 2 block of the output (checked with a single lit pixel).
#   Three of them, each followed by two 3x3 convolutions, bring the 8 x 8 map to 64 x 64 while
#   the channels halve (32 -> 16 -> 8 -> 4); a 1x1 convolution gives the one output channel.
# * **Against a U-Net**: a U-Net's decoder concatenates, at every resolution, the encoder's feature
#   maps of that resolution (skip connections), so fine detail lost by downsampling comes back.
#   Here the decoder gets **only the 8 x 8 token map** (no skip: `skip_chans == [0, 0, 0]`), so
#   everything finer than a patch must be carried through the 32 numbers of each token. (The
#   package's `vit_fast` preset adds U-Net-like skips from a convolutional stem: see the end.)
#
# **Q17. A decoder whose output has the input's size.** The course's decoder is written for 64 x 64
# and `d_model` 32 only (and its `Up0` calls `super(Up, ...)`, a class that does not exist). The
# package's builds log2(patch) up-stages from any width, so it works for any image size divisible
# by the patch, any power-of-two patch and any `embed_dim`:

# %%
with torch.no_grad():
    for size in ((64, 64), (96, 96), (48, 80)):
        out = model(torch.rand(2, 1, *size))        # the same model; positions are interpolated
        print(f"course model on {size}: output {tuple(out.shape)}")
        assert out.shape == (2, 1, *size)
    other = build_model("vit_denoiser", img_size=(48, 80), patch_size=4, embed_dim=48, depth=2)
    assert len(other.decoder.up) == 2
    assert other(torch.rand(2, 1, 48, 80)).shape == (2, 1, 48, 80)

# %% [markdown]
# **Q18. The Denoiser's output shape.** `build_model("vit_denoiser")` is the course's
# `Denoiser(encoder, decoder)`:

# %%
with torch.no_grad():
    outputs = model(inputs)
print("denoiser:", tuple(inputs.shape), "->", tuple(outputs.shape))
assert outputs.shape == inputs.shape == (6, 1, 64, 64)

# %% [markdown]
# The same shape as the input, (6, 1, 64, 64): one denoised image per input.
#
# **Q19. How many trainable weights does a Denoiser have?**

# %%
def n_trainable(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


n_block = n_trainable(model.encoder.blocks[0])
parts = {"patch embedding": n_trainable(model.encoder.patch_embed),
         "position embedding": n_trainable(model.encoder.pos_embed),
         f"{cfg.depth} blocks": n_trainable(model.encoder.blocks),
         "final norm": n_trainable(model.encoder.norm),
         "decoder": n_trainable(model.decoder)}
n_total = n_trainable(model)
for name, n in parts.items():
    print(f"{name:>20}: {n:>7,}")
print(f"{'total':>20}: {n_total:>7,}")
# one block: 2 LayerNorms (2 x 64) + qkv (32 x 96 + 96) + proj (32 x 32 + 32)
#            + fc1 (32 x 128 + 128) + fc2 (128 x 32 + 32)
assert n_block == 2 * 64 + (32 * 96 + 96) + (32 * 32 + 32) + (32 * 128 + 128) + (128 * 32 + 32) == 12_704
assert parts[f"{cfg.depth} blocks"] == 12 * 12_704
assert parts["decoder"] == 14_677
assert sum(parts.values()) == n_total == 171_317
assert round(100 * (n_total - parts["decoder"]) / n_total) == 91

# %% [markdown]
# **171,317 trainable weights**: 2,080 (patch embedding) + 2,048 (positions) + 12 x 12,704
# (blocks) + 64 (final norm) + 14,677 (decoder). The encoder holds 91 % of them, nearly all in
# the blocks.
#
# ## E. Training
#
# **Q20. Train the model (30 epochs, MSE, Adam with standard parameters), look at the output and
# comment.** The `course` preset is that recipe; it is trained here by the engine of
# `denoise-vit train` (`run_training`), exactly as `denoise-vit train --config course` would. On
# a GPU the notebook runs the preset unchanged (30 epochs of 100 steps of 64 images); on a CPU it
# keeps the recipe and stops after 3 epochs or 150 s of training, whichever comes first; under the
# test suite, after 40 steps.

# %%
from denoise_vit.training.config import load_config
from denoise_vit.training.run import run_training

recipe = load_config("course")
print(f"course preset: {recipe.epochs} epochs x {recipe.steps_per_epoch} steps x "
      f"{recipe.batch_size} images, {recipe.optimizer} lr {recipe.lr}, {recipe.schedule} rate")
assert (recipe.epochs, recipe.optimizer, recipe.lr, recipe.schedule) == (30, "adam", 1e-3, "constant")
assert recipe.model == {"name": "vit_denoiser"}      # the course preset, as built above

if QUICK:
    overrides = ["epochs=2", "steps_per_epoch=20", "data.eval_size=64"]
elif GPU:
    overrides = []
else:
    overrides = ["epochs=3", "max_train_seconds=150"]
# a new run folder at every execution: train refuses to overwrite a finished run
overrides += [f"out_dir={RUNS}", f"name=course-{time.strftime('%Y%m%d-%H%M%S')}"]
train_cfg = load_config("course", overrides)
print("same as: denoise-vit train --config course " + " ".join(overrides))
summary = run_training(train_cfg, progress=False, log=print)
print({k: round(v, 2) if isinstance(v, float) else v for k, v in summary.items()})
assert summary["final_psnr"] > summary["noisy_psnr"]

# %% [markdown]
# The loss is the mean squared error between output and clean target (`F.mse_loss` in
# `denoise_vit.training.engine`), the optimizer Adam with its standard betas. The run folder has
# `metrics.csv`, `curves.png` and checkpoints; its curves:

# %%
run_dir = Path(summary["run_dir"])
display(Image(filename=str(run_dir / "curves.png")))

# %% [markdown]
# The course's figure: new images through the trained model; rows of inputs, targets, outputs
# and the error |output - target|, all on one scale (`denoise_vit.figures.save_batch_figure`, the
# figure of `denoise-vit visualize`).

# %%
from denoise_vit import load_model
from denoise_vit.figures import save_batch_figure
from denoise_vit.metrics import psnr

trained = load_model(run_dir / "checkpoint_best.pt")    # rebuilt from the checkpoint alone
show_in, show_target = generate_images(6, size=64, generator=torch.Generator().manual_seed(20))
with torch.no_grad():
    show_out = trained(show_in).clamp(0, 1)
print("output:", tuple(show_out.shape))
figure = OUT / "course_outputs.png"
save_batch_figure(figure, show_in, show_target, show_out,
                  title=f"course preset after {summary['steps']} steps ({MODE}): "
                        f"{psnr(show_out, show_target):.1f} dB, noisy input "
                        f"{psnr(show_in, show_target):.1f} dB")
display(Image(filename=str(figure)))
assert show_out.shape == (6, 1, 64, 64)
assert psnr(show_out, show_target) > psnr(show_in, show_target)

# %% [markdown]
# **What the model gets right and wrong**, measured on 256 new images: the pixels are split into
# those under clutter (input > target), the cells the clutter does not touch, and the empty
# background.

# %%
eval_in, eval_target = generate_images(256, size=64, generator=torch.Generator().manual_seed(21))
with torch.no_grad():
    eval_out = torch.cat([trained(chunk) for chunk in eval_in.split(64)]).clamp(0, 1)
clutter = (eval_in - eval_target) > 0.01
cells = (eval_target > 0.01) & ~clutter
background = (eval_target <= 0.01) & ~clutter


def mse(a, b, mask):
    return ((a - b)[mask] ** 2).mean().item()


report = {
    "clutter removed (share of its squared error)": 1 - mse(eval_out, eval_target, clutter)
                                                    / mse(eval_in, eval_target, clutter),
    "MSE under clutter": mse(eval_out, eval_target, clutter),
    "MSE on untouched cells": mse(eval_out, eval_target, cells),
    "MSE on empty background": mse(eval_out, eval_target, background),
    "mean output / target on untouched cells": (eval_out[cells].sum() / eval_target[cells].sum()).item(),
    "PSNR output (dB)": psnr(eval_out, eval_target),
    "PSNR noisy input (dB)": psnr(eval_in, eval_target),
    "PSNR all-black image (dB)": psnr(torch.zeros_like(eval_target), eval_target),
}
for name, value in report.items():
    print(f"{name:>45}: {value:.4f}")
print(f"share of pixels: clutter {clutter.float().mean():.1%}, untouched cells "
      f"{cells.float().mean():.1%}, background {background.float().mean():.1%}")
assert report["clutter removed (share of its squared error)"] > 0.9
assert min(report["MSE under clutter"], report["MSE on untouched cells"]) > 10 * report["MSE on empty background"]
assert report["PSNR output (dB)"] > report["PSNR all-black image (dB)"] > report["PSNR noisy input (dB)"]
if not GPU:   # a CPU-length run; the course's 30 epochs may well get the brightness right
    assert report["mean output / target on untouched cells"] < 1

# %% [markdown]
# **Right**: the clutter goes, more than 90 % of its squared error removed; the empty background
# stays black (its error is more than ten times smaller than on the cells or under the clutter);
# the output beats both the noisy input and an all-black guess, the answer a lazy model finds
# first (all-black already beats the noisy input: the clutter carries more energy than the cells).
# **Wrong**: what error is left sits on the cells and under the clutter, where cells hidden by a
# rectangle have to be guessed. After a CPU-length run the cells come out **too dim** (their
# summed brightness below the target's: the ratio printed above is under 1) with soft, slightly
# blocky edges: the decoder sees the image only through 8 x 8 patches summarised in 32 numbers
# each, with no skip connection to bring back detail, and a short run has not yet learnt the
# cells' exact profile. The figure's error row shows rings at the cells' rims and traces where a
# noisy rectangle covered cells.
#
# ## Going further
#
# The course's recipe is not the best one can do with a ViT on this task. The `vit_fast` preset
# (`denoise-vit train --config vit_fast`) keeps the patch size 8 but reaches it with a
# convolutional stem whose maps also feed the decoder, U-Net style, is wider and shallower, and
# trains with a warm-up and cosine rate; [docs/BENCHMARKS.md](../../docs/BENCHMARKS.md) compares
# it with the U-Net and classical filters at equal training time.

# %%
fast = load_config("vit_fast")
fast_model = build_model(fast.model_name, **fast.model_args)
print(f"vit_fast: {fast.model_args}; {n_trainable(fast_model):,} parameters")
assert fast.model_args["embed"] == "conv_stem" and fast.model_args["stem_skips"] is True
assert fast_model.config.patch_size == 8
assert fast_model.config.embed_dim > cfg.embed_dim and fast_model.config.depth < cfg.depth
assert fast.schedule == "cosine" and fast.warmup_steps > 0
assert any(fast_model.decoder.skip_chans)          # skip connections, unlike the course's decoder
