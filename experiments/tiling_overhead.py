"""The work `Denoiser` does around the model: what limits it on a GPU (docs/speed_gpu.md: 94 %
of a 1024x1024 image's time on an H200), measured on the CPU with the model left out.

    flock /tmp/cpu.lock python experiments/tiling_overhead.py                  # this checkout
    flock /tmp/cpu.lock python experiments/tiling_overhead.py --before REV     # and REV beside it

`Denoiser.denoise` of synthetic images (1024x1024 and 4096x4096, float32, one plane) with the
vit_fast preset's model as built, its `_change` replaced by a function that returns zeros of the
batch's shape: what is left is gathering the tiles, the float64 intensity mapping, blending and
adding them, and building the tile grid (every call, as the command does). Seconds: the median
of --repeats calls after one warm-up, at the CPU's default batch (32 tiles of 64x64) and at
the CUDA default (512), with the commands' malloc setting. With --before, the same runs on REV's tree (git archive, PYTHONPATH),
alternating with this checkout's. Writes docs/tiling_overhead.json.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
from speed_report import extract_tree  # noqa: E402  (git archive of a revision)

WORKER = r"""
import json, statistics, sys, time
try:   # the commands' malloc setting, as `denoise-vit denoise` runs
    from denoise_vit.memory import keep_freed_memory
    keep_freed_memory()
except ImportError:
    pass
import numpy as np, torch
from data_gen import generate_images
from denoise_vit.inference.tiling import Denoiser
from denoise_vit.inference.intensity import Normalization
from denoise_vit.training.config import load_config
from denoise_vit.training.setup import build_run_model
spec = json.loads(sys.argv[1])
model = build_run_model(load_config("vit_fast", [])).eval()
out = []
for side in spec["sides"]:
    x = generate_images(1, size=side, generator=torch.Generator().manual_seed(0))[0].numpy()
    x = (x * 10000).astype(np.uint16)   # as `denoise` reads a uint16 TIFF
    norm = Normalization(low=0.0, high=10000.0, target_low=0.0, target_high=1.0)
    for batch in spec["batches"]:
        den = Denoiser(model, batch_size=batch)
        den._change = lambda b: torch.zeros_like(b)
        den.denoise(x, norm)
        times = []
        for _ in range(spec["repeats"]):
            t = time.perf_counter()
            den.denoise(x, norm)
            times.append(time.perf_counter() - t)
        out.append({"side": side, "batch": batch, "seconds": statistics.median(times),
                    "all": times})
print(json.dumps(out))
"""


def machine():
    """This checkout's machine_info (CPU, instruction set, cores, torch)."""
    sys.path.insert(0, str(ROOT))
    from denoise_vit.benchmark.runner import machine_info
    return machine_info()


def run(tree, spec, cwd):
    env = dict(os.environ, PYTHONPATH=str(tree))
    proc = subprocess.run([sys.executable, "-c", WORKER, json.dumps(spec)], env=env, cwd=cwd,
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"tiling_overhead: the worker failed on {tree}:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", help="a git revision measured beside this checkout")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--rounds", type=int, default=2, help="alternations with --before")
    p.add_argument("--out", default=str(ROOT / "docs" / "tiling_overhead.json"))
    args = p.parse_args(argv)
    if args.repeats < 1 or args.rounds < 1:
        p.exit(2, "tiling_overhead: --repeats and --rounds must be at least 1\n")
    spec = {"sides": [1024, 4096], "batches": [32, 512], "repeats": args.repeats}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"after": ROOT}
        if args.before:
            trees = {"before": extract_tree(args.before, Path(tmp) / "before"), "after": ROOT}
        results = {name: [] for name in trees}
        for _ in range(args.rounds if args.before else 1):
            for name, tree in trees.items():
                results[name].append(run(tree, spec, tmp))
    load.append(os.getloadavg()[0])
    rows = []
    for i, cell in enumerate(results["after"][0]):
        row = {"side": cell["side"], "batch": cell["batch"]}
        for name in results:
            row[f"{name}_ms"] = round(1e3 * statistics.median(r[i]["seconds"] for r in results[name]), 1)
        rows.append(row)
        print(f"{row['side']}x{row['side']}, batch {row['batch']}: " + ", ".join(
            f"{name} {row[f'{name}_ms']} ms" for name in results))
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.before],
                         capture_output=True, text=True).stdout.strip() if args.before else None
    report = {"command": "flock /tmp/cpu.lock python experiments/tiling_overhead.py"
                         + (f" --before {args.before}" if args.before else ""),
              "before_rev": rev,
              "date": time.strftime("%Y-%m-%d %H:%M"), "loadavg_1min": load,
              "machine": machine(), "rows": rows}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
