"""Three levers on `denoise-vit denoise` of a 1024x1024 uint16 TIFF (issue 14, goal 1), each
measured against its own absence in the same run:

    flock /tmp/cpu.lock python experiments/denoise_levers.py --checkpoint runs/vit_fast/checkpoint_best.pt

1. Concurrent model calls: `Denoiser(workers=N)` (each batch of tiles on its own thread with one
   torch thread) against `workers=1` (one call at a time on torch's threads), in this process;
   seconds of `Denoiser.change`, and whether the two results are the same bits (each call's
   numbers are those of one torch thread, which may round a last bit differently from two).
   The same comparison on smaller images (--sides, one image each): there a batch or two of
   tiles is all there is, a single batch stays one call on torch's threads, and more are
   evened out to a whole number per worker.
2. `io.apply_change` converting CHUNK_PIXELS = 2**18 pixels at a time against 2**21.
3. `gc.freeze()` after `import torch` in the command: the command run in its own process with
   time stamps (after `import torch`, when main() returns, the process's end as seen here), as
   it is and with gc.freeze replaced by a no-op; and `python -c "import torch"`'s own exit.

The settings take turns within every repeat, so a slow spell of the shared VM falls on both
sides; the figures are the best and the median of --repeats. The load (other processes' share of
the CPU, from /proc/stat) is recorded around the run. Writes denoise_levers.json and
denoise_levers.png to --out-dir (default docs/); --render-only draws the figure again.
Without --checkpoint: vit_fast as built (untrained; the timings do not depend on the weights).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))



def speed_inference():
    """experiments/speed_parts/inference.py as a module: its stamped command (STAMPED,
    TORCH_STAMPED, ``stamped``), shared with the speed report."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "speed_inference", ROOT / "experiments" / "speed_parts" / "inference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the stamped command with gc.freeze made a no-op before the command can call it
NO_FREEZE = "import gc\ngc.freeze = lambda: None\n"


def tile_count(described):
    """Tiles in `Denoiser.describe`'s line ("25 tiles of 64x64 ..." or "whole image")."""
    return int(described.split()[0]) if described[:1].isdigit() else 1


def summary(values):
    return {"best": round(min(values), 4), "median": round(statistics.median(values), 4),
            "all": [round(v, 4) for v in values]}


