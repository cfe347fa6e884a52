"""The vit_fast preset's rate: the README's first command at other rates, seeds and step caps.

    flock /tmp/cpu.lock python experiments/variants/quick_rates.py --work /tmp/q   # ~20 min
    python experiments/variants/quick_rates.py --work /tmp/q --collect-only         # json only

Each run is `python experiments/quick_report.py --config WORK/NAME.toml --out-dir WORK/runs
--docs WORK/docs_NAME`, one after another, where NAME.toml is presets/vit_fast.toml with its
name, rate, step cap (epochs of 110 steps) and seed set as in RUNS. The figures of each run's
QUICK.md (PSNR, steps, training and whole seconds, load average at the start) go to
docs/variants/quick_rates.json, which experiments/variants/report.py renders in docs/VARIANTS.md
(round 5). The committed json was collected with --collect-only from runs made on 2026-12-02
(14:48-15:11) with these same settings, the preset then being at 2e-3 and 10 epochs.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRESET = ROOT / "denoise_vit" / "presets" / "vit_fast.toml"
OUT = ROOT / "docs" / "variants" / "quick_rates.json"
MACHINE = "AMD EPYC (AVX512), 2 cores, 2 torch threads"

# name: (lr, seed, epochs); 110 steps an epoch
RUNS = {
    "vit_fast": (2e-3, 0, 10),
    "vit_fast_seed1": (2e-3, 1, 10),
    "vit_fast_lr1e-2": (1e-2, 0, 10),
    "vit_fast_lr1e-2_seed1": (1e-2, 1, 10),
    "vit_fast_lr3e-2": (3e-2, 0, 10),
    "vit_fast_lr1e-2_e15": (1e-2, 0, 15),
}


def config_text(name, lr, seed, epochs):
    text = PRESET.read_text()
    text = re.sub(r'^name = ".*"', f'name = "{name}"', text, count=1, flags=re.M)
    text = re.sub(r"^epochs = .*", f"epochs = {epochs}", text, count=1, flags=re.M)
    return re.sub(r"^lr = .*", f"lr = {lr:g}\nseed = {seed}", text, count=1, flags=re.M)


def read_quick(path):
    text = path.read_text()

    def row(label):
        return float(re.search(rf"\| {label} \| ([0-9.]+)", text).group(1))

    return {"final_psnr": row("final eval PSNR"), "steps": int(row("training steps")),
            "train_s": row("training time"), "whole_s": row("whole command, wall clock"),
            "load_start": float(re.search(r"Load average \(1 min\) ([0-9.]+) at the start",
                                          text).group(1))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/q", help="configs, runs and QUICK.md folders")
    ap.add_argument("--collect-only", action="store_true",
                    help="read WORK/docs_NAME/QUICK.md of earlier runs instead of training")
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    runs = {}
    for name, (lr, seed, epochs) in RUNS.items():
        docs = work / f"docs_{name}"
        if not args.collect_only:
            config = work / f"{name}.toml"
            config.write_text(config_text(name, lr, seed, epochs))
            subprocess.run([sys.executable, str(ROOT / "experiments" / "quick_report.py"),
                            "--config", str(config), "--out-dir", str(work / "runs"),
                            "--docs", str(docs)], check=True)
        runs[name] = {"lr": lr, "seed": seed, "max_steps": epochs * 110,
                      **read_quick(docs / "QUICK.md")}
        print(name, runs[name], file=sys.stderr)
    command = ("python experiments/variants/quick_rates.py (quick_report.py --config "
               "WORK/NAME.toml for each run, one after another under flock /tmp/cpu.lock)")
    OUT.write_text(json.dumps({"command": command, "machine": MACHINE, "runs": runs},
                              indent=1) + "\n")
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
