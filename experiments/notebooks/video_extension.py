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
# # The course's extension, executed: ViViT and TimeSformer for denoising clips
#
# The extension takes the course's image denoiser to image sequences, following three documents:
# a notebook that shows, on a toy tensor, how ViViT's models regroup tokens; notes on the ViViT
# paper (uniform frame sampling vs tubelet embedding, Models 1-4); notes on TimeSformer's code
# (divided space-time attention). This notebook replays them with **this package's own objects**:
# the token groupings of `denoise_vit.layers.token_groups`, the layer plan of
# `build_model("video_denoiser", variant=...)`, the tubelet embedding, the training engine of
# `denoise-vit train` and the figures of `denoise-vit visualize`.
#
# Every answer that states a fact is checked by an `assert`; the test suite runs this notebook
# (`python -m pytest`). Open `video_extension.ipynb`; this `.py` is its reviewable source
# (`python experiments/notebooks/build.py` regenerates and executes it). Training is shortened
# automatically on a CPU, and to seconds under the test suite (`DENOISE_VIT_NOTEBOOK_QUICK=1`).

# %%
import csv
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
OUT = Path(os.environ.get("DENOISE_VIT_NOTEBOOK_OUT") or ROOT / "docs" / "course")
RUNS = OUT / "runs" if os.environ.get("DENOISE_VIT_NOTEBOOK_OUT") else ROOT / "runs" / "notebooks"
OUT.mkdir(parents=True, exist_ok=True)
MODE = "quick (test suite)" if QUICK else ("GPU: the preset's full length" if GPU else "CPU")
torch.manual_seed(0)
print(f"mode: {MODE}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
      f"figures in {OUT}")

# %% [markdown]
# ## 1. The toy example, through the package's token groupings
#
# The toy notebook skips patch extraction and makes the tokens by hand: **2 temporal indices x 3
# spatial patches x 4 features**, the second frame the negative of the first, and a toy
# "attention" that adds to every token of a sequence the maximum over the sequence. The package
# keeps video tokens on a grid (B, nt, ns, D); here B = 1, nt = 2, ns = 3, D = 4.

# %%
from einops import rearrange

first = torch.tensor([1.0, 2.0, 3.0, 4.0])
frame = torch.stack([first * 10 ** s for s in range(3)])           # 3 patches: x1, x10, x100
tokens = rearrange([frame, -frame], "t s d -> 1 t s d")             # (B, nt, ns, D)
print(tokens[0].int())
assert tokens.shape == (1, 2, 3, 4)


def toy_attention(seq):
    """The toy notebook's 'attention': each token of a sequence (B', L, D) + the max over L."""
    return seq + seq.max(dim=-2, keepdim=True).values


# %% [markdown]
# An attention layer only ever sees sequences (B', L, D). Which tokens mix is decided by how the
# grid is folded into sequences: the three einops patterns of `denoise_vit.layers.token_groups`
# are the whole difference between the variants' mixing.

# %%
from denoise_vit.layers import token_groups
from denoise_vit.layers.token_groups import group, within

for over, pattern in token_groups.GROUPINGS.items():
    print(f"{over:>5}: {pattern:<24} -> sequences {tuple(group(tokens, over).shape)}")
assert group(tokens, "joint").shape == (1, 6, 4)      # one sequence of all 6 tokens
assert group(tokens, "space").shape == (2, 3, 4)      # one sequence per frame
assert group(tokens, "time").shape == (3, 2, 4)       # one sequence per spatial position

# %% [markdown]
# The layers of each variant, as the package builds them: every `SpaceTimeBlock` lists its token
# mixers in order (then an MLP, left out of the toy).

# %%
from denoise_vit import build_model

VARIANTS = ("joint", "factorised_encoder", "factorised_self_attention", "factorised_dot_product",
            "divided_space_time")
plans = {}
for variant in VARIANTS:
    video_model = build_model("video_denoiser", variant=variant, depth=3)
    plans[variant] = [blk.mixing for blk in video_model.encoder.blocks]
    print(f"{variant:>26}: {plans[variant]}")