def plot(report, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    panels = [
        (axes[0], "model calls (Denoiser.change)", report["change"],
         [("workers1", "1 call at a time,\n" f"{report['threads']} torch threads"),
          ("workers", f"{report['workers']} concurrent calls,\n1 torch thread each")]),
        (axes[1], "apply_change (uint16 out)", report["apply_change"],
         [("chunk_2^21", "2^21 pixels\na chunk"), ("chunk_2^18", "2^18 pixels\na chunk")]),
    ]
    for ax, title, data, keys in panels:
        for i, (key, label) in enumerate(keys):
            ax.bar(i, data[key]["median"], 0.6, color=f"C{i}")
            ax.plot([i] * len(data[key]["all"]), data[key]["all"], "k.", ms=3)
        ax.set_xticks(range(len(keys)), [label for _, label in keys], fontsize=8)
        ax.set_ylabel("seconds (bar: median; dots: repeats)")
        ax.set_title(title, fontsize=10)
    ax = axes[3]
    sides = report.get("sides", {})
    names = list(sides)
    ratio = [sides[k]["workers1"]["median"] / sides[k]["workers"]["median"] for k in names]
    ax.bar(range(len(names)), ratio, 0.6, color="C1")
    ax.axhline(1, color="0.3", lw=0.8)
    ax.set_xticks(range(len(names)), [f"{k}\n{sides[k]['tiles']} tiles" for k in names],
                  fontsize=7)
    ax.set_ylabel("speed-up of the default over\n1 call at a time (medians)")
    ax.set_title("Denoiser.change by image size", fontsize=10)
    ax = axes[2]
    cmd = report["command"]
    rows = [("without\ngc.freeze", cmd["nofreeze"]), ("with\ngc.freeze", cmd["freeze"])]
    for i, (label, d) in enumerate(rows):
        ax.bar(i, d["work"]["median"], 0.6, color="C0", label="after import torch, to main()'s end"
               if i == 0 else None)
        ax.bar(i, d["exit"]["median"], 0.6, bottom=d["work"]["median"], color="C3",
               label="exit (interpreter teardown)" if i == 0 else None)
    ax.bar(2, report["import_torch_exit"]["median"], 0.6, color="C3")
    ax.set_xticks(range(3), [r[0] for r in rows] + ['exit of\npython -c\n"import torch"'],
                  fontsize=8)
    ax.set_ylabel("seconds (medians)")
    ax.set_title("the denoise command beyond import torch", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"denoise levers, 1024x1024 uint16, {report['model']} ({report['machine']['cpu']}, "
                 f"{report['threads']} threads; other processes {report['load']['others_busy_share']:.0%}"
                 f" of the CPU; {report['date']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="an image checkpoint (default: vit_fast as built)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--sides", default="256,320,448,512",
                   help="smaller square images for the per-size comparison ('' for none)")
    p.add_argument("--out-dir", default=str(ROOT / "docs"))
    p.add_argument("--render-only", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.out_dir)
    if args.render_only:
        report = json.loads((out / "denoise_levers.json").read_text())
        plot(report, out / "denoise_levers.png")
        return 0

    import numpy as np
    import tifffile
    import torch
    from data_gen import generate_images
    from denoise_vit.benchmark.runner import machine_info
    from denoise_vit.checkpoint import atomic_save, make_checkpoint, open_checkpoint
    from denoise_vit.inference import io
    from denoise_vit.inference.intensity import Normalization
    from denoise_vit.inference.tiling import Denoiser
    work = Path(tempfile.mkdtemp(prefix="denoise-levers-"))
    ckpt = args.checkpoint
    model_name = "vit_fast" if ckpt is None else Path(ckpt).name
    if ckpt is None:
        from denoise_vit import build_model
        from denoise_vit.training.config import load_config
        from denoise_vit.training.setup import model_args_for
        cfg = load_config("vit_fast")
        torch.manual_seed(0)
        model = build_model(cfg.model_name, **model_args_for(cfg)).eval()
        ckpt = work / "vit_fast.pt"
        atomic_save(make_checkpoint(model, config={"data": {"kind": cfg.data.kind}},
                                    intensity={"percentiles": [1.0, 99.8], "low": 0.0,
                                               "high": 1.0}), ckpt)
        model_name = "vit_fast as built (untrained)"
    noisy, _ = generate_images(1, size=args.size, generator=torch.Generator().manual_seed(args.size))
    counts = np.clip(noisy.numpy()[0, 0] * 10000, 0, 65535).astype(np.uint16)
    image = work / "noisy.tif"
    tifffile.imwrite(image, counts)

    from denoise_vit.threads import read_proc_stat
    timing = speed_inference()

    def stamped(code, args):
        return timing.stamped([sys.executable, "-c", code, *args], ROOT, work)

    load0, wall0 = read_proc_stat(), time.time()
    own0 = sum(os.times()[:4])
    record, model = open_checkpoint(ckpt, device="cpu")
    threads = torch.get_num_threads()
    stack = counts[None, None]
    norm = Normalization.fit(stack, record["intensity"])
    dens = {"workers1": Denoiser(model, workers=1), "workers": Denoiser(model, workers=threads)}
    change = {k: [] for k in dens}
    results = {}
    for k, d in dens.items():
        results[k] = d.change(stack, norm)     # warm-up, and the result to compare
    same = bool(np.array_equal(results["workers1"], results["workers"]))
    largest = float(np.abs(results["workers1"] - results["workers"]).max())
    delta = results["workers"]
    scales = np.array([norm.scale])
    chunks = {"chunk_2^21": 1 << 21, "chunk_2^18": 1 << 18}
    apply = {k: [] for k in chunks}
    cmd = {"freeze": {"work": [], "exit": []}, "nofreeze": {"work": [], "exit": []}}
    torch_exit = []
    args_cmd = ["denoise", str(image), "--checkpoint", str(ckpt), "-o", str(work / "out.tif"),
                "--overwrite", "--no-progress"]
    stamped(timing.STAMPED, args_cmd)     # bytecode cache, warm files
    small = {}
    rng = np.random.default_rng(0)
    for side in [int(v) for v in args.sides.split(",") if v.strip()]:
        image = (rng.random((1, 1, side, side)) * 10000).astype(np.uint16)
        small[f"{side}x{side}"] = (image, Normalization.fit(image, record["intensity"]))
    small_times = {k: {w: [] for w in dens} for k in small}
    for r in range(args.repeats):
        print(f"[denoise_levers] repeat {r + 1}/{args.repeats}", file=sys.stderr, flush=True)
        for k, d in dens.items():
            t = time.perf_counter()
            d.change(stack, norm)
            change[k].append(time.perf_counter() - t)
        for key, (image, n) in small.items():
            for _ in range(5):
                for k, d in dens.items():
                    t = time.perf_counter()
                    d.change(image, n)
                    small_times[key][k].append(time.perf_counter() - t)
        saved = io.CHUNK_PIXELS
        try:
            for k, n in chunks.items():
                io.CHUNK_PIXELS = n
                t = time.perf_counter()
                io.apply_change(stack, delta, scales, np.uint16, "x")
                apply[k].append(time.perf_counter() - t)
        finally:
            io.CHUNK_PIXELS = saved
        for k in cmd:
            s = stamped((NO_FREEZE if k == "nofreeze" else "") + timing.STAMPED, args_cmd)
            cmd[k]["work"].append(s["work"])
            cmd[k]["exit"].append(s["exit"])
        torch_exit.append(stamped(timing.TORCH_STAMPED, [])["exit"])
    load1, wall1 = read_proc_stat(), time.time()
    own = sum(os.times()[:4]) - own0
    busy = (load1[0] - load0[0]) / max(load1[1] - load0[1], 1) * os.cpu_count()
    others = max(busy - own / (wall1 - wall0), 0.0) / os.cpu_count()
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine_info(), "model": model_name,
        "size": args.size, "repeats": args.repeats, "threads": threads, "workers": threads,
        "tiles": dens["workers"].describe(args.size, args.size),
        "change": {k: summary(v) for k, v in change.items()}, "same_bits": same,
        "max_abs_difference": largest,
        "apply_change": {k: summary(v) for k, v in apply.items()},
        "command": {k: {x: summary(v[x]) for x in v} for k, v in cmd.items()},
        "import_torch_exit": summary(torch_exit),
        "sides": {k: {"tiles": tile_count(dens["workers"].describe(*small[k][0].shape[2:])),
                      **{w: summary(v) for w, v in small_times[k].items()}}
                  for k in small},
        "load": {"others_busy_share": round(others, 3), "loadavg_end": os.getloadavg()[0]},
        "command_line": "python experiments/denoise_levers.py " + " ".join(argv or sys.argv[1:]),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "denoise_levers.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(report, out / "denoise_levers.png")
    c, a, m = report["change"], report["apply_change"], report["command"]
    print(f"Denoiser.change ({report['tiles']}): 1 call at a time {c['workers1']['median']:.3f} s "
          f"(best {c['workers1']['best']:.3f}), {threads} concurrent {c['workers']['median']:.3f} s "
          f"(best {c['workers']['best']:.3f}); same bits: {same} (largest difference {largest:.2g})")
    for k, v in report["sides"].items():
        print(f"  {k} ({v['tiles']} tiles): 1 call at a time {v['workers1']['median'] * 1000:.1f} ms, "
              f"default {v['workers']['median'] * 1000:.1f} ms")
    print(f"apply_change: 2^21 {a['chunk_2^21']['median'] * 1000:.1f} ms, "
          f"2^18 {a['chunk_2^18']['median'] * 1000:.1f} ms")
    for k in ("nofreeze", "freeze"):
        print(f"command {k}: work {m[k]['work']['median']:.3f} s, exit {m[k]['exit']['median']:.3f} s")
    print(f"python -c 'import torch' exit: {report['import_torch_exit']['median']:.3f} s; "
          f"other processes {others:.0%} of the CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
