"""Fused against plain attention in `denoise-vit denoise`'s inference copy, on this CPU.

    flock /tmp/cpu.lock python experiments/attention_path_speed.py      # about 4 minutes

For the vit_fast and video_fast presets (weights as built: speed does not depend on them), the
model a `Denoiser` runs (BatchNorm folded, channels-last for planes) is timed on one batch of
tiles as `denoise` makes them (32 tiles of 64x64 for vit_fast, 4 clips of 8x64x64 for
video_fast): the best of 5 repeats of `--calls` calls, with every attention layer on the fused
path (F.scaled_dot_product_attention) and on the plain one (q k^T, softmax, times v), in
`--rounds` alternations. The measurement behind denoise_vit.inference.optimize's choice of
the fused path. Then training: the vit_fast and course presets'
own training steps with either path, alternated the same way (the measurement behind
denoise_vit.training.setup's choice of path on the CPU). Writes docs/attention_path.json.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from denoise_vit import build_model  # noqa: E402
from denoise_vit.benchmark.runner import machine_info  # noqa: E402
from denoise_vit.inference.optimize import inference_copy  # noqa: E402
from denoise_vit.inference.tiling import Denoiser  # noqa: E402
from denoise_vit.layers.attention import set_fused_attention  # noqa: E402
from denoise_vit.training.config import load_config  # noqa: E402
from denoise_vit.training.setup import model_args_for  # noqa: E402


def preset_model(preset):
    cfg = load_config(preset, [])
    torch.manual_seed(0)
    return build_model(cfg.model_name, **model_args_for(cfg)).eval()


def best_seconds(model, batch, calls, repeats=5):
    with torch.inference_mode():
        for _ in range(2):
            model(batch)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(calls):
                model(batch)
            best = min(best, time.perf_counter() - start)
    return best


def measure(preset, calls, rounds):
    model = preset_model(preset)
    den = Denoiser(model)   # for the batch size and tile shape `denoise` uses
    tiles = (den.tile, den.tile) if den.kind == "image" else (den.frames, den.tile, den.tile)
    batch = torch.rand(den.batch_for(tiles), den.channels, *tiles)
    image = den.kind == "image"
    if image:
        batch = batch.contiguous(memory_format=torch.channels_last)
    copy = inference_copy(model.plane_model() if image else model, channels_last=image)
    times = {"fused": [], "plain": []}
    for _ in range(rounds):
        for path in times:
            set_fused_attention(copy, path == "fused")
            times[path].append(best_seconds(copy, batch, calls))
    ratios = [p / f for p, f in zip(times["plain"], times["fused"])]
    row = {"preset": preset, "batch": list(batch.shape), "calls": calls,
           "fused_s": [round(t, 4) for t in times["fused"]],
           "plain_s": [round(t, 4) for t in times["plain"]],
           "plain_over_fused": [round(r, 3) for r in ratios],
           "median_plain_over_fused": round(statistics.median(ratios), 3)}
    print(f"{preset}: batch {tuple(batch.shape)}, {calls} calls; fused {row['fused_s']} s, "
          f"plain {row['plain_s']} s; plain/fused median {row['median_plain_over_fused']}")
    return row


def measure_training(preset, steps, rounds):
    """images/s of the preset's training steps (its model, optimizer, generator and
    `train_steps`, as `denoise-vit train` runs them) with every attention layer fused, then
    plain, in `rounds` alternations; each figure the best of 2 runs of `steps` steps."""
    from denoise_vit.training.data import make_train_stream
    from denoise_vit.training.engine import train_steps
    from denoise_vit.training.setup import build_run_model, make_optimizer, make_run_scheduler

    cfg = load_config(preset, [])
    model = build_run_model(cfg)
    opt = make_optimizer(cfg, model)
    sched = make_run_scheduler(cfg, opt)
    stream = make_train_stream(cfg.data, cfg.batch_size, seed=1, device="cpu")
    kw = dict(device=torch.device("cpu"), progress=False)
    train_steps(model, stream, opt, sched, first_step=0, last_step=3, **kw)
    rates = {"fused": [], "plain": []}
    for _ in range(rounds):
        for path in rates:
            set_fused_attention(model, path == "fused")
            train_steps(model, stream, opt, sched, first_step=0, last_step=1, **kw)
            best = 0.0
            for _ in range(2):
                _, _, images, seconds = train_steps(model, stream, opt, sched, first_step=0,
                                                    last_step=steps, **kw)
                best = max(best, images / seconds)
            rates[path].append(best)
    ratios = [p / f for p, f in zip(rates["plain"], rates["fused"])]
    row = {"preset": preset, "batch": cfg.batch_size, "steps": steps,
           "fused_images_per_s": [round(r, 1) for r in rates["fused"]],
           "plain_images_per_s": [round(r, 1) for r in rates["plain"]],
           "plain_over_fused": [round(r, 3) for r in ratios],
           "median_plain_over_fused": round(statistics.median(ratios), 3)}
    print(f"training {preset}: fused {row['fused_images_per_s']}, plain "
          f"{row['plain_images_per_s']} images/s; plain/fused median "
          f"{row['median_plain_over_fused']}")
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=4, help="alternations of the two paths")
    p.add_argument("--calls", type=int, default=14, help="calls per repeat (vit_fast; "
                   "video_fast gets a quarter)")
    p.add_argument("--steps", type=int, default=8, help="training steps per timed run")
    p.add_argument("--out", default=str(ROOT / "docs" / "attention_path.json"))
    args = p.parse_args(argv)
    if args.rounds < 1 or args.calls < 4:
        p.exit(2, "attention_path_speed: --rounds must be at least 1 and --calls at least 4\n")
    with open("/proc/loadavg") as f:
        load_before = f.read().split()[0]
    rows = [measure("vit_fast", args.calls, args.rounds),
            measure("video_fast", args.calls // 4, args.rounds)]
    training = [measure_training(preset, args.steps, args.rounds)
                for preset in ("vit_fast", "course")]
    with open("/proc/loadavg") as f:
        load_after = f.read().split()[0]
    report = {"command": ("flock /tmp/cpu.lock python experiments/attention_path_speed.py "
                          f"--rounds {args.rounds} --calls {args.calls} --steps {args.steps}"),
              "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine_info(),
              "torch_threads": torch.get_num_threads(),
              "loadavg_1min": [float(load_before), float(load_after)], "presets": rows,
              "training": training}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
