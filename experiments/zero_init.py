"""Does an output layer that starts at zero help? Presets with and without `model.zero_init_out`.

    flock /tmp/cpu.lock python experiments/zero_init.py --presets unet --seeds 4   # ~20 min
    python experiments/zero_init.py --render-only          # ZERO_INIT.md from its json

Why: with eight seeds, vit_fast's worst runs (docs/ATTENTION.md: 30.35 and 31.55 dB at 240 CPU
s, against 34.2 for its best) are slow from their first steps: seed 5's training loss is 0.20
over its first ten steps against 0.04 for seed 3 (`denoise-vit train --config vit_fast seed=S
steps_per_epoch=10 ...`, 2026-12-06) and is still three times seed 3's after 200 steps. The
network's first output is a random map whose size depends on the seed (the decoder's 1 x 1
output conv has PyTorch's default init). `model.zero_init_out = true` zeroes that layer, so that
every seed starts from the same output, 0 (the input itself with `residual`), as ResNets zero
their blocks' last norm (Goyal et al. 2017) and Restormer / SwinIR-style branches start at
zero: the layer still learns from the first step, its gradient being the features times the
error.

Arms: each preset with `model.zero_init_out = false` (PyTorch's default init, as every preset
was before 2026-12-06) and with `model.zero_init_out = true` (as vit_fast and unet now are); the
same seeds (weights and data stream), 240 s of process CPU time each (`budget_clock = "cpu"`, the
cosine decayed over it), trained as `denoise-vit train --config <preset>` would; scored on the
evaluation set (512 images, seed 1234). The gaps are paired by seed, with a 95 % interval.

vit_fast and vit_fast_no_attention are not trained here: their runs are attention_ablation.py's
(docs/attention_ablation.json as the presets are, docs/zero_init/attention_ablation.json with
`--set model.zero_init_out=true --out-dir docs/zero_init`), read when present.

Writes docs/ZERO_INIT.md, docs/zero_init.json and docs/zero_init/zero_init.png.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from attention_ablation import paired_interval, train_one  # noqa: E402
from saved_report import read_saved  # noqa: E402

SETTING = "model.zero_init_out=true"
SETTINGS = {"default": ["model.zero_init_out=false"], "zero": [SETTING]}   # whatever a preset says
ARMS = tuple(SETTINGS)
COMMAND = "flock /tmp/cpu.lock python experiments/zero_init.py"
ABLATION = {"default": "attention_ablation.json", "zero": "zero_init/attention_ablation.json"}


def ablation_runs(docs):
    """vit_fast's and its MLP-only twin's runs from attention_ablation.py's two reports (the
    presets as they are, and with --set model.zero_init_out=true), where both exist."""
    out = []
    for arm, rel in ABLATION.items():
        path = docs / rel
        if not path.is_file():
            return []
        report = json.loads(path.read_text())
        if report.get("cpu_seconds") != 240 or report.get("settings", []) != (
                [SETTING] if arm == "zero" else []):
            return []
        out += [{**r, "arm": arm, "source": rel} for r in report["runs"]
                if r["preset"] in ("vit_fast", "vit_fast_no_attention")]
    return out


def pairs(runs, preset):
    """{seed: (default psnr, zero psnr)} over the seeds both arms of `preset` ran."""
    by = {(r["arm"], r["seed"]): r["psnr"] for r in runs if r["preset"] == preset}
    return {s: (by[("default", s)], by[("zero", s)]) for _, s in sorted(by)
            if ("default", s) in by and ("zero", s) in by}


def presets_in(runs):
    return list(dict.fromkeys(r["preset"] for r in runs))


def render(report):
    runs = report["runs"]
    m = report["machine"]
    lines = ["# Zero-initialised output layer (`model.zero_init_out`)", "",
             f"Produced by `{report['command']}` on {m['cpu']}, {m['cores']} cores, no GPU, "
             f"torch {m['torch']}; {report['wall_s'] / 60:.0f} minutes of its own training, "
             "alone under the CPU lock.", "",
             "Each preset with `model.zero_init_out = false` (*default*: PyTorch's init of the "
             "output layer, as the presets were before 2026-12-06) and with `model.zero_init_out "
             "= true` (*zero*: the output layer starts at zero, so every seed starts from the "
             "same output; vit_fast, its ablation twins and unet now start so), 240 s of "
             "process CPU time each, the cosine decayed over it, seeds paired (the same "
             "weights' seed and data stream in both arms). vit_fast and "
             "vit_fast_no_attention: the runs of `experiments/attention_ablation.py` "
             "(docs/attention_ablation.json, and docs/zero_init/attention_ablation.json with "
             f"`--set {SETTING} --out-dir docs/zero_init`), not trained again here.", "",
             "![default against zero-initialised output, per seed](zero_init/zero_init.png)", "",
             "| preset | seeds | default (dB) | zero (dB) | zero - default | 95 % interval | "
             "worst seed, default / zero | seed spread (sd), default / zero |",
             "|---|---:|---:|---:|---:|---|---:|---:|"]
    for preset in presets_in(runs):
        both = pairs(runs, preset)
        if not both:
            continue
        d = [a for a, _ in both.values()]
        z = [b for _, b in both.values()]
        gaps = {s: b - a for s, (a, b) in both.items()}
        interval = paired_interval(gaps)
        sd = (f"{statistics.stdev(d):.2f} / {statistics.stdev(z):.2f}" if len(d) > 1 else "–")
        lines.append(f"| {preset} | {len(both)} | {statistics.mean(d):.2f} | "
                     f"{statistics.mean(z):.2f} | {statistics.mean(gaps.values()):+.2f} | "
                     + (f"{interval[0]:+.2f} to {interval[1]:+.2f}" if interval else "–")
                     + f" | {min(d):.2f} / {min(z):.2f} | {sd} |")
    lines += ["", "Per seed (dB, default → zero):", ""]
    for preset in presets_in(runs):
        both = pairs(runs, preset)
        if both:
            lines.append(f"- {preset}: " + ", ".join(
                f"{s}: {a:.2f} → {b:.2f}" for s, (a, b) in both.items()))
    att = [pairs(runs, pr) for pr in ("vit_fast", "vit_fast_no_attention")]
    if all(att):
        seeds = sorted(set(att[0]) & set(att[1]))
        for i, arm in enumerate(ARMS):
            gaps = {s: att[0][s][i] - att[1][s][i] for s in seeds}
            interval = paired_interval(gaps)
            lines += ["", f"Attention in vit_fast against MLP-only blocks, both {arm}-initialised "
                      f"({len(seeds)} seeds): {statistics.mean(gaps.values()):+.2f} dB"
                      + (f" (95 % interval {interval[0]:+.2f} to {interval[1]:+.2f})"
                         if interval else "") + "."]
    return "\n".join(lines)


def plot(report, path):
    from matplotlib.figure import Figure

    presets = [pr for pr in presets_in(report["runs"]) if pairs(report["runs"], pr)]
    fig = Figure(figsize=(1.2 + 2.2 * len(presets), 3.6), dpi=120)
    ax = fig.add_subplot()
    for i, preset in enumerate(presets):
        for s, (a, b) in pairs(report["runs"], preset).items():
            ax.plot([2 * i, 2 * i + 0.8], [a, b], "-o", color="tab:blue" if b >= a else "tab:red",
                    ms=3, lw=0.8, alpha=0.8)
    ax.set_xticks([2 * i + 0.4 for i in range(len(presets))], presets, fontsize=8)
    ax.set_ylabel("eval PSNR after 240 CPU s (dB)")
    ax.set_title("Each seed: default init (left) → zero-initialised output (right)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default="unet", help="comma-separated presets to train")
    p.add_argument("--seeds", type=int, default=4, help="seeds 0 .. N-1 for each arm")
    p.add_argument("--cpu-minutes", type=float, default=4.0, help="budget per run (process CPU)")
    p.add_argument("--out-dir", default=None, help="docs folder (default docs/)")
    p.add_argument("--runs-dir", default="runs/zero_init")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny evaluation and batch")
    p.add_argument("--resume", action="store_true",
                   help="keep the saved runs and train only the preset / arm / seed triples "
                        "missing")
    p.add_argument("--render-only", action="store_true", help="write ZERO_INIT.md again")
    args = p.parse_args(argv)
    docs = Path(args.out_dir) if args.out_dir else ROOT / "docs"
    if args.render_only:
        report = read_saved(p, docs / "zero_init.json", "zero_init", "run it first")
        (docs / "ZERO_INIT.md").write_text(render(report) + "\n")
        print(f"wrote {docs / 'ZERO_INIT.md'}")
        return
    if args.seeds < 1 or not args.cpu_minutes > 0:
        p.exit(2, "zero_init: --seeds must be at least 1 and --cpu-minutes positive\n")
    from denoise_vit.errors import DenoiseVitError
    from denoise_vit.training.config import load_config
    presets = [pr.strip() for pr in args.presets.split(",") if pr.strip()]
    for preset in presets:
        try:
            load_config(preset, [SETTING])
        except DenoiseVitError as exc:
            p.exit(2, f"zero_init: --presets: {exc}\n")
    from denoise_vit.benchmark.runner import machine_info

    cpu_seconds = 60 * args.cpu_minutes
    saved_path = docs / "zero_init.json"
    saved = json.loads(saved_path.read_text()) if args.resume and saved_path.is_file() else None
    if saved and saved["cpu_seconds"] != cpu_seconds:
        p.exit(2, f"zero_init: --resume: {saved_path} was trained with {saved['cpu_seconds']} "
                  "CPU s; run with that budget or without --resume\n")
    own = [r for r in saved["runs"] if "source" not in r] if saved else []
    done = {(r["preset"], r["arm"], r["seed"]) for r in own}
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        for preset in presets:
            for arm in ARMS:
                if (preset, arm, seed) in done:
                    continue
                run = train_one(preset, seed, cpu_seconds, Path(args.runs_dir) / arm, args.quick,
                                settings=SETTINGS[arm])
                own.append({**run, "arm": arm})
                print(f"{preset} {arm} seed {seed}: {run['psnr']:.2f} dB, {run['steps']} steps",
                      flush=True)
    report = {"command": " ".join([COMMAND, *(argv if argv is not None else sys.argv[1:])]),
              "machine": machine_info(), "cpu_seconds": cpu_seconds,
              "runs": own + (ablation_runs(docs) if cpu_seconds == 240 else []),
              "wall_s": time.perf_counter() - t0 + (saved["wall_s"] if saved else 0.0)}
    docs.mkdir(parents=True, exist_ok=True)
    saved_path.write_text(json.dumps(report, indent=1) + "\n")
    plot(report, docs / "zero_init" / "zero_init.png")
    (docs / "ZERO_INIT.md").write_text(render(report) + "\n")
    print(f"wrote {docs / 'ZERO_INIT.md'}")


if __name__ == "__main__":
    main()
