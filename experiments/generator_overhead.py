"""The generator's per-call overhead: one decision per call, and the worker thread on small calls.

    flock /tmp/cpu.lock python experiments/generator_overhead.py

Since 2026-12-04 the generator's public functions decide once per call whether the compiled
kernels are used (`data_gen.compiled.one_decision`). Before that, `available()` read
DATA_GEN_COMPILED from the environment at each of the few hundred `handles` / `usable` checks of a
batch. The default `GeneratorSettings` are now also made and checked once, not at every call.

"before" is that old behaviour restored in the same process: `compiled.available` reading the
environment every time, and `settings._default` building the settings each call. "after" is the
code as it is. Both are interleaved in one process: rounds of 15 calls each, alternating which
side goes first, 24 rounds (8 left single runs between 0.88x and 1.26x). On this VM the generator's rate moves between processes by up to
2x, so processes are not compared. One process per thread count (1, 2), with the commands'
malloc setting. Figures: images/s, the median over the rounds of each round's median call.

A second study, "threshold" (2 threads only): calls writing fewer than
`compiled.MIN_PARALLEL_PIXELS` pixels run on the calling thread alone since 2026-12-04; "before"
hands them to the worker as before (the threshold patched to 0), "after" is the code as it is;
interleaved the same way, at n = 16 to 256.
Writes docs/generator_overhead.json.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, os, statistics, sys, time
import torch
from denoise_vit.memory import keep_freed_memory
keep_freed_memory()
import data_gen.compiled as C, data_gen.settings as S
from data_gen import generate_images

threads, sizes, rounds = int(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")], int(sys.argv[3])
study = sys.argv[4]
torch.set_num_threads(threads)
new_available, new_default, new_threshold = C.available, S._default, C.MIN_PARALLEL_PIXELS


def old_available():   # the code before one_decision: the environment read at every check
    if os.environ.get("DATA_GEN_COMPILED", "1").strip() in ("0", "false", "no", "off"):
        return False
    if getattr(C._LOCAL, "torch_path", 0):
        return False
    return C.kernels() is not None


def use(before):
    if study == "threshold":   # before: every call split with the worker
        C.MIN_PARALLEL_PIXELS = 0 if before else new_threshold
        return
    C.available = old_available if before else new_available
    S._default = (lambda preset: preset()) if before else new_default


g = torch.Generator().manual_seed(0)
rows = []
for n in sizes:
    for before in (True, False):
        use(before)
        generate_images(n, 64, generator=g)
    rates = {True: [], False: []}
    for r in range(rounds):
        for before in ((True, False) if r % 2 == 0 else (False, True)):
            use(before)
            times = []
            for _ in range(15):
                t = time.perf_counter()
                generate_images(n, 64, generator=g)
                times.append(time.perf_counter() - t)
            rates[before].append(n / statistics.median(times))
    b, a = statistics.median(rates[True]), statistics.median(rates[False])
    rows.append({"study": study, "threads": threads, "n": n, "before_images_per_s": round(b),
                 "after_images_per_s": round(a), "ratio": round(a / b, 3)})
print(json.dumps(rows))
"""


def cpu_busy_share(seconds=0.5):
    """Share of the CPU used by everything while we sleep (from /proc/stat)."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = read()
    time.sleep(seconds)
    t1, i1 = read()
    return round(1 - (i1 - i0) / max(1, t1 - t0), 3)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="64,256", help="batch sizes (images of 64x64), study decision")
    p.add_argument("--threshold-sizes", default="16,32,64,128,256",
                   help="batch sizes of the threshold study")
    p.add_argument("--rounds", type=int, default=24)
    p.add_argument("--out", default=str(ROOT / "docs" / "generator_overhead.json"))
    args = p.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
        small = [int(s) for s in args.threshold_sizes.split(",")]
        if not sizes or not small or min(sizes + small) < 1 or args.rounds < 1:
            raise ValueError
    except ValueError:
        p.exit(2, f"generator_overhead: --sizes and --threshold-sizes must be positive integers "
                  f"and --rounds at least 1 (got {args.sizes!r}, {args.threshold_sizes!r}, "
                  f"{args.rounds})\n")
    sys.path.insert(0, str(ROOT))
    from denoise_vit.benchmark.runner import machine_info

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rows, load = [], {"other_cpu_share_before": cpu_busy_share(),
                      "loadavg_before": os.getloadavg()[0]}
    runs = [(1, args.sizes, "decision"), (2, args.sizes, "decision"),
            (2, args.threshold_sizes, "threshold")]
    for threads, batch_sizes, study in runs:
        out = subprocess.run([sys.executable, "-c", WORKER, str(threads), batch_sizes,
                              str(args.rounds), study], env=env, capture_output=True, text=True)
        if out.returncode:
            p.exit(1, f"generator_overhead: the worker failed:\n{out.stderr}")
        for row in json.loads(out.stdout.strip().splitlines()[-1]):
            rows.append(row)
            print(f"{row['study']}: {row['threads']} thread(s), generate_images({row['n']}, 64): before "
                  f"{row['before_images_per_s']:,} images/s, after {row['after_images_per_s']:,}: "
                  f"{row['ratio']:.2f}x", flush=True)
    load["loadavg_after"] = os.getloadavg()[0]
    doc = {"command": "flock /tmp/cpu.lock python experiments/generator_overhead.py",
           "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine_info(),
           "load": load, "rounds": args.rounds, "rows": rows}
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
