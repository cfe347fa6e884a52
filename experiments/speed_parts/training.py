"""Speed-report part "training": how close training comes to this CPU's matmul rate.

    python experiments/speed_parts/training.py --tree PATH --json OUT.json [--quick]

Every measurement runs in a subprocess with PYTHONPATH=PATH (the checkout measured), which
trains the shipped presets `vit_fast` and `course` through that tree's own code (its model,
optimizer, data stream and `train_steps`), and measures in the same process the dense float32
matmul rate (torch.mm of 2048 x 2048, best of several). FLOPs of a training step = forward FLOPs
x 3, the forward counted by torch.utils.flop_counter.FlopCounterMode with attention on its plain
path (q k^T and attn v counted as matmuls); norms, activations and the optimizer not counted.
For vit_fast also a profile (torch.profiler, CPU, after warm-up) grouped into attention, linear
layers, convs, norms, data, optimizer, other; and one lever at a time (channels_last, bf16
autocast, torch.compile, fused / foreach Adam, plain attention, and in a tree that has it the
engine's two halves of the batch on two threads), each applied with torch's own calls on the
tree's model so that both trees are measured alike. The profile is of a one-pass step (the whole
batch on all threads); the engine's default, since training/split.py, is two halves.
The presets' images/s and the matmul rate are measured in --processes separate worker processes
(3; the first also profiles and tries the levers) and reported as the median over processes with
their range: on the 2-core EPYC (a shared VM) vit_fast trains at about 390 or about 320
images/s, mostly one rate per process, whatever ran before it in the process
(experiments/training_rate_order.py), so one process is not the machine's rate.
Assumes it holds the CPU (the umbrella takes /tmp/cpu.lock); the load average is recorded.
"""
import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PART = "training"
PRESETS = ("vit_fast", "course")


def has_amx():
    """Whether this CPU has AMX tiles for bf16 (Linux /proc/cpuinfo; False where unreadable)."""
    try:
        return "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False