assert plans["joint"] == [("joint",)] * 3                                       # Model 1
assert plans["factorised_encoder"] == [("space",), ("space",), ("time",)]       # Model 2
assert plans["factorised_self_attention"] == [("space", "time")] * 3             # Model 3
assert plans["factorised_dot_product"] == [("split_heads",)] * 3                 # Model 4
assert plans["divided_space_time"] == [("time", "space")] * 3                    # TimeSformer

# %% [markdown]
# **Model 1, joint space-time attention**: the two axes are merged, all 6 tokens form one
# sequence; the maximum is [100, 200, 300, 400] and every token gets it (the toy notebook's result).

# %%
model1 = within(toy_attention, tokens, "joint")
print(model1[0].int())
assert torch.equal(model1[0], torch.tensor([[[101, 202, 303, 404], [110, 220, 330, 440],
                                             [200, 400, 600, 800]],
                                            [[99, 198, 297, 396], [90, 180, 270, 360],
                                             [0, 0, 0, 0]]]).float())

# %% [markdown]
# **Spatial attention** ("space": one sequence per frame): frame 0's maximum is [100, ..., 400],
# frame 1's is [-1, ..., -4], each added within its own frame.
# **Temporal attention** ("time": one sequence per spatial position, across frames): the
# sequences are (x, -x) pairs, so each position gets its own frame-0 token added.

# %%
space = within(toy_attention, tokens, "space")
time_only = within(toy_attention, tokens, "time")
print("space:\n", space[0].int(), "\ntime:\n", time_only[0].int())
assert torch.equal(space[0, 0], frame + frame[2]) and torch.equal(space[0, 1], -frame - first)
assert torch.equal(time_only[0, 0], 2 * frame) and torch.equal(time_only[0, 1], torch.zeros(3, 4))


# %% [markdown]
# **Model 2, factorised encoder**: all the spatial layers first, then all the temporal ones.
# The toy notebook (like ViViT, which classifies) keeps **one token per frame** after the spatial
# encoder (the first, standing in for a class token) and runs the temporal encoder on those 2
# tokens: the output has no spatial positions left. A denoiser needs a value for every pixel, so
# the package's temporal encoder instead runs **across frames at every spatial position**
# ("time"), and keeps all 6 tokens.
#
# **Model 3, factorised self-attention**: inside *every* layer, spatial then temporal attention.
# With one layer each, Models 2 and 3 give the same toy result; with two layers they do not
# (Model 2: space, space, time, time; Model 3: space, time, space, time):

# %%
def run_plan(plan, x):
    """A variant's layer plan (tuples of groupings, as in `plans`) with the toy attention."""
    for mixing in plan:
        for over in mixing:
            x = within(toy_attention, x, over)
    return x


one_layer = within(toy_attention, within(toy_attention, tokens, "space"), "time")
seed_model2 = toy_attention(within(toy_attention, tokens, "space")[0, :, 0])   # seed: 1 token/frame
print("toy notebook's Model 2 (first token of each frame, then time):\n", seed_model2.int())
print("space then time, every token kept:\n", one_layer[0].int())
assert seed_model2.shape == (2, 4) and one_layer.shape == (1, 2, 3, 4)
assert torch.equal(seed_model2, torch.tensor([[202, 404, 606, 808], [99, 198, 297, 396]]).float())
assert torch.equal(one_layer[0, :, 0], seed_model2)     # its first position is the seed's answer

two_layer_plans = {v: [blk.mixing for blk in build_model("video_denoiser", variant=v, depth=2,
                                                          **extra).encoder.blocks]
                   for v, extra in (("factorised_encoder", {"spatial_depth": 2, "temporal_depth": 2}),
                                    ("factorised_self_attention", {}))}
toy2 = {v: run_plan(plan, tokens) for v, plan in two_layer_plans.items()}
for v, out in toy2.items():
    print(f"{v} {two_layer_plans[v]}:\n", out[0].int())
assert two_layer_plans["factorised_encoder"] == [("space",), ("space",), ("time",), ("time",)]
assert not torch.equal(toy2["factorised_encoder"], toy2["factorised_self_attention"])

