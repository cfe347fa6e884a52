"""Batch norm of channels-last maps with few channels: torch's kernel and layers.norms (issue 14)

    flock /tmp/cpu.lock python experiments/norm_speed.py

Times forward + backward, in training mode, of one batch norm on the channels-last maps that
vit_fast's stem and decoder produce (4 channels at 64x64, 8 at 32x32; 16 at 16x16 for the
threshold), at the batch and thread count of a two-halves training step (32 images, 1 thread)
and of a one-pass step (64 images, 2 threads), three ways, in turns (glibc's malloc set up as
the commands set it):

* torch: nn.BatchNorm2d on the channels-last map;
* NCHW round trip: the map made NCHW, nn.BatchNorm2d, made channels-last again (layers.norms
  before 2026-12-06, on more than one thread);
* ours: layers.norms.BatchNorm2d as it is.

Writes norm_speed.json to --out-dir (default docs/): medians of --repeats calls in ms.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = [(32, 4, 64, 1), (64, 4, 64, 2), (32, 8, 32, 1), (64, 8, 32, 2), (32, 16, 16, 1),
         (64, 16, 16, 2)]   # batch, channels, side, threads


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=40)
    p.add_argument("--out-dir", default=str(ROOT / "docs"))
    args = p.parse_args(argv)
    if args.repeats < 1:
        print("norm_speed: --repeats must be at least 1", file=sys.stderr)
        return 2
    import torch
    from torch import nn
    from denoise_vit import memory
    from denoise_vit.benchmark.runner import machine_info
    memory.keep_freed_memory()     # as the commands run
    from denoise_vit.layers.norms import BatchNorm2d

    def round_trip(norm):
        return lambda x: norm(x.contiguous()).contiguous(memory_format=torch.channels_last)

    rows = []
    for batch, chans, side, threads in CASES:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        x = torch.randn(batch, chans, side, side).contiguous(memory_format=torch.channels_last)
        grad = torch.randn_like(x)
        ways = {"torch": nn.BatchNorm2d(chans),
                "NCHW round trip": round_trip(nn.BatchNorm2d(chans)),
                "ours": BatchNorm2d(chans)}
        times = {k: [] for k in ways}
        xs = {k: x.clone().requires_grad_() for k in ways}
        for _ in range(args.repeats + 2):
            for name, norm in ways.items():
                start = time.perf_counter()
                norm(xs[name]).backward(grad)
                times[name].append(time.perf_counter() - start)
        med = {k: round(statistics.median(v[2:]) * 1e3, 3) for k, v in times.items()}
        rows.append({"batch": batch, "channels": chans, "side": side, "threads": threads,
                     "ms": med})
        print(f"{batch} x {chans} x {side} x {side}, {threads} thread(s): "
              + ", ".join(f"{k} {v:.2f} ms" for k, v in med.items()))
    result = {"command": "flock /tmp/cpu.lock python experiments/norm_speed.py"
                         + ("" if args.repeats == 40 else f" --repeats {args.repeats}"),
              "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "machine": machine_info(),
              "repeats": args.repeats, "what": "forward + backward, training mode, median ms",
              "cases": rows}
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    (Path(args.out_dir) / "norm_speed.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
