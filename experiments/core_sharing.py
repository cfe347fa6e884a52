"""Does work on one of this machine's two CPUs slow the other? (issue 14, goal 4's context)

    flock /tmp/cpu.lock python experiments/core_sharing.py

The generator's draws from one torch.Generator are serial: one thread makes them while the
other renders (data_gen.compiled). That only pays if the drawing thread keeps its speed while
the other CPU is busy. This script pins itself to CPU 0 and times, alone and then with a
second process pinned to CPU 1 (a pure-Python busy loop: no memory traffic, a tiny cache
footprint; then a numpy loop streaming 128 MB), three things on one thread:

* ``normal_`` of 196,000 float32 values (the noisy rectangles' pixel noise of one
  ``generate_images(256, 64)`` call, as the generator draws it);
* a 512x512 float32 matmul (compute-bound);
* a ``generate_images(256, 64)`` call at 1 thread.

Medians of --repeats rounds, each a batch of calls; the order is alone, busy loop, streaming,
alone again. Writes core_sharing.json to --out-dir (default docs/) and prints the table.
Linux only (sched_setaffinity, taskset).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LOADS = {
    "busy Python loop": "x = 0\nwhile True:\n    x += 1\n",
    "numpy streaming 128 MB": ("import numpy as np\na = np.ones(16_000_000, np.float32)\n"
                               "b = np.empty_like(a)\nwhile True:\n    np.multiply(a, 1.0001, out=b)\n"),
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out-dir", default=str(ROOT / "docs"))
    args = p.parse_args(argv)
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        print("core_sharing: needs Linux and at least 2 CPUs", file=sys.stderr)
        return 2
    cpus = sorted(os.sched_getaffinity(0))
    import torch
    torch.set_num_threads(1)
    os.sched_setaffinity(0, {cpus[0]})
    from data_gen import generate_images
    from denoise_vit.benchmark.runner import machine_info
    from denoise_vit.memory import keep_freed_memory
    keep_freed_memory()
    g = torch.Generator().manual_seed(0)
    noise = torch.empty(196_000)
    a = torch.rand(512, 512)
    tasks = {
        "normal_ 196k float32": (lambda: noise.normal_(generator=g), 50),
        "matmul 512x512 float32": (lambda: a @ a, 50),
        "generate_images(256, 64), 1 thread": (lambda: generate_images(256, 64, generator=g), 30),
    }

    def measure():
        out = {}
        for name, (fn, calls) in tasks.items():
            rounds = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                for _ in range(calls):
                    fn()
                rounds.append((time.perf_counter() - t) / calls * 1e6)
            out[name] = round(statistics.median(rounds), 1)
        return out

    measure()   # warm-up: kernels compiled or loaded, caches filled
    rows = {"alone": measure()}
    for label, code in LOADS.items():
        other = subprocess.Popen(["taskset", "-c", str(cpus[1]), sys.executable, "-c", code])
        try:
            time.sleep(0.5)
            rows[f"with a {label} on CPU {cpus[1]}"] = measure()
        finally:
            other.kill()
            other.wait()
    rows["alone, again"] = measure()
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine_info(),
              "cpu_of_this_process": cpus[0], "repeats": args.repeats,
              "microseconds_per_call": rows,
              "command_line": "python experiments/core_sharing.py " + " ".join(argv or sys.argv[1:])}
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "core_sharing.json").write_text(json.dumps(report, indent=1) + "\n")
    names = list(tasks)
    print("| CPU 1 | " + " | ".join(f"{n} (us)" for n in names) + " |")
    print("|---|" + "---:|" * len(names))
    base = rows["alone"]
    for label, row in rows.items():
        print(f"| {label} | " + " | ".join(
            f"{row[n]:.0f}" + ("" if label == "alone" else f" ({row[n] / base[n]:.2f}x)")
            for n in names) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