# %% [markdown]
# **Model 4, factorised dot-product attention**: one attention whose heads are split, half
# attending within the frame, half across frames at the same position; the heads' outputs are
# concatenated and projected. The package's `split_head_attention` takes any object with the
# `Attention` interface (`split_heads`, `attend`, `merge_heads`); a toy one with 2 heads of 2
# features, identity projections and the toy "attention" shows which tokens each head sees:
# features 0-1 (head 0) get their frame's maximum, features 2-3 (head 1) their position's.

# %%
from denoise_vit.layers.space_time_block import split_head_attention


class ToyHeads:
    """The Attention interface with identity projections and the toy 'attention', 2 heads."""
    num_heads = 2

    def split_heads(self, x):                     # (B, N, D) -> q = k = v (B, heads, N, D/heads)
        heads = rearrange(x, "b n (h d) -> b h n d", h=self.num_heads)
        return heads, heads, heads

    def attend(self, q, k, v):
        return toy_attention(v)

    def merge_heads(self, x):
        return rearrange(x, "b h n d -> b n (h d)")


model4 = split_head_attention(ToyHeads(), tokens)
print(model4[0].int())
assert torch.equal(model4[0], torch.tensor([[[101, 202, 6, 8], [110, 220, 60, 80],
                                             [200, 400, 600, 800]],
                                            [[-2, -4, 0, 0], [-11, -22, 0, 0],
                                             [-101, -202, 0, 0]]]).float())
assert torch.equal(model4[..., :2], space[..., :2]) and torch.equal(model4[..., 2:], time_only[..., 2:])

# %% [markdown]
# ### The ViViT notes' Model 4 excerpt groups the wrong tokens
#
# The notes' Model 4 code projects all tokens at once, laid out **time-major** (token n is
# frame n // ns, position n % ns: the "joint" sequence), and then builds the temporal half with
# `.view`. Below is that line, quoted from the notes (the seed's code, not the package's), run on
# the toy's token labels:
#
# ```python
# qt = qt.view(b, h // 2, self.nh * self.nw, self.nt, -1)      # the notes' Model 4, temporal half
# ```
#
# `.view` does not move data: it cuts the time-major sequence into ns runs of nt *consecutive*
# tokens. Consecutive tokens are mostly of the same frame, so the "temporal" groups mix spatial
# positions. The package's "time" grouping (`b t s d -> (b s) t d`) moves the axes instead.

# %%
nt, ns = 2, 3
labels = torch.tensor([[[t, s] for s in range(ns)] for t in range(nt)])[None]   # (1, nt, ns, 2)
sequence = group(labels, "joint")            # time-major: (t0 s0) (t0 s1) (t0 s2) (t1 s0) ...
b = 1
seed_groups = sequence.view(b, ns, nt, -1)[0]        # the notes' .view (one head, batch 1)
package_groups = group(labels, "time")               # (b s) t d


def show(groups):
    return "  ".join("{" + ", ".join(f"t{t}s{s}" for t, s in g.tolist()) + "}" for g in groups)


print("notes' .view groups:  ", show(seed_groups))
print("package's 'time':     ", show(package_groups))
assert show(seed_groups) == "{t0s0, t0s1}  {t0s2, t1s0}  {t1s1, t1s2}"
assert show(package_groups) == "{t0s0, t1s0}  {t0s1, t1s1}  {t0s2, t1s2}"
# the package's groups: one spatial position each, every frame once
assert all(len(set(g[:, 1].tolist())) == 1 and sorted(g[:, 0].tolist()) == [0, 1]
           for g in package_groups)
# the notes' groups: two of three mix positions, and two hold two tokens of the same frame
assert sum(len(set(g[:, 1].tolist())) > 1 for g in seed_groups) == 3
assert sum(len(set(g[:, 0].tolist())) == 1 for g in seed_groups) == 2

# %% [markdown]
# On the toy values, the temporal head computed the notes' way gets wrong maxima (the token at
# frame 0, position 0 receives position 1's value; the token at frame 0, position 2 is paired
# with frame 1, position 0):

# %%
head1 = group(tokens[..., 2:], "joint")                         # head 1's features, time-major
seed_way = toy_attention(head1.view(1, ns, nt, 2)[0]).reshape(1, nt, ns, 2)
package_way = within(toy_attention, tokens[..., 2:], "time")
print("notes' way:\n", seed_way[0].int(), "\npackage's way:\n", package_way[0].int())
assert torch.equal(package_way, model4[..., 2:])
assert not torch.equal(seed_way, package_way)
assert torch.equal(seed_way[0, 0, 0], torch.tensor([33.0, 44.0]))     # 3 + 30, 4 + 40: position 1 leaked in

