"""Speed-report part "load": training and inference with one core held by another process.

    python experiments/speed_parts/load.py --tree PATH --json OUT.json [--quick]

Measures, with PYTHONPATH=PATH in every measured process:
- vit_fast training images/s (the tree's own train_steps, fresh generator batches): idle with
  torch's default threads (2 here); with one core held by a `while True: pass` subprocess that
  this script starts, first with the old fixed 2 threads, then with the tree's thread policy
  (denoise_vit.threads, default "auto"; null on a tree without it);
- `python -m denoise_vit denoise` of a 1024 x 1024 uint16 TIFF with a vit_fast checkpoint (two
  training steps: the speed does not depend on the weights), end to end (process start to exit),
  median of 3, idle and with the busy core, each with the command's default threads.
Assumes it holds the CPU (the umbrella takes /tmp/cpu.lock); the load average is recorded.
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

PART = "load"


def log(msg):
    print(f"[{PART}] {msg}", file=sys.stderr, flush=True)


def worker(spec):
    """Train vit_fast for spec['steps'] timed steps after 3 warm-up steps; print images/s."""
    try:   # the commands' malloc settings, where the tree has them (as `denoise-vit train`)
        from denoise_vit.memory import keep_freed_memory
        keep_freed_memory()
    except ImportError:
        pass
    policy = None
    if spec["mode"] == "policy":
        try:
            from denoise_vit import threads
        except ImportError:
            return {"images_per_s": None, "threads": None}
        policy = threads.start(log=lambda line: log(line))   # torch's import is the window
    import torch
    from denoise_vit.training.config import load_config
    from denoise_vit.training.data import make_train_stream
    from denoise_vit.training.engine import train_steps
    from denoise_vit.training.setup import build_run_model, make_optimizer, make_run_scheduler
    if policy is not None:
        policy.apply()
    elif spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    cfg = load_config("vit_fast", [], {"device": "cpu"})
    model = build_run_model(cfg)
    opt = make_optimizer(cfg, model)
    sched = make_run_scheduler(cfg, opt)
    stream = make_train_stream(cfg.data, cfg.batch_size, seed=1, device="cpu")
    kw = dict(device=torch.device("cpu"), progress=False)
    train_steps(model, stream, opt, sched, first_step=0, last_step=spec["warmup"], **kw)
    _, _, images, seconds = train_steps(model, stream, opt, sched, first_step=0,
                                        last_step=spec["steps"], **kw)
    return {"images_per_s": images / seconds, "threads": torch.get_num_threads(),
            "load": os.getloadavg()[0]}


def env_for(tree):
    env = dict(os.environ, PYTHONPATH=str(tree))
    for key in ("DENOISE_VIT_THREADS", "OMP_NUM_THREADS"):
        env.pop(key, None)
    return env


def train_rate(tree, mode, steps, threads=None):
    spec = {"mode": mode, "steps": steps, "threads": threads, "warmup": 1 if steps < 4 else 3}
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)],
                          env=env_for(tree), stdout=subprocess.PIPE, text=True, timeout=600)
    if proc.returncode:
        raise SystemExit(f"{PART}: training worker failed ({proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


class BusyCore:
    """A subprocess that keeps one core busy (a pure-Python spin)."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)   # let it run before anything measures the machine
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def make_inputs(tree, work, size):
    """A uint16 TIFF of `size` x `size` and a vit_fast checkpoint made by the measured tree
    (two steps: the timing does not depend on the weights)."""
    import numpy as np
    import tifffile
    image = work / "image.tif"
    rng = np.random.default_rng(0)
    tifffile.imwrite(image, (rng.random((size, size)) * 4000 + 100).astype(np.uint16))
    # cwd: the scratch folder, so that `-m denoise_vit` imports the tree on PYTHONPATH and
    # not a checkout in the working folder
    subprocess.run([sys.executable, "-m", "denoise_vit", "train", "--config", "vit_fast",
                    "--out-dir", str(work), "--no-progress", "--device", "cpu", "name=ck",
                    "epochs=1", "steps_per_epoch=2", "data.eval_size=8", "figure_samples=0"],
                   env=env_for(tree), cwd=work, check=True, stdout=subprocess.DEVNULL,
                   timeout=600)
    return image, work / "ck" / "checkpoint_last.pt"


def denoise_seconds(tree, image, ckpt, out, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "denoise_vit", "denoise", str(image), "--checkpoint",
                        str(ckpt), "-o", str(out), "--overwrite", "--no-progress", "--device",
                        "cpu"], env=env_for(tree), cwd=image.parent, check=True,
                       stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=600)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def ratio(a, b):
    return None if a is None or b is None else a / b


