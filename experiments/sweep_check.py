"""Does the benchmark's learning-rate sweep pick the rate the full budgets favour?

    python experiments/sweep_check.py                       # the four networks, three sweeps each
    python experiments/sweep_check.py --configs unet --sweeps before:0.5,now:0.5

Why (issue 11, item 2): the protocol's 30-s sweep gave the U-Net 3e-3 in the vit_unet run of
2026-12-07, and at 1e-2 the same U-Net scores 0.4-1.0 dB higher at 1, 4 and 15 CPU min
(docs/benchmark-vit-unet/SUMMARY.md). A sweep run counted its warm-up in steps (the configs'
50) while its budget is 30 s of CPU time: the U-Net on one thread makes about 50 steps in 30 s,
so its sweep runs were all warm-up and never trained at the rate they scored. Since
2026-12-07 the warm-up of a sweep run ends within its first fifth (`SWEEP_WARMUP`).

Each network is prepared as `denoise-vit benchmark --optimizer adamw` prepares it (AdamW,
decay 0.05 on kernels, NHWC conv weights) and swept as the benchmark sweeps it
(`runner.sweep_learning_rate`: the validation seed, a cosine timed to the sweep's CPU-time
budget, up to two rates beyond an edge that wins), once per sweep setting:

    before:MIN   the step-counted warm-up, as before 2026-12-07, MIN minutes of CPU time
    now:MIN      the warm-up ending within the first fifth of the run

Two networks at a time, one torch thread each (as the benchmark's `--jobs 2`); run it alone
(`flock /tmp/cpu.lock ...`). Writes OUT/sweep_check.json (after every sweep, so a stopped run
keeps what it finished), OUT/SWEEP_CHECK.md and OUT/sweep_check.png.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from denoise_vit.errors import ConfigError  # noqa: E402

CONFIGS = ("unet", "vit_unet", "vit_unet_no_attention", "vit_fast")
SWEEPS = "before:0.5,now:0.5,now:1"


def parse_sweeps(text):
    """'before:0.5,now:1' -> [("before", 0.5), ("now", 1.0)]."""
    out = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        kind, _, minutes = item.partition(":")
        try:
            value = float(minutes)
        except ValueError:
            value = -1
        if kind not in ("before", "now") or not value > 0:
            raise ConfigError(f"--sweeps takes before:MIN or now:MIN items (minutes > 0), "
                              f"not {item!r}")
        out.append((kind, value))
    if not out:
        raise ConfigError("--sweeps names no sweep")
    return out


def prepare(name):
    """The config as `denoise-vit benchmark --optimizer adamw` trains it."""
    from denoise_vit.training.config import load_config
    cfg = load_config(name, [])
    cfg.channels_last = True
    cfg.optimizer, cfg.weight_decay = "adamw", 0.05
    return cfg


def one_sweep(name, kind, minutes, rates, extend):
    import torch
    from denoise_vit.benchmark import runner
    torch.set_num_threads(1)
    cfg = prepare(name)
    steps = {}
    started, cpu0 = time.time(), time.process_time()
    best, scores, added = runner.sweep_learning_rate(
        cfg, rates, minutes * 60, unit="cpu", extend=extend,
        warmup_share=runner.SWEEP_WARMUP if kind == "now" else None, steps=steps,
        log=lambda msg: None)
    return {"config": name, "sweep": kind, "minutes": minutes,
            "warmup_share": runner.SWEEP_WARMUP if kind == "now" else None,
            "warmup_steps": cfg.warmup_steps,
            "validation_psnr": {f"{r:g}": v for r, v in scores.items()},
            "steps": {f"{r:g}": n for r, n in sorted(steps.items())},
            "added": added, "chosen": best, "wall_s": time.time() - started,
            "cpu_s": time.process_time() - cpu0, "finished": time.strftime("%H:%M")}


def machine():
    """The benchmark's machine facts, and the load average when the sweeps start."""
    from denoise_vit.benchmark.runner import machine_info
    return {**machine_info(), "load_average_at_start": os.getloadavg()}