# %% [markdown]
# The notes' spatial half (`qs.view(b, h // 2, nt, nh * nw, -1)`) is right, since time-major
# tokens of one frame *are* consecutive; only the temporal half needs the axes moved (a
# `rearrange`, as in the package), not a `.view`.
#
# ### TimeSformer: divided space-time attention
#
# TimeSformer's block (the notes' `Block.forward` for `divided_space_time`): temporal attention,
# its output through `temporal_fc`, added back; then spatial attention; then the MLP. In the
# package that is the plan `("time", "space")` with a `temporal_fc` after the temporal mixer:

# %%
tsf = build_model("video_denoiser", variant="divided_space_time", depth=1)
blk = tsf.encoder.blocks[0]
print([mixer.over for mixer in blk.mixers], [type(mixer.fc).__name__ for mixer in blk.mixers])
assert [mixer.over for mixer in blk.mixers] == ["time", "space"]
assert isinstance(blk.mixers[0].fc, torch.nn.Linear) and isinstance(blk.mixers[1].fc, torch.nn.Identity)
m3 = build_model("video_denoiser", variant="factorised_self_attention", depth=1).encoder.blocks[0]
assert [mixer.over for mixer in m3.mixers] == ["space", "time"]
assert all(isinstance(mixer.fc, torch.nn.Identity) for mixer in m3.mixers)    # no temporal_fc

# %% [markdown]
# The TimeSformer notes also resize the embeddings when a clip differs from the training size.
# The package does the same (learned space and time embeddings, resampled): a model built for
# 8 frames of 64 x 64 runs on 12 frames of 48 x 80:

# %%
with torch.no_grad():
    clip = torch.rand(1, 1, 12, 48, 80)
    assert tsf.config.num_frames == 8 and tsf.config.img_size == (64, 64)
    assert tsf(clip).shape == clip.shape
    assert tsf.forward_features(clip).shape == (1, 12, 6 * 10, 32)
print("built for 8 x 64 x 64; ran on", tuple(clip.shape[2:]), "-> tokens (1, 12, 60, 32)")

# %% [markdown]
# ## 2. Tubelet embedding against frame embedding
#
# ViViT embeds a clip either by **uniform frame sampling** (each frame cut into patches on its
# own: a 2-D patch embedding per frame) or by **tubelet embedding** (a Conv3d whose kernel and
# stride are t frames x p x p pixels: each token covers t frames). `TubeletEmbed` does both;
# `tubelet_size=1` is frame embedding.

# %%
from denoise_vit.layers import PatchEmbed, TubeletEmbed

clip = torch.rand(2, 1, 8, 64, 64)                          # (B, C, T, H, W)
shapes = {}
for t in (1, 2, 4):
    embed = TubeletEmbed(t, 8, 1, 32)
    out = embed(clip)
    n_params = sum(p.numel() for p in embed.parameters())
    shapes[t] = (tuple(out.shape), n_params)
    print(f"tubelet {t} x 8 x 8: tokens {tuple(out.shape)} (B, nt, ns, D) = "
          f"{out.shape[1] * out.shape[2]} per clip; {n_params:,} parameters")
assert shapes[1] == ((2, 8, 64, 32), 8 * 8 * 32 + 32)
assert shapes[2] == ((2, 4, 64, 32), 2 * 8 * 8 * 32 + 32)
assert shapes[4] == ((2, 2, 64, 32), 4 * 8 * 8 * 32 + 32)

# tubelet 1 is the image model's patch embedding applied to every frame with the same weights
frame_embed, patch = TubeletEmbed(1, 8, 1, 32), PatchEmbed(8, 1, 32)
with torch.no_grad():
    patch.proj.weight.copy_(frame_embed.proj.weight[:, :, 0])
    patch.proj.bias.copy_(frame_embed.proj.bias)
    per_frame = torch.stack([patch(clip[:, :, f]) for f in range(8)], dim=1)
    assert torch.allclose(frame_embed(clip), per_frame, atol=1e-5)

