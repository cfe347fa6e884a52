"""Variants of vit_fast tried against the U-Net (issue 11, item 3), as the benchmark scored them.

    # the two runs behind docs/VARIANTS.md (about 35 min of wall clock on a 2-core CPU):
    flock /tmp/cpu.lock denoise-vit benchmark --budgets 1,4 --clock cpu --images 25000 \
        --cooldown --jobs 2 --threads 1 --methods none --idle-wait 0 \
        --configs experiments/variants/x_vit_fast.toml,experiments/variants/x_fullres.toml,\
experiments/variants/x_dec64.toml,experiments/variants/x_fullres_dec64.toml,\
experiments/variants/x_unet.toml --out-dir /tmp/variants/round1
    flock /tmp/cpu.lock denoise-vit benchmark ... --configs experiments/variants/x_p4.toml,\
experiments/variants/x_p4_noattn.toml,experiments/variants/x_p4_d4.toml,\
experiments/variants/x_w96.toml --out-dir /tmp/variants/round2
    cp /tmp/variants/round1/benchmarks.json docs/variants/round1.json   # and round2
    python experiments/variants/report.py        # docs/VARIANTS.md and its figure from those

    # rounds 3-4 and the seeds of the output gate (AMD EPYC, about 60 min of wall clock):
    flock /tmp/cpu.lock denoise-vit benchmark (options as above) --configs \
experiments/variants/x_vit_fast.toml,experiments/variants/x_gate.toml,\
experiments/variants/x_unet.toml,experiments/variants/x_unet_gate.toml,\
experiments/variants/x_gate_noattn.toml,experiments/variants/x_residual.toml \
        --out-dir /tmp/variants/round3
    flock ... --configs experiments/variants/x_gate.toml,x_gate_imgskip.toml,\
x_gate_fullres.toml,x_gate_noattn.toml --out-dir /tmp/variants/round4 --runs-dir R
    # round 3 ran on the gate's first form, initialised half open (bias 0); round 4 on a
    # working copy that set the bias to -3 through a temporary environment variable, as the
    # committed code (models.base.close_gate) now does for every gated network
    flock ... --seeds 3 --seed-margin 10 --resume --configs x_vit_fast.toml,x_gate.toml,\
x_unet.toml,x_unet_gate.toml --out-dir /tmp/variants/seeds/out --runs-dir R
    python experiments/variants/errors.py R/x_vit_fast-seed0.pt R/x_gate-seed0.pt \
        R/x_unet-seed0.pt R/x_unet_gate-seed0.pt --json docs/variants/errors.json
    cp /tmp/variants/round3/benchmarks.json docs/variants/round3.json   # round4, seeds too

    # round 5, learning rates (about 30 min): the options above with --configs
    #   x_vit_fast.toml,x_unet.toml                                   -> docs/variants/rates0.json
    #   x_vit_fast_lr6e-3.toml,x_unet_lr6e-3.toml,x_vit_fast_lr1e-2.toml,x_unet_lr1e-2.toml
    #                                                                 -> rates1.json
    #   the same at 2e-2 and 3e-2                                     -> rates2.json
    flock /tmp/cpu.lock python experiments/variants/quick_rates.py   # -> quick_rates.json

    # rounds 6-8, attention inside the U-Net (Intel Xeon, about 75 min): the options above with
    #   x_vit_unet_l2_lr1e-2.toml,x_vit_unet_l2_noattn_lr1e-2.toml,x_unet_lr1e-2.toml,
    #   x_unet_lr3e-2.toml,x_vit_unet_lr1e-2.toml,x_vit_fast_lr1e-2.toml     -> round6.json
    #   x_axunet0.toml,x_axunet0_noattn.toml,x_axunet1.toml,x_axunet01.toml  -> round7.json
    # and, for learning per image, --budgets 1,6 --images 12800 with
    #   x_unet_lr1e-2.toml,x_axunet0.toml,x_axunet0_noattn.toml,x_axunet1.toml,
    #   x_vit_unet_l2_lr1e-2.toml,x_vit_unet_l2_noattn_lr1e-2.toml           -> round8.json

    # rounds 9-10, QK-norm and LayerScale (AMD EPYC, 2026-12-03, about 30 min): the options
    # above with --configs
    #   x_vit_unet_l2_qkls_lr1e-2.toml,x_vit_unet_l2_lr1e-2.toml,x_vit_unet_l2_noattn_lr1e-2.toml,
    #   x_unet_lr1e-2.toml,x_vit_fast_qkls_lr1e-2.toml,x_vit_fast_lr1e-2.toml -> round9.json
    #   --seeds 2 --seed-margin 100 with x_vit_fast_qk_lr3e-2.toml,x_vit_fast_lr3e-2.toml
    #                                                                         -> round10.json
    # round 11, the Charbonnier loss (about 25 min): x_vit_fast_charb_lr1e-2.toml,
    #   x_vit_fast_lr1e-2.toml --out-dir O; then the same with x_unet_charb_lr1e-2.toml,
    #   x_unet_lr1e-2.toml added and --seeds 2 --seed-margin 100 --resume     -> round11.json
    # round 12, AdamW's weight decay (about 10 min each): --seeds 2 --seed-margin 100 (and,
    # since the benchmark sets one optimizer for all, --optimizer config) with
    #   x_vit_fast_lr1e-2.toml,x_vit_fast_adamw_lr1e-2.toml                   -> round12.json
    #   x_unet_lr1e-2.toml,x_unet_adamw_lr1e-2.toml                           -> round12b.json

    # round 18, Restormer's blocks in the U-Net (AMD EPYC with AVX-512, about 15 min): the
    # options of rounds 6-12 with --configs x_mdta_coarse_lr1e-2.toml,
    #   x_mdta_coarse_noattn_lr1e-2.toml,x_unet_lr1e-2.toml,x_mdta_lr1e-2.toml,
    #   x_mdta_noattn_lr1e-2.toml                                             -> round18.json

    # round 19, attention designs against their MLP-only twins (AMD EPYC, 2026-12-07, about
    # 15 min each; paired by seed, 240 CPU s or 50,000 images, zero-initialised output conv):
    flock /tmp/cpu.lock python experiments/attention_ablation.py \
        --presets vit_fast,vit_fast_no_attention --seeds 3 --set KEY=VALUE --out-dir D --runs-dir R
    #   --set model.rel_pos_bias=true                               -> docs/rel_pos/
    #   --set model.gate=true                                       -> docs/gate_zero/
    #   --set data.generator.filled_long=[48,64] --set data.generator.noisy_side=[24,48]
    #                                                               -> docs/big_clutter/
    #   --images 50000 --set lr=0.03                                -> docs/lr3e-2/
    # (each folder's attention_ablation*.json holds its exact command)

    # round 20, vit_unet with the U-Net preset's start (AMD EPYC, 2026-12-07, about 30 min):
    flock /tmp/cpu.lock denoise-vit benchmark --budgets 1,4 --clock cpu --images 12800 \
        --configs experiments/variants/x_vit_unet_zero_lr1e-2.toml,experiments/variants/x_vit_unet_zero_noattn_lr1e-2.toml,experiments/variants/x_vit_unet_l2_zero_lr1e-2.toml,experiments/variants/x_vit_unet_l2_zero_noattn_lr1e-2.toml,experiments/variants/x_unet_zero_adamw_lr1e-2.toml \
        --methods none --seeds 2 --seed-margin 100 --cooldown --optimizer config --jobs 2 \
        --threads 2 --runs-dir runs/round20 --out-dir docs/variants/round20   # -> round20/

    # round 21, lighter transformers at the U-Net's bottleneck (Intel Xeon, 2026-12-07, 29 min
    # and about an hour; V=experiments/variants):
    flock /tmp/cpu.lock denoise-vit benchmark --budgets 1,4 --clock cpu --images 12800 \
        --configs $V/x_vit_unet_zero_lr1e-2.toml,$V/x_vit_unet_d1_lr1e-2.toml,$V/x_vit_unet_d1m2_lr1e-2.toml,$V/x_vit_unet_l2d1_lr1e-2.toml,$V/x_unet_zero_adamw_lr1e-2.toml \
        --methods none --seeds 2 --seed-margin 100 --cooldown --optimizer config --jobs 2 \
        --runs-dir runs/round21 --out-dir docs/variants/round21              # -> round21/
    # then one invocation per seed, both at once (S=0: the configs below; S=1: their _seed1
    # copies), so that no seed waits for another network's first:
    B="denoise-vit benchmark --budgets 1,4,15 --clock cpu --images 25000,50000 --methods none \
        --seeds 1 --cooldown --optimizer config --jobs 1 --threads 1"
    flock /tmp/cpu.lock bash -c "$B --configs $V/x_vit_unet_d1m2_lr1e-2.toml,$V/x_vit_unet_d1m2_noattn_lr1e-2.toml,$V/x_unet_zero_adamw_lr1e-2.toml \
        --runs-dir runs/round21b-seed0 --out-dir docs/variants/round21b/seed0 & $B --configs \
        $V/x_vit_unet_d1m2_lr1e-2_seed1.toml,$V/x_vit_unet_d1m2_noattn_lr1e-2_seed1.toml,$V/x_unet_zero_adamw_lr1e-2_seed1.toml \
        --runs-dir runs/round21b-seed1 --out-dir docs/variants/round21b/seed1; wait"
    # the presets as `denoise-vit train` runs them (-> vit_unet_light.json):
    P="flock /tmp/cpu.lock python experiments/variants/preset_rate.py --out docs/variants/vit_unet_light.json"
    $P --preset vit_unet --rates 0.01
    $P --preset vit_unet --rates 0.01 --set model.depth=1 --set model.mlp_ratio=2.0 --tag d1m2
    $P --preset unet --rates 0.03

    # round 17, EMA of weights, paired (about 11 min for both seeds at once, 1 thread each):
    python experiments/variants/ema.py --seed 0 & python experiments/variants/ema.py --seed 1
    #                                                       -> ema_s0.json, ema_s1.json

Every variant trains at Adam 3e-3 (the rate 10 of 11 networks chose in the last benchmark's
sweep), batch 64, 50 warm-up steps, channels-last weights, one seed; the benchmark's cooldown
protocol scores each at 1 and 4 min of process CPU time and after 25,000 training images.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402  (FlopCounterMode, for one check in round 18)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "docs" / "variants"
DOC = ROOT / "docs" / "VARIANTS.md"
FIGURE = DATA / "variants.png"

WHAT = {
    "x_vit_fast": "vit_fast as shipped (conv stem + skips, width 64, depth 6, decoder width 32)",
    "x_fullres": "+ a stride-1 stem stage of 16 channels whose full-resolution map joins the "
                 "decoder's last stage (stem_full_res = 16)",
    "x_dec64": "decoder width 64 (32 -> 16 -> 8 channels at full resolution, not 16 -> 8 -> 4)",
    "x_fullres_dec64": "both of the above",
    "x_w96": "width 96, 6 heads",
    "x_p4": "patch 4 (256 tokens of width 64, two stem stages)",
    "x_p4_noattn": "patch 4 without attention (MLP-only blocks)",
    "x_p4_d4": "patch 4, depth 4",
    "x_unet": "the project's U-Net (reference), at the same rate",
    "x_gate": "vit_fast with the output gate (gate = true)",
    "x_gate_noattn": "the gated vit_fast without attention (MLP-only blocks)",
    "x_gate_imgskip": "gated, and the input image joins the decoder's last stage",
    "x_gate_fullres": "gated, and a full-resolution stem map (16 channels) joins it",
    "x_residual": "vit_fast predicting the clutter (residual = true)",
    "x_unet_gate": "the U-Net with the output gate",
    "x_unet_lr1e-2": "the U-Net (reference)",
    "x_unet_lr3e-2": "the U-Net at 3e-2",
    "x_vit_fast_lr1e-2": "vit_fast as shipped (reference)",
    "x_vit_unet_lr1e-2": "vit_unet as shipped: a transformer (2 blocks, width 128) replaces the "
                         "U-Net's 8 x 8 double conv",
    "x_vit_unet_l2_lr1e-2": "vit_unet with levels = 2: the transformer over 16 x 16 tokens of "
                            "width 64",
    "x_vit_unet_l2_noattn_lr1e-2": "the same without attention (MLP-only blocks)",
    "x_axunet0": "the U-Net + an axial-attention block (rows, then columns) after its "
                 "full-resolution double conv (16 channels, 2 heads)",
    "x_axunet0_noattn": "the same block without attention (MLP only)",
    "x_axunet1": "the U-Net + an axial-attention block at half resolution (32 channels)",
    "x_axunet01": "the U-Net + axial blocks at full and half resolution",
    "x_vit_unet_l2_qkls_lr1e-2": "vit_unet, levels = 2, with QK-norm and LayerScale (0.1)",
    "x_vit_fast_qkls_lr1e-2": "vit_fast with QK-norm and LayerScale (0.1)",
    "x_vit_fast_lr3e-2": "vit_fast as shipped, at 3e-2",
    "x_vit_fast_qk_lr3e-2": "vit_fast with QK-norm, at 3e-2",
    "x_vit_fast_charb_lr1e-2": "vit_fast trained on the Charbonnier loss (loss = \"charbonnier\")",
    "x_vit_fast_adamw_lr1e-2": "vit_fast trained with AdamW, weight decay 0.05 (not on norms, "
                               "biases, position embeddings)",
    "x_unet_adamw_lr1e-2": "the U-Net trained with AdamW, weight decay 0.05 (not on norms or "
                           "biases)",
    "x_mdta_coarse_lr1e-2": "the U-Net + a Restormer block (MDTA + GDFN) after its 16 x 16 and "
                            "8 x 8 double convs",
    "x_mdta_coarse_noattn_lr1e-2": "the same blocks without MDTA (GDFN only)",
    "x_mdta_lr1e-2": "the U-Net + a Restormer block after the double conv of every level, "
                     "full resolution included (as Restormer, which attends at every level)",
    "x_mdta_noattn_lr1e-2": "the same blocks without MDTA (GDFN only)",
    "x_vit_unet_zero_lr1e-2": "vit_unet as shipped (two blocks of width 128 over the 8 x 8 map) "
                              "with the output conv at zero",
    "x_vit_unet_zero_noattn_lr1e-2": "the same with MLP-only blocks",
    "x_vit_unet_l2_zero_lr1e-2": "vit_unet with levels = 2 (two blocks of width 64 over the "
                                 "16 x 16 map) with the output conv at zero",
    "x_vit_unet_l2_zero_noattn_lr1e-2": "the same with MLP-only blocks",
    "x_unet_zero_adamw_lr1e-2": "the U-Net with the output conv at zero (reference)",
    "x_vit_unet_d1_lr1e-2": "vit_unet with one block instead of two (width 128 over the 8 x 8 map)",
    "x_vit_unet_d1m2_lr1e-2": "vit_unet with one block whose MLP is 2 x wide instead of 4 x",
    "x_vit_unet_d1m2_noattn_lr1e-2": "the same with an MLP-only block",
    "x_vit_unet_l2d1_lr1e-2": "vit_unet with levels = 2: one block of width 64 over the 16 x 16 map",
}
HYBRID_FIGURE = DATA / "hybrids.png"
TWINS = (("x_axunet0", "x_axunet0_noattn"), ("x_vit_unet_l2_lr1e-2", "x_vit_unet_l2_noattn_lr1e-2"))
STABLE_FIGURE = DATA / "stabilisers.png"
STABLE_PAIRS = (("x_vit_fast_qkls_lr1e-2", "x_vit_fast_lr1e-2"),
                ("x_vit_unet_l2_qkls_lr1e-2", "x_vit_unet_l2_lr1e-2"),
                ("x_vit_unet_l2_lr1e-2", "x_vit_unet_l2_noattn_lr1e-2"))
GATE_FIGURE = DATA / "gate.png"
RATE_FIGURE = DATA / "rates.png"
RATE_RUNS = ("rates0", "rates1", "rates2")   # 3e-3; 6e-3 and 1e-2; 2e-2 and 3e-2
AXES = ((1, "1 min"), (2, "4 min"), (3, "25k images"))


def fmt(value):
    return "–" if value is None else f"{value:.2f}"


def rows(runs):
    for run in runs:
        for m in run["methods"]:
            if m.get("kind") != "network":
                continue
            at = {round(p["budget_s"]): p["psnr"] for p in m["curve"]}
            images = {p["budget_images"]: p["psnr"] for p in m.get("curve_images") or []}
            yield m, at.get(60), at.get(240), images.get(25000)


def main():
    runs = [json.loads((DATA / f"round{i}.json").read_text()) for i in (1, 2)]
    table = list(rows(runs))
    machine = runs[0]["machine"]
    lines = [
        "# Variants of vit_fast against the U-Net", "",
        "Written by `python experiments/variants/report.py` from the two benchmark runs in its "
        "docstring (docs/variants/round1.json, round2.json; 2026-12-02). Machine: "
        f"{machine['cpu']} ({machine['cpu_capability']} kernels), {machine['cores']} cores, two "
        "networks at a time with 1 torch thread each, nothing else running (the runs held the "
        f"CPU lock); torch {machine['torch']}. Dense float32 matmul rate: "
        f"{runs[0]['matmul_gflops']:.0f} GFLOP/s (1 thread).", "",
        "Why: issue 11 asks the best transformer preset to score at least as high as the U-Net "
        "at every budget and per training image. In the last full benchmark vit_fast led at 1 "
        "and 4 CPU min but trailed at 15 min and by 2.4 dB at 25,000 images, so the question "
        "was whether a larger or finer variant learns more per image without losing the short "
        "budgets. Each variant: Adam 3e-3, batch 64, 50 warm-up steps, channels-last weights, "
        "one seed, the benchmark's cooldown protocol (one constant-rate run, a copy cooled down "
        "over the last 20 % for each budget). Budgets are process CPU time. The runs read "
        "their configs from /tmp (the command in the json files says so); they are copied "
        "unchanged to experiments/variants/. They ran before layers.norms.BatchNorm2d, which "
        "made vit_fast's training step faster (docs/SPEED.md): images/s below are of the code "
        "of that day, and a faster vit_fast would gain at the time budgets only.", "",
        "![PSNR at 1 and 4 CPU min and after 25,000 images](variants/variants.png)", "",
        "| run | what changes | params | MFLOP/img | images/s (1 thread) | PSNR 1 min | "
        "PSNR 4 min | PSNR 25k images |",
        "|---|---|---:|---:|---:|---:|---:|---:|"]
    for m, one, four, k25 in table:
        lines.append(f"| {m['name']} | {WHAT.get(m['name'], '')} | {m['params'] / 1e3:.0f} k | "
                     f"{m['flops'] / 1e6:.0f} | {m['images_per_s']:.0f} | {fmt(one)} | "
                     f"{fmt(four)} | {fmt(k25)} |")
    row = {m["name"]: (m, one, four, k25) for m, one, four, k25 in table}
    fast, unet = row["x_vit_fast"], row["x_unet"]
    wider = max(row["x_dec64"][3], row["x_w96"][3])
    full = [fast[i] - row["x_fullres"][i] for i in (1, 2, 3)]
    p4, p4_free = row["x_p4"], row["x_p4_noattn"]
    lines += [
        "", "A dash: not reached within the 4 CPU minutes.", "",
        "## What it shows", "",
        "- None of the variants beats vit_fast as shipped on any axis, and none closes the gap "
        f"to the U-Net per training image ({unet[3]:.2f} dB at 25k against vit_fast's "
        f"{fast[3]:.2f}). On this machine the U-Net also leads at 4 CPU min ({unet[2]:.2f} "
        f"against {fast[2]:.2f}): its convolutions run at {unet[0]['train_gflops_per_s']:.0f} "
        f"GFLOP/s on one thread, vit_fast at {fast[0]['train_gflops_per_s']:.0f}.",
        "- A full-resolution skip from the stem (`stem_full_res`) costs "
        f"{min(full):.1f}-{max(full):.1f} dB: as with the image skip of the earlier ablation, "
        "the decoder learns to pass the noisy input through.",
        "- A wider decoder or a wider encoder is slower per image and, at this rate, learns no "
        f"more per image ({wider:.2f} dB at 25k at best, against {fast[3]:.2f}).",
        "- Patch 4 makes attention over 256 tokens the cost "
        f"({p4[0]['images_per_s']:.0f} images/s, {p4[1]:.1f} dB after 1 min at this rate); "
        f"without attention the same network runs at {p4_free[0]['images_per_s']:.0f} images/s "
        f"and scores {p4_free[2]:.1f} dB at 4 min. Finer tokens did not make attention pay.",
        "", "Single seeds at one rate: differences under about 1 dB are not settled by this "
        "table; the conclusions above rest on differences of 1.5 dB and more."]
    lines += gate_section()
    lines += rate_section()
    lines += hybrid_section()
    lines += stabiliser_section()
    lines += loss_section()
    lines += optimizer_section()
    lines += ema_section()
    lines += restormer_section()
    lines += attention_design_section()
    lines += unet_transformer_section()
    lines += light_transformer_section()
    DOC.write_text("\n".join(lines) + "\n")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    names = [m["name"] for m, *_ in table]
    for m, one, four, k25 in table:
        style = dict(marker="o", lw=2.5 if m["name"] in ("x_vit_fast", "x_unet") else 1,
                     color="black" if m["name"] == "x_unet" else None)
        axes[0].plot([1, 4], [one, four], label=m["name"], **style)
    axes[0].set(xlabel="training budget (min of process CPU time)", ylabel="PSNR (dB)",
                title="PSNR against CPU time", xticks=[1, 4])
    reached = [(m["name"], k25) for m, _, _, k25 in table if k25 is not None]
    axes[1].barh([n for n, _ in reached], [v for _, v in reached],
                 color=["black" if n == "x_unet" else "tab:blue" for n, _ in reached])
    axes[1].set(xlabel="PSNR (dB) after 25,000 training images", xlim=(20, 35),
                title="Learning per image")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"vit_fast variants against the U-Net ({len(names)} runs, one seed, "
                 f"{machine['cpu']}, 1 thread each)", fontsize=10)
    fig.tight_layout()
    fig.savefig(FIGURE, dpi=110)
    print(f"wrote {DOC} and {FIGURE}", file=sys.stderr)


def seeds_of(m, which, budget):
    """Per-seed PSNR at a point of the curve (time: seconds, images: count); None if missing."""
    key, unit = ("curve", "budget_s") if which == "time" else ("curve_images", "budget_images")
    for p in m.get(key) or ():
        if round(p[unit]) == budget:
            return p.get("psnr_seeds") or [p["psnr"]]
    return None


SEED_POINTS = (("time", 60), ("time", 240), ("images", 25000))   # the AXES, as seeds_of wants


def seed_points(m):
    """Per-seed PSNR at 1 min, 4 min and 25k images (None where not every seed got there)."""
    return [seeds_of(m, which, budget) for which, budget in SEED_POINTS]


def seed_cell(values):
    """'mean (seed 0 / seed 1 / ...)', or a dash."""
    if values is None:
        return "–"
    return f"{sum(values) / len(values):.2f} ({' / '.join(f'{x:.2f}' for x in values)})"


def seed_means(points):
    return [None if v is None else sum(v) / len(v) for v in points]


def mean_gaps(mean, a, b):
    """(axis, mean[a] - mean[b]) on every axis both reached."""
    return [(axis, mean[a][i] - mean[b][i]) for i, (_, axis) in enumerate(AXES)
            if mean[a][i] is not None and mean[b][i] is not None]


def delta_figure(deltas, title, path):
    """Grouped bars: for each (label, [(axis, dB)]) one bar per axis it has."""
    fig, ax = plt.subplots(figsize=(9, 3.8))
    width = 0.25
    for k, (_, axis) in enumerate(AXES):
        shown = [(i, dict(g)[axis]) for i, (_, g) in enumerate(deltas) if axis in dict(g)]
        if not shown:
            continue   # no legend entry for an axis no run reached
        ax.bar([i + (k - 1) * width for i, _ in shown], [v for _, v in shown], width,
               label=axis)   # a point not reached has no bar
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(deltas)), [label for label, _ in deltas], fontsize=7)
    ax.set(ylabel="PSNR difference (dB)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def gate_section():
    """Rounds 3-4 and the seeds run of the output gate, with where the error lies."""
    r3, r4, seeds = (json.loads((DATA / f"{n}.json").read_text())
                     for n in ("round3", "round4", "seeds"))
    errors = json.loads((DATA / "errors.json").read_text())
    machine = seeds["machine"]
    half_open = {"x_gate", "x_unet_gate", "x_gate_noattn"}   # round 3 ran before close_gate
    lines = [
        "", "## Rounds 3-4: an output gate", "",
        f"Machine: {machine['cpu']} ({machine['cpu_capability']} kernels), {machine['cores']} "
        f"cores, torch {machine['torch']}; dense float32 matmul {seeds['matmul_gflops']:.0f} "
        "GFLOP/s (1 thread); two networks at a time, 1 torch thread each, under the CPU lock, "
        f"the same protocol as above ({seeds['date'][:10]}). Commands in the docstring of "
        "experiments/variants/report.py.", "",
        "Why: the generator's clutter is additive (input = cells + rectangles), so outside the "
        "rectangles the input is the target. A network with `gate = true` predicts a gate g "
        "and an offset b per pixel and outputs sigmoid(g) * input + b: it can copy the clean "
        "input exactly and repaint only where clutter lies. vit_fast's decoder, at 4 channels "
        "at full resolution, has to redraw every cell from coarse maps.", "",
        "### One seed: the gate and its neighbours", "",
        "| round | run | what changes | images/s | PSNR 1 min | PSNR 4 min | PSNR 25k images |",
        "|---|---|---|---:|---:|---:|---:|"]
    for label, run in (("3", r3), ("4", r4)):
        for m, one, four, k25 in rows([run]):
            what = WHAT.get(m["name"], "")
            if label == "3" and m["name"] in half_open:
                what += " (gate initialised half open)"
            lines.append(f"| {label} | {m['name']} | {what} | {m['images_per_s']:.0f} | "
                         f"{fmt(one)} | {fmt(four)} | {fmt(k25)} |")
    nets = {m["name"]: m for m in seeds["methods"] if m.get("kind") == "network"}
    lines += ["", "### Three seeds", "",
              "Mean (per seed). Seed 0 of x_vit_fast and x_unet is round 3's, of x_gate round "
              "4's (read back with --resume). A dash: a point not every seed reached (x_unet's "
              "seed 0 did not reach 25,000 images within its 4 CPU min).", "",
              "| network | PSNR 1 min | PSNR 4 min | PSNR 25k images |", "|---|---:|---:|---:|"]
    points = {name: seed_points(m) for name, m in nets.items()}
    for name, vs in points.items():
        lines.append(f"| {name} | " + " | ".join(seed_cell(v) for v in vs) + " |")
    mean = {n: seed_means(vs) for n, vs in points.items()}

    def gaps(a, b):
        return ", ".join(f"{mean[a][i] - mean[b][i]:+.2f} dB at {axis}" for i, axis in
                         ((0, "1 min"), (1, "4 min"), (2, "25k images"))
                         if mean[a][i] is not None and mean[b][i] is not None)

    lines += ["", "### Where the error lies", "",
              "`python experiments/variants/errors.py` on the seed-0 checkpoints (the constant-"
              "rate run's final weights, 4 CPU min): PSNR of each region's pixels and its share "
              "of the squared error on the evaluation set; then two sets with one kind of "
              "clutter each (see the script).", "",
              "| network | PSNR | clean background | clean cells | rim (1-2 px) | clutter | "
              "filled: inside / interior / elsewhere | noisy: inside / elsewhere |",
              "|---|---:|---:|---:|---:|---:|---|---|"]
    for name, rec in errors.items():
        reg = rec["regions"]
        cells = [f"{reg[k]['psnr']:.1f} ({reg[k]['share']:.0%})"
                 for k in ("clean background", "clean cells", "rim", "clutter")]
        f, n = rec["filled"], rec["noisy"]
        lines.append(f"| {name} | {rec['psnr']:.2f} | " + " | ".join(cells) +
                     f" | {f['inside']:.1f} / {f['interior']:.1f} / {f['elsewhere']:.1f} | "
                     f"{n['inside']:.1f} / {n['elsewhere']:.1f} |")
    r4n = {m["name"]: (one, four, k25) for m, one, four, k25 in rows([r4])}
    attn = ", ".join(f"{a - b:+.2f} dB at {axis}" for a, b, axis in
                     zip(r4n["x_gate"], r4n["x_gate_noattn"], ("1 min", "4 min", "25k images")))
    lines += ["", "### What it shows", "",
              f"- The gate against vit_fast (means of three seeds): {gaps('x_gate', 'x_vit_fast')}. "
              "The spread between seeds at 4 min: " + ", ".join(
                  f"{n} {max(v[1]) - min(v[1]):.2f} dB" for n, v in points.items() if v[1]) +
              ": the gate is better on some seeds and far worse on one, so the shipped presets "
              "keep it off.",
              f"- The U-Net against vit_fast (issue 11, item 3, on this machine): "
              f"{gaps('x_unet', 'x_vit_fast')}; against the gated vit_fast: "
              f"{gaps('x_unet', 'x_gate')}.",
              "- Where the error lies: in the clutter ("
              f"{min(r['regions']['clutter']['share'] for r in errors.values()):.0%}-"
              f"{max(r['regions']['clutter']['share'] for r in errors.values()):.0%} of the "
              "squared error) and in cells under or beside rectangles, which every network "
              "paints too dark or too bright (errors.png below); the clean regions, where the "
              "gate copies the input, hold " + ", ".join(
                  f"{n.removesuffix('-seed0')} {clean_share(r):.0%}" for n, r in errors.items()) +
              ". Inside the clutter the networks are within "
              f"{spread(errors, 'clutter'):.1f} dB of each other.",
              f"- The gate on the U-Net: {gaps('x_unet_gate', 'x_unet')}.",
              f"- Attention in the gated vit_fast (round 4, one seed): {attn}.",
              "- Full-resolution input to the decoder's last stage fails with the gate too "
              "(x_gate_imgskip, x_gate_fullres), and predicting the clutter (x_residual) is "
              "worse than predicting the image."]
    lines += ["", "![the output gate, three seeds](variants/gate.png)", "",
              "![errors on filled rectangles](variants/errors.png)"]
    gate_figure(points)
    return lines


def rate_section():
    """Round 5: vit_fast and the U-Net at rates above the benchmark's sweep (3e-4 .. 3e-3)."""
    runs = [json.loads((DATA / f"{n}.json").read_text()) for n in RATE_RUNS]
    table = {}
    for m, one, four, k25 in rows(runs):
        net = "vit_fast" if m["name"].startswith("x_vit_fast") else "unet"
        table.setdefault(net, []).append((m["lr"], one, four, k25, m["images_per_s"]))
    lines = ["", "## Round 5: learning rates above the sweep", "",
             "Every network of the benchmarks above chose 3e-3, the top of the swept range "
             "(3e-4, 1e-3, 3e-3). vit_fast and the U-Net again at 3e-3 and at four higher "
             "constant rates (then cooled down as always), one seed, the same protocol and "
             f"machine as rounds 3-4 ({runs[0]['date'][:10]}; three invocations of the "
             "benchmark, two networks at a time: " +
             ", ".join(r["command"].split("--configs ")[1].split(" ")[0].replace(
                 "experiments/variants/", "") for r in runs) + ").", "",
             "| network | lr | images/s | PSNR 1 min | PSNR 4 min | PSNR 25k images |",
             "|---|---:|---:|---:|---:|---:|"]
    best = {}
    for net, entries in table.items():
        for lr, one, four, k25, speed in sorted(entries):
            lines.append(f"| {net} | {lr:g} | {speed:.0f} | {fmt(one)} | {fmt(four)} | "
                         f"{fmt(k25)} |")
        best[net] = [max((e for e in entries if e[i] is not None), key=lambda e: e[i],
                         default=None) for i in (1, 2, 3)]
    lines += ["", "### What it shows", ""]
    for net, picks in best.items():
        low = min(table[net])
        lines.append(f"- {net}: best at " + ", ".join(
            f"{axis} lr {p[0]:g} ({p[i]:.2f} dB; {p[i] - low[i]:+.2f} against lr {low[0]:g})"
            for axis, i, p in zip(("1 min", "4 min", "25k images"), (1, 2, 3), picks)
            if p is not None and low[i] is not None) + ".")
    v, u = best["vit_fast"], best["unet"]
    lines.append("- Each at its best rate, the U-Net against vit_fast: " + ", ".join(
        f"{u[k][i] - v[k][i]:+.2f} dB at {axis}" for k, (axis, i) in
        enumerate((("1 min", 1), ("4 min", 2), ("25k images", 3)))
        if u[k] is not None and v[k] is not None) + ".")
    top = max(e[0] for entries in table.values() for e in entries)
    at_top = sorted({f"{net} at {axis}" for net, picks in best.items()
                     for axis, p in zip(("1 min", "4 min", "25k images"), picks)
                     if p is not None and p[0] == top})
    if at_top:
        lines.append(f"- Best at the highest rate tried ({top:g}), so the edge is still not "
                     f"found: {', '.join(at_top)}. The benchmark's sweep (3e-4 to 3e-3) held "
                     "both networks back; its next run should sweep to 3e-2 and beyond.")
    lines += ["", "![PSNR against the learning rate](variants/rates.png)"]
    quick = json.loads((DATA / "quick_rates.json").read_text())
    lines += ["", "### The vit_fast preset's rate", "",
              "The README's first command (`experiments/quick_report.py`: the preset's cosine "
              "schedule, 270 s cap, 2 torch threads) with the rate, seed and step cap changed; "
              f"{quick['machine']}; command: {quick['command']}.", "",
              "| run | lr | seed | steps | training s | whole s | load at start | PSNR |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, q in quick["runs"].items():
        lines.append(f"| {name} | {q['lr']:g} | {q['seed']} | {q['steps']} / {q['max_steps']} "
                     f"| {q['train_s']:.0f} | {q['whole_s']:.0f} | {q['load_start']:.2f} | "
                     f"{q['final_psnr']:.2f} |")
    runs = quick["runs"]
    gain = [runs[f"vit_fast_lr1e-2{suffix}"]["final_psnr"] - runs[f"vit_fast{suffix}"]["final_psnr"]
            for suffix in ("", "_seed1")]
    lines += ["", f"1e-2 against 2e-3: {gain[0]:+.2f} dB (seed 0), {gain[1]:+.2f} dB (seed 1); "
              f"3e-2 no better than 1e-2 here "
              f"({runs['vit_fast_lr3e-2']['final_psnr'] - runs['vit_fast_lr1e-2']['final_psnr']:+.2f} "
              "dB). The preset now trains at 1e-2 with a 1650-step cap, about what the 270 s "
              "allow on this machine (1650 steps: "
              f"{runs['vit_fast_lr1e-2_e15']['final_psnr'] - runs['vit_fast_lr1e-2']['final_psnr']:+.2f}"
              " dB over 1100). docs/QUICK.md has the preset's own run, which the 270 s stopped "
              "a few steps short of the cap."]
    rate_figure(table)
    return lines


def curve_at(m, key, unit, value):
    return next((p["psnr"] for p in m.get(key) or () if round(p[unit]) == value), None)


def hybrid_section():
    """Rounds 6-8: attention inside the U-Net, globally at its coarse levels or axially at its
    fine ones, against the U-Net and against the same networks without attention."""
    time_runs = [json.loads((DATA / f"round{i}.json").read_text()) for i in (6, 7)]
    image_run = json.loads((DATA / "round8.json").read_text())
    table = {m["name"]: (m, one, four, k25) for m, one, four, k25 in rows(time_runs)}
    per_image = {m["name"]: (m, curve_at(m, "curve", "budget_s", 60),
                             curve_at(m, "curve", "budget_s", 360),
                             curve_at(m, "curve_images", "budget_images", 12800))
                 for m in image_run["methods"] if m.get("kind") == "network"}
    machine = time_runs[0]["machine"]
    lines = ["", "## Rounds 6-8: attention inside the U-Net", "",
             "The error analysis (round 4) puts most of every network's error inside the "
             "clutter, worst inside filled rectangles, where a cell under a bar comes out too "
             "dark or too bright: to undo a bar, a pixel needs the bar's level, which the bar's "
             "other pixels along its row or column show. And the U-Net, not vit_fast, learns "
             "most per image. So attention went into the U-Net: globally over its coarse maps "
             "(vit_unet, a transformer in place of the 8 x 8 or, with levels = 2, the 16 x 16 "
             "double conv), or axially (`layers.AxialBlock`: each position attends along its "
             "row, then its column, across the whole 64 pixels) after the full- or "
             "half-resolution double conv, its branches initialised to zero so that the network "
             "starts as the U-Net. Each network with attention has a twin without it (MLP-only "
             "blocks). Adam 1e-2 (the best rate of vit_fast and near the U-Net's, round 5), one "
             "seed, the protocol above; budgets in process CPU time. This machine is not round "
             f"5's: {machine['cpu']} ({machine['cpu_capability']} kernels), two networks at a "
             f"time with 1 torch thread each ({time_runs[0]['date'][:10]}, nothing else of mine "
             "running but a niced test run).", "",
             "| run | what changes | params | images/s | PSNR 1 min | PSNR 4 min | "
             "PSNR 25k images |", "|---|---|---:|---:|---:|---:|---:|"]
    for name, (m, one, four, k25) in table.items():
        lines.append(f"| {name} | {WHAT.get(name, '')} | {m['params'] / 1e3:.0f} k | "
                     f"{m['images_per_s']:.0f} | {fmt(one)} | {fmt(four)} | {fmt(k25)} |")
    lines += ["", "A dash: 25,000 images not reached within the 4 CPU minutes. Learning per "
              "image, then, from a third run with a budget of 6 min and a mark at 12,800 images "
              f"(200 steps; {image_run['date']}):", "",
              "| run | PSNR 1 min | PSNR 6 min | PSNR 12,800 images |", "|---|---:|---:|---:|"]
    for name, (m, one, six, k13) in per_image.items():
        lines.append(f"| {name} | {fmt(one)} | {fmt(six)} | {fmt(k13)} |")
    unet = per_image["x_unet_lr1e-2"][3]
    best = max(((n, v[3]) for n, v in per_image.items() if n != "x_unet_lr1e-2"
                and v[3] is not None), key=lambda e: e[1])
    lines += ["", "### What it shows", ""]
    for with_attn, without in TWINS:
        gaps = []
        for axis, source, i in (("1 min", table, 1), ("4 min", table, 2),
                                ("12,800 images", per_image, 3)):
            a, b = source[with_attn][i], source[without][i]
            if a is not None and b is not None:
                gaps.append(f"{a - b:+.2f} dB at {axis}")
        lines.append(f"- Attention in {with_attn} (against {without}): {', '.join(gaps)}.")
    ref = table["x_unet_lr1e-2"]
    attentive = [n for n in table if n.startswith(("x_axunet", "x_vit_unet"))
                 and "noattn" not in n]
    top4 = max(attentive, key=lambda n: table[n][2])
    top_image = max((n for n in per_image if n in attentive), key=lambda n: per_image[n][3])
    free = "x_vit_unet_l2_noattn_lr1e-2"
    lines += [
        f"- No network with attention reaches the U-Net: at 4 min the best, {top4}, scores "
        f"{table[top4][2]:.2f} dB against the U-Net's {ref[2]:.2f}; per image the best, "
        f"{top_image}, {per_image[top_image][3]:.2f} dB at 12,800 images against {unet:.2f}. "
        f"The best per image of all runs here is the U-Net ({unet:.2f}; next {best[0]}, "
        f"{best[1]:.2f}).",
        "- Axial attention at full resolution halves the speed: "
        f"{table['x_axunet0'][0]['images_per_s']:.0f} images/s against the U-Net's "
        f"{ref[0]['images_per_s']:.0f} (64-long sequences with 8-wide heads, on which the CPU's "
        "attention kernels do little work per call), and it learns no more per image.",
        f"- A side result without attention: {free}, a U-Net with two down-samplings and an "
        f"MLP-only bottleneck ({per_image[free][0]['params'] / 1e3:.0f} k parameters), scores "
        f"{per_image[free][2]:.2f} dB at 6 min against the U-Net's "
        f"{per_image['x_unet_lr1e-2'][2]:.2f} (one seed; at 4 min, round 6: "
        f"{table[free][2]:.2f} against {ref[2]:.2f}). Not followed up here.",
        f"- vit_fast at 1e-2 on this machine: {table['x_vit_fast_lr1e-2'][1]:.2f} / "
        f"{table['x_vit_fast_lr1e-2'][2]:.2f} dB at 1 / 4 min against the U-Net's "
        f"{ref[1]:.2f} / {ref[2]:.2f}, and {table['x_vit_fast_lr1e-2'][3]:.2f} against "
        f"{ref[3]:.2f} at 25,000 images: the picture of round 5, on another CPU.",
        "- So the attention tried here does not earn its place in a U-Net either. A guess, not "
        "measured here: the U-Net's coarse levels already see a whole bar, and on these "
        "budgets its convolutions learn to use that sooner than attention does.",
        "", "![Hybrids against the U-Net: per CPU time and per image](variants/hybrids.png)"]
    hybrid_figure(table, per_image)
    return lines


def stabiliser_section():
    """Rounds 9-10: QK-norm and LayerScale (timm's qk_norm and init_values), against the same
    networks without them; round 10 with two seeds at the rate where vit_fast's seeds differ."""
    r9, r10 = (json.loads((DATA / f"{n}.json").read_text()) for n in ("round9", "round10"))
    machine = r9["machine"]
    table = {m["name"]: (m, one, four, k25) for m, one, four, k25 in rows([r9])}
    lines = ["", "## Rounds 9-10: QK-norm and LayerScale", "",
             "Why: in the benchmark vit_fast chose Adam 3e-2, where its two seeds scored 31.88 "
             "and 27.92 dB after 1 CPU min, and attention in the hybrids of rounds 6-8 cost "
             "rather than added. Two remedies of the large vision transformers for training at "
             "high rates are now options of `vit_denoiser` and `vit_unet` (`layers.Block`, with "
             "timm's parameter names and numbers, tests/test_timm_parts.py): `qk_norm` "
             "(LayerNorm on each head's queries and keys, so that the attention logits cannot "
             "grow until the softmax saturates; Dehghani et al. 2023) and `layer_scale` (each "
             "branch times a learned per-channel factor starting small, CaiT). Adam 1e-2 "
             "(round 9) and 3e-2 (round 10, two seeds), the protocol above; "
             f"{machine['cpu']} ({machine['cpu_capability']} kernels), two networks at a time "
             f"with 1 torch thread each, nothing else running ({r9['date'][:10]}; dense "
             f"float32 matmul {r9['matmul_gflops']:.0f} GFLOP/s on 1 thread).", "",
             "| run | what changes | params | images/s | PSNR 1 min | PSNR 4 min | "
             "PSNR 25k images |", "|---|---|---:|---:|---:|---:|---:|"]
    for name, (m, one, four, k25) in table.items():
        lines.append(f"| {name} | {WHAT.get(name, '')} | {m['params'] / 1e3:.0f} k | "
                     f"{m['images_per_s']:.0f} | {fmt(one)} | {fmt(four)} | {fmt(k25)} |")
    nets = {m["name"]: m for m in r10["methods"] if m.get("kind") == "network"}
    lines += ["", "A dash: 25,000 images not reached within the 4 CPU minutes.", "",
              f"Round 10 ({r10['date'][:10]}), mean (per seed, seeds 0 / 1):", "",
              "| network | PSNR 1 min | PSNR 4 min | PSNR 25k images |", "|---|---:|---:|---:|"]
    mean = {}
    for name, m in nets.items():
        points = seed_points(m)
        mean[name] = seed_means(points)
        lines.append(f"| {name} | " + " | ".join(seed_cell(v) for v in points) + " |")
    lines += ["", "### What it shows", ""]
    deltas = []
    for a, b in STABLE_PAIRS:
        gaps = [(axis, table[a][i] - table[b][i]) for i, axis in AXES
                if table[a][i] is not None and table[b][i] is not None]
        deltas.append((f"{a}\nagainst {b}", gaps))
        lines.append(f"- {a} against {b}: "
                     + ", ".join(f"{g:+.2f} dB at {axis}" for axis, g in gaps) + ".")
    qk, plain = "x_vit_fast_qk_lr3e-2", "x_vit_fast_lr3e-2"
    gaps = mean_gaps(mean, qk, plain)
    deltas.append((f"{qk}\nagainst {plain}\n(mean of 2 seeds)", gaps))
    spread = {n: seeds_of(nets[n], "time", 60) for n in (qk, plain)}
    lines += [f"- QK-norm at 3e-2 (means of two seeds): "
              + ", ".join(f"{g:+.2f} dB at {axis}" for axis, g in gaps)
              + "; the seeds' spread after 1 CPU min: "
              + ", ".join(f"{n} {max(v) - min(v):.2f} dB" for n, v in spread.items()) + ".",
              "- The seed that falls behind at 3e-2 falls behind with QK-norm too (seed 1: "
              f"{spread[qk][1]:.2f} against {spread[plain][1]:.2f} dB after 1 min): what "
              "makes this rate unreliable is not the growth of the attention logits.",
              "- So neither remedy is kept in a preset: both are options, off by default, "
              "and the gap to the U-Net stands.",
              "", "![QK-norm and LayerScale: gain against the same network without them]"
              "(variants/stabilisers.png)"]
    delta_figure(deltas, "What QK-norm, LayerScale and attention add (one seed unless said; "
                 f"{machine['cpu']}, 1 thread each)", STABLE_FIGURE)
    return lines


def seed_table(nets):
    """Table rows of networks trained on several seeds (PSNR: mean and per seed; SSIM at
    4 min: the mean of the seeds) and each network's mean PSNR per axis."""
    lines = ["| network | images/s | PSNR 1 min | PSNR 4 min | PSNR 25k images | SSIM 4 min |",
             "|---|---:|---:|---:|---:|---:|"]
    mean = {}
    for name, m in nets.items():
        points = seed_points(m)
        mean[name] = seed_means(points)
        ssim = next((p.get("ssim") for p in m["curve"] if round(p["budget_s"]) == 240), None)
        ssim = "–" if ssim is None else f"{ssim:.3f}"
        lines.append(f"| {name} | {m['images_per_s']:.0f} | "
                     + " | ".join(seed_cell(v) for v in points) + f" | {ssim} |")
    return lines, mean


def pair_lines(mean, changed, base):
    """A network with one change (``changed``) against itself without (``base``) and both
    against the U-Net's two runs (the same names with x_unet): the difference figure's bars
    and the report's lines, for every pair both of whose networks ran."""
    unet_changed, unet_base = (name.replace("x_vit_fast", "x_unet") for name in (changed, base))
    deltas, lines = [], []
    for a, b in ((changed, base), (unet_changed, unet_base), (changed, unet_changed),
                 (changed, unet_base)):
        if a not in mean or b not in mean:
            continue
        gaps = mean_gaps(mean, a, b)
        deltas.append((f"{a}\nagainst {b}", gaps))
        lines.append(f"- {a} against {b} (means of two seeds): "
                     + ", ".join(f"{g:+.2f} dB at {axis}" for axis, g in gaps) + ".")
    return deltas, lines


def networks(run):
    return {m["name"]: m for m in run["methods"] if m.get("kind") == "network"}


# what a two-seed round prints before its seed table, and after it
SEED_TABLE_HEAD = ["Mean (per seed, seeds 0 / 1):", ""]
SEED_TABLE_FOOT = ["", "SSIM: the mean of the seeds. A dash: a point not every seed reached.",
                   "", "### What it shows", ""]


def preset_ab_text():
    """The preset-level A/B (experiments/variants/preset_ab.py, docs/variants/preset_ab.json)."""
    runs = json.loads((DATA / "preset_ab.json").read_text())["runs"]

    def pairs(preset):
        return ", ".join(f"{runs[f'{preset}_adam_s{s}']['psnr']:.2f} -> "
                         f"{runs[f'{preset}_adamw_s{s}']['psnr']:.2f} dB (seed {s})" for s in (0, 1))
    unet = [r for r in runs.values() if r["preset"] == "unet"]
    return (f"vit_fast (270 s stop): {pairs('vit_fast')}. The U-Net (3e-2, all "
            f"{max(r['steps'] for r in unet)} steps in {min(r['train_seconds'] for r in unet):.0f}"
            f"-{max(r['train_seconds'] for r in unet):.0f} s): {pairs('unet')}.")


def loss_section():
    """Round 11: the Charbonnier loss against MSE, on vit_fast and on the U-Net, two seeds."""
    run = json.loads((DATA / "round11.json").read_text())
    nets = networks(run)
    lines = ["", "## Round 11: the Charbonnier loss", "",
             "Why: Restormer, SwinIR and many restoration networks train on the Charbonnier "
             "loss, mean sqrt(d**2 + eps**2) with eps = 1e-3 (a smooth L1), rather than on "
             "MSE; it is now a training option (`loss = \"charbonnier\"`). Scored as always "
             "by PSNR, which MSE measures. vit_fast and the U-Net, each with either loss, Adam "
             f"1e-2, two seeds, the protocol above ({run['date'][:10]}; seed 0 of the vit_fast "
             "pair ran first, the rest in a second invocation with --resume).", "",
             *SEED_TABLE_HEAD]
    table, mean = seed_table(nets)
    lines += table + SEED_TABLE_FOOT
    deltas, found = pair_lines(mean, "x_vit_fast_charb_lr1e-2", "x_vit_fast_lr1e-2")
    lines += found
    seed0 = [seeds_of(nets[n], "time", 240)[0] for n in ("x_vit_fast_charb_lr1e-2",
                                                           "x_vit_fast_lr1e-2")]
    lines += [f"- Seed 0 alone pointed the other way for vit_fast ({seed0[0] - seed0[1]:+.2f} dB "
              "at 4 min); seed 1 reversed it. PSNR is what MSE minimises, and on these data "
              "the Charbonnier loss costs PSNR for both networks while SSIM (mean of the "
              "seeds) rises a little: the presets keep MSE.",
              "", "![The Charbonnier loss against MSE](variants/charbonnier.png)"]
    delta_figure(deltas, "The Charbonnier loss: means of two seeds "
                 f"({run['machine']['cpu']}, 1 thread each)", DATA / "charbonnier.png")
    return lines


def optimizer_section():
    """Round 12: AdamW's decoupled weight decay against Adam, on vit_fast and on the U-Net, two
    seeds each (one invocation per network); and the same baseline as round 11's, to show how
    far a rerun moves."""
    runs = [json.loads((DATA / name).read_text()) for name in ("round12.json", "round12b.json")]
    nets = {**networks(runs[0]), **networks(runs[1])}
    lines = ["", "## Round 12: AdamW's weight decay", "",
             "Why: issue 11 names AdamW without decay on norms and biases among what helps "
             "small restoration transformers (DeiT and Swin train with AdamW and decay 0.05, "
             "Restormer with 1e-4); the project's `optimizer = \"adamw\"` with "
             "`weight_decay` decays weight matrices and kernels only (timm's grouping: not "
             "norms, biases or position embeddings). Each network at 1e-2 with AdamW and decay "
             "0.05 against the same with Adam, two seeds, the protocol above "
             f"({runs[0]['date'][:10]}, {runs[0]['machine']['cpu']}; the vit_fast pair in one "
             "invocation, the U-Net pair in the next).", "",
             *SEED_TABLE_HEAD]
    table, mean = seed_table(nets)
    lines += table + SEED_TABLE_FOOT
    deltas, found = pair_lines(mean, "x_vit_fast_adamw_lr1e-2", "x_vit_fast_lr1e-2")
    lines += found
    adam = "x_vit_fast_lr1e-2"
    before = networks(json.loads((DATA / "round11.json").read_text())).get(adam)
    if before is not None and adam in mean:
        again = mean_gaps({"now": mean[adam], "then": seed_means(seed_points(before))},
                          "now", "then")
        lines.append("- The same vit_fast run (same config, same seeds) against round 11's, a "
                     "few hours apart on the same kind of machine: "
                     + ", ".join(f"{g:+.2f} dB at {axis}" for axis, g in again)
                     + ". Runs of different invocations compare to about 0.3 dB here; the "
                     "vit_fast-against-U-Net lines above are such a comparison (the two pairs "
                     "ran one after the other).")
    def per_seed(a, b, budget):
        return " / ".join(f"{x - y:+.2f}" for x, y in zip(seeds_of(nets[a], "time", budget),
                                                          seeds_of(nets[b], "time", budget)))

    lines += [f"- Per seed at 4 min: vit_fast {per_seed('x_vit_fast_adamw_lr1e-2', adam, 240)} "
              f"dB, the U-Net {per_seed('x_unet_adamw_lr1e-2', 'x_unet_lr1e-2', 240)} dB: both "
              "seeds of both networks gain. At 1 min the gains are inside the seeds' spread "
              f"(vit_fast {per_seed('x_vit_fast_adamw_lr1e-2', adam, 60)}, the U-Net "
              f"{per_seed('x_unet_adamw_lr1e-2', 'x_unet_lr1e-2', 60)} dB).",
              "- With AdamW on both, vit_fast and the U-Net tie at 4 min and vit_fast leads at "
              "1 min, as with Adam on both (the U-Net 0.16 dB ahead at 4 min): the decay helps "
              "both networks about alike and does not change their order. The "
              "U-Net's runs made 101-109 images/s in this invocation (116 in round 11) and did "
              "not reach 25,000 images within 4 CPU min, so the per-image axis has vit_fast "
              "only.",
              "- The presets train on their own cosine schedules at 2 threads and a wall-clock "
              "stop, which this protocol does not reproduce, so the change was tried there too: "
              "`denoise-vit train --config PRESET seed=S` against the same with `optimizer=adamw "
              "weight_decay=0.05` (`python experiments/variants/preset_ab.py`; 2-core EPYC, one "
              "run after another alone under the CPU lock, 2026-12-03). "
              + preset_ab_text() + " Both presets (and vit_fast_no_attention) train with "
              "AdamW and decay 0.05 since; `denoise-vit benchmark` gives every network the same "
              "optimizer (`--optimizer`, default adam, as its documented run), so this round's "
              "command now needs `--optimizer config`, which keeps each config's own.",
              "", "![AdamW's weight decay against Adam](variants/adamw.png)"]
    delta_figure(deltas, "AdamW (decay 0.05) against Adam: means of two seeds "
                 f"({runs[0]['machine']['cpu']}, 1 thread each)", DATA / "adamw.png")
    return lines


def ema_section():
    """Round 17: EMA of weights on vit_fast, paired (experiments/variants/ema.py): the raw
    weights and their averages along the same run, per seed."""
    runs = [json.loads(path.read_text()) for path in sorted(DATA.glob("ema_s*.json"))]
    if not runs:
        return []
    keys = [f"ema_{d:g}" for d in runs[0]["decays"]]
    first = runs[0]
    lines = ["", "## Round 17: EMA of weights", "",
             "Why: issue 11 names an exponential moving average of the weights (EMA) among what "
             "helps small restoration transformers. Measured paired: one training run per seed, "
             "and at the end of each epoch its raw weights and their EMAs of several decays "
             "(timm.utils.ModelEmaV3 with a warm-up, the decay at step t being "
             "min(d, 1 - 1/(1 + t)), a plain average of the steps so far until it reaches d; "
             "timm's default power 2/3 would reach 0.99 only at step 999 and 0.995 after the "
             "run; BatchNorm statistics averaged too) scored on the same "
             "evaluation set, so the comparison carries no seed noise. The preset's own "
             f"schedule by steps ({first['config']}: {first['optimizer']} {first['lr']:g}, "
             f"batch {first['batch_size']}, warm-up then {first['schedule']} over "
             f"{first['steps']} steps; its 270 s stop off), seeds "
             f"{', '.join(str(r['seed']) for r in runs)}, one process per seed at "
             f"{first['threads']} torch thread each, both at once "
             f"({first['date'][:10]}, {first['machine']['cpu']} "
             f"({first['machine']['cpu_capability']} kernels)). Command: "
             "`python experiments/variants/ema.py --seed S`.", "",
             "| seed | step | rate | raw | " + " | ".join(
                 f"EMA {k[4:]}" for k in keys) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(keys)]
    picks = (first["steps"] // 5, first["steps"] // 2, (first["steps"] * 4) // 5, first["steps"])
    for run in runs:
        chosen = {min(range(len(run["rows"])), key=lambda i: abs(run["rows"][i]["step"] - p))
                  for p in picks}
        for row in (run["rows"][i] for i in sorted(chosen)):
            lines.append(f"| {run['seed']} | {row['step']} | {row['lr']:.1e} | "
                         f"{row['raw']:.2f} | " + " | ".join(
                             f"{row[k]:.2f} ({row[k] - row['raw']:+.2f})" for k in keys) + " |")
    ends = {k: [r["rows"][-1][k] - r["rows"][-1]["raw"] for r in runs] for k in keys}
    mids = {k: [max(r["rows"], key=lambda row: row[k] - row["raw"]) for r in runs] for k in keys}
    best = max(keys, key=lambda k: sum(ends[k]))
    lines += ["", "### What it shows", "",
              "- At the end of the schedule, where the rate has decayed to its floor, the EMAs "
              "add " + "; ".join(f"{k[4:]}: " + " / ".join(f"{g:+.2f}" for g in ends[k])
                                 for k in keys)
              + " dB (per seed) to the raw weights.",
              "- Midway, at a high rate, the shortest average is worth far more (each EMA's best difference from the "
              "raw weights along each seed's run: " + "; ".join(
                  f"{k[4:]}: " + " / ".join(f"{row[k] - row['raw']:+.2f} at step {row['step']}"
                                            for row in mids[k]) for k in keys)
              + " dB): it averages out the noise of a high rate, which the cosine decay (and "
              "the benchmark's cooldown) removes by the end as well. Early on every average "
              "loses (the table's first rows): the weights move too far for their mean to be a "
              "good network, and 0.999, which averages about the last 1000 steps, still carries "
              "the early ones at the end.",
              f"- So EMA is not kept: the best decay here ({best[4:]}) adds "
              f"{min(ends[best]):+.2f} to {max(ends[best]):+.2f} dB where the preset ends, "
              "inside what a rerun moves, and it cannot close the U-Net's lead (round 12 and "
              "the benchmark). An EMA would pay in a run stopped early at a high rate, which "
              "`denoise-vit train` does not do: its schedules end with the budget.",
              "", "![EMA of weights against the raw weights along one run](variants/ema.png)"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    for i, run in enumerate(runs):
        steps = [row["step"] for row in run["rows"]]
        style = dict(marker="o", ms=3, ls="-" if i == 0 else "--")
        left.plot(steps, [row["raw"] for row in run["rows"]], color="black",
                  label=f"raw, seed {run['seed']}", **style)
        for j, k in enumerate(keys):
            left.plot(steps, [row[k] for row in run["rows"]], color=f"C{j}",
                      label=f"EMA {k[4:]}, seed {run['seed']}", **style)
            right.plot(steps, [row[k] - row["raw"] for row in run["rows"]], color=f"C{j}",
                       label=f"EMA {k[4:]}, seed {run['seed']}", **style)
    left.set(xlabel="training step", ylabel="PSNR on the evaluation set (dB)", ylim=(15, 37),
             title="raw weights and their EMAs")
    right.axhline(0, color="0.5", lw=0.8)
    right.set(xlabel="training step", ylabel="EMA - raw weights (dB)", ylim=(-3, 3),
              title="the difference (points below -3 dB are off the axis)")
    left.legend(fontsize=7, ncol=2)
    fig.suptitle(f"EMA of weights on {first['config']}, paired per seed "
                 f"({first['machine']['cpu']}, {first['date'][:10]})", fontsize=10)
    fig.tight_layout()
    fig.savefig(DATA / "ema.png", dpi=110)
    plt.close(fig)
    return lines


def restormer_section():
    """Round 18: Restormer's transformer block (transposed attention across channels, MDTA,
    and the gated depthwise feed-forward, GDFN) in the U-Net, against the U-Net and against the
    same networks without MDTA."""
    run = json.loads((DATA / "round18.json").read_text())
    machine = run["machine"]
    table = {m["name"]: (m, one, four) for m, one, four, _ in rows([run])}
    unet = table["x_unet_lr1e-2"]
    lines = ["", "## Round 18: Restormer's blocks in the U-Net", "",
             "Why: issue 11 names Restormer among the designs that help small restoration "
             "transformers, and rounds 6-8 found global attention over tokens too slow at the "
             "U-Net's fine levels (axial attention at full resolution halved its speed). "
             "Restormer (Zamir et al. 2022) transposes attention: each head's attention map is "
             "channels x channels, its queries and keys being the channels' maps L2-normalised "
             "over all positions, so it costs as much as a few 1 x 1 convolutions at any "
             "resolution and every output position draws on the whole map (MDTA); its "
             "feed-forward branch is gated with 3 x 3 depthwise convs (GDFN). "
             "`layers.TransposedAttentionBlock` is that block (after swz30/Restormer's "
             "restormer_arch.py: bias-free convs, expansion 2.66, LayerNorm over channels); "
             "`vit_unet`'s `mdta_levels` puts one after the U-Net's double conv at those levels "
             "(heads of 32 channels, branches initialised to zero so the network starts as the "
             "U-Net), and `attention = false` keeps its GDFN only. Adam 1e-2, one seed, the "
             f"protocol above; {machine['cpu']} ({machine['cpu_capability']} kernels), two "
             f"networks at a time with 1 torch thread each, nothing else running "
             f"({run['date'][:16].replace('T', ' ')}; dense float32 matmul "
             f"{run['matmul_gflops']:.0f} GFLOP/s on 1 thread).", "",
             "| run | what changes | params | images/s (1 thread) | PSNR 1 min | PSNR 4 min |",
             "|---|---|---:|---:|---:|---:|"]
    for name, (m, one, four) in table.items():
        lines.append(f"| {name} | {WHAT.get(name, '')} | {m['params'] / 1e3:.0f} k | "
                     f"{m['images_per_s']:.0f} | {fmt(one)} | {fmt(four)} |")
    images = {name: m["curve"][-1]["images"] for name, (m, _, _) in table.items()}
    lines += ["", "No network reached the 25,000-image mark within 4 CPU minutes (the U-Net "
              f"saw {images['x_unet_lr1e-2']:,} images, the Restormer hybrids "
              f"{min(images.values()):,}-{max(v for n, v in images.items() if n != 'x_unet_lr1e-2'):,}),"
              " so this round has the time axis only.", "", "### What it shows", ""]
    deltas = []
    for a, b in (("x_mdta_coarse_lr1e-2", "x_mdta_coarse_noattn_lr1e-2"),
                 ("x_mdta_lr1e-2", "x_mdta_noattn_lr1e-2"),
                 ("x_mdta_coarse_lr1e-2", "x_unet_lr1e-2")):
        gaps = [(axis, table[a][i] - table[b][i]) for i, axis in AXES[:2]]
        deltas.append((f"{a}\nagainst {b}", gaps))
        what = "MDTA" if "noattn" in b else "The blocks with MDTA"
        lines.append(f"- {what} in {a} (against {b}): "
                     + ", ".join(f"{g:+.2f} dB at {axis}" for axis, g in gaps) + ".")
    coarse, full = table["x_mdta_coarse_lr1e-2"], table["x_mdta_lr1e-2"]
    lines += [
        f"- The blocks cost speed before they can add anything: {coarse[0]['images_per_s']:.0f} "
        f"images/s with the two coarse blocks and {full[0]['images_per_s']:.0f} with a block at "
        f"every level, against the U-Net's {unet[0]['images_per_s']:.0f}. At full resolution "
        "the GDFN's depthwise convs (16 channels expanded to 2 x 42) are most of that cost, "
        "with or without MDTA.",
        f"- No Restormer hybrid reaches the U-Net at either budget (best at 4 min "
        f"{max(v[2] for n, v in table.items() if n != 'x_unet_lr1e-2'):.2f} dB against "
        f"{unet[2]:.2f}), and MDTA adds less than a seed moves (round 10: 1-3 dB between two "
        "seeds after 1 min). Not kept: `mdta_levels` stays an option, off by default, "
        "and no preset uses it.",
        "- The benchmark's GFLOP/s figure for these networks (in the json) is not a rate to "
        "quote: torch's FlopCounterMode counts far more work in the backward pass of the "
        "depthwise convs than in their forward pass (a training step counted at "
        f"{coarse[0]['train_flops_per_image'] / coarse[0]['flops']:.0f} times the forward), "
        "which puts them above the matmul rate. Checked on one layer when this report is "
        "written: a 3 x 3 conv of 84 channels counts "
        f"{conv_count_ratio(1):.0f} times its forward for forward and backward when dense, "
        f"{conv_count_ratio(84):.0f} times when depthwise (groups=84; torch {torch.__version__}'s "
        "counter treats the weight gradient of a grouped conv as a dense one).",
        "", "![Restormer blocks: what MDTA and the blocks add](variants/restormer.png)"]
    delta_figure(deltas, "Round 18: Restormer blocks in the U-Net (one seed; "
                 f"{machine['cpu']}, 1 thread each)", DATA / "restormer.png")
    return lines


# Round 19: (label, what changes, the ablation report's path under docs/), the first the baseline
ATTENTION_DESIGNS = (
    ("at 1e-2", "vit_fast as the preset was until 2026-12-07 (output conv at zero, rate 1e-2)",
     "zero_init/attention_ablation.json"),
    ("relative position bias", "`model.rel_pos_bias = true`: Swin's learned logit per head "
     "and token offset, the table starting at zero", "rel_pos/attention_ablation.json"),
    ("output gate", "`model.gate = true`: sigmoid(g) * input + b, the gate starting nearly shut "
     "(round 3-4's gate, now with the zeroed output conv)", "gate_zero/attention_ablation.json"),
    ("larger clutter (data)", "not the network but the data: filled rectangles 48-64 px long "
     "(20-50), noisy ones 24-48 px a side (10-30), for training and evaluation alike "
     "(noisy input 11.0 dB, against 15.0)", "big_clutter/attention_ablation.json"),
    ("at 3e-2", "`lr = 0.03`: the preset as it is since 2026-12-07", "lr3e-2/attention_ablation.json"),
    ("at 1e-2, per image", "the preset until 2026-12-07, 50,000 training images",
     "zero_init/attention_ablation_images_50000.json"),
    ("at 3e-2, per image", "the preset since 2026-12-07, 50,000 training images; the "
     "benchmark, whose protocol chose 3e-2, measured attention at +1.21 dB there",
     "lr3e-2/attention_ablation_images_50000.json"),
)
ATTENTION_FIGURE = DATA / "attention_designs.png"


def attention_design_section():
    """Round 19: designs meant to make attention matter, each measured as the attention ablation
    measures vit_fast (experiments/attention_ablation.py: paired by seed against the same network
    with MLP-only blocks)."""
    found = [(label, what, json.loads((ROOT / "docs" / path).read_text()), path)
             for label, what, path in ATTENTION_DESIGNS if (ROOT / "docs" / path).exists()]
    if not found:
        return []
    arm, twin = "vit_fast", "vit_fast_no_attention"
    machine = found[0][2]["machine"]
    lines = ["", "## Round 19: designs meant to make attention matter", "",
             "Why: issue 11, item 4 asks attention to add at least 1 dB to the transformer "
             "preset, and the attention ablation (docs/ATTENTION.md, docs/zero_init/) puts it at "
             "about -0.7 dB at 240 CPU s, 0 dB per image. Its locality report (docs/LOCALITY.md) "
             "finds vit_fast's heads near uniform after training: attention there is a global "
             "average, which a network can ignore. Two changes to the network that could give "
             "attention something to do, one to the data, and one rate. Each row is `experiments/attention_ablation.py` "
             "with `--set`, which applies to both arms (the gate, the data and the rate change "
             "both; the relative position bias lives in the attention, so the twin is "
             "unchanged by it): vit_fast "
             "against the same network with MLP-only blocks, paired by seed, 240 s of process "
             "CPU time or 50,000 training images each, AdamW 0.01 (where the row does not set "
             "another rate) with decay 0.05, warm-up 50 "
             "steps, the cosine decayed over the budget, the output conv starting at zero as in "
             f"the presets since 2026-12-06; {machine['cpu']} ({machine['cpu_capability']} "
             f"kernels), {machine['cores']} cores, {machine['torch_threads']} torch threads, one "
             "run at a time alone under the CPU lock (other processes 1-2 % of the CPU; each "
             "report's table has the load per run). The baseline rows are the ablation's "
             "(2026-12-06 evening); the others ran on 2026-12-07 from 00:39.", "",
             "| change | axis | seeds | with attention (dB) | MLP-only (dB) | attention adds | "
             "95 % interval | steps (attention / MLP-only) | report |",
             "|---|---|---:|---:|---:|---:|---|---|---|"]
    figure = []
    for label, what, rep, path in found:
        gap = rep["gaps"][arm][twin]
        seeds = sorted(gap["per_seed"], key=int)
        psnr, _ = paired_means(rep, arm, twin)
        per = {(r["preset"], str(r["seed"])): r for r in rep["runs"]}
        steps = lambda preset: [per[preset, s]["steps"] for s in seeds]  # noqa: E731
        axis = (f"{rep['images']:,} images" if rep.get("images")
                else f"{rep['cpu_seconds']:.0f} CPU s")
        low, high = gap["interval"] if gap.get("interval") else (None, None)
        interval = f"{low:+.2f} to {high:+.2f}" if low is not None else "–"
        span = lambda v: f"{min(v)}" if min(v) == max(v) else f"{min(v)}-{max(v)}"  # noqa: E731
        folder = Path(path).parent
        lines.append(f"| {label}: {what} | {axis} | {len(seeds)} | {psnr[arm]:.2f} | "
                     f"{psnr[twin]:.2f} | **{gap['gap_db']:+.2f}** | {interval} | "
                     f"{span(steps(arm))} / {span(steps(twin))} | "
                     f"[{folder}/ATTENTION.md]({folder}/ATTENTION.md) |")
        figure.append((f"{label}\n({axis})", [gap["per_seed"][s] for s in seeds],
                       gap["gap_db"], (low, high)))
    best = max(found, key=lambda f: f[2]["gaps"][arm][twin]["gap_db"])
    best_gap = best[2]["gaps"][arm][twin]
    lines += ["", "### What it shows", "",
              f"- No change brings attention to the goal: the best row, {best[0]}, has "
              f"attention adding {best_gap['gap_db']:+.2f} dB"
              + (f" (95 % interval {best_gap['interval'][0]:+.2f} to "
                 f"{best_gap['interval'][1]:+.2f})" if best_gap.get("interval") else "")
              + ", and every interval lies below +1 dB."]
    lines += round19_reading({label: rep for label, _, rep, _ in found}, arm, twin)
    lines += ["", "![Round 19: what attention adds, per seed and design](variants/"
              "attention_designs.png)"]
    attention_design_figure(figure)
    return lines


def paired_means(rep, arm, twin):
    """Each arm's mean PSNR and mean steps over the seeds both ran (those of the paired gap)."""
    seeds = sorted(rep["gaps"][arm][twin]["per_seed"], key=int)
    per = {(r["preset"], str(r["seed"])): r for r in rep["runs"]}
    return ({p: sum(per[p, s]["psnr"] for s in seeds) / len(seeds) for p in (arm, twin)},
            {p: sum(per[p, s]["steps"] for s in seeds) / len(seeds) for p in (arm, twin)})


def preset_rate_lines():
    """The vit_fast preset at 1e-2 against 3e-2 as `denoise-vit train` runs it
    (experiments/variants/preset_rate.py, docs/variants/preset_rate.json)."""
    path = DATA / "preset_rate.json"
    if not path.exists():
        return []
    runs = json.loads(path.read_text())["runs"].values()
    by = {(r["lr"], r["seed"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    low, high = sorted({r["lr"] for r in runs})[:2]
    loads = [r["loadavg_before"] for r in runs if r.get("loadavg_before") is not None]
    other = [r["other_processes_cpu_share"] for r in runs
             if r.get("other_processes_cpu_share") is not None]
    pairs = [(by[low, s], by[high, s]) for s in seeds if (low, s) in by and (high, s) in by]
    return [f"- The preset as `denoise-vit train --config vit_fast seed=S lr=R` runs it (its "
            f"cosine over 1650 steps, the 270-s wall-clock stop, two threads; `python "
            f"experiments/variants/preset_rate.py`, one run after another alone under the CPU "
            f"lock, load average {min(loads):.1f}-{max(loads):.1f} before each, other processes "
            f"{max(other):.0%} of the CPU at most): {low:g} -> {high:g} gives "
            + ", ".join(f"{a['psnr']:.2f} -> {b['psnr']:.2f} dB on seed {a['seed']} "
                        f"({a['steps']} / {b['steps']} steps)" for a, b in pairs)
            + f". Every measurement of this round puts {high:g} ahead, so vit_fast and its "
              f"three ablation twins train at {high:g} since 2026-12-07. It does not close the "
              "U-Net's lead (README: 39.79 / 39.78 dB on seeds 0 / 1 under the same command)."]


def unet_reference():
    """The U-Net at the same protocol (docs/zero_init.json: 240 CPU s, zero init, its preset's
    3e-2), for item 3; empty if that report is absent."""
    path = ROOT / "docs" / "zero_init.json"
    if not path.exists():
        return ""
    zero = [r["psnr"] for r in json.loads(path.read_text())["runs"]
            if r["preset"] == "unet" and r["arm"] == "zero"]
    if not zero:
        return ""
    return (f"The U-Net under the same protocol, its output conv at zero and its preset's 3e-2, "
            f"scored {sum(zero) / len(zero):.2f} dB ({len(zero)} seeds, docs/ZERO_INIT.md, the "
            "evening before): vit_fast at 3e-2 stays below it, the MLP-only twin, which is no "
            "transformer, above it.")


def round19_reading(reps, arm, twin):
    """The round's bullets, from the reports' numbers (the rows present)."""
    def means(label):
        return paired_means(reps[label], arm, twin)

    def gap(label):
        return reps[label]["gaps"][arm][twin]["gap_db"]

    lines = []
    base = "at 1e-2"
    if base in reps:
        _, steps = means(base)
        lines.append(f"- At equal CPU time attention is first a cost: vit_fast at 1e-2 makes "
                     f"{steps[arm]:.0f} steps in the 240 s, its MLP-only twin {steps[twin]:.0f} "
                     f"({1 - steps[arm] / steps[twin]:.0%} fewer).")
    per_image = [label for label in ("at 1e-2, per image", "at 3e-2, per image")
                 if label in reps]
    if per_image:
        lines.append("- Per training image, where that cost does not count, attention adds "
                     + " and ".join(f"{gap(label):+.2f} dB ({label.split(',')[0]})"
                                    for label in per_image)
                     + ": the twins learn as much from each image, so attention's deficit at "
                       "equal CPU time is its cost, not a worse network.")
    if base in reps and "relative position bias" in reps:
        (m0, _), (m1, _) = means(base), means("relative position bias")
        lines.append(f"- Swin's relative position bias lets each head learn a static pattern "
                     f"over the token grid (a row, a column, a neighbourhood) at once, without "
                     f"waiting for its queries and keys: vit_fast with it scores {m1[arm]:.2f} "
                     f"dB, without it {m0[arm]:.2f} (the second from the evening before; runs "
                     "of different invocations compare to about 0.3 dB). A token mixer the "
                     "network can learn quickly changes nothing: the MLP-only twin, which mixes "
                     "no tokens at all, stays ahead.")
    if base in reps and "output gate" in reps:
        (m0, _), (m1, _) = means(base), means("output gate")
        lines.append(f"- The output gate, which in round 4 (default init, one seed) gave "
                     f"attention +3.18 dB at 25k images, does not with the zeroed output conv: "
                     f"attention adds {gap('output gate'):+.2f} dB, and both arms score lower "
                     f"with the gate than without ({m1[arm]:.2f} / {m1[twin]:.2f} dB against "
                     f"{m0[arm]:.2f} / {m0[twin]:.2f}). Round 4's figure was one seed of an init "
                     "whose seeds spread by up to 4.7 dB (round 3-4); with the zero init it "
                     "does not come back.")
    if "larger clutter (data)" in reps:
        lines.append(f"- With clutter larger than the conv stem's reach (its receptive field is "
                     f"15 px; filled rectangles now 48-64 px long) attention's cost shrinks to "
                     f"{gap('larger clutter (data)'):+.2f} dB but stays a cost. This is a change "
                     "of the data, not of the design, and does not count for the goal: it asks "
                     "whether attention would pay where long-range context is needed, and at "
                     "240 CPU s it does not.")
    if "at 3e-2" in reps and base in reps:
        (m0, _), (m1, _) = means(base), means("at 3e-2")
        lines.append(f"- At 3e-2, the rate the benchmark's sweep chose, attention adds "
                     f"{gap('at 3e-2'):+.2f} dB at 240 CPU s. vit_fast itself scores "
                     f"{m1[arm]:.2f} dB there against {m0[arm]:.2f} at 1e-2 (runs "
                     f"of two invocations), and its MLP-only twin {m1[twin]:.2f} against "
                     f"{m0[twin]:.2f}: the rate lifts both. " + unet_reference())
    if "at 3e-2, per image" in reps and "at 1e-2, per image" in reps:
        (m0, _), (m1, _) = means("at 1e-2, per image"), means("at 3e-2, per image")
        lines.append(f"- Per image, 3e-2 raises both arms (vit_fast {m0[arm]:.2f} -> "
                     f"{m1[arm]:.2f} dB, the twin {m0[twin]:.2f} -> {m1[twin]:.2f}) and leaves "
                     "attention's gap where it was. The benchmark's +1.21 dB at 50,000 images "
                     "(two seeds, default init, Adam at a constant 3e-2 then a cooldown) is "
                     "then not reproduced with the presets' zero init and schedule.")
    lines += preset_rate_lines()
    lines.append("- What this round leaves: on these data and budgets the token mixing that "
                 "attention provides is not what limits vit_fast; its conv stem, the stem's "
                 "skips and its decoder carry the quality, and per-token MLPs do as well as "
                 "attention blocks. The relative position bias stays an option "
                 "(`model.rel_pos_bias`, off in every preset); issue 11's item 4 is not met.")
    return lines


def attention_design_figure(rows_):
    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.6 * len(rows_)))
    for y, (label, per_seed, mean, (low, high)) in enumerate(rows_):
        ax.scatter(per_seed, [y] * len(per_seed), color="tab:blue", s=18, zorder=3,
                   label="one seed" if y == 0 else None)
        if low is not None:
            ax.plot([low, high], [y, y], color="black", lw=1.5, zorder=2,
                    label="95 % interval of the mean" if y == 0 else None)
        ax.scatter([mean], [y], color="black", marker="|", s=200, zorder=4,
                   label="mean" if y == 0 else None)
    ax.axvline(0, color="gray", lw=0.8)
    ax.axvline(1, color="tab:red", ls="--", lw=1, label="goal: +1 dB")
    ax.set_yticks(range(len(rows_)), [r[0] for r in rows_], fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel="attention adds (dB): vit_fast minus its MLP-only twin, same seed",
           title="Round 19: designs meant to make attention matter")
    ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    fig.savefig(ATTENTION_FIGURE, dpi=110)
    plt.close(fig)


def conv_count_ratio(groups, channels=84, size=64):
    """FLOPs torch's FlopCounterMode counts for a 3 x 3 conv's forward and backward, over those
    it counts for its forward alone (counted, not timed)."""
    from torch.utils.flop_counter import FlopCounterMode

    conv = torch.nn.Conv2d(channels, channels, 3, padding=1, groups=groups)
    x = torch.randn(2, channels, size, size, requires_grad=True)
    counts = []
    for backward in (False, True):
        with FlopCounterMode(display=False) as counter:
            y = conv(x)
            if backward:
                y.sum().backward()
        counts.append(counter.get_total_flops())
    return counts[1] / counts[0]


def hybrid_figure(table, per_image):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for name, (m, one, four, _) in table.items():
        style = dict(marker="o", lw=2.5 if name in ("x_unet_lr1e-2", "x_vit_fast_lr1e-2") else 1,
                     color="black" if name == "x_unet_lr1e-2" else None,
                     ls="--" if "noattn" in name else "-")
        axes[0].plot([1, 4], [one, four], label=name, **style)
    axes[0].set(xlabel="training budget (min of process CPU time)", ylabel="PSNR (dB)",
                title="PSNR against CPU time (rounds 6-7)", xticks=[1, 4])
    axes[0].legend(fontsize=7)
    reached = [(n, v[3]) for n, v in per_image.items() if v[3] is not None]
    axes[1].barh([n for n, _ in reached], [v for _, v in reached],
                 color=["black" if n == "x_unet_lr1e-2" else
                        "tab:gray" if "noattn" in n else "tab:blue" for n, _ in reached])
    for y, (_, v) in enumerate(reached):
        axes[1].text(v + 0.05, y, f"{v:.2f}", va="center", fontsize=8)
    low = min(v for _, v in reached)
    axes[1].set(xlabel="PSNR (dB) after 12,800 training images (round 8)",
                xlim=(low - 1.5, max(v for _, v in reached) + 0.8),
                title="Learning per image (grey: without attention)")
    fig.tight_layout()
    fig.savefig(HYBRID_FIGURE, dpi=110)


def rate_figure(table):
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, (i, title) in zip(axes, AXES):
        for net, entries in table.items():
            pts = sorted((e[0], e[i]) for e in entries if e[i] is not None)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=net,
                    color="black" if net == "unet" else "tab:blue")
        ax.set_xscale("log")
        rates = sorted({e[0] for entries in table.values() for e in entries})
        ax.set_xticks(rates, [f"{r:g}" for r in rates], fontsize=8)
        ax.minorticks_off()
        ax.set(title=f"PSNR at {title}", xlabel="learning rate (Adam, constant, cooled down)",
               ylabel="PSNR (dB)" if i == 1 else None)
    axes[0].axvline(3e-3, color="gray", ls=":", lw=1)
    axes[0].legend(fontsize=8)
    fig.suptitle("vit_fast and the U-Net above the benchmark's swept range (dotted: its top, "
                 "3e-3); one seed", fontsize=10)
    fig.tight_layout()
    fig.savefig(RATE_FIGURE, dpi=110)


ROUND20 = DATA / "round20" / "benchmarks.json"
ROUND20_FIGURE = DATA / "unet_transformers.png"
ROUND20_POINTS = (("time", 60, "1 min"), ("time", 240, "4 min"), ("images", 12800, "12,800 images"))
ROUND20_UNET = "x_unet_zero_adamw_lr1e-2"
ROUND20_TWINS = (("x_vit_unet_zero_lr1e-2", "x_vit_unet_zero_noattn_lr1e-2"),
                 ("x_vit_unet_l2_zero_lr1e-2", "x_vit_unet_l2_zero_noattn_lr1e-2"))


def paired(a, b):
    """Per-seed differences a - b (the seeds both have), or None."""
    if a is None or b is None:
        return None
    return [x - y for x, y in zip(a, b)]


def gap_text(diffs):
    """'+0.12 dB (seeds +0.30 / -0.06)'."""
    return (f"{sum(diffs) / len(diffs):+.2f} dB (seeds "
            + " / ".join(f"{d:+.2f}" for d in diffs) + ")")


def unet_transformer_section():
    """Round 20: vit_unet, the U-Net with a transformer at its bottleneck, given what the U-Net
    preset has since 2026-12-06 (the output conv at zero, AdamW): does the transformer closest
    to the U-Net match it, and does its attention add anything against MLP-only blocks?"""
    if not ROUND20.exists():
        return []
    run = json.loads(ROUND20.read_text())
    machine = run["machine"]
    nets = {m["name"]: m for m in run["methods"] if m.get("kind") == "network"}
    per = {name: [seeds_of(m, which, budget) for which, budget, _ in ROUND20_POINTS]
           for name, m in nets.items()}
    seeds = max(len(v) for vs in per.values() for v in vs if v)
    lines = ["", "## Round 20: the U-Net's transformer with the U-Net's start", "",
             "Why: issue 11, item 3 asks the best transformer preset to score at least as high as "
             "the U-Net at every budget and per image, and the U-Net pulls away per image (docs/"
             "benchmark-zero-init/BENCHMARKS.md, 2026-12-07: 41.09 dB against vit_fast's 36.71 "
             "at 50,000 images). The transformer preset built on the U-Net, vit_unet (the U-Net "
             "with its 8 x 8 double conv replaced by two transformer blocks), was last measured "
             "with PyTorch's default init and Adam (rounds 6-10); since then the output conv at "
             "zero lifted the U-Net by 3.9 dB at 240 CPU s (docs/ZERO_INIT.md) and AdamW by about "
             "1 dB. `vit_unet` now has `zero_init_out` too. Here it gets both, as the U-Net "
             "reference does; each with its MLP-only twin, and at levels = 2 (the transformer "
             "over the 16 x 16 map, width 64). AdamW 1e-2 with decay 0.05 for all (the rate the "
             "benchmark's sweep chose for the U-Net that morning), "
             f"{seeds} seeds each, the cooldown protocol at 1 and 4 CPU min and 12,800 images; "
             f"{machine['cpu']} ({machine['cpu_capability']} kernels), two networks at a time with "
             f"1 torch thread each, nothing else running ({run['date'][:16]}; `{run['command']}`).",
             "", "| run | what changes | params | images/s (1 thread) | "
             + " | ".join(f"PSNR {label}" for *_, label in ROUND20_POINTS) + " |",
             "|---|---|---:|---:|" + "---:|" * len(ROUND20_POINTS)]
    for name, m in nets.items():
        lines.append(f"| {name} | {WHAT.get(name, '')} | {m['params'] / 1e3:.0f} k | "
                     f"{m['images_per_s']:.0f} | " + " | ".join(seed_cell(v) for v in per[name])
                     + " |")
    lines += ["", "Each cell: the mean over seeds (each seed in brackets). A dash: not reached "
              "within 4 CPU minutes.", "", "### What it shows", ""]
    labels = [label for *_, label in ROUND20_POINTS]
    for arm, twin in ROUND20_TWINS:
        gaps = [(label, paired(a, b)) for label, a, b in zip(labels, per[arm], per[twin])]
        lines.append(f"- Attention in {arm} (against {twin}): "
                     + ", ".join(f"{gap_text(d)} at {label}" for label, d in gaps if d) + ".")
    for arm, _ in ROUND20_TWINS:
        gaps = [(label, paired(a, b)) for label, a, b in zip(labels, per[arm], per[ROUND20_UNET])]
        lines.append(f"- {arm} against the U-Net ({ROUND20_UNET}): "
                     + ", ".join(f"{gap_text(d)} at {label}" for label, d in gaps if d) + ".")
    lines += round20_reading(nets, per)
    lines += ["", "![Round 20: vit_unet with the U-Net's start, each seed and the mean]"
              "(variants/unet_transformers.png)"]
    runs_figure(per, labels, ROUND20_FIGURE,
                f"Round 20: vit_unet with the output conv at zero against the U-Net "
                f"({seeds} seeds; {machine['cpu']}, 1 thread each)")
    return lines


def round20_reading(nets, per):
    """The prose of round 20, written against its figures, and its longer per-image run
    (docs/variants/round20b/: 12,800 and 25,000 images) when present."""
    mean = {name: [None if v is None else sum(v) / len(v) for v in vs] for name, vs in per.items()}
    unet, l3, l2 = (mean[ROUND20_UNET], mean["x_vit_unet_zero_lr1e-2"],
                    mean["x_vit_unet_l2_zero_lr1e-2"])
    l2_free = mean["x_vit_unet_l2_zero_noattn_lr1e-2"]
    speed = {name: m["images_per_s"] for name, m in nets.items()}
    lines = [
        f"- With the U-Net's start, vit_unet scores {l3[1]:.2f} dB at 4 CPU min, against "
        f"{unet[1]:.2f} for the U-Net: it stays behind at equal time, being slower "
        f"({speed['x_vit_unet_zero_lr1e-2']:.0f} against {speed[ROUND20_UNET]:.0f} images/s). "
        f"At 12,800 images it is level with the U-Net ({l3[2]:.2f} and {l2[2]:.2f} dB for the "
        f"two vit_unets, {unet[2]:.2f} for the U-Net, whose two seeds lie "
        f"{abs(per[ROUND20_UNET][2][0] - per[ROUND20_UNET][2][1]):.1f} dB apart): the first "
        "transformer of these rounds level with the U-Net per image at some count, where "
        "vit_fast learns 2.7-4.4 dB less (docs/benchmark-zero-init/BENCHMARKS.md, 25,000 and "
        "50,000 images).",
        f"- Its attention pays per image at the 16 x 16 map (levels = 2: "
        f"{l2[2] - l2_free[2]:+.2f} dB at 12,800 images, both seeds above their twins) and costs "
        f"at equal time ({l2[0] - l2_free[0]:+.2f} / {l2[1] - l2_free[1]:+.2f} dB at 1 / 4 min: "
        f"{speed['x_vit_unet_l2_zero_lr1e-2']:.0f} against "
        f"{speed['x_vit_unet_l2_zero_noattn_lr1e-2']:.0f} images/s).",
        f"- The MLP-only twin at levels = 2, a U-Net with two down-samplings and per-token MLPs "
        f"over its 16 x 16 map ({nets['x_vit_unet_l2_zero_noattn_lr1e-2']['params'] / 1e3:.0f} k "
        f"parameters, no transformer), scores {l2_free[0]:.2f} / {l2_free[1]:.2f} dB at 1 / 4 "
        f"min, above the U-Net's {unet[0]:.2f} / {unet[1]:.2f}, and {l2_free[2]:.2f} per image "
        "(round 6's side result, now with two seeds)."]
    longer = DATA / "round20b" / "benchmarks.json"
    if longer.exists():
        run = json.loads(longer.read_text())
        nets_b = {m["name"]: m for m in run["methods"] if m.get("kind") == "network"}
        counts = sorted(run["budgets_images"])
        at = {name: [seeds_of(m, "images", n) for n in counts] for name, m in nets_b.items()}
        lines += ["", f"Learning per image further: `{run['command']}` ({run['date'][:16]}, the "
                  "same machine and protocol, a time budget long enough for every network to "
                  f"reach {counts[-1]:,} images).", "",
                  "| run | " + " | ".join(f"PSNR {n:,} images" for n in counts) + " |",
                  "|---|" + "---:|" * len(counts)]
        for name, vs in at.items():
            lines.append(f"| {name} | " + " | ".join(seed_cell(v) for v in vs) + " |")
        arm, twin = "x_vit_unet_l2_zero_lr1e-2", "x_vit_unet_l2_zero_noattn_lr1e-2"
        lines += ["", f"- Attention in {arm} (against {twin}): "
                  + ", ".join(f"{gap_text(d)} at {n:,} images"
                              for n, d in zip(counts, (paired(a, b) for a, b in
                                                       zip(at[arm], at[twin]))) if d) + ".",
                  f"- {arm} against the U-Net: "
                  + ", ".join(f"{gap_text(d)} at {n:,} images"
                              for n, d in zip(counts, (paired(a, b) for a, b in
                                                       zip(at[arm], at[ROUND20_UNET]))) if d)
                  + ".",
                  "- So the per-image lead does not last: by 25,000 images the U-Net is ahead "
                  "again and attention's gain has turned into a cost, every seed alike, as "
                  "vit_fast's early per-image gain shrank in round 14. vit_unet meets neither "
                  "item 3 (behind the U-Net at 1 and 4 CPU min and at 25,000 images) nor item 4 "
                  "(attention under 1 dB on every axis)."]
    return lines + vit_unet_preset_lines()


def vit_unet_preset_lines():
    """The vit_unet preset as `denoise-vit train` runs it, before and with the U-Net's start
    (experiments/variants/preset_rate.py, docs/variants/vit_unet_start.json)."""
    path = DATA / "vit_unet_start.json"
    if not path.exists():
        return []
    runs = json.loads(path.read_text())["runs"].values()
    arms, twin = {}, [r for r in runs if r["preset"] == "vit_unet_no_attention"]
    for r in runs:
        if r["preset"] == "vit_unet":
            arms.setdefault((bool(r.get("overrides")), r["lr"]), []).append(r)
    loads = [r["loadavg_before"] for r in runs if r.get("loadavg_before") is not None]

    def arm(key):
        rs = sorted(arms[key] if isinstance(key, tuple) else key, key=lambda r: r["seed"])
        return (" / ".join(f"{r['psnr']:.2f}" for r in rs) + f" dB on seeds "
                + " / ".join(str(r["seed"]) for r in rs)
                + f" (mean {sum(r['psnr'] for r in rs) / len(rs):.2f})")
    old = [k for k in sorted(arms) if not k[0]]
    new = [k for k in sorted(arms) if k[0]]
    return (["", "The preset as `denoise-vit train --config vit_unet seed=S` runs it (its cosine "
            "over 720 steps, the 270-s wall-clock stop, two threads; `python experiments/variants/"
            "preset_rate.py --preset vit_unet --rates R --seeds 2 --set optimizer=adamw --set "
            "weight_decay=0.05 --set model.zero_init_out=true --tag unet_start`, one run after "
            f"another alone under the CPU lock, load average {min(loads):.1f}-{max(loads):.1f} "
            "before each, raised by the run before; other processes "
            f"{max(r['other_processes_cpu_share'] for r in runs):.1%} of the CPU at most):", ""]
            + [f"- as it was (Adam {k[1]:g}, PyTorch's init): {arm(k)};" for k in old]
            + [f"- with the U-Net's start (AdamW 0.05, output conv at zero) at {k[1]:g}: {arm(k)};"
               for k in new]
            + ["- so since 2026-12-07 vit_unet and its MLP-only twin train with AdamW 0.05 and the "
               "output conv at zero, at 1e-2 (the higher mean; 3e-2's seeds lie 1.7 dB apart). "
               "The U-Net preset under the same command: 39.79 / 39.78 dB (README), still ahead "
               "on both seeds."]
            + twin_lines(arms.get((True, 0.01), []), twin, arm)
            + depth_lines(arms.get((True, 0.01), []), twin, arm))


def depth_lines(arm_runs, twin, arm):
    """The vit_unet preset and its twin with four blocks instead of two
    (docs/variants/vit_unet_depth.json)."""
    path = DATA / "vit_unet_depth.json"
    if not path.exists():
        return []
    runs = json.loads(path.read_text())["runs"].values()
    deep = [r for r in runs if r["preset"] == "vit_unet"]
    deep_twin = [r for r in runs if r["preset"] == "vit_unet_no_attention"]
    if not deep or not deep_twin:
        return []
    gains = [a["psnr"] - b["psnr"] for a, b in paired_seeds(deep, deep_twin)]
    return [f"- four blocks instead of two (`--set model.depth=4 --tag d4`, both presets, "
            f"docs/variants/vit_unet_depth.json): vit_unet {arm(deep)} in "
            + " / ".join(str(r["steps"]) for r in sorted(deep, key=lambda r: r["seed"]))
            + f" steps, its twin {arm(deep_twin)}; attention adds "
            + " / ".join(f"{g:+.2f}" for g in gains) + " dB, and both lose against two blocks "
            f"(vit_unet {arm(arm_runs)}, the twin {arm(twin)}), so the presets keep two."]


def twin_lines(arm_runs, twin, arm):
    """What attention adds to the vit_unet preset as shipped, seed by seed."""
    pairs = paired_seeds(arm_runs, twin)
    if not pairs:
        return []
    gains = [a["psnr"] - b["psnr"] for a, b in pairs]
    return [f"- its MLP-only twin as the preset now is (`--preset vit_unet_no_attention --rates "
            f"0.01`): {arm(twin)}, in "
            + " / ".join(str(b["steps"]) for _, b in pairs) + " steps against vit_unet's "
            + " / ".join(str(a["steps"]) for a, _ in pairs) + "; so attention adds "
            + " / ".join(f"{g:+.2f}" for g in gains) + " dB on those seeds, "
            + ("at least" if min(gains) >= 1 else "under") + " item 4's 1 dB."]


def paired_seeds(arm, twin):
    """(arm run, twin run) for each seed both have, in seed order."""
    by = {r["seed"]: r for r in twin}
    return [(r, by[r["seed"]]) for r in sorted(arm, key=lambda r: r["seed"]) if r["seed"] in by]


def clean_share(rec):
    return sum(rec["regions"][k]["share"] for k in ("clean background", "clean cells"))


def spread(errors, region):
    values = [r["regions"][region]["psnr"] for r in errors.values()]
    return max(values) - min(values)


def gate_figure(points):
    seed_dots_figure(points, [title for _, title in AXES], GATE_FIGURE,
                     "Output gate: each seed (dots) and the mean (line)")


def seed_dots_figure(points, titles, path, title, reference=lambda name: "unet" in name):
    """One panel per axis: each network's seeds (dots) and their mean (line), the references
    black. `points`: {name: [per-seed PSNRs or None, one per axis]}."""
    fig, axes = plt.subplots(1, len(titles), figsize=(4 * len(titles), 3.8))
    for i, (ax, axis) in enumerate(zip(axes, titles)):
        for j, (name, vs) in enumerate(points.items()):
            v = vs[i]
            if v is None:
                continue
            ax.scatter([j] * len(v), v, color="black" if reference(name) else "tab:blue", s=18)
            ax.hlines(sum(v) / len(v), j - 0.3, j + 0.3, color="tab:red")
        ax.set_xticks(range(len(points)), list(points), rotation=30, fontsize=8)
        ax.set(title=f"PSNR at {axis}", ylabel="PSNR (dB)" if i == 0 else None)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


ROUND21 = DATA / "round21" / "benchmarks.json"
ROUND21B = DATA / "round21b" / "benchmarks.json"
ROUND21_FIGURE = DATA / "light_transformers.png"
ROUND21B_FIGURE = DATA / "light_transformers_long.png"
ROUND21_SHIPPED = "x_vit_unet_zero_lr1e-2"
ROUND21_LIGHT = "x_vit_unet_d1m2_lr1e-2"
ROUND21_TWIN = "x_vit_unet_d1m2_noattn_lr1e-2"


def run_points(run):
    """(which, budget, label) for every point a benchmark run scored: its time budgets, then
    its image counts."""
    points = [("time", b, f"{b / 60:g} min") for b in run["budgets_s"]]
    return points + [("images", n, f"{n:,} images") for n in run.get("budgets_images") or []]


def per_seed_points(run):
    """{network name: [per-seed PSNRs or None, one per point]}, [labels], {name: record}."""
    nets = {m["name"]: m for m in run["methods"] if m.get("kind") == "network"}
    points = run_points(run)
    return ({name: [seeds_of(m, which, budget) for which, budget, _ in points]
             for name, m in nets.items()}, [label for *_, label in points], nets)


def gaps_line(text, a, b, labels):
    return (f"- {text}: " + ", ".join(f"{gap_text(d)} at {label}" for label, d in
                                      zip(labels, (paired(x, y) for x, y in zip(a, b))) if d)
            + ".")


def light_transformer_section():
    """Round 21: vit_unet with a transformer that costs no more than the double conv it
    replaces (one block; MLP 2 x wide; or one block over the 16 x 16 map), against the U-Net."""
    if not ROUND21.exists():
        return []
    run = json.loads(ROUND21.read_text())
    machine = run["machine"]
    per, labels, nets = per_seed_points(run)
    lines = ["", "## Round 21: a transformer no dearer than the conv it replaces", "",
             "Why: round 20 left vit_unet level with the U-Net per image but behind at equal CPU "
             "time, its two blocks of width 128 (about 32 M multiply-adds per image over the 8 x 8 "
             "map) costing twice the double conv they replace (14 M). Three lighter bottlenecks: "
             "one block, one block whose MLP is 2 x wide instead of 4 x, and one block of width "
             "64 over the 16 x 16 map (levels = 2); the shipped vit_unet and the U-Net beside "
             "them. AdamW 1e-2 with decay 0.05, output conv at zero, as the presets; two seeds, "
             "the cooldown protocol at 1 and 4 CPU min and 12,800 images; "
             f"{machine['cpu']} ({machine['cpu_capability']} kernels), two networks at a time with "
             f"1 torch thread each, alone under the CPU lock ({run['date'][:16]}, "
             f"{run['wall_seconds'] / 60:.0f} min; `{run['command']}`).", "",
             "| run | what changes | params | MFLOP/img | images/s (1 thread) | "
             + " | ".join(f"PSNR {label}" for label in labels) + " |",
             "|---|---|---:|---:|---:|" + "---:|" * len(labels)]
    for name, m in nets.items():
        lines.append(f"| {name} | {WHAT.get(name, '')} | {m['params'] / 1e3:.0f} k | "
                     f"{m['flops'] / 1e6:.0f} | {m['images_per_s']:.0f} | "
                     + " | ".join(seed_cell(v) for v in per[name]) + " |")
    alone = [n for n, m in nets.items() if m["foreign_cpu_max"] < 0.25]
    lines += ["", "Each cell: the mean over seeds (each seed in brackets). Images/s: the mean "
              "of the seeds' runs, each beside another network's run"
              + (f" but for {', '.join(alone)}'s, which ran alone (other load at most "
                 f"{max(nets[n]['foreign_cpu_max'] for n in alone):.0%}, against about 50 % for "
                 "the others: the benchmark gives the second seeds only once every network's "
                 "first is done)" if alone else "") + ".", "", "### What it shows", ""]
    for name in nets:
        if name not in (ROUND20_UNET, ROUND21_SHIPPED):
            lines.append(gaps_line(f"{name} against the U-Net", per[name], per[ROUND20_UNET],
                                   labels))
    for name in nets:
        if name not in (ROUND20_UNET, ROUND21_SHIPPED):
            lines.append(gaps_line(f"{name} against vit_unet as shipped", per[name],
                                   per[ROUND21_SHIPPED], labels))
    lines += light_reading(per, labels, nets, alone)
    lines += longer_light_lines()
    lines += light_preset_lines(nets)
    lines += ["", "![Round 21: lighter bottleneck transformers against the U-Net, each seed and "
              "the mean](variants/light_transformers.png)"]
    runs_figure(per, labels, ROUND21_FIGURE,
                f"Round 21: lighter bottleneck transformers against the U-Net "
                f"(2 seeds; {machine['cpu']}, 1 thread each)")
    return lines


def runs_figure(per, labels, path, title):
    """seed_dots_figure for a round's benchmark runs: names without the x_ and _lr1e-2 of the
    config files, the U-Net in black."""
    seed_dots_figure({name.removeprefix("x_").removesuffix("_lr1e-2"): v for name, v in per.items()},
                     labels, path, title, reference=lambda name: name.startswith("unet"))


def light_reading(per, labels, nets, alone):
    """The prose of round 21's short run, written against its figures."""
    mean = {name: [None if v is None else sum(v) / len(v) for v in vs] for name, vs in per.items()}
    unet, shipped = mean[ROUND20_UNET], mean[ROUND21_SHIPPED]
    light = [n for n in nets if n not in (ROUND20_UNET, ROUND21_SHIPPED)]
    best = max(light, key=lambda n: sum(mean[n]))
    ahead = [i for i, (a, b) in enumerate(zip(mean[best], unet)) if a >= b]
    speed = {n: m["images_per_s"] for n, m in nets.items()}
    return [
        f"- Each lighter bottleneck scores above vit_unet as shipped at 4 CPU min ("
        + ", ".join(f"{n} {mean[n][1] - shipped[1]:+.2f} dB" for n in light) + "), being "
        "faster (" + ", ".join(f"{speed[n]:.0f}" for n in light)
        + f" against {speed[ROUND21_SHIPPED]:.0f} images/s).",
        f"- The best of them over the three points, {best}, is ahead of the U-Net at "
        + (" and ".join(label for i, label in enumerate(labels) if i in ahead) or "none of them")
        + " and behind at the rest ("
        + " / ".join(f"{a - b:+.2f}" for a, b in zip(mean[best], unet)) + " dB at "
        + " / ".join(labels) + "): level with the U-Net within the seeds' spread, not ahead "
        "of it.",
        f"- The U-Net still trains faster here ({speed[ROUND20_UNET]:.0f} images/s against "
        f"{speed[best]:.0f}), though the transformer now costs about what the double conv it "
        "replaces does: its FLOPs per image are about the U-Net's "
        f"({nets[best]['flops'] / 1e6:.0f} against {nets[ROUND20_UNET]['flops'] / 1e6:.0f} "
        "MFLOP)" + ("; the U-Net's seeds ran alone on the machine." if ROUND20_UNET in alone
                    else ".")]


def merged_seed_runs(folder):
    """Round 21's long run trained each seed in its own invocation (`seed0/`, `seed1/`, ...,
    the `_seed1` configs): {name: [per-seed PSNRs or None, one per point]}, labels, {name:
    [records]}, [runs]."""
    runs = [json.loads(p.read_text()) for p in sorted(folder.glob("seed*/benchmarks.json"))]
    if not runs:
        return None
    points = run_points(runs[0])
    per, recs = {}, {}
    for run in runs:
        for m in run["methods"]:
            if m.get("kind") != "network":
                continue
            got = [seeds_of(m, which, budget) for which, budget, _ in points]
            old = per.get(m["name"])
            per[m["name"]] = got if old is None else [
                None if a is None or b is None else a + b for a, b in zip(old, got)]
            recs.setdefault(m["name"], []).append(m)
    return per, [label for *_, label in points], recs, runs


def longer_light_lines():
    """Round 21's lightest-and-best transformer, its MLP-only twin and the U-Net at every time
    budget of the protocol and per image (docs/variants/round21b/)."""
    got = merged_seed_runs(ROUND21B.parent)
    if got is None:
        return []
    per, labels, recs, runs = got
    machine = runs[0]["machine"]
    lines = ["", f"At every time budget of the benchmark's protocol and per image: "
             f"{len(runs)} invocations at once, one per seed, each training its networks one "
             "after another on 1 torch thread, so that the two seeds run side by side and no "
             "run waits for another network's (" + "; ".join(
                 f"`{r['command']}`, {r['date'][:16]}, {r['wall_seconds'] / 60:.0f} min"
                 for r in runs) + f"; {machine['cpu']}, alone under the CPU lock).", "",
             "| run | what changes | images/s (1 thread) | "
             + " | ".join(f"PSNR {label}" for label in labels) + " |",
             "|---|---|---:|" + "---:|" * len(labels)]
    for name, vs in per.items():
        speed = sum(m["images_per_s"] for m in recs[name]) / len(recs[name])
        lines.append(f"| {name} | {WHAT.get(name, '')} | {speed:.0f} | "
                     + " | ".join(seed_cell(v) for v in vs) + " |")
    lines += ["", "Each cell: the mean over seeds (each seed in brackets). A dash: a count not "
              "every seed reached within 15 CPU minutes.", "",
              gaps_line(f"{ROUND21_LIGHT} against the U-Net", per[ROUND21_LIGHT],
                        per[ROUND20_UNET], labels),
              gaps_line(f"Attention in {ROUND21_LIGHT} (against {ROUND21_TWIN})",
                        per[ROUND21_LIGHT], per[ROUND21_TWIN], labels),
              gaps_line(f"{ROUND21_TWIN} against the U-Net", per[ROUND21_TWIN],
                        per[ROUND20_UNET], labels)]
    runs_figure(per, labels, ROUND21B_FIGURE,
                f"Round 21: the lighter vit_unet, its MLP-only twin and the U-Net at every "
                f"budget (2 seeds; {machine['cpu']}, 1 thread each)")
    lines += ["", "![Round 21, every budget: the lighter vit_unet, its MLP-only twin and the "
              "U-Net, each seed and the mean](variants/light_transformers_long.png)", ""]
    speed = {name: sum(m["images_per_s"] for m in rs) / len(rs) for name, rs in recs.items()}
    return lines + longer_light_reading(per, labels, speed)


def longer_light_reading(per, labels, speed):
    """Items 3 and 4 for the lighter vit_unet, from the long run's means."""
    mean = {name: [None if v is None else sum(v) / len(v) for v in vs] for name, vs in per.items()}
    light, twin, unet = mean[ROUND21_LIGHT], mean[ROUND21_TWIN], mean[ROUND20_UNET]
    pts = [(label, a, b, c) for label, a, b, c in zip(labels, light, twin, unet)
           if None not in (a, b, c)]
    behind = [label for label, a, _, c in pts if a < c]
    ahead = [label for label, a, _, c in pts if a >= c]
    attention = [a - b for _, a, b, _ in pts]
    return [
        f"- Item 3 (at least as high as the U-Net at every budget, on the means): "
        + ("met" if not behind else "**not met**") + f" for {ROUND21_LIGHT}: "
        + (f"ahead at {', '.join(ahead)}; " if ahead else "")
        + (f"behind at {', '.join(behind)}." if behind else "ahead at every point."),
        f"- Item 4 (attention adds at least 1 dB): "
        + ("met" if min(attention) >= 1 else "**not met**")
        + f": attention adds {min(attention):+.2f} to {max(attention):+.2f} dB over these points "
        f"({speed[ROUND21_LIGHT]:.0f} images/s with it, {speed[ROUND21_TWIN]:.0f} without)."]


def light_preset_lines(nets):
    """The vit_unet preset as shipped against its lighter copy and the U-Net preset, as
    `denoise-vit train --config PRESET seed=S` runs them (docs/variants/vit_unet_light.json)."""
    path = DATA / "vit_unet_light.json"
    if not path.exists():
        return []
    runs = list(json.loads(path.read_text())["runs"].values())
    arms = {}
    for r in runs:
        label = ("vit_unet with one block, MLP 2 x (`--set model.depth=1 --set "
                 "model.mlp_ratio=2.0 --tag d1m2`)" if r.get("overrides")
                 else f"{r['preset']} as shipped")
        arms.setdefault(label, []).append(r)
    loads = [r["loadavg_before"] for r in runs if r.get("loadavg_before") is not None]
    lines = ["", "The presets as `denoise-vit train --config PRESET seed=S` runs them (each its "
             "own cosine over 720 steps and 270-s wall-clock stop, two threads; `python "
             "experiments/variants/preset_rate.py`, the commands in this script's docstring; one "
             f"run after another alone under the CPU lock, load average {min(loads):.1f}-"
             f"{max(loads):.1f} before each, raised by the run before; other processes "
             f"{max(r['other_processes_cpu_share'] for r in runs):.1%} of the CPU at most):", ""]
    for label, rs in arms.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        lines.append(f"- {label}, at {rs[0]['lr']:g}: "
                     + " / ".join(f"{r['psnr']:.2f}" for r in rs) + " dB on seeds "
                     + " / ".join(str(r["seed"]) for r in rs)
                     + f" (mean {sum(r['psnr'] for r in rs) / len(rs):.2f}), "
                     + " / ".join(str(r["steps"]) for r in rs) + " steps in "
                     + " / ".join(f"{r['train_seconds']:.0f}" for r in rs) + " s;")
    return lines + light_preset_reading(arms, nets)


def light_preset_reading(arms, nets):
    """What the three presets under `denoise-vit train` say, and what the preset became."""
    by = {("light" if "d1m2" in label else label.split()[0]): sorted(rs, key=lambda r: r["seed"])
          for label, rs in arms.items()}
    if not {"light", "vit_unet", "unet"} <= set(by):
        return []

    def mean(key, field="psnr"):
        return sum(r[field] for r in by[key]) / len(by[key])
    gaps = [a["psnr"] - b["psnr"] for a, b in zip(by["light"], by["vit_unet"])]
    return [
        f"- Every preset makes all {by['light'][0]['steps']} of its steps before the 270-s stop, "
        "so this compares them per step, at equal training images: the lighter vit_unet scores "
        f"as the shipped one ({mean('light') - mean('vit_unet'):+.2f} dB on the mean; seeds "
        + " / ".join(f"{g:+.2f}" for g in gaps) + ") in "
        f"{100 * (1 - mean('light', 'train_seconds') / mean('vit_unet', 'train_seconds')):.0f} % "
        f"less time; the U-Net preset is {mean('unet') - mean('light'):+.2f} dB ahead of it on "
        f"the mean and faster still ({mean('unet', 'train_seconds'):.0f} s against "
        f"{mean('light', 'train_seconds'):.0f}).",
        "- So since 2026-12-07 (evening) the vit_unet preset and its MLP-only twin have one block "
        f"with an MLP 2 x wide ({nets[ROUND21_LIGHT]['params'] / 1e3:.0f} k parameters, "
        f"{nets[ROUND21_LIGHT]['flops'] / 1e6:.0f} MFLOP per image, against "
        f"{nets[ROUND21_SHIPPED]['params'] / 1e3:.0f} k and "
        f"{nets[ROUND21_SHIPPED]['flops'] / 1e6:.0f}): "
        "as good per step under `denoise-vit train`, better at 1 and 4 CPU min and at 12,800 "
        "images under the benchmark's protocol (above), and about as costly as the U-Net it is "
        "measured against."]


if __name__ == "__main__":
    main()
