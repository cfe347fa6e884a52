"""The vit_fast preset at its rate (1e-2) against 3e-2, as `denoise-vit train` runs it.

    flock /tmp/cpu.lock python experiments/variants/preset_rate.py   # ~20 min on a 2-core CPU
    python experiments/variants/preset_rate.py --collect-only        # the json from finished runs

Why: round 19 of docs/VARIANTS.md found 3e-2 lifting vit_fast by about 0.7 dB at 240 CPU s and
0.5 dB per image in the ablation's protocol (CPU-time budget, 2 torch threads in one process).
The preset trains otherwise: its own cosine over 1650 steps, a 270-s wall-clock stop, each batch
as two halves on two threads. So: `denoise-vit train --config PRESET seed=S lr=R` for each
seed and rate, one run after another, nothing else changed. Writes docs/variants/preset_rate.json
with each run's final evaluation PSNR, steps, seconds of training, the load average before it and
the share of the CPU other processes used during it.

`--set KEY=VALUE` (repeatable) adds the same override to every run of the invocation, and
`--tag T` names its runs PRESET_T_lrR_sS, so that a preset can be compared with a changed copy
of itself in one json (round 20: `--preset vit_unet --rates 0.002` against `--rates 0.01 --set
optimizer=adamw --set weight_decay=0.05 --set model.zero_init_out=true --tag unet_start`).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from preset_ab import last_row  # noqa: E402  (a run's final PSNR, steps and seconds)


def run_name(preset, rate, seed, tag=""):
    return f"{preset}{'_' + tag if tag else ''}_lr{rate:g}_s{seed}"


def main(argv=None):
    from denoise_vit.benchmark.runner import ForeignLoad

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="vit_fast")
    p.add_argument("--rates", default="0.01,0.03", help="comma-separated learning rates")
    p.add_argument("--seeds", type=int, default=2, help="seeds 0 .. N-1")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an override for every run (repeatable), e.g. model.zero_init_out=true")
    p.add_argument("--tag", default="", help="a word in the runs' names (with --set)")
    p.add_argument("--runs-dir", default="runs/preset_rate", help="parent of the run folders")
    p.add_argument("--collect-only", action="store_true",
                   help="train nothing: read the finished runs in --runs-dir")
    p.add_argument("--out", default=str(ROOT / "docs" / "variants" / "preset_rate.json"))
    args = p.parse_args(argv)
    try:
        rates = [float(r) for r in args.rates.split(",")]
    except ValueError:
        p.exit(2, f"preset_rate.py: --rates must be numbers separated by commas, not "
                  f"{args.rates!r}\n")
    if args.seeds < 1 or any(r <= 0 for r in rates):
        p.exit(2, "preset_rate.py: --seeds must be at least 1 and every rate positive\n")
    bad = [item for item in args.set if "=" not in item or not item.split("=", 1)[0].strip()]
    if bad:
        p.exit(2, f"preset_rate.py: --set takes KEY=VALUE, not {bad[0]!r}\n")
    if args.set and not args.tag.strip():
        p.exit(2, "preset_rate.py: --set needs --tag, so that its runs do not take the "
                  "preset's names\n")
    if not all(c.isalnum() or c in "_-." for c in args.tag):
        p.exit(2, f"preset_rate.py: --tag must be letters, digits, '_', '-' or '.', not "
                  f"{args.tag!r}\n")
    runs_dir, out = Path(args.runs_dir), Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    command = "flock /tmp/cpu.lock python experiments/variants/preset_rate.py " + \
        " ".join(argv if argv is not None else sys.argv[1:])
    # every invocation that wrote this file, in order (files written before 2026-12-07 kept
    # only the last one, as "command"), and on each run the one that trained it
    commands = results.pop("commands", None) or [c for c in [results.pop("command", None)] if c]
    results["commands"] = commands + ([] if command in commands else [command])
    for seed in range(args.seeds):
        for rate in rates:
            name = run_name(args.preset, rate, seed, args.tag)
            extra = {}
            if not args.collect_only:
                print(f"training {name} ...", file=sys.stderr, flush=True)
                before, load = os.getloadavg()[0], ForeignLoad()
                subprocess.run([sys.executable, "-m", "denoise_vit", "train", "--config",
                                args.preset, f"seed={seed}", f"lr={rate}", *args.set,
                                f"name={name}", "--out-dir", str(runs_dir), "--no-progress"],
                               check=True)
                extra = {"loadavg_before": before, "other_processes_cpu_share": load.stop(),
                         "command": command}
            if (runs_dir / name / "metrics.csv").exists():
                kept = results["runs"].get(name, {})      # the load a training run recorded
                results["runs"][name] = {
                    "preset": args.preset, "seed": seed, "lr": rate,
                    **({"overrides": args.set} if args.set else {}), **last_row(runs_dir / name),
                    **(extra or {k: kept.get(k) for k in ("loadavg_before",
                                                          "other_processes_cpu_share",
                                                          "command")})}
                r = results["runs"][name]
                print(f"{name}: {r['psnr']:.2f} dB, {r['steps']} steps, "
                      f"{r['train_seconds']:.0f} s", file=sys.stderr, flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