# %% [markdown]
# Both give tokens (B, nt, ns, D) with ns = (64/8)^2 = 64 positions; a tubelet of t frames divides
# the number of temporal indices by t (8 -> 4 -> 2) and multiplies the embedding's weights by about
# t. Frame embedding is exactly the image model's `PatchEmbed` run on every frame (checked).
# The whole denoiser with tubelets still returns every frame: its decoder predicts the t frames
# of a tubelet as t channels.

# %%
with torch.no_grad():
    tube_model = build_model("video_denoiser", variant="factorised_dot_product", tubelet_size=2, depth=2)
    assert tube_model.forward_features(clip).shape == (2, 4, 64, 32)
    assert tube_model(clip).shape == clip.shape == (2, 1, 8, 64, 64)

# %% [markdown]
# ## 3. A small video denoiser, trained
#
# The data: `data_gen.generate_videos`, cells that persist and move across the 8 frames while the
# clutter is drawn anew in every frame, so a model that looks across frames can see behind it.
# The model: ViViT Model 4 (`video_factorised_dot_product` preset, depth 6), trained by the
# engine of `denoise-vit train` (`run_training`). On a GPU the preset runs unchanged (6 epochs of
# 100 steps of 8 clips); on a CPU it is shortened to 3 epochs, or 120 s of training if that comes
# first; under the test suite, to 16 steps of 4 clips, which only checks that training runs and
# lowers the loss (the denoised clip beats the noisy one in the other modes, asserted there).

# %%
from denoise_vit.training.config import load_config
from denoise_vit.training.run import run_training

preset = load_config("video_factorised_dot_product")
assert preset.model_args == {"variant": "factorised_dot_product", "depth": 6}
assert preset.data.kind == "videos" and preset.data.frames == 8
if QUICK:   # a smoke test of the path: too short to beat the noisy input
    overrides = ["epochs=2", "steps_per_epoch=8", "batch_size=4", "warmup_steps=4",
                 "data.eval_size=8"]
elif GPU:
    overrides = []
else:
    overrides = ["epochs=3", "max_train_seconds=120"]
# a new run folder at every execution: train refuses to overwrite a finished run
overrides += [f"out_dir={RUNS}", f"name=video_factorised_dot_product-{time.strftime('%Y%m%d-%H%M%S')}"]
print("same as: denoise-vit train --config video_factorised_dot_product " + " ".join(overrides))
summary = run_training(load_config("video_factorised_dot_product", overrides), progress=False,
                       log=print)
print({k: round(v, 2) if isinstance(v, float) else v for k, v in summary.items()})
with open(Path(summary["run_dir"]) / "metrics.csv") as f:
    losses = [float(row["train_loss"]) for row in csv.DictReader(f)]
print("train loss per epoch:", " ".join(f"{loss:.3e}" for loss in losses))
assert len(losses) >= 2 and losses[-1] < losses[0]
if not QUICK:
    assert summary["final_psnr"] > summary["noisy_psnr"]

# %% [markdown]
# The sequence figure (`denoise_vit.figures.save_clip_figures`, the figure of
# `denoise-vit visualize` for a video checkpoint): one column per frame, rows noisy, clean,
# denoised and the error; then the GIF, noisy beside denoised.

# %%
from data_gen import generate_videos
from denoise_vit import load_model
from denoise_vit.figures import save_clip_figures
from denoise_vit.metrics import psnr

video_model = load_model(Path(summary["run_dir"]) / "checkpoint_best.pt")
noisy, clean = generate_videos(1, frames=8, size=64, generator=torch.Generator().manual_seed(7))
with torch.no_grad():
    denoised = video_model(noisy).clamp(0, 1)
assert denoised.shape == noisy.shape == (1, 1, 8, 64, 64)
png, gif = OUT / "video_sequence.png", OUT / "video_sequence.gif"
save_clip_figures(png, gif, noisy[0], clean[0], denoised[0],
                  title=f"ViViT Model 4 after {summary['steps']} steps ({MODE}): "
                        f"{psnr(denoised, clean):.1f} dB, noisy {psnr(noisy, clean):.1f} dB")
