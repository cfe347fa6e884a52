"""Adam against AdamW on the presets as `denoise-vit train` runs them (docs/VARIANTS.md round 12).

    flock /tmp/cpu.lock python experiments/variants/preset_ab.py     # ~40 min on a 2-core CPU
    python experiments/variants/preset_ab.py --collect-only          # the json from finished runs

For each preset (vit_fast, unet), seed (0, 1) and optimizer, one after another:
`denoise-vit train --config PRESET seed=S optimizer=adam weight_decay=0` and the same with
`optimizer=adamw weight_decay=0.05` (the presets' own since 2026-12-03), the preset's schedule,
threads and stop unchanged. Writes docs/variants/preset_ab.json: each run's final eval PSNR,
steps and seconds of training, from its metrics.csv.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRESETS = ("vit_fast", "unet")
SEEDS = (0, 1)
OPTIMIZERS = {"adam": ("optimizer=adam", "weight_decay=0"),
              "adamw": ("optimizer=adamw", "weight_decay=0.05")}


def run_name(preset, optimizer, seed):
    return f"{preset}_{optimizer}_s{seed}"


def last_row(run_dir: Path) -> dict:
    with open(run_dir / "metrics.csv") as f:
        row = list(csv.DictReader(f))[-1]
    return {"psnr": float(row["eval_psnr"]), "steps": int(row["step"]),
            "train_seconds": float(row["train_seconds"])}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs-dir", default="runs/preset_ab", help="parent of the run folders")
    p.add_argument("--collect-only", action="store_true",
                   help="train nothing: read the finished runs in --runs-dir")
    p.add_argument("--out", default=str(ROOT / "docs" / "variants" / "preset_ab.json"))
    args = p.parse_args(argv)
    runs_dir = Path(args.runs_dir)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    for preset in PRESETS:
        for seed in SEEDS:
            for optimizer, overrides in OPTIMIZERS.items():
                name = run_name(preset, optimizer, seed)
                if not args.collect_only:
                    print(f"training {name} ...", file=sys.stderr, flush=True)
                    subprocess.run([sys.executable, "-m", "denoise_vit", "train", "--config",
                                    preset, f"seed={seed}", *overrides, f"name={name}",
                                    "--out-dir", str(runs_dir), "--no-progress"], check=True)
                if (runs_dir / name / "metrics.csv").exists():
                    results["runs"][name] = {"preset": preset, "seed": seed,
                                             "optimizer": optimizer,
                                             **last_row(runs_dir / name)}
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