def log(msg):
    print(f"[{PART}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- worker side
def worker(spec):
    try:   # the commands' malloc settings, where the tree has them (as `denoise-vit train`)
        from denoise_vit.memory import keep_freed_memory
        malloc = "kept" if keep_freed_memory() else "system"
    except ImportError:
        malloc = "system"
    policy = None
    if not spec.get("threads"):
        try:   # what `denoise-vit train` does on this tree: its thread policy, if it has one
            from denoise_vit import threads
            policy = threads.start(log=log)
        except ImportError:
            pass
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode
    from denoise_vit.training.config import load_config
    from denoise_vit.training.data import make_train_stream
    from denoise_vit.training.engine import train_steps
    from denoise_vit.training.setup import build_run_model, make_optimizer, make_run_scheduler

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    elif policy is not None:
        policy.apply()
    out = {"threads": torch.get_num_threads(), "load_start": os.getloadavg(),
           "policy": policy is not None, "malloc": malloc}

    def matmul_gflops(n=2048, repeats=8):
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
        return 2 * n ** 3 / best / 1e9

    def setup(preset):
        cfg = load_config(preset, [], {"device": "cpu"})
        model = build_run_model(cfg)
        stream = make_train_stream(cfg.data, cfg.batch_size, seed=1, device="cpu")
        return cfg, model, stream

    def forward_flops(cfg, model):
        try:
            from denoise_vit.layers.attention import set_fused_attention
        except ImportError:
            set_fused_attention = None
        if set_fused_attention:
            set_fused_attention(model, False)   # q k^T and attn v as matmuls the counter sees
        x = torch.rand(2, 1, cfg.data.size, cfg.data.size)
        model.train()
        with FlopCounterMode(display=False) as counter:
            model(x)
        if set_fused_attention:
            set_fused_attention(model, True)
        return counter.get_total_flops() / 2

    def engine_rate(preset, steps, chunks):
        """images/s of the tree's own train_steps (median of `chunks` runs of `steps`)."""
        cfg, model, stream = setup(preset)
        opt = make_optimizer(cfg, model)
        sched = make_run_scheduler(cfg, opt)
        amp = bool(getattr(cfg, "amp", False))
        net = torch.compile(model) if getattr(cfg, "compile", False) else model
        kw = dict(device=torch.device("cpu"), amp=amp, progress=False)
        t = time.perf_counter()
        train_steps(net, stream, opt, sched, first_step=0, last_step=3, **kw)
        warm = time.perf_counter() - t
        rates = []
        for c in range(chunks):
            done, _, images, seconds = train_steps(net, stream, opt, sched, first_step=0,
                                                   last_step=steps, **kw)
            rates.append(images / seconds)
        return cfg, model, statistics.median(rates), warm

    out["matmul_gflops"] = matmul_gflops()
    log(f"matmul {out['matmul_gflops']:.1f} GFLOP/s")
    for preset in PRESETS:
        steps = spec["steps"][preset]
        cfg, model, rate, warm = engine_rate(preset, steps, spec["chunks"])
        fwd = forward_flops(cfg, model)
        out[preset] = {"images_per_s": rate, "forward_flops": fwd, "warmup_s": warm,
                       "batch_size": cfg.batch_size, "size": cfg.data.size,
                       "params": sum(p.numel() for p in model.parameters()),
                       "amp": bool(getattr(cfg, "amp", False)),
                       "compile": bool(getattr(cfg, "compile", False))}
        log(f"{preset}: {rate:.0f} images/s, {3 * fwd / 1e6:.0f} train MFLOP/image")
    if spec.get("profile"):
        out["profile"] = profile_steps(spec["profile_steps"])
        log("profile done")
    if spec.get("levers"):
        out["levers"] = levers(spec["lever_steps"], spec.get("compile", True))
    out["load_end"] = os.getloadavg()
    return out


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


CATEGORIES = (
    ("attention", ("scaled_dot_product", "flash_attention", "bmm", "softmax", "_efficient_attention")),
    ("convs", ("conv", "mkldnn_convolution", "slow_conv")),
    ("norms", ("layer_norm", "batch_norm", "native_batch_norm", "native_layer_norm", "_batch_norm")),
    ("linear layers (MLP, qkv, proj)", ("addmm", "aten::mm", "aten::linear", "aten::matmul")),
)


def categorise(name):
    for cat, keys in CATEGORIES:
        if any(k in name for k in keys):
            return cat
    return "other"


def profile_steps(steps):
    """Shares of a vit_fast step: data and optimizer timed per phase (perf_counter), forward +
    backward split by torch.profiler's self CPU time of aten ops, scaled to their wall time."""
    import torch
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile
    from denoise_vit.training.config import load_config
    from denoise_vit.training.data import make_train_stream
    from denoise_vit.training.setup import build_run_model, make_optimizer

    cfg = load_config("vit_fast", [], {"device": "cpu"})
    model = build_run_model(cfg)
    opt = make_optimizer(cfg, model)
    stream = make_train_stream(cfg.data, cfg.batch_size, seed=1, device="cpu")
    phases = {"data": 0.0, "fwd_bwd": 0.0, "optimizer": 0.0}

    def step(record):
        t0 = time.perf_counter()
        x, y = next(stream)
        t1 = time.perf_counter()
        loss = F.mse_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if record:
            phases["data"] += t1 - t0
            phases["fwd_bwd"] += t2 - t1
            phases["optimizer"] += t3 - t2

    for _ in range(3):
        step(False)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step(True)
    # aten ops inside forward/backward; the optimizer's and the generator's ops are timed above
    by_cat = {}
    skip = ("Optimizer.", "adam", "_foreach", "aten::lerp", "aten::addcdiv", "aten::addcmul",
            "aten::sqrt", "aten::zero_")
    for ev in prof.key_averages():
        if not ev.key.startswith("aten::") or any(s in ev.key for s in skip):
            continue
        by_cat[categorise(ev.key)] = by_cat.get(categorise(ev.key), 0.0) + ev.self_cpu_time_total
    total_ops = sum(by_cat.values()) or 1.0
    total = sum(phases.values())
    shares = {"data": phases["data"] / total, "optimizer": phases["optimizer"] / total}
    for cat, _ in CATEGORIES:
        shares[cat] = phases["fwd_bwd"] / total * by_cat.get(cat, 0.0) / total_ops
    shares["other"] = phases["fwd_bwd"] / total * by_cat.get("other", 0.0) / total_ops
    top = sorted(((ev.self_cpu_time_total, ev.key) for ev in prof.key_averages()
                  if ev.key.startswith("aten::")), reverse=True)[:8]
    return {"steps": steps, "step_ms": 1e3 * total / steps, "shares": shares,
            "top_ops": [[k, t / 1e3 / steps] for t, k in top]}


def levers(steps, with_compile):
    """vit_fast images/s with one lever at a time, applied with torch calls on the tree's model."""
    import torch
    import torch.nn.functional as F
    from denoise_vit.training.config import load_config
    from denoise_vit.training.data import make_train_stream
    from denoise_vit.training.setup import build_run_model

    def run(name, *, cl=False, bf16=False, comp=False, adam=None, plain_attn=False,
            halves=False):
        cfg = load_config("vit_fast", [], {"device": "cpu"})
        if hasattr(cfg, "channels_last"):
            cfg.channels_last = False   # levers start from the before code's model
        model = build_run_model(cfg)
        if plain_attn:
            from denoise_vit.layers.attention import set_fused_attention
            set_fused_attention(model, False)
        if cl:
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, **(adam or {"foreach": False}))
        net = torch.compile(model) if comp else model
        stream = make_train_stream(cfg.data, cfg.batch_size, seed=1, device="cpu")

        def objective(m, x, y):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = m(x)
            return F.mse_loss(out.float(), y)

        if halves:
            from denoise_vit.training.split import SplitStep
            split = SplitStep(model)

        def step():
            x, y = next(stream)
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            if halves:
                split(x, y, objective)
            else:
                loss = objective(net, x, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
            opt.step()

        t = time.perf_counter()
        for _ in range(3):
            step()
        warm = time.perf_counter() - t
        rates = []
        for _ in range(2):
            t = time.perf_counter()
            for _ in range(steps):
                step()
            rates.append(cfg.batch_size * steps / (time.perf_counter() - t))
        rate = statistics.median(rates)
        log(f"lever {name}: {rate:.0f} images/s (first 3 steps {warm:.1f} s), "
            f"load {os.getloadavg()[0]:.2f}")
        return {"lever": name, "images_per_s": rate, "first_steps_s": warm,
                "load": os.getloadavg()[0]}

    rows = [run("baseline (fp32, fused SDPA, for-loop Adam: the before code)"),
            run("plain attention path", plain_attn=True),
            run("channels_last", cl=True),
            run("Adam foreach=True", adam={"foreach": True}),
            run("Adam fused=True", adam={"fused": True}),
            run(f"bf16 autocast (CPU, {'with' if has_amx() else 'no'} AMX)", bf16=True)]
    if with_compile:
        rows.append(run("torch.compile (inductor)", comp=True))
    if importlib.util.find_spec("denoise_vit.training.split") is not None:   # not in the before tree
        rows.append(run("two halves of the batch on two threads", halves=True))
    return rows


# ----------------------------------------------------------------------------- parent side
def run_worker(tree, spec, timeout):
    env = dict(os.environ, PYTHONPATH=str(tree))
    env.pop("DENOISE_VIT_THREADS", None)
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], env=env,
                          stdout=subprocess.PIPE, text=True, timeout=timeout)
    if proc.returncode:
        raise SystemExit(f"{PART}: worker failed with status {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def merge_processes(runs):
    """One result from several workers: the first's profile and levers, each preset's images/s
    and the matmul rate as the median over processes, every process's figure kept."""
    res = dict(runs[0])
    res["processes"] = len(runs)
    res["matmul_by_process"] = [r["matmul_gflops"] for r in runs]
    res["matmul_gflops"] = statistics.median(res["matmul_by_process"])
    res["load_end"] = runs[-1]["load_end"]
    for preset in PRESETS:
        res[preset] = dict(runs[0][preset])
        res[preset]["by_process"] = [r[preset]["images_per_s"] for r in runs]
        res[preset]["images_per_s"] = statistics.median(res[preset]["by_process"])
    return res


def render(res, quick):
    mm = res["matmul_gflops"]
    n = res.get("processes", 1)
    mms = res.get("matmul_by_process", [mm])
    fig = {"matmul_gflops": round(mm, 1)}
    lines = [f"## Training speed (`{PART}` part)", "",
             f"Dense fp32 matmul rate in the same processes: **{mm:.1f} GFLOP/s** (torch.mm "
             f"2048 x 2048, best of 8; median of {n} process(es), "
             f"{min(mms):.0f}-{max(mms):.0f}), {res['threads']} torch threads for everything here "
             f"({'chosen by the tree' + chr(39) + 's thread policy, as `denoise-vit train` does' if res.get('policy') else 'torch default: this tree has no thread policy'}). Training FLOPs = forward "
             "FLOPs x 3 (FlopCounterMode, attention on its plain path so q k^T and attn v count; "
             "norms, activations and the optimizer not counted). images/s: the tree's own "
             f"`train_steps`, median of {res['chunks']} runs of the step counts below after 3 "
             f"warm-up steps in each of {n} fresh process(es), then the median over processes "
             "(the range beside it: on a shared VM the rate moves between processes, "
             "experiments/training_rate_order.py); fresh generator batches every step; malloc: "
             f"{res.get('malloc', 'system')} ({'the commands' + chr(39) + ' setting' if res.get('malloc') == 'kept' else 'glibc' + chr(39) + 's defaults'}).", "",
             "| preset | batch | train MFLOP/image | steps timed | images/s (range over processes) | GFLOP/s | of matmul rate |",
             "|---|---|---|---|---|---|---|"]
    for preset in PRESETS:
        r = res[preset]
        gflops = 3 * r["forward_flops"] * r["images_per_s"] / 1e9
        share = gflops / mm
        fig[f"{preset}.train_images_per_s"] = round(r["images_per_s"], 1)
        fig[f"{preset}.train_mflop_per_image"] = round(3 * r["forward_flops"] / 1e6, 1)
        fig[f"{preset}.train_gflops"] = round(gflops, 1)
        fig[f"{preset}.share_of_matmul"] = round(share, 3)
        by = r.get("by_process", [r["images_per_s"]])
        fig[f"{preset}.train_images_per_s_by_process"] = [round(v, 1) for v in by]
        extra = " (bf16 autocast)" if r.get("amp") else ""
        lines.append(f"| {preset}{extra} | {r['batch_size']} x {r['size']}x{r['size']} | "
                     f"{3 * r['forward_flops'] / 1e6:.0f} | {res['steps'][preset]} | "
                     f"{r['images_per_s']:.0f} ({min(by):.0f}-{max(by):.0f}) | {gflops:.1f} | "
                     f"{100 * share:.1f} % |")
    if "profile" in res:
        p = res["profile"]
        lines += ["", f"Where a vit_fast training step goes ({p['steps']} steps profiled after 3 "
                  f"warm-up steps, {p['step_ms']:.0f} ms per step under the profiler): data "
                  "(the generator) and optimizer timed per phase; forward + backward split by "
                  "torch.profiler's self CPU time of aten ops (attention: SDPA / bmm / softmax; "
                  "linear layers: mm / addmm of MLP, qkv and projections; convs: convolution "
                  "forward and backward; norms: layer / batch norm). The profile is of a "
                  "one-pass step, the whole batch on all threads; where the tree's engine splits "
                  "the batch in two halves on two threads (its default since "
                  "training/split.py), the levers' last row gives that step's rate.", "",
                  "| part | share of step time |", "|---|---|"]
        for cat, share in sorted(p["shares"].items(), key=lambda kv: -kv[1]):
            fig[f"profile.{cat.split(' ')[0]}"] = round(share, 3)
            lines.append(f"| {cat} | {100 * share:.1f} % |")
        lines += ["", "Top aten ops (self ms per step): " + ", ".join(
            f"{k.replace('aten::', '')} {ms:.1f}" for k, ms in p["top_ops"]) + "."]
    if "levers" in res:
        base = res["levers"][0]["images_per_s"]
        lines += ["", "Levers, one at a time on vit_fast (torch calls on the tree's model; "
                  f"median of 2 runs of {res['lever_steps']} steps after 3 warm-up steps; the "
                  "first-3-steps column includes torch.compile's compile time):", "",
                  "| lever | images/s | vs baseline | first 3 steps (s) | load |",
                  "|---|---|---|---|---|"]
        for row in res["levers"]:
            key = row["lever"].split(" (")[0].replace(" ", "_").replace("=", "_")
            fig[f"lever.{key}.images_per_s"] = round(row["images_per_s"], 1)
            lines.append(f"| {row['lever']} | {row['images_per_s']:.0f} | "
                         f"{row['images_per_s'] / base:.2f}x | {row['first_steps_s']:.1f} | "
                         f"{row['load']:.2f} |")
    lines += ["", "GPU (bf16 peak share, images/s): unmeasured, no GPU on this machine."]
    if quick:
        lines += ["", "(quick smoke run: few steps, figures are noisy)"]
    return fig, "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree")
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, help="fix the thread count (default: the tree's "
                    "thread policy where it has one, else torch's default)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile lever")
    ap.add_argument("--processes", type=int, default=3,
                    help="worker processes timing the presets (default 3; 1 with --quick)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if not args.tree or not args.json:
        ap.error("--tree and --json are required")
    if args.processes < 1:
        ap.error("--processes must be 1 or more")
    tree = os.path.abspath(args.tree)
    if args.quick:
        spec = {"steps": {"vit_fast": 2, "course": 1}, "chunks": 1, "profile": False,
                "levers": False}
    else:
        spec = {"steps": {"vit_fast": 12, "course": 6}, "chunks": 3, "profile": True,
                "profile_steps": 4, "levers": True, "lever_steps": 6, "compile": True}
    spec["threads"] = args.threads
    if args.no_compile:
        spec["compile"] = False
    processes = 1 if args.quick else args.processes
    load_before = os.getloadavg()
    log(f"measuring {tree} in {processes} process(es)")
    runs = [run_worker(tree, spec, timeout=600)]
    for _ in range(processes - 1):   # the rates again in fresh processes (another layout)
        runs.append(run_worker(tree, dict(spec, profile=False, levers=False), timeout=600))
    res = merge_processes(runs)
    res.update(chunks=spec["chunks"], steps=spec["steps"], lever_steps=spec.get("lever_steps"))
    figures, markdown = render(res, args.quick)
    figures["gpu"] = None
    doc = {"part": PART, "tree": tree, "figures": figures,
           "load": {"before": load_before, "worker_start": res["load_start"],
                    "worker_end": res["load_end"], "after": os.getloadavg()},
           "notes": ["GPU figures unmeasured: no GPU on this machine",
                     "FLOPs: forward x 3, attention on the plain path"],
           "markdown": markdown, "raw": res}
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=1)
    log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