display(Image(filename=str(png)))
display(Image(filename=str(gif)))
if not QUICK:
    assert psnr(denoised, clean) > psnr(noisy, clean)

# %% [markdown]
# ## 4. The cost of the five variants as the clip grows
#
# Each variant of the preset configs (depth 6, width 32, 4 heads, patch 8, 64 x 64), run on clips
# of T = 4 to 32 frames (the position embeddings adapt). Operations are counted by
# `torch.utils.flop_counter` on one forward pass, attention on its plain path so that its matrix
# products are counted; time is one forward pass of one clip on this machine (fused attention,
# best of a few).

# %%
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from denoise_vit.layers.attention import set_fused_attention  # noqa: E402

FRAMES = (4, 8, 16, 32)
gflops, ms = {}, {}
for variant in VARIANTS:
    cfg = load_config(f"video_{variant}")
    net = build_model(cfg.model_name, **cfg.model_args).eval()
    gflops[variant], ms[variant] = [], []
    for T in FRAMES:
        x = torch.rand(1, 1, T, 64, 64)
        set_fused_attention(net, False)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net(x)
        gflops[variant].append(counter.get_total_flops() / 1e9)
        set_fused_attention(net, True)
        with torch.no_grad():
            net(x)                                   # warm-up
            best = float("inf")
            for _ in range(1 if QUICK else 3):
                start = time.perf_counter()
                net(x)
                best = min(best, time.perf_counter() - start)
        ms[variant].append(best * 1e3)
    print(f"{variant:>26}: GFLOPs " + " ".join(f"{g:5.2f}" for g in gflops[variant])
          + "   ms " + " ".join(f"{m:6.0f}" for m in ms[variant]) + f"   (T = {FRAMES})")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
for variant in VARIANTS:
    ax1.plot(FRAMES, gflops[variant], marker="o", label=variant)
    ax2.plot(FRAMES, ms[variant], marker="o", label=variant)
for ax, label in ((ax1, "GFLOPs per clip (forward)"), (ax2, "ms per clip (forward, this machine)")):
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(FRAMES, [str(t) for t in FRAMES])
    ax.set_xlabel("frames T (64 x 64, patch 8: 64 tokens per frame)")
    ax.set_ylabel(label)
ax1.legend(fontsize=8)
fig.suptitle(f"cost of the five variants as the clip grows ({torch.get_num_threads()} CPU threads"
             f"{', GPU present' if GPU else ''}; {MODE})")
fig.tight_layout()
fig.savefig(OUT / "video_cost.png", dpi=90)
plt.close(fig)
display(Image(filename=str(OUT / "video_cost.png")))

growth = {v: gflops[v][-1] / gflops[v][0] for v in VARIANTS}
print("GFLOPs at T = 32 / T = 4:", {v: round(g, 1) for v, g in growth.items()})
assert growth["joint"] > 20                                   # quadratic in T: 8x frames, >20x work
assert all(7.5 < growth[v] < 9 for v in VARIANTS if v != "joint")   # nearly linear in T
assert all(gflops["joint"][i] == max(g[i] for g in gflops.values()) for i in range(1, len(FRAMES)))
at32 = {v: g[-1] for v, g in gflops.items()}
assert (at32["joint"] > at32["factorised_self_attention"] > at32["factorised_encoder"]
        > at32["factorised_dot_product"])                     # ViViT's Table 2 order (Models 1, 3, 2, 4)

# %% [markdown]
# Joint attention (Model 1) compares every token with every other: nt x ns tokens give
# (nt x ns)^2 scores per head, so its work grows with the square of T: **from 4 to 32 frames
# (8 x) its operations grow more than 20 x**, and it is the most expensive variant from T = 8 on.
# The factorised variants compare a token only with its frame (ns others) and its position
# (nt others), so their work grows **nearly linearly** (between 7.5 x and 9 x for 8 x the
# frames). At T = 32 the four ViViT models come in the paper's order, most to fewest operations:
# Model 1 > Model 3 > Model 2 > Model 4. The times on the right are this machine's (not asserted:
# they depend on the hardware and on what else runs); [docs/VIDEO.md](../../docs/VIDEO.md)
# compares the variants' denoising quality at one training budget, and their memory.
