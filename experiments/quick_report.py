"""Run the README's first command and write its figures and numbers to docs/ (docs/QUICK.md).

    flock /tmp/cpu.lock python experiments/quick_report.py     # ~4 minutes on a 2-core CPU
    python experiments/quick_report.py --config quick          # the course model's quick run

The same training as `denoise-vit train --config vit_fast` (or the preset given); this script
only adds the record: wall-clock time of the whole command, the machine, the load, and copies of
the figures for the README.
"""
import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from denoise_vit.errors import DenoiseVitError  # noqa: E402
from denoise_vit.training.config import load_config  # noqa: E402
from denoise_vit.training.run import run_training  # noqa: E402
from denoise_vit.training.run_folder import RunFolder  # noqa: E402


def machine():
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch "
            f"threads, {gpu}; Python {platform.python_version()}, torch {torch.__version__}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="vit_fast", help="preset (default: the README's first command's)")
    parser.add_argument("--out-dir", default="runs", help="parent of the run folder")
    parser.add_argument("--docs", default=str(ROOT / "docs"), help="where QUICK.md and figures go")
    args = parser.parse_args()
    try:
        cfg = load_config(args.config, [], {"out_dir": args.out_dir})   # the installed preset
        found = RunFolder(cfg.run_dir).existing_run_files()
        if found:   # the trainer's own message suggests --resume, which this script has not
            parser.exit(2, f"quick_report.py: run folder {cfg.run_dir} already holds a run "
                           f"({', '.join(found)}); move it away, or write into another folder "
                           "with --out-dir DIR\n")
        load_before = os.getloadavg()
        start = time.perf_counter()
        summary = run_training(cfg, progress=False)
    except DenoiseVitError as exc:       # a bad preset, or a run folder already in use
        parser.exit(2, f"quick_report.py: {exc}\n")
    wall = time.perf_counter() - start
    load_after = os.getloadavg()
    docs = Path(args.docs)
    (docs / "quick").mkdir(parents=True, exist_ok=True)
    for name in ("samples.png", "curves.png"):
        shutil.copy(cfg.run_dir / name, docs / "quick" / name)
    rows = (cfg.run_dir / "metrics.csv").read_text().strip().splitlines()
    text = f"""# The README's first command

Command: `python experiments/quick_report.py --config {args.config}` (the same training as
`denoise-vit train --config {args.config}`, preset `denoise_vit/presets/{args.config}.toml`).

Machine: {machine()}. Load average (1 min) {load_before[0]:.2f} at the start,
{load_after[0]:.2f} at the end.

Budget: {cfg.epochs} epochs x {cfg.steps_per_epoch} steps x batch {cfg.batch_size}, capped at
{cfg.max_train_seconds:.0f} s of training; fresh synthetic images every step.

| | value |
|---|---|
| evaluation set | {cfg.data.eval_size} images, seed {cfg.data.eval_seed} |
| noisy input PSNR | {summary['noisy_psnr']:.2f} dB |
| final eval PSNR | {summary['final_psnr']:.2f} dB |
| best eval PSNR | {summary['best_psnr']:.2f} dB |
| training steps | {summary['steps']} |
| training time | {summary['train_seconds']:.0f} s |
| whole command, wall clock | {wall:.0f} s |

![samples](quick/samples.png)

![curves](quick/curves.png)

Per-epoch metrics (metrics.csv):

```
{chr(10).join(rows)}
```
"""
    (docs / "QUICK.md").write_text(text)
    print(f"wrote {docs / 'QUICK.md'}: final PSNR {summary['final_psnr']:.2f} dB in {wall:.0f} s")


if __name__ == "__main__":
    main()