def fmt(x, spec=".0f"):
    return "n/a (no thread policy in this tree)" if x is None else format(x, spec)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree")
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if not args.tree or not args.json:
        ap.error("--tree and --json are required")
    tree = os.path.abspath(args.tree)
    steps = {"idle": 2, "fixed": 1, "policy": 2} if args.quick else \
            {"idle": 16, "fixed": 6, "policy": 16}
    loads = {"start": os.getloadavg()}
    log(f"measuring {tree}")
    idle = train_rate(tree, "default", steps["idle"])
    loads["train_idle"] = idle["load"]
    log(f"train idle: {idle['images_per_s']:.0f} images/s ({idle['threads']} threads)")
    with BusyCore():
        fixed = train_rate(tree, "fixed", steps["fixed"], threads=2)
        loads["train_busy_fixed2"] = fixed["load"]
        log(f"train, one core busy, 2 threads: {fixed['images_per_s']:.0f} images/s")
        pol = train_rate(tree, "policy", steps["policy"])
        loads["train_busy_policy"] = pol.get("load")
        log(f"train, one core busy, policy: {fmt(pol['images_per_s'])} images/s "
            f"({pol['threads']} threads)")
    fig = {"train_idle_images_per_s": idle["images_per_s"],
           "train_busy_fixed2_images_per_s": fixed["images_per_s"],
           "train_busy_policy_images_per_s": pol["images_per_s"],
           "train_busy_policy_threads": pol["threads"],
           "train_busy_fixed2_ratio": ratio(fixed["images_per_s"], idle["images_per_s"]),
           "train_busy_policy_ratio": ratio(pol["images_per_s"], idle["images_per_s"]),
           "denoise1024_idle_s": None, "denoise1024_busy_s": None, "denoise1024_ratio": None}
    notes = []
    if args.quick:
        notes.append("quick run: denoise not measured, few training steps")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            image, ckpt = make_inputs(tree, work, 1024)
            out = work / "out.tif"
            loads["denoise_idle_start"] = os.getloadavg()[0]
            d_idle = denoise_seconds(tree, image, ckpt, out, 3)
            log(f"denoise 1024 idle: {d_idle:.2f} s")
            with BusyCore():
                loads["denoise_busy_start"] = os.getloadavg()[0]
                d_busy = denoise_seconds(tree, image, ckpt, out, 3)
            log(f"denoise 1024, one core busy: {d_busy:.2f} s")
        # throughput ratio: idle time / busy time (1.0 = unaffected)
        fig.update(denoise1024_idle_s=d_idle, denoise1024_busy_s=d_busy,
                   denoise1024_ratio=d_idle / d_busy)
    loads["end"] = os.getloadavg()
    fig = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in fig.items()}
    md = ["## Under load (`load` part)", "",
          "One core of the two held by another process (`python -c 'while True: pass'`, "
          "started by the script 0.5 s before each measurement). vit_fast training: the tree's "
          f"`train_steps`, images/s over {steps['idle']} / {steps['fixed']} / "
          f"{steps['policy']} steps after 3 warm-up steps (1 in a quick run; one run each). Thread policy: "
          "denoise_vit.threads (default auto: the cores other processes leave free, from "
          "/proc/stat; `--threads N` or DENOISE_VIT_THREADS=N fix the count).", "",
          "| training, vit_fast | images/s | threads | of idle |", "|---|---|---|---|",
          f"| idle | {idle['images_per_s']:.0f} | {idle['threads']} | 100 % |",
          f"| one core busy, fixed 2 threads | {fixed['images_per_s']:.0f} | 2 | "
          f"{100 * fig['train_busy_fixed2_ratio']:.0f} % |",
          f"| one core busy, thread policy | {fmt(pol['images_per_s'])} | "
          f"{fmt(pol['threads'], '')} | "
          f"{fmt(fig['train_busy_policy_ratio'] and 100 * fig['train_busy_policy_ratio'])}"
          f"{'' if pol['images_per_s'] is None else ' %'} |"]
    if fig["denoise1024_idle_s"] is not None:
        md += ["", "`python -m denoise_vit denoise` of a 1024 x 1024 uint16 TIFF with a vit_fast "
               "checkpoint, end to end (process start to exit, imports included), median of 3, "
               "the command's default threads:", "",
               "| denoise 1024x1024 | seconds | throughput of idle |", "|---|---|---|",
               f"| idle | {fig['denoise1024_idle_s']:.2f} | 100 % |",
               f"| one core busy | {fig['denoise1024_busy_s']:.2f} | "
               f"{100 * fig['denoise1024_ratio']:.0f} % |"]
    md += ["", "Load averages (1 min) at each measurement: " + ", ".join(
        f"{k} {v if isinstance(v, float) else v[0]:.2f}" for k, v in loads.items()
        if v is not None) + "."]
    doc = {"part": PART, "tree": tree, "figures": fig, "load": loads, "notes": notes,
           "markdown": "\n".join(md) + "\n"}
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=1)
    log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