def render(results):
    lines = ["# Does the rate sweep pick the rate the full budgets favour?", "",
             f"`{results['command']}` ({results['date']}, {results['wall_minutes']:.1f} min; "
             f"{results['machine']['cpu']}, {results['machine']['cores']} cores, "
             f"{results['machine']['cpu_capability']}, torch {results['machine']['torch']}; load "
             f"average {results['machine']['load_average_at_start'][0]:.2f} at the start; two "
             f"sweeps at a time, one torch thread each). Validation PSNR (dB, seed 4321, 32 "
             f"images) after each sweep run; steps that run made; the rate the sweep chose.",
             "", "- **before**: warm-up of the config's steps (50), however short the run "
             "(the protocol until 2026-12-07)",
             "- **now**: the warm-up ends within the first 20 % of the run (or after 50 steps, "
             "if sooner), then a cosine to the end", "",
             "| network | sweep | " + " | ".join(f"lr {r}" for r in results["rates_shown"])
             + " | chosen |", "|---|---|" + "---:|" * len(results["rates_shown"]) + "---:|"]
    for r in results["sweeps"]:
        cells = []
        for rate in results["rates_shown"]:
            v = r["validation_psnr"].get(rate)
            cells.append("–" if v is None else f"{v:.2f} ({r['steps'][rate]} st)")
        lines.append(f"| {r['config']} | {r['sweep']}, {r['minutes']:g} min | "
                     + " | ".join(cells) + f" | {r['chosen']:g} |")
    return "\n".join(lines) + "\n"


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(dict.fromkeys(r["config"] for r in results["sweeps"]))
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        for r in (r for r in results["sweeps"] if r["config"] == name):
            rates = sorted(map(float, r["validation_psnr"]))
            ys = [r["validation_psnr"][f"{x:g}"] for x in rates]
            line, = ax.plot(rates, ys, "o-" if r["sweep"] == "now" else "s--",
                            label=f"{r['sweep']}, {r['minutes']:g} min")
            ax.plot([r["chosen"]], [r["validation_psnr"][f"{r['chosen']:g}"]], "*",
                    ms=14, color=line.get_color())
        ax.set_xscale("log")
        ax.set_title(name)
        ax.set_xlabel("learning rate")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation PSNR (dB)")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle("Rate sweep (star: chosen): warm-up counted in steps (before) "
                 "or ended within a fifth of the run (now)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--rates", default="0.003,0.01,0.03")
    ap.add_argument("--sweeps", default=SWEEPS)
    ap.add_argument("--extend", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="docs/sweep-check")
    args = ap.parse_args(argv)
    try:
        sweeps = parse_sweeps(args.sweeps)
        try:
            rates = tuple(float(x) for x in args.rates.split(",") if x.strip())
        except ValueError:
            raise ConfigError(f"--rates must be numbers separated by commas, not {args.rates!r}")
        if not rates or not all(r > 0 for r in rates):
            raise ConfigError(f"--rates must be positive rates, not {args.rates!r}")
        if args.jobs < 1 or args.extend < 0:
            raise ConfigError("--jobs must be at least 1 and --extend at least 0")
        names = tuple(x.strip() for x in args.configs.split(",") if x.strip())
        for name in names:
            prepare(name)   # an unknown config stops here, before any work
        from denoise_vit.outputs import writable_folder
        writable_folder(args.out, "output folder (--out)")
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python experiments/sweep_check.py " + " ".join(argv if argv is not None
                                                              else sys.argv[1:])
    results = {"command": command.strip(), "date": time.strftime("%Y-%m-%d %H:%M"),
               "machine": machine(), "rates": list(rates), "sweeps": []}
    started = time.time()
    tasks = [(n, kind, minutes) for n in names for kind, minutes in sweeps]
    print(f"{len(tasks)} sweeps, {args.jobs} at a time", flush=True)

    def save():
        done = sorted(results["sweeps"], key=lambda r: tasks.index(
            (r["config"], r["sweep"], r["minutes"])))
        results["sweeps"] = done
        results["wall_minutes"] = (time.time() - started) / 60
        results["rates_shown"] = sorted({k for r in done for k in r["validation_psnr"]},
                                        key=float)
        (out / "sweep_check.json").write_text(json.dumps(results, indent=1))

    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(one_sweep, n, k, m, rates, args.extend): (n, k, m)
                   for n, k, m in tasks}
        for future in as_completed(futures):
            rec = future.result()
            results["sweeps"].append(rec)
            save()
            print(f"{rec['config']} ({rec['sweep']}, {rec['minutes']:g} min): "
                  + ", ".join(f"{r} {v:.2f} dB / {rec['steps'][r]} steps"
                              for r, v in rec["validation_psnr"].items())
                  + f" -> {rec['chosen']:g}", flush=True)
    save()
    (out / "SWEEP_CHECK.md").write_text(render(results))
    plot(results, out / "sweep_check.png")
    print(f"wrote {out / 'SWEEP_CHECK.md'}, {out / 'sweep_check.json'}, "
          f"{out / 'sweep_check.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
