"""What does attention add to vit_fast? The preset against itself with attention removed.

    flock /tmp/cpu.lock python experiments/attention_ablation.py       # ~20 min on a 2-core CPU
    python experiments/attention_ablation.py --cpu-minutes 0.05 --quick --out-dir /tmp/abl  # smoke
    python experiments/attention_ablation.py --render-only           # ATTENTION.md from its json

Issue 11, item 4 names two ways to remove the attention: the blocks "replaced by identity or by
MLP-only blocks". Both are presets, identical to `vit_fast` but for one key:

* `vit_fast_no_attention` (`model.attention = false`): every block keeps its MLP and loses its
  attention, so tokens never mix. Attention against it is what attention itself adds: the goal
  line (at least 1 dB) is measured on this pair.
* `vit_fast_no_blocks` (`model.depth = 0`): no blocks at all; the stem's tokens, with their
  position embedding and the final LayerNorm, go straight to the decoder. vit_fast against it is
  what the transformer blocks add, attention and MLPs together.

A second attention design is measured against the same two: `vit_fast_local`, vit_fast whose
heads get a learned distance penalty (`model.distance_bias`, 2-D ALiBi), so that they start
local. Without attention it is the same network as `vit_fast_no_attention` (the penalty lives in
the attention), so that pair answers the same question for it.

The conv stem, its skips and the decoder are the same in all four. Each is trained exactly as
`denoise-vit train --config <preset>` would, for the same budget of process CPU time
(`budget_clock = "cpu"`, the cosine decayed over it; enough epochs that the budget, not the step
count, ends the run), with seeds 0, 1 and 2 (`--seeds`); `--presets` runs a subset. Scored by the final weights on the
training's evaluation set (512 images, seed 1234, as the benchmark's).

Writes docs/ATTENTION.md, docs/attention_ablation.json and docs/attention/psnr.png. With
`--images N` each run gets N training images instead of a CPU budget (the benchmark's second
axis: what each arm learns per image, whatever its speed); that run writes
docs/attention_ablation_images_N.json and docs/attention/psnr_images_N.png, and ATTENTION.md
shows one section per image count after the CPU-time one. `--resume` keeps the runs of the
saved report of the same axis and budget and trains only the preset / seed pairs it lacks, so
`--seeds 8 --resume` after a run of three adds seeds 3 to 7. Every gap is paired by seed, with
a 95 % interval (Student's t over the seeds' gaps).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from saved_report import read_saved  # noqa: E402  (experiments/, the script's own folder)

ATTENTION_ARMS = ("vit_fast", "vit_fast_local")   # attention designs
MLP_ONLY, IDENTITY = "vit_fast_no_attention", "vit_fast_no_blocks"   # their ablations
PRESETS = (*ATTENTION_ARMS, MLP_ONLY, IDENTITY)
LABELS = {"vit_fast": "vit_fast\n(attention)", "vit_fast_local": "vit_fast_local\n(local heads)",
          MLP_ONLY: "vit_fast\nMLP-only blocks", IDENTITY: "vit_fast\nno blocks"}
GOAL_DB = 1.0
COMMAND = "flock /tmp/cpu.lock python experiments/attention_ablation.py"


def train_one(preset, seed, cpu_seconds, out_dir, quick, images=None, settings=()):
    import torch
    from denoise_vit.benchmark.runner import ForeignLoad
    from denoise_vit.training.config import load_config
    from denoise_vit.training.run import run_training

    name = f"{preset}-s{seed}" + (f"-{images}img" if images else "")
    shutil.rmtree(Path(out_dir) / name, ignore_errors=True)   # this script's own run folder
    batch = 8 if quick else 64
    if images:      # one epoch of ceil(images / batch) steps, the cosine decayed over them
        overrides = ["epochs=1", f"steps_per_epoch={-(-images // batch)}",
                     "max_train_seconds=1e9"]
    else:
        overrides = ['budget_clock="cpu"', f"max_train_seconds={cpu_seconds}", "epochs=1000"]
    overrides += [*settings, f"seed={seed}", f'name="{name}"']
    if quick:
        overrides += ["data.eval_size=8", f"batch_size={batch}", "figure_samples=0"]
    cfg = load_config(preset, overrides, {"out_dir": str(out_dir)})
    load = ForeignLoad()
    load_before = os.getloadavg()[0]
    t = time.perf_counter()
    summary = run_training(cfg, progress=False)
    return {"preset": preset, "seed": seed, "psnr": summary["final_psnr"],
            "noisy_psnr": summary["noisy_psnr"], "steps": summary["steps"],
            "train_cpu_seconds": summary["train_seconds"],
            "wall_seconds": time.perf_counter() - t, "loadavg_before": load_before,
            "other_processes_cpu_share": load.stop(), "torch_threads": torch.get_num_threads(),
            "overrides": overrides}


def mean_psnr(runs, preset):
    return statistics.mean(r["psnr"] for r in runs if r["preset"] == preset)


def presets_of(report):
    """The arms a report holds, in PRESETS order (reports before 2026-12-06 have two)."""
    return [pr for pr in PRESETS if pr in report["means"]]


# two-sided 95 % quantiles of Student's t for 1 ... 10 degrees of freedom (beyond: 2.0)
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)


def paired_interval(per_seed):
    """95 % confidence interval of the mean of the per-seed gaps (Student's t on the paired
    differences, each seed being one draw of weights and data stream); None under two seeds."""
    vals = list(per_seed.values())
    if len(vals) < 2:
        return None
    half = (T95[len(vals) - 2] if len(vals) - 1 <= len(T95) else 2.0) \
        * statistics.stdev(vals) / len(vals) ** 0.5
    mean = statistics.mean(vals)
    return [mean - half, mean + half]


def gaps(runs, presets):
    """Each attention arm against each ablation arm present, paired by seed (same seed, same
    data): the mean of the per-seed gaps over the seeds both arms ran, the gaps, and their 95 %
    interval. {arm: {ablation: {"gap_db", "per_seed", "interval"}}}."""
    out = {}
    for arm in (a for a in ATTENTION_ARMS if a in presets):
        out[arm] = {}
        for other in (o for o in (MLP_ONLY, IDENTITY) if o in presets):
            per_seed = {}
            for seed in sorted({r["seed"] for r in runs}):
                a, b = ([r["psnr"] for r in runs if r["seed"] == seed and r["preset"] == pr]
                        for pr in (arm, other))
                if a and b:
                    per_seed[seed] = a[0] - b[0]
            if per_seed:
                out[arm][other] = {"gap_db": statistics.mean(per_seed.values()),
                                   "per_seed": per_seed, "interval": paired_interval(per_seed)}
    return out


def seeds_of(runs, preset):
    return sorted({r["seed"] for r in runs if r["preset"] == preset})


def paired_means(runs, arm, other, seeds):
    """The two arms' mean PSNR over the given seeds (those both ran)."""
    def mean(pr):
        vals = [r["psnr"] for r in runs if r["preset"] == pr and r["seed"] in seeds]
        return statistics.mean(vals) if vals else None
    return mean(arm), mean(other)


