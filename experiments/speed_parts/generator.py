"""Speed-report part "generator": generate_images next to the per-image numpy loop, and videos.

    python experiments/speed_parts/generator.py --tree PATH --json OUT.json [--quick]

Measures the ``data_gen`` of the checkout ``--tree`` (every measurement runs in a subprocess with
``PYTHONPATH=PATH`` and ``torch.set_num_threads(N)`` set inside it), once with 1 and once with 2
torch threads:

* ``generate_images(256, 64)`` and the per-image numpy loop of ``experiments/bench_generator.py``
  (32 images per call; the loop is taken from *this* checkout, so both trees are compared with
  the same baseline), called in turns, each result held until the next call (as a training loop
  holds its batch); images/s from the median call time, and their ratio;
* ``generate_videos(32 clips, 8 frames, 64x64)``: frames/s, median call time;
* minor page faults per ``generate_images`` call (first touches of fresh memory, which cost
  about 1-4 us each on the measured VMs).

Each measurement runs in PROCESSES (3) fresh processes one after another and the figures are the
median across them, with the lowest and highest speed-up beside it: on the shared 2-core VMs the
generator's rate differs between processes with nothing else running (docs/SPEED.md of
2026-12-03 11:29, the torch renderer at 1 thread, kept malloc: 32,000 to 45,000 images/s
across its three processes; each process steady over its own calls), while the per-image loop
moves less.

Each is measured as the ``denoise-vit`` commands run it (where the tree has
``denoise_vit.memory.keep_freed_memory``, the commands' malloc settings, applied in the worker)
and, for such a tree, once more with glibc's defaults (``DENOISE_VIT_MALLOC=system``), which is
what a script that imports ``data_gen`` gets.

It assumes it holds the CPU (the umbrella script takes /tmp/cpu.lock). Progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PART = "generator"
BATCH, SIZE, NAIVE_BATCH, CLIPS, FRAMES = 256, 64, 32, 32, 8
PROCESSES = 3
FIGURES = ("images_per_s", "loop_images_per_s", "speedup", "video_frames_per_s",
           "page_faults_per_call")


def worker(threads: int, repeats: int) -> dict:
    """Runs inside the subprocess (PYTHONPATH = the measured tree)."""
    import importlib.util
    import resource
    import statistics

    import torch
    torch.set_num_threads(threads)
    import numpy as np

    import data_gen  # from the measured tree: imported before the bench module adds ROOT
    from data_gen import generate_images, generate_videos
    try:   # what the commands do at start-up, where the tree does it
        from denoise_vit.memory import keep_freed_memory
    except ImportError:
        keep_freed_memory = None
    malloc = "kept" if keep_freed_memory is not None and keep_freed_memory() else "system"

    spec = importlib.util.spec_from_file_location(
        "bench_generator", ROOT / "experiments" / "bench_generator.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    load_start = os.getloadavg()[0]
    g = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    faults = []

    def images():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        out = generate_images(BATCH, SIZE, generator=g)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        return out

    rates = bench.median_rates({
        "vectorised": (images, BATCH),
        "naive": (lambda: bench.naive_images(NAIVE_BATCH, SIZE, rng), NAIVE_BATCH),
    }, repeats)
    video = bench.median_rate(lambda: generate_videos(CLIPS, FRAMES, SIZE, generator=g),
                              CLIPS * FRAMES, repeats)
    return {
        "data_gen": str(Path(data_gen.__file__).resolve().parent),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "images_per_s": rates["vectorised"],
        "loop_images_per_s": rates["naive"],
        "speedup": rates["vectorised"] / rates["naive"],
        "video_frames_per_s": video,
        "page_faults_per_call": statistics.median(faults[1:]),
        "malloc": malloc,
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
    }


def measure_once(tree: Path, threads: int, repeats: int, malloc: str = "keep") -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS=str(threads),
               DENOISE_VIT_MALLOC=malloc)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(threads),
           "--repeats", str(repeats)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(tree))
    if done.returncode != 0:
        raise SystemExit(f"generator part: worker failed ({threads} threads):\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["data_gen"].startswith(str(tree.resolve())):
        raise SystemExit(f"generator part: measured {result['data_gen']}, not the tree {tree}")
    return result


def measure(tree: Path, threads: int, repeats: int, malloc: str = "keep",
            processes: int = PROCESSES) -> dict:
    """``measure_once`` in ``processes`` fresh processes: each figure the median across them,
    ``speedup_lo`` / ``speedup_hi`` and ``images_per_s_lo`` / ``_hi`` their extremes, the load
    from the first start to the last end."""
    import statistics
    runs = [measure_once(tree, threads, repeats, malloc) for _ in range(processes)]
    result = dict(runs[0], load_end=runs[-1]["load_end"], processes=processes,
                  per_process={name: [r[name] for r in runs] for name in FIGURES})
    for name in FIGURES:
        result[name] = statistics.median(r[name] for r in runs)
    for name in ("speedup", "images_per_s"):
        result[f"{name}_lo"] = min(r[name] for r in runs)
        result[f"{name}_hi"] = max(r[name] for r in runs)
    return result


def render(figures: dict, runs: dict, repeats: int, tree: Path, processes: int) -> str:
    lines = [
        "## Generator",
        "",
        f"`data_gen.generate_images({BATCH}, {SIZE})` (batch {BATCH} of {SIZE}x{SIZE}; the "
        f"training batch is 64) against the per-image numpy loop of "
        f"`experiments/bench_generator.py` ({NAIVE_BATCH} images per call), called in turns, "
        f"each result held until the next call; median of {repeats} calls each after a "
        f"warm-up call. `generate_videos({CLIPS}, {FRAMES}, {SIZE})`: median of {repeats}. "
        f"Each row: {processes} fresh processes one after another (`torch.set_num_threads`), "
        "each figure the median across them, the lowest and highest in brackets (the "
        f"generator's rate moves between processes on a shared VM), tree `{tree}`. "
        "malloc: `kept` is the `denoise-vit` commands' setting (freed blocks reused, "
        "`denoise_vit.memory.keep_freed_memory`), `system` glibc's defaults, which a script "
        "importing `data_gen` has.",
        "",
        "| threads | malloc | generate_images, images/s | per-image loop, images/s | speed-up | "
        "generate_videos, frames/s | page faults per generate_images call | load (1 min) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, r in runs.items():
        t, suffix = key
        lines.append(
            f"| {t} | {r['malloc']} | {figures[f'images_per_s{suffix}_{t}t']:,.0f} "
            f"({r['images_per_s_lo']:,.0f}-{r['images_per_s_hi']:,.0f}) | "
            f"{figures[f'loop_images_per_s{suffix}_{t}t']:,.0f} | "
            f"{figures[f'speedup{suffix}_{t}t']:.1f}x "
            f"({r['speedup_lo']:.1f}-{r['speedup_hi']:.1f}x) | "
            f"{figures[f'video_frames_per_s{suffix}_{t}t']:,.0f} | "
            f"{figures[f'page_faults_per_call{suffix}_{t}t']:,.0f} | "
            f"{r['load_start']:.2f} -> {r['load_end']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", type=Path, help="checkout whose data_gen is measured")
    parser.add_argument("--json", type=Path, help="where to write the part's result")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 repeats")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=41, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.repeats)))
        return
    if args.tree is None or args.json is None:
        parser.error("--tree and --json are required")
    if not (args.tree / "data_gen").is_dir():
        print(f"generator part: no data_gen/ in {args.tree}", file=sys.stderr)
        raise SystemExit(2)
    repeats = 3 if args.quick else args.repeats
    processes = 1 if args.quick else PROCESSES
    figures, runs = {}, {}
    for threads in (1, 2):
        # as the commands run it; then, where that differs, with glibc's defaults
        for malloc, suffix in (("keep", ""), ("system", "_system")):
            if suffix and runs[(threads, "")]["malloc"] == "system":
                break   # this tree has no setting of its own: the first run was the defaults
            print(f"generator part: {threads} thread(s), malloc {malloc}, tree {args.tree} ...",
                  file=sys.stderr)
            start = time.perf_counter()
            r = measure(args.tree, threads, repeats, malloc, processes)
            runs[(threads, suffix)] = r
            for name in FIGURES:
                figures[f"{name}{suffix}_{threads}t"] = r[name]
            for name in ("speedup_lo", "speedup_hi"):
                figures[f"{name}{suffix}_{threads}t"] = r[name]
            print(f"generator part: {threads} thread(s), malloc {r['malloc']}: "
                  f"{r['images_per_s']:,.0f} images/s, loop {r['loop_images_per_s']:,.0f}, "
                  f"{r['speedup']:.1f}x ({r['speedup_lo']:.1f}-{r['speedup_hi']:.1f}x over "
                  f"{processes} processes), video {r['video_frames_per_s']:,.0f} frames/s "
                  f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    result = {
        "part": PART,
        "figures": figures,
        "load": {f"{t}t{suffix}": {"start": r["load_start"], "end": r["load_end"]}
                 for (t, suffix), r in runs.items()},
        "notes": [f"torch {runs[(1, '')]['torch']}", f"batch {BATCH} at {SIZE}x{SIZE}",
                  f"median of {repeats} calls in each of {processes} processes",
                  f"malloc: {runs[(1, '')]['malloc']}"],
        "per_process": {f"{t}t{suffix}": r["per_process"] for (t, suffix), r in runs.items()},
        "markdown": render(figures, runs, repeats, args.tree, processes),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
