"""Training steps as two halves on two threads against one pass on all of them (issue 14, goal 2)

    flock /tmp/cpu.lock python experiments/split_speed.py

`train_steps` on the CPU with two or more torch threads runs each batch's forward and backward as
two halves, each on its own thread with half of torch's threads (denoise_vit/training/split.py).
This script times the engine's own `train_steps` on the presets' models and data, with
`split=False` (one pass on all threads: the engine before) and `split=True`, in turns within one
process (so that the VM's slow and fast phases hit both alike), --rounds rounds of --steps steps
each after warm-up, the order swapped every round. Torch's threads: the thread policy of the
commands (all free cores). Also the dense float32 matmul rate on the same threads, so that the
images/s read as a share of it (training FLOPs: forward x 3, as the speed report counts them).

Writes split_speed.json and split_speed.png to --out-dir (default docs/).
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRESETS = ("vit_fast", "course")


def fail(msg):
    print(f"split_speed: {msg}", file=sys.stderr)
    return 2


def matmul_gflops(torch, n=2048, repeats=8):
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def forward_mflops(torch, model, size):
    from torch.utils.flop_counter import FlopCounterMode
    from denoise_vit.layers.attention import set_fused_attention
    set_fused_attention(model, False)     # q k^T and attn v as matmuls the counter sees
    with FlopCounterMode(display=False) as counter:
        model(torch.rand(2, 1, size, size))
    set_fused_attention(model, True)
    return counter.get_total_flops() / 2 / 1e6


def measure(preset, rounds, steps):
    import torch
    from denoise_vit.training.config import load_config
    from denoise_vit.training.data import make_train_stream
    from denoise_vit.training.engine import train_steps
    from denoise_vit.training.setup import build_run_model, make_optimizer, make_run_scheduler

    cfg = load_config(preset, [], {"device": "cpu"})
    model = build_run_model(cfg)
    opt = make_optimizer(cfg, model)
    sched = make_run_scheduler(cfg, opt)
    stream = make_train_stream(cfg.data, cfg.batch_size, seed=1, device="cpu")
    kw = dict(device=torch.device("cpu"), progress=False)
    for split in (False, True):
        train_steps(model, stream, opt, sched, first_step=0, last_step=3, split=split, **kw)
    rates = {"one pass": [], "two halves": []}
    for r in range(rounds):
        order = (False, True) if r % 2 == 0 else (True, False)
        for split in order:
            _, _, images, seconds = train_steps(model, stream, opt, sched, first_step=0,
                                                last_step=steps, split=split, **kw)
            rates["two halves" if split else "one pass"].append(images / seconds)
        print(f"[split_speed] {preset} round {r + 1}/{rounds}: "
              f"one pass {rates['one pass'][-1]:.0f}, two halves {rates['two halves'][-1]:.0f} "
              f"images/s", file=sys.stderr, flush=True)
    model.train()
    mflops = forward_mflops(torch, model, cfg.data.size[0] if isinstance(cfg.data.size, list)
                            else cfg.data.size)
    medians = {k: statistics.median(v) for k, v in rates.items()}
    pairs = [b / a for a, b in zip(rates["one pass"], rates["two halves"])]
    return {"batch_size": cfg.batch_size, "train_mflop_per_image": round(3 * mflops, 1),
            "images_per_s": {k: [round(x, 1) for x in v] for k, v in rates.items()},
            "median_images_per_s": {k: round(v, 1) for k, v in medians.items()},
            "ratio_of_medians": round(medians["two halves"] / medians["one pass"], 3),
            "pairwise_ratios": [round(x, 3) for x in pairs],
            "pairwise_ratio_median": round(statistics.median(pairs), 3)}


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    presets = list(result["presets"])
    fig, axes = plt.subplots(1, len(presets), figsize=(5 * len(presets), 3.6), squeeze=False)
    for ax, preset in zip(axes[0], presets):
        rates = result["presets"][preset]["images_per_s"]
        for (name, values), colour in zip(rates.items(), ("tab:grey", "tab:blue")):
            ax.plot(range(1, len(values) + 1), values, "o-", color=colour, label=name)
        share = result["presets"][preset].get("share_of_matmul", {})
        ax.set_title(f"{preset}: two halves {share.get('two halves', 0):.0%}, one pass "
                     f"{share.get('one pass', 0):.0%} of matmul")
        ax.set_xlabel("round (the two taken in turns)")
        ax.set_ylabel("training images/s")
        ax.set_ylim(bottom=0)
        ax.legend(loc="lower right")
    fig.suptitle(f"train_steps on {result['threads']} torch threads, {result['machine']['cpu']}; "
                 f"matmul {result['matmul_gflops']:.0f} GFLOP/s", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--steps", type=int, default=10, help="training steps per timing")
    p.add_argument("--presets", default=",".join(PRESETS))
    p.add_argument("--out-dir", default=str(ROOT / "docs"))
    args = p.parse_args(argv)
    if args.rounds < 1 or args.steps < 1:
        return fail("--rounds and --steps must be at least 1")
    presets = [x.strip() for x in args.presets.split(",") if x.strip()]
    from denoise_vit import memory, threads
    from denoise_vit.presets import list_presets
    unknown = [x for x in presets if x not in list_presets()]
    if not presets or unknown:
        return fail(f"unknown preset(s) {', '.join(unknown) or '(none)'}; choose from "
                    f"{', '.join(list_presets())}")
    import torch
    from denoise_vit.benchmark.runner import machine_info
    memory.keep_freed_memory()            # as the commands run
    threads.start()
    threads.apply()
    n = torch.get_num_threads()
    if n < 2:
        return fail(f"torch has {n} thread here: two halves need two (a busy or 1-core machine)")
    before = threads.take_sample()
    result = {"command": "flock /tmp/cpu.lock python experiments/split_speed.py"
                         + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])),
              "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "machine": machine_info(),
              "threads": n, "rounds": args.rounds, "steps": args.steps,
              "matmul_gflops": round(matmul_gflops(torch), 1), "presets": {}}
    for preset in presets:
        res = measure(preset, args.rounds, args.steps)
        res["share_of_matmul"] = {
            k: round(v * res["train_mflop_per_image"] / 1e3 / result["matmul_gflops"], 3)
            for k, v in res["median_images_per_s"].items()}
        result["presets"][preset] = res
    result["matmul_gflops_end"] = round(matmul_gflops(torch), 1)
    others = threads.others_busy_between(before, threads.take_sample())
    result["load"] = {"others_busy_cores": None if others is None else round(others, 2),
                      "loadavg_end": os.getloadavg()[0]}
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "split_speed.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out / "split_speed.png")
    print(f"{n} torch threads, matmul {result['matmul_gflops']} / {result['matmul_gflops_end']} "
          f"GFLOP/s (start / end), other processes {result['load']['others_busy_cores']} cores")
    for preset, res in result["presets"].items():
        med, share = res["median_images_per_s"], res["share_of_matmul"]
        print(f"  {preset}: one pass {med['one pass']:.0f} images/s ({share['one pass']:.1%}), "
              f"two halves {med['two halves']:.0f} ({share['two halves']:.1%}); "
              f"x{res['ratio_of_medians']} (pairwise median x{res['pairwise_ratio_median']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
