"""Why one process's training rate is not the machine's: vit_fast's images/s, process by process.

    flock /tmp/cpu.lock python experiments/training_rate_order.py [--trials 4] [--sizes 2048]

The speed report's training part measured the dense matmul rate (torch.mm of 2048 x 2048)
in the same process just before timing vit_fast's training steps, and got about 330 images/s
where `denoise-vit train --config vit_fast` logs about 400 on the same machine. For each trial
this script runs, each in a fresh process with the commands' thread policy and malloc
settings, (a) vit_fast's `train_steps` three times in a row, (b) the same after one torch.mm of
each size in --sizes (best of 8, as the report does), and (c) (a) with address-space layout
randomisation off (`setarch -R`, where the system has it). The cases take turns within each
trial, so slow drift hits every case alike.

What it showed on the 2-core EPYC (2026-12-05, docs/training_rate_order.json, the default
options): vit_fast trains at about 390 or about 320 images/s, mostly keeping one rate for a
process's three runs but sometimes switching inside a process (392 then 329). Which rate a
process gets does not follow the matmul: medians 354 without it and 330 after it. With
randomisation off the rate still moved (one process of four fast), so the process's memory
layout does not decide it either. Runs by hand the same day, not recorded in the json, agreed:
`--trials 6` gave medians 369 and 362; glibc's huge pages (`GLIBC_TUNABLES=
glibc.malloc.hugetlb=1` on six `--child ""` processes) left 2 of 6 fast. One earlier try of six
processes under `setarch -R` had all six slow; the recorded run contradicts it. What is left is
outside the process: the two cores are a shared VM's, and the host's other load is not visible
from here. So one process, or one run, is not the machine's rate.

Prints the images/s of each case and trial and writes them to docs/training_rate_order.json
(with the machine, the load at the start and end, and the command). Run it alone: two cores
shared with anything else make the figures meaningless.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(sizes, steps, chunks):
    """One process: optional matmuls first, then vit_fast's train_steps `chunks` times."""
    from denoise_vit.memory import keep_freed_memory
    keep_freed_memory()
    from denoise_vit import threads
    policy = threads.start(log=lambda line: None)
    import torch
    policy.apply()
    from denoise_vit.training.config import load_config
    from denoise_vit.training.data import make_train_stream
    from denoise_vit.training.engine import train_steps
    from denoise_vit.training.setup import build_run_model, make_optimizer, make_run_scheduler

    out = {"threads": torch.get_num_threads(), "matmul_gflops": {}}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        best = float("inf")
        for _ in range(8):
            t = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - t)
        out["matmul_gflops"][n] = 2 * n ** 3 / best / 1e9
        del a, b
    cfg = load_config("vit_fast", [], {"device": "cpu"})
    model = build_run_model(cfg)
    opt = make_optimizer(cfg, model)
    sched = make_run_scheduler(cfg, opt)
    stream = make_train_stream(cfg.data, cfg.batch_size, seed=1, device="cpu")
    kw = dict(device=torch.device("cpu"), progress=False)
    train_steps(model, stream, opt, sched, first_step=0, last_step=3, **kw)   # warm-up
    rates = []
    for _ in range(chunks):
        _, _, images, seconds = train_steps(model, stream, opt, sched, first_step=0,
                                            last_step=steps, **kw)
        rates.append(images / seconds)
    out["images_per_s"] = rates
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--sizes", default="2048",
                    help="matmul sizes, one case each (comma-separated)")
    ap.add_argument("--steps", type=int, default=12, help="training steps per timed run")
    ap.add_argument("--chunks", type=int, default=3, help="timed runs per process")
    ap.add_argument("--json", default=str(ROOT / "docs" / "training_rate_order.json"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        sizes = [int(n) for n in args.child.split(",") if n]
        print(json.dumps(child(sizes, args.steps, args.chunks)))
        return 0
    try:
        sizes = [int(n) for n in args.sizes.split(",") if n]
    except ValueError:
        print(f"error: --sizes must be comma-separated integers, got {args.sizes!r}",
              file=sys.stderr)
        return 2
    cases = [("train only", "", [])] + [(f"after a {n} x {n} matmul", str(n), [])
                                         for n in sizes]
    setarch = shutil.which("setarch")
    if setarch:
        cases.append(("train only, ASLR off", "", [setarch, "-R"]))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("DENOISE_VIT_THREADS", None)
    from denoise_vit.benchmark.runner import machine_info
    load_start = os.getloadavg()
    results = {name: [] for name, _, _ in cases}
    for trial in range(args.trials):
        for name, spec, prefix in cases:
            proc = subprocess.run(prefix + [sys.executable, __file__, "--child", spec,
                                   "--steps", str(args.steps), "--chunks", str(args.chunks)],
                                  env=env, stdout=subprocess.PIPE, text=True, check=True)
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            results[name].append(r)
            mm = "".join(f", matmul {g:.0f} GFLOP/s" for g in r["matmul_gflops"].values())
            print(f"trial {trial + 1} {name:>26}: vit_fast "
                  + " / ".join(f"{x:.0f}" for x in r["images_per_s"])
                  + f" images/s ({r['threads']} threads{mm})", flush=True)
    summary = {name: round(sorted(x for r in rs for x in r["images_per_s"])[
        len(rs) * args.chunks // 2], 1) for name, rs in results.items()}
    print("median images/s: " + ", ".join(f"{k} {v:.0f}" for k, v in summary.items()))
    record = {"command": "python experiments/training_rate_order.py " + " ".join(argv or sys.argv[1:]),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": machine_info(),
              "load_start": load_start, "load_end": os.getloadavg(),
              "steps": args.steps, "chunks": args.chunks,
              "median_images_per_s": summary, "runs": results}
    Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
