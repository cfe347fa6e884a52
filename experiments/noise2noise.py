"""Noise2Noise against clean targets at the same budget; writes docs/NOISE2NOISE.md.

    flock /work/cpu.lock python experiments/noise2noise.py      # ~15 minutes on a 2-core CPU

Two runs of the course preset with the same recipe, steps, batch and seeds, differing only in the
training target:
  * noise2noise: data.kind = "noise2noise", input and target two independent clutter draws
    over the same cells (course `gen_noise2noise`, rectangle rates 0.0005);
  * clean target: data.kind = "images" with the same rectangle rates, target the clean cells.
Both final checkpoints are evaluated on one fixed set: Noise2Noise inputs (rates 0.0005) and
clean targets, plus the course's image set (rates 0.0003) for reference.
"""
import argparse
import os
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data_gen import make_eval_set  # noqa: E402
from denoise_vit import load_model  # noqa: E402
from denoise_vit.training.config import load_config  # noqa: E402
from denoise_vit.training.engine import predict  # noqa: E402
from denoise_vit.metrics import psnr, ssim  # noqa: E402
from denoise_vit.training.run import run_training  # noqa: E402

N2N_RATES = ["data.generator.filled_rate=0.0005", "data.generator.noisy_rate=0.0005"]


def machine():
    return (f"{platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch "
            f"threads, {'GPU ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--steps-per-epoch", type=int, default=90)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--eval-size", type=int, default=512)
    parser.add_argument("--out-dir", default=str(ROOT / "runs" / "noise2noise"))
    parser.add_argument("--doc", default=str(ROOT / "docs" / "NOISE2NOISE.md"))
    args = parser.parse_args()

    recipe = [f"epochs={args.epochs}", f"steps_per_epoch={args.steps_per_epoch}",
              f"batch_size={args.batch_size}", "lr=2e-3", 'schedule="cosine"', "warmup_steps=50",
              f"data.eval_size={args.eval_size}", f'out_dir="{args.out_dir}"']
    runs = {"Noise2Noise (noisy target)": ["name=n2n", "data.kind=noise2noise"],
            "clean target": ["name=clean", "data.kind=images", *N2N_RATES]}
    summaries = {}
    for label, extra in runs.items():
        print(f"--- training: {label}", flush=True)
        summaries[label] = run_training(load_config(None, recipe + extra), progress=False)

    sets = {"Noise2Noise set (rates 0.0005)": make_eval_set(args.eval_size, kind="noise2noise",
                                                            seed=1234),
            "course image set (rates 0.0003)": make_eval_set(args.eval_size, kind="images",
                                                             seed=1234)}
    rows = []
    for label, summary in summaries.items():
        model = load_model(Path(summary["run_dir"]) / "checkpoint_last.pt")
        for set_name, (inputs, targets) in sets.items():
            out = predict(model, inputs, device=torch.device("cpu"))
            offset = (out - targets).mean().item()
            rows.append((label, set_name, psnr(out, targets), ssim(out, targets), offset,
                         psnr(out - offset, targets), summary["steps"], summary["train_seconds"]))
            print(rows[-1], flush=True)

    steps = args.epochs * args.steps_per_epoch
    lines = [
        "# Noise2Noise beside clean targets",
        "",
        f"Command: `flock /work/cpu.lock python experiments/noise2noise.py` (defaults: {args.epochs} "
        f"epochs x {args.steps_per_epoch} steps, batch {args.batch_size}).",
        f"Machine: {machine()}.",
        f"Budget: the same for both models: {steps} steps of batch {args.batch_size} "
        "(course preset ViT: patch 8, width 32, depth 12; Adam, lr 2e-3, 50 warm-up steps, "
        "cosine), final checkpoint (`checkpoint_last.pt`) of each run, same seeds.",
        f"Evaluation: {args.eval_size} images of 64x64 per set, seed 1234, PSNR over the whole set "
        "against the clean cells (SPEC section 4).",
        "",
        "| training target | evaluation set | PSNR (dB) | SSIM | mean offset | PSNR offset removed* | train time |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, set_name, p, s, offset, p0, n, secs in rows:
        lines.append(f"| {label} | {set_name} | {p:.2f} | {s:.3f} | {offset:+.4f} | {p0:.2f} | "
                     f"{secs:.0f} s |")
    for set_name, (inputs, targets) in sets.items():
        lines.append(f"| (noisy input) | {set_name} | {psnr(inputs, targets):.2f} | "
                     f"{ssim(inputs, targets):.3f} | {(inputs - targets).mean().item():+.4f} | | |")
    lines += [
        "",
        "\\* diagnostic only: the PSNR after subtracting the set's mean output-minus-target offset "
        "(it uses the clean targets, which Noise2Noise training never sees). Train times differ "
        "with the load other jobs put on the shared cores; the step budgets are equal.",
        "",
        "Why the gap: Noise2Noise learns E[target | input]. It recovers the clean image only when "
        "the noise has zero mean; the course's clutter is additive and never negative (filled "
        "rectangles of value 0..0.8 and noisy rectangles of value x max(0, N(0,1))), so the "
        "expected second noisy copy is the clean cells *plus the average clutter*. A "
        "Noise2Noise model therefore removes the clutter it sees but adds a faint uniform haze "
        "back (the positive mean offset above); with zero-mean noise (e.g. "
        "`data.generator.gaussian_sigma`) the two targets would agree in expectation.",
        "",
        "To train Noise2Noise on your own data, put pairs of noisy files in "
        "`PAIRS/input/NAME` and `PAIRS/target/NAME` (optionally clean ones in `PAIRS/clean/NAME` "
        "for evaluation) and run "
        "`denoise-vit train --config quick data.kind=pairs data.pairs_dir=PAIRS`.",
        "",
    ]
    Path(args.doc).parent.mkdir(parents=True, exist_ok=True)
    Path(args.doc).write_text("\n".join(lines))
    print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