def settings_text(report):
    settings = report.get("settings")
    return (", every arm with " + ", ".join(f"`{kv}`" for kv in settings) + " (`--set`)"
            if settings else "")


def earlier_text(report):
    earlier = report.get("earlier_commands")
    return (", keeping the runs of " + " and ".join(f"`{c}`" for c in earlier)
            if earlier else "")


def interval_text(gap):
    interval = gap.get("interval")    # reports before 2026-12-06 have none
    return (f"; 95 % interval of the mean gap {interval[0]:+.2f} to {interval[1]:+.2f} dB"
            if interval else "")


def best_gap(by_arm):
    """The largest gap of an attention arm over MLP-only blocks (the goal's figure)."""
    found = [(arms[MLP_ONLY]["gap_db"], arm) for arm, arms in by_arm.items() if MLP_ONLY in arms]
    return max(found) if found else (None, None)


def plot(runs, presets, path, title="What attention and the blocks add at equal CPU time"):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.6 + 1.5 * len(presets), 3.4), dpi=120)
    ax = fig.add_subplot()
    colours = {"vit_fast": "tab:blue", "vit_fast_local": "tab:purple", MLP_ONLY: "tab:gray",
               IDENTITY: "tab:olive"}
    for i, preset in enumerate(presets):
        vals = [r["psnr"] for r in runs if r["preset"] == preset]
        ax.bar(i, statistics.mean(vals), color=colours[preset], alpha=0.6)
        ax.scatter([i] * len(vals), vals, color="k", zorder=3, s=12, label="seeds" if i == 0 else None)
    ax.set_xticks(range(len(presets)), [LABELS[pr] for pr in presets], fontsize=8)
    lo = min(r["psnr"] for r in runs)
    ax.set_ylim(max(0.0, lo - 3), max(r["psnr"] for r in runs) + 1)
    ax.set_ylabel("eval PSNR (dB)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def optimizer_text(report):
    """The presets' optimizer, named as the benchmark names it (reports before 2026-12-03 name
    none: Adam without decay)."""
    from denoise_vit.benchmark.report import optimizer_name
    return optimizer_name(report.get("optimizer", "adam"), report.get("weight_decay", 0)) + " at"


def per_seed_text(per_seed):
    return ", ".join(f"{gap:+.2f}" for _, gap in sorted(per_seed.items(), key=lambda kv: int(kv[0])))


def budget_text(report):
    if report.get("images"):
        return (f"{report['images']:,} training images each (one epoch of "
                f"{report['runs'][0]['steps']} steps of 64, the cosine decayed over them; no "
                "time limit)")
    return (f"{report['cpu_seconds']:g} s of process CPU time each (`budget_clock = \"cpu\"`: "
            "the cosine decays over that CPU time; the run stops when training has used it)")


def render(report, by_images=(), locality="LOCALITY.md"):
    """ATTENTION.md: the equal-CPU-time report, then one section per equal-images report."""
    lines = section(report, "attention/psnr.png")
    for i, other in enumerate(by_images):
        lines += ["", f"## At equal training images: {other['images']:,}", ""]
        if i == 0:
            lines += ["What each arm learns per training image, whatever its speed on this CPU "
                      "(the benchmark's second axis; it speaks for a GPU, where the blocks' cost "
                      "matters less).", ""]
        lines += section(other, images_figure(other["images"]))[2:]
    lines += ["", "Where the trained networks take their information from (effective receptive "
              f"fields, attention distances): [LOCALITY.md]({locality}), "
              "`python experiments/locality.py`."]
    return "\n".join(lines)


def section(report, figure):
    runs = report["runs"]
    presets = presets_of(report)
    params = report["params"]
    by_arm = gaps(runs, presets)
    m = report["machine"]
    twins = []
    if MLP_ONLY in presets:
        twins.append("`vit_fast_no_attention` is `vit_fast` with `model.attention = false`: each "
                     "block keeps its MLP and loses its attention, so the 64 tokens of a 64 x 64 "
                     "tile never mix")
    if IDENTITY in presets:
        twins.append("`vit_fast_no_blocks` is `vit_fast` with `model.depth = 0`: no blocks at "
                     "all, the stem's tokens (with their position embedding and the final "
                     "LayerNorm) go straight to the decoder")
    if "vit_fast_local" in presets:
        twins.append("`vit_fast_local` is `vit_fast` with `model.distance_bias = true`: each "
                     "head's attention logits get -slope x the distance between the two tokens "
                     "(2-D ALiBi; learned slopes starting 2, 1, 1/2, 1/4 per token of distance), "
                     "so that the heads start local; without attention it is "
                     "`vit_fast_no_attention`")
    lines = [
        "# What attention adds to vit_fast (issue 11, item 4)", "",
        f"Produced by `{report['command']}`{earlier_text(report)} on {m['cpu']}, {m['cores']} "
        f"cores, no GPU, torch {m['torch']}; {report['wall_s'] / 60:.0f} minutes.", "",
        f"Each preset trained as `denoise-vit train --config <preset>` would, for "
        f"{budget_text(report)}, batch 64, "
        f"{optimizer_text(report)} {report['lr']:g}, warm-up {report['warmup_steps']} steps, "
        f"MSE, fresh generated images every step{settings_text(report)}; scored by the final "
        "weights on the evaluation "
        f"set (512 images, seed 1234). {'; '.join(twins)}. The conv stem, its skips into the "
        "decoder and the decoder are the same.", "",
        *[line for note in report.get("notes", ()) for line in (f"*{note}*", "")],
        f"![PSNR per seed]({figure})", "",
        "| preset | seed | PSNR (dB) | steps | CPU s | wall s | load avg before | other processes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        share = r["other_processes_cpu_share"]
        lines.append(f"| {r['preset']} | {r['seed']} | {r['psnr']:.2f} | {r['steps']} | "
                     f"{r['train_cpu_seconds']:.0f} | {r['wall_seconds']:.0f} | "
                     f"{r['loadavg_before']:.2f} | "
                     f"{'–' if share is None else f'{100 * share:.0f} %'} |")
    if len({len(seeds_of(runs, pr)) for pr in presets}) > 1:
        lines += ["", "Arms ran different numbers of seeds: " + ", ".join(
            f"{pr} {len(seeds_of(runs, pr))}" for pr in presets) + ". Every gap below is "
            "paired: the mean of the per-seed gaps over the seeds both arms ran, the two means "
            "beside it over those same seeds."]
    for arm, arms in by_arm.items():
        if MLP_ONLY in arms:
            gap = arms[MLP_ONLY]
            a, b = paired_means(runs, arm, MLP_ONLY, gap["per_seed"])
            lines += ["", f"**Attention in {arm} adds {gap['gap_db']:+.2f} dB** against MLP-only "
                      f"blocks (mean over seeds: {a:.2f} vs {b:.2f} dB, "
                      f"parameters {params[arm]:,} vs {params[MLP_ONLY]:,}; per seed, same seed "
                      f"and data stream: {per_seed_text(gap['per_seed'])} dB"
                      f"{interval_text(gap)})."]
        if IDENTITY in arms:
            blocks = arms[IDENTITY]
            a, b = paired_means(runs, arm, IDENTITY, blocks["per_seed"])
            mlps = ""
            if MLP_ONLY in presets:
                mlp, ident = paired_means(runs, MLP_ONLY, IDENTITY, blocks["per_seed"])
                if mlp is not None and ident is not None:
                    mlps = f", of which the MLP-only blocks alone {mlp - ident:+.2f} dB"
            lines += ["", f"The transformer blocks of {arm} add {blocks['gap_db']:+.2f} dB against "
                      f"no blocks (identity: {a:.2f} vs {b:.2f} dB, "
                      f"parameters {params[arm]:,} vs {params[IDENTITY]:,}; per seed "
                      f"{per_seed_text(blocks['per_seed'])} dB{interval_text(blocks)}){mlps}."]
    gap, arm = best_gap(by_arm)
    if gap is not None:
        verdict = "met" if gap >= GOAL_DB else "**not met**"
        lines += ["", f"Goal (issue 11): attention adds at least {GOAL_DB:g} dB against the same "
                  f"network with MLP-only blocks. Best here: {arm}, {gap:+.2f} dB: {verdict}. "
                  "The goal is judged against MLP-only blocks, not against no blocks, since "
                  "against identity the MLPs' share would count as attention's."]
        interval = by_arm[arm][MLP_ONLY].get("interval")
        if interval:
            lo, hi = interval
            n = len(by_arm[arm][MLP_ONLY]["per_seed"])
            if hi < GOAL_DB:
                settled = (f"its 95 % interval over {n} seeds, {lo:+.2f} to {hi:+.2f} dB, lies "
                           f"below {GOAL_DB:g} dB: more seeds would not meet the goal")
            elif lo >= GOAL_DB:
                settled = (f"its 95 % interval over {n} seeds, {lo:+.2f} to {hi:+.2f} dB, lies "
                           f"at or above {GOAL_DB:g} dB")
            else:
                settled = (f"its 95 % interval over {n} seeds, {lo:+.2f} to {hi:+.2f} dB, "
                           f"contains {GOAL_DB:g} dB: these seeds do not settle the goal either "
                           "way")
            lines[-1] += f" The gap's spread between seeds: {settled}."
        if gap < GOAL_DB:
            why = ("at the same number of images" if report.get("images") else
                   "(it takes more steps in the same CPU time)")
            within = f"is within {gap:.2f} dB" if gap >= 0 else f"scores {-gap:.2f} dB higher {why}"
            lines += ["", "At this budget most of the quality comes from the conv stem, the "
                      "stem's skips, the decoder and the per-token MLPs: the same network without "
                      f"attention {within}. Issue 11 asks for a design in which attention adds "
                      f"at least {GOAL_DB:g} dB; that design is still to be found."]
    return lines


MAIN_JSON = "attention_ablation.json"
LEGACY_IMAGES_JSON = "attention_ablation_images.json"   # the one image count of 2026-12-06


def locality_link(docs):
    """docs/LOCALITY.md as a link from the folder ATTENTION.md is written to."""
    return Path(os.path.relpath(ROOT / "docs" / "LOCALITY.md", docs.resolve())).as_posix()


def images_json(images):
    return f"attention_ablation_images_{images}.json"


def images_figure(images):
    return f"attention/psnr_images_{images}.png"


def images_reports(docs):
    """The equal-images reports beside the CPU-time one, one per image count, fewest first."""
    found = {}
    for path in [docs / LEGACY_IMAGES_JSON, *sorted(docs.glob("attention_ablation_images_*.json"))]:
        if path.is_file():
            report = json.loads(path.read_text())
            found[report["images"]] = report
    return [found[n] for n in sorted(found)]


def saved_path(docs, images):
    """Where the report of this axis and budget is (or goes); a one-count file of the earlier
    naming still counts for its own image count."""
    if not images:
        return docs / MAIN_JSON
    legacy = docs / LEGACY_IMAGES_JSON
    if (not (docs / images_json(images)).is_file() and legacy.is_file()
            and json.loads(legacy.read_text()).get("images") == images):
        return legacy
    return docs / images_json(images)


TRAINING_KEYS = ("lr", "warmup_steps", "optimizer", "weight_decay")   # equal in every arm


def kept_report(parser, path, images, cpu_seconds, settings=(), configs=None, training=None):
    """The saved report `--resume` keeps runs of; exits 2 when it was made with another budget,
    other --set overrides, other training settings (`training`: the presets' rate, warm-up,
    optimizer and weight decay now) or, for a preset to train now, another model config (a
    preset changed since: its runs would not compare). None when there is none yet."""
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    for key, value in (training or {}).items():
        if key in saved and saved[key] != value:
            parser.exit(2, f"attention_ablation: --resume: {path} was trained with {key} = "
                           f"{saved[key]}, the presets now have {value}; run without --resume\n")
    for preset, model in (configs or {}).items():
        if preset in saved.get("configs", {}) and saved["configs"][preset] != model:
            parser.exit(2, f"attention_ablation: --resume: {preset}'s model config has changed "
                           f"since {path} was trained; run without --resume\n")
    if saved.get("settings", []) != list(settings):
        parser.exit(2, f"attention_ablation: --resume: {path} was trained with --set "
                       f"{saved.get('settings', [])}, not {list(settings)}\n")
    if saved.get("images") != images or (not images and saved.get("cpu_seconds") != cpu_seconds):
        budget = (f"{saved['images']} images" if saved.get("images")
                  else f"{saved.get('cpu_seconds')} CPU s")
        parser.exit(2, f"attention_ablation: --resume: {path} was trained with {budget}; run "
                       "with that budget or without --resume\n")
    return saved


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu-minutes", type=float, default=4.0, help="budget per run (process CPU)")
    p.add_argument("--images", type=int, default=None,
                   help="budget per run in training images instead (written beside the CPU-time "
                        "report, as attention_ablation_images.json and a section of ATTENTION.md)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 for every preset")
    p.add_argument("--presets", default=",".join(PRESETS),
                   help=f"comma-separated arms to train (default all: {','.join(PRESETS)})")
    p.add_argument("--out-dir", default=None, help="docs folder (default docs/)")
    p.add_argument("--runs-dir", default="runs/attention_ablation")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny evaluation and batch")
    p.add_argument("--render-only", action="store_true",
                   help="write ATTENTION.md again from attention_ablation.json")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for every arm, as `denoise-vit train` takes it (e.g. "
                        "model.zero_init_out=true); repeatable. Use it with its own --out-dir "
                        "and --runs-dir: the runs are named as the presets'")
    p.add_argument("--resume", action="store_true",
                   help="keep the runs of the saved report of this axis and budget and train only "
                        "the preset / seed pairs it lacks (e.g. --seeds 8 after a run of 3)")
    args = p.parse_args(argv)
    if not args.cpu_minutes > 0:
        p.exit(2, f"attention_ablation: --cpu-minutes must be positive, not {args.cpu_minutes}\n")
    if args.images is not None and args.images < 1:
        p.exit(2, f"attention_ablation: --images must be at least 1, not {args.images}\n")
    if args.seeds < 1:
        p.exit(2, f"attention_ablation: --seeds must be at least 1, not {args.seeds}\n")
    presets = [pr.strip() for pr in args.presets.split(",") if pr.strip()]
    unknown = [pr for pr in presets if pr not in PRESETS]
    if unknown or not presets:
        p.exit(2, f"attention_ablation: --presets takes some of {', '.join(PRESETS)}, not "
                  f"{args.presets!r}\n")
    presets = [pr for pr in PRESETS if pr in presets]
    docs = Path(args.out_dir) if args.out_dir else ROOT / "docs"
    if args.render_only:
        report = read_saved(p, docs / MAIN_JSON, "attention_ablation",
                            "run the ablation first")
        (docs / "ATTENTION.md").write_text(
            render(report, images_reports(docs), locality_link(docs)) + "\n")
        print(f"wrote {docs / 'ATTENTION.md'}")
        return

    from denoise_vit.benchmark.runner import machine_info
    from denoise_vit.registry import build_model
    from denoise_vit.training.config import load_config
    from denoise_vit.training.setup import model_args_for

    from denoise_vit.errors import DenoiseVitError
    try:                          # a bad --set is one line before any training
        loaded = {preset: load_config(preset, args.set) for preset in presets}
    except DenoiseVitError as exc:
        p.exit(2, f"attention_ablation: --set: {exc}\n")
    configs = {preset: cfg.model for preset, cfg in loaded.items()}
    t0 = time.perf_counter()
    cpu_seconds = 60 * args.cpu_minutes
    saved = kept_report(p, saved_path(docs, args.images), args.images, cpu_seconds,
                        args.set, configs,
                        {k: getattr(loaded[presets[0]], k) for k in TRAINING_KEYS}
                        ) if args.resume else None
    path = docs / (images_json(args.images) if args.images else MAIN_JSON)
    runs = list(saved["runs"]) if saved else []
    done = {(r["preset"], r["seed"]) for r in runs}
    for seed in range(args.seeds):
        for preset in presets:
            if (preset, seed) in done:
                continue
            runs.append(train_one(preset, seed, cpu_seconds, args.runs_dir, args.quick,
                                  args.images, args.set))
            print(f"{preset} seed {seed}: {runs[-1]['psnr']:.2f} dB, {runs[-1]['steps']} steps",
                  flush=True)
    presets = [pr for pr in PRESETS if any(r["preset"] == pr for r in runs)]
    params = {}
    for preset in presets:
        cfg = load_config(preset, args.set)
        params[preset] = sum(q.numel() for q in build_model(cfg.model["name"],
                                                             **model_args_for(cfg)).parameters())
    by_arm = gaps(runs, presets)
    report = {"command": " ".join([COMMAND, *(argv if argv is not None else sys.argv[1:])]),
              "machine": machine_info(), "cpu_seconds": None if args.images else cpu_seconds,
              "images": args.images, "settings": args.set,
              "configs": {**(saved or {}).get("configs", {}), **configs},
              "notes": (saved or {}).get("notes", []),
              "runs": runs, "means": {pr: mean_psnr(runs, pr) for pr in presets},
              "gap_db": best_gap(by_arm)[0], "gaps": by_arm, "goal_db": GOAL_DB,
              "params": params,
              "lr": cfg.lr, "warmup_steps": cfg.warmup_steps,   # the presets' own (equal)
              "optimizer": cfg.optimizer, "weight_decay": cfg.weight_decay,
              "wall_s": time.perf_counter() - t0}
    if saved:       # the runs kept come from these commands, which took this long
        report["earlier_commands"] = [*saved.get("earlier_commands", []), saved["command"]]
        report["wall_s"] += saved["wall_s"]
    docs.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    if args.images:
        plot(runs, presets, docs / images_figure(args.images),
             f"What attention and the blocks add at {args.images:,} training images")
    else:
        plot(runs, presets, docs / "attention" / "psnr.png")
    if (docs / MAIN_JSON).is_file():      # ATTENTION.md from both axes' reports
        (docs / "ATTENTION.md").write_text(
            render(json.loads((docs / MAIN_JSON).read_text()), images_reports(docs),
                   locality_link(docs)) + "\n")
    gap, arm = best_gap(by_arm)
    print(f"best attention arm {arm}: {gap:+.2f} dB over MLP-only blocks; wrote "
          f"{docs / 'ATTENTION.md'}" if gap is not None else f"wrote {docs / 'ATTENTION.md'}")


if __name__ == "__main__":
    main()
