"""How fast is the data generator, next to a per-image loop and next to training?

    python experiments/bench_generator.py            # full run, updates docs/GENERATOR.md
    python experiments/bench_generator.py --quick    # smoke run, prints only

Measures, on this machine's CPU, with torch's default thread count (or each count given to
``--threads``, e.g. ``--threads 1 2``):
  * generate_images at 64 x 64, batch 256: images/s (median over repeats);
  * the same distribution drawn the naive way, one image, one cell and one rectangle at a
    time in numpy (written below), and the speed-up of the vectorised generator over it;
  * generate_videos at 64 x 64, 8 frames: frames/s;
  * training throughput of the course model (``build_model("vit_denoiser")``): one Adam step
    on an MSE loss at batch 64, images/s; and how many times faster the generator is.
A generator far faster than training means drawing fresh data every step costs nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from data_gen import generate_images, generate_videos  # noqa: E402

DOC = ROOT / "docs" / "GENERATOR.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
COMMAND = "python experiments/bench_generator.py"


def naive_images(n: int, size: int, rng: np.random.Generator):
    """The course distribution drawn one image and one object at a time (the reference).

    Returns (input, target) as (n, 1, size, size) float32 arrays.
    """
    yy, xx = np.mgrid[0:size, 0:size]
    inputs = np.zeros((n, 1, size, size), np.float32)
    targets = np.zeros((n, 1, size, size), np.float32)
    for i in range(n):
        target = np.zeros((size, size), np.float32)
        for _ in range(rng.poisson(0.002 * size * size)):
            r = rng.integers(5, 11)
            cy, cx = rng.integers(r, size - r + 1), rng.integers(r, size - r + 1)
            amplitude = rng.uniform(0.6, 1.0)
            d2 = (yy - cy) ** 2 + (xx - cx) ** 2
            target += np.where(d2 < r * r, 0.39 - 0.36 * d2 / r**2, 0.0) * amplitude
        clutter = np.zeros((size, size), np.float32)
        for _ in range(rng.poisson(0.0003 * size * size)):
            long_side, short_side = rng.integers(20, 51), rng.integers(2, 11)
            h, w = (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)
            h, w = min(h, size), min(w, size)
            y, x = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
            clutter[y:y + h, x:x + w] += rng.uniform(0.0, 0.8)
        for _ in range(rng.poisson(0.0003 * size * size)):
            h, w = rng.integers(10, 31), rng.integers(10, 31)
            y, x = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
            noise = np.maximum(0.0, rng.standard_normal((h, w)))
            clutter[y:y + h, x:x + w] += rng.uniform(0.0, 0.8) * noise
        targets[i, 0] = target
        inputs[i, 0] = target + clutter
    return inputs, targets


def median_rates(jobs: dict, repeats: int) -> dict:
    """Items per second of each job, ``{name: (fn, items)}``: items over the median call time.

    The jobs take turns, one call each per round after a warm-up, so a change in the load of a
    shared machine affects them alike and their ratio stays fair. Each result is kept until
    the job's next call returns, as a training loop keeps its batch, so the memory allocator
    sees the same pattern as in training.
    """
    held = {name: fn() for name, (fn, _) in jobs.items()}
    times = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, (fn, _) in jobs.items():
            start = time.perf_counter()
            held[name] = fn()  # the previous result is released only after this call
            times[name].append(time.perf_counter() - start)
    return {name: items / statistics.median(times[name]) for name, (_, items) in jobs.items()}


def median_rate(fn, items: int, repeats: int) -> float:
    return median_rates({"job": (fn, items)}, repeats)["job"]


def training_rate(batch: int, steps: int) -> float | None:
    """Images/s of Adam + MSE steps on the course model, or None if it cannot be built."""
    try:
        from denoise_vit import build_model
        model = build_model("vit_denoiser")
    except Exception as exc:  # the model package is optional for this script
        print(f"training throughput: n/a ({type(exc).__name__}: {exc})")
        return None
    model.train()
    optimizer = torch.optim.Adam(model.parameters())
    inputs, targets = generate_images(batch, generator=torch.Generator().manual_seed(0))

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
        optimizer.step()

    return median_rate(step, batch, steps)


def machine() -> dict:
    return {
        "CPU cores (os.cpu_count)": os.cpu_count(),
        "torch threads by default": torch.get_num_threads(),
        # other work on the machine slows every figure, torch's 2-thread kernels most
        "load average (1 min) at start": f"{os.getloadavg()[0]:.2f}",
        "torch": torch.__version__,
        "GPU": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU only)",
        "Python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
    }


def markdown(info: dict, rows: list[tuple[str, str]], command: str) -> str:
    lines = [
        START,
        f"Produced by `{command}` "
        f"on {time.strftime('%Y-%m-%d')}.",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in info.items()) + ".",
        "",
        "| measure | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
        END,
    ]
    return "\n".join(lines)


def write_doc(block: str) -> None:
    if DOC.exists():
        text = DOC.read_text()
        pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
        text = pattern.sub(lambda _: block, text) if pattern.search(text) else text + "\n" + block
    else:
        DOC.parent.mkdir(parents=True, exist_ok=True)
        text = "# The synthetic data generator\n\n" + block
    DOC.write_text(text.rstrip("\n") + "\n")


def measure(threads: int, quick: bool) -> list[tuple[str, str]]:
    """Generator, reference and training figures with ``threads`` torch threads (table rows)."""
    torch.set_num_threads(threads)
    repeats = 3 if quick else 15
    batch, size, naive_batch, clips, frames, train_batch = 256, 64, 32, 32, 8, 64
    tag = f"{threads} thread{'s' if threads > 1 else ''}"
    g = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)

    rates = median_rates({
        "vectorised": (lambda: generate_images(batch, size, generator=g), batch),
        "naive": (lambda: naive_images(naive_batch, size, rng), naive_batch),
    }, repeats)
    vec, naive = rates["vectorised"], rates["naive"]
    video = median_rate(lambda: generate_videos(clips, frames, size, generator=g),
                        clips * frames, repeats)
    train = training_rate(train_batch, 3 if quick else 10)
    train_text = "n/a" if train is None else f"{train:,.0f} images/s"
    ratio_text = "n/a" if train is None else f"{vec / train:.0f}x"
    rows = [
        (f"`generate_images`, batch {batch}, {size}x{size}, {tag}", f"{vec:,.0f} images/s"),
        (f"per-image numpy loop, same distribution ({naive_batch} images per call, "
         f"measured in turns with the line above)", f"{naive:,.0f} images/s"),
        (f"speed-up over the per-image loop, {tag}", f"{vec / naive:.1f}x"),
        (f"`generate_videos`, {clips} clips x {frames} frames, {size}x{size}, {tag}",
         f"{video:,.0f} frames/s"),
        (f"training `vit_denoiser` (course preset), Adam + MSE, batch {train_batch}, {tag}",
         train_text),
        (f"generator / training, {tag}", ratio_text),
    ]
    for name, value in rows:
        print(f"{name}: {value}")
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="few repeats; prints only (no doc update)")
    parser.add_argument("--no-write", action="store_true", help=f"do not update {DOC.name}")
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="torch intra-op thread counts to measure (default: torch's own)")
    args = parser.parse_args(argv)
    threads = args.threads or [torch.get_num_threads()]

    info = machine()
    for key, value in info.items():
        print(f"{key}: {value}")

    rows = []
    for n in threads:
        rows += measure(n, args.quick)
    info["load average (1 min) at end"] = f"{os.getloadavg()[0]:.2f}"
    if not (args.quick or args.no_write):
        flags = " --threads " + " ".join(map(str, args.threads)) if args.threads else ""
        write_doc(markdown(info, rows, COMMAND + flags))
        print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
