"""The ViT ablation of docs/BENCHMARKS.md: what closes the gap to the U-Net on a 2-core CPU.

    python experiments/vit_ablation.py                  # every run below (about 2 min each)
    python experiments/vit_ablation.py --only patch4,stem_skips
    denoise-vit benchmark --report-only                 # put the table into BENCHMARKS.md

Each run trains one variant with the benchmark's training loop (the engine of
`denoise-vit train`, warm-up then a constant rate) for the same wall-clock budgets, and
evaluates it on the benchmark's evaluation set when the training time reaches each budget.
Results go to docs/ablation.json; `--only` re-runs some variants and keeps the others' records.
A run during which other processes took more than 15 % of the CPU is run again (twice at most).
"""
import argparse
import json
import time
from pathlib import Path

from denoise_vit.benchmark.runner import count_flops, train_with_marks
from denoise_vit.training.config import DataConfig, load_config
from denoise_vit.training.data import make_eval_data
from denoise_vit.registry import build_model
from denoise_vit.training.setup import model_args_for

# (name, what changes, base experiment config, overrides). Each row states its full difference
# from the course recipe (presets/course.toml: patch 8, width 32, depth 12, conv decoder).
STEM = ['model.embed="conv_stem"', "model.stem_skips=true"]
RUNS = [
    ("course", "course preset: p x p Conv2d patch embedding, conv decoder, Adam 1e-3",
     "course", []),
    ("linear", "course + linear (MAE-style) decoder", "course", ['model.decoder="linear"']),
    ("wide", "width 128, depth 6, linear decoder", "course",
     ['model.decoder="linear"', "model.embed_dim=128", "model.depth=6"]),
    ("patch4", "patch 4, width 64, depth 6, linear decoder", "course",
     ['model.decoder="linear"', "model.embed_dim=64", "model.depth=6", "model.patch_size=4"]),
    ("image_skip", "course + the input image joins the decoder's last stage", "course",
     ["model.image_skip=true"]),
    ("conv_stem", "course with a conv stem (stride-2 3x3 convs) as patch embedding", "course",
     ['model.embed="conv_stem"']),
    ("stem_skips", "conv stem + its maps as decoder skips", "course", STEM),
    ("stem_skips_lr2e-3", "conv stem + skips, Adam 2e-3", "course", STEM + ["lr=2e-3"]),
    ("stem_skips_w64", "conv stem + skips, width 64, depth 6, decoder width 32", "course",
     STEM + ["model.embed_dim=64", "model.depth=6", "model.decoder_width=32"]),
    ("vit_fast", "the shipped preset: conv stem + skips, width 64, depth 6, Adam 2e-3",
     "vit_fast", []),
    ("unet", "reference: the course's U-Net, Adam 1e-3", "unet", []),
]

BASE = {"warmup_steps": 50}   # every run: linear warm-up over 50 steps, then a constant rate


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budgets", default="1,2", help="minutes, comma-separated (default 1,2)")
    p.add_argument("--only", help="comma-separated run names (default: all)")
    p.add_argument("--out", default="docs/ablation.json")
    p.add_argument("--eval-size", type=int, default=DataConfig().eval_size)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    marks = sorted(60 * float(b) for b in args.budgets.split(","))
    names = set(args.only.split(",")) if args.only else {r[0] for r in RUNS}
    unknown = names - {r[0] for r in RUNS}
    if unknown:
        raise SystemExit(f"unknown run(s): {sorted(unknown)}")
    data = DataConfig(eval_size=args.eval_size)
    eval_inputs, eval_targets = make_eval_data(data)
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() else {}
    kept = {r["name"]: r for r in previous.get("runs", [])
            if r["name"] not in names and previous.get("budgets_s") == marks}
    records = dict(kept)
    for name, change, base, overrides in RUNS:
        if name not in names:
            continue
        cfg = load_config(base, [f"{k}={v}" for k, v in BASE.items()] + overrides
                          + [f"data.eval_size={args.eval_size}", f'name="{name}"'])
        model = build_model(cfg.model_name, **model_args_for(cfg))
        print(f"{name}: {change}", flush=True)
        for attempt in range(3):  # a run another process slowed down is run again
            started = time.time()
            _, curve = train_with_marks(cfg, marks, eval_inputs, eval_targets)
            foreign = max(p["foreign_cpu"] or 0.0 for p in curve)
            if foreign < 0.15:
                break
            print(f"{name}: other processes took {100 * foreign:.0f} % of the CPU; again", flush=True)
        last = curve[-1]
        records[name] = {
            "name": name, "change": change, "base": base, "overrides": overrides,
            "model": cfg.model, "lr": cfg.lr, "batch_size": cfg.batch_size,
            "params": sum(p.numel() for p in model.parameters()),
            "flops": count_flops(model, tuple(eval_inputs.shape[1:])),
            "images_per_s": last["images"] / last["train_seconds"], "curve": curve,
            "foreign_cpu_max": foreign,
            "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
        }
        order = [r[0] for r in RUNS]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({
            "command": "python experiments/vit_ablation.py" + (
                f" --budgets {args.budgets}" if args.budgets != "1,2" else ""),
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "note": previous.get("note", f"Every run: batch 64 unless stated, warm-up 50 steps "
                                         f"then a constant rate; evaluation set {args.eval_size} "
                                         f"images (seed {data.eval_seed})."),
            "conclusion": previous.get("conclusion", ""),
            "budgets_s": marks,
            "runs": sorted(records.values(), key=lambda r: order.index(r["name"])),
        }, indent=1) + "\n")


if __name__ == "__main__":
    main()
