"""GPU figures of issue 14 (goal 5): images/s and the share of the bf16 peak, training and inference.

    python experiments/speed_gpu.py --out-dir docs                    # on a machine with a GPU
    python experiments/speed_gpu.py --device cpu --quick --out-dir /tmp/g  # smoke run (a test runs it)

Measures, on one CUDA device, with this checkout's own code (its presets, `build_run_model`,
`make_optimizer`, `SyntheticStream`, `train_steps`, `Denoiser`):

- the dense bf16 matmul rate of the device in the same run (torch.mm of 8192 x 8192, mean of 10
  after 3 warm-ups, CUDA events): the "bf16 peak" every share below is taken of;
- training: `train_steps` of the shipped presets (vit_fast, course, video_fast) with bf16
  autocast (`amp`), at the preset's batch and at larger batches, on fresh generator batches made
  on the GPU; the same step on one fixed batch (no generator: the model's own ceiling); the
  generator alone; vit_fast with `torch.compile`. Training FLOPs = forward FLOPs x 3 (as the CPU
  report: FlopCounterMode, attention on its plain path);
- vit_fast trained as the preset says (its 1650 steps, batch 64, amp), its evaluation PSNR;
- inference: `Denoiser` on a 1024x1024 and a 4096x4096 synthetic image with that model (fp32 as
  the command runs it, and bf16 autocast; default batch and larger batches; tiles cut and
  blended on the GPU, the default there, and in numpy on the CPU), PSNR against the clean
  image, peak GPU memory; a 100-frame 512x512 stack with the image model and with video_fast,
  each tiling both ways; the model alone on large batches of 64x64 tiles (fp32, bf16, bf16 + compile);
- where a vit_fast training step at batch 64 spends its time (torch.profiler);
- where `Denoiser.change` spends its time with the tiling on the device (grid, copies, model);
- the commands end to end: `denoise-vit train --config quick --device cuda amp=true` for 200
  steps and `denoise-vit denoise --device cuda` of a 1024x1024 uint16 TIFF (wall seconds).

Every section is written to speed_gpu.json as soon as it ends (a failing section records its
error and the others still run); a "notes" list added to that file by hand afterwards (what
changed in the code since the run, say) is printed with the figures. speed_gpu.md and
speed_gpu.png are written beside it; `experiments/speed_report.py` puts the same section into
docs/SPEED.md. --quick: tiny sizes and step counts, for a smoke run on the CPU.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
COMMAND = "python experiments/speed_gpu.py --out-dir docs"
DATASHEET_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0}   # dense, SXM parts


def log(msg):
    print(f"[speed_gpu {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Report:
    """The JSON document, written again after every section."""

    def __init__(self, path):
        self.path = path
        self.doc = {"command": COMMAND, "sections": {}, "errors": {}}

    def save(self):
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.doc, indent=1) + "\n")
        tmp.replace(self.path)

    def section(self, name, fn, *args, **kwargs):
        log(f"{name} ...")
        t = time.perf_counter()
        try:
            self.doc["sections"][name] = fn(*args, **kwargs)
            self.doc["sections"][name]["section_s"] = round(time.perf_counter() - t, 1)
            log(f"{name}: done in {time.perf_counter() - t:.1f} s")
        except Exception:   # noqa: BLE001 - recorded, and the next section still runs
            self.doc["errors"][name] = traceback.format_exc()
            log(f"{name}: FAILED\n{traceback.format_exc()}")
        self.save()


# ----------------------------------------------------------------------------- helpers
def sync(device):
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats):
    """Seconds of each of `repeats` calls of fn, synchronised."""
    times = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return times


def fixed_step(net, opt, x, y, device, amp):
    """One training step on a fixed batch (no generator): the model's own ceiling."""
    import torch.nn.functional as F
    from denoise_vit.training.engine import autocast

    def step():
        with autocast(device, amp):
            out = net(x)
        loss = F.mse_loss(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def forward_flops(model, shape):
    """FLOPs of one forward of `model` per item of a (2, *shape) batch, attention on its plain
    path (q k^T and attn v counted as matmuls), as the CPU report counts them."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from denoise_vit.layers.attention import set_fused_attention

    dev = next(model.parameters()).device
    set_fused_attention(model, False)
    was = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.rand(2, *shape, device=dev))
    set_fused_attention(model, True)
    model.train(was)
    return counter.get_total_flops() / 2


def share(flops_per_s, peak_tflops):
    return round(flops_per_s / (peak_tflops * 1e12), 5) if peak_tflops else None


# ----------------------------------------------------------------------------- sections
def machine(device):
    import torch
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "device": str(device), "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1),
                    multiprocessors=p.multi_processor_count, cuda=torch.version.cuda,
                    capability=f"{p.major}.{p.minor}")
        try:
            info["nvidia_smi"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,clocks.max.sm,power.limit",
                 "--format=csv,noheader"], capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            info["nvidia_smi"] = f"unavailable: {exc}"
    for name, tflops in DATASHEET_BF16_TFLOPS.items():
        if name in info.get("gpu", ""):
            info["datasheet_bf16_tflops"] = tflops
    return info


def matmul_peak(device, quick):
    """Dense bf16 (and fp32 with TF32 off) matmul TFLOP/s: mean of 10 after 3 warm-ups."""
    import torch
    out = {}
    n = (256 if device.type == "cpu" else 1024) if quick else 8192
    tf32 = torch.backends.cuda.matmul.allow_tf32
    for name, dtype, allow in (("bf16", torch.bfloat16, False), ("fp32", torch.float32, False),
                               ("tf32", torch.float32, True)):
        if name != "bf16" and device.type != "cuda":
            continue
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        torch.backends.cuda.matmul.allow_tf32 = allow
        for _ in range(3):
            torch.mm(a, b)
        times = timed(lambda: [torch.mm(a, b) for _ in range(10)], device, 1)
        out[f"{name}_tflops"] = round(2 * n ** 3 * 10 / times[0] / 1e12, 4)
        log(f"matmul {name} {n}^3: {out[f'{name}_tflops']:.1f} TFLOP/s")
        del a, b
    torch.backends.cuda.matmul.allow_tf32 = tf32      # as torch left it: the runs below
    out["n"] = n
    return out


def train_rates(device, peak, quick):
    """images/s of the presets' training steps with bf16 autocast on the GPU."""
    import torch
    from denoise_vit.training.config import load_config
    from denoise_vit.training.data import make_train_stream
    from denoise_vit.training.engine import train_steps
    from denoise_vit.training.setup import build_run_model, make_optimizer, make_run_scheduler

    rows = []

    def engine(preset, batch, steps, *, fixed=False, compile_=False, data_only=False,
               amp=device.type == "cuda", tf32=False):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        cfg = load_config(preset, [], {"device": device.type, "batch_size": batch})
        model = build_run_model(cfg, device)
        shape = (1, cfg.data.frames, cfg.data.size, cfg.data.size) if cfg.data.kind == "videos" \
            else (1, cfg.data.size, cfg.data.size)
        fwd = forward_flops(model, shape)
        opt = make_optimizer(cfg, model)
        sched = make_run_scheduler(cfg, opt)
        stream = make_train_stream(cfg.data, batch, seed=1, device=device)
        row = {"preset": preset, "batch": batch, "amp": amp, "tf32": tf32, "compile": compile_,
               "data": "fixed batch" if fixed else ("generator only" if data_only else "generator"),
               "train_mflop_per_image": round(3 * fwd / 1e6, 1),
               "channels_last": bool(getattr(cfg, "channels_last", False))}
        if data_only:
            next(stream)
            t = timed(lambda: [next(stream) for _ in range(steps)], device, 3)
            row["images_per_s"] = round(batch * steps / statistics.median(t), 1)
            log(f"  generator {preset} batch {batch}: {row['images_per_s']:.0f} images/s")
            return rows.append(row)
        net = torch.compile(model) if compile_ else model
        if fixed:
            step = fixed_step(net, opt, *next(stream), device, amp)
            first = timed(lambda: [step() for _ in range(3)], device, 1)[0]
            t = timed(lambda: [step() for _ in range(steps)], device, 3)
        else:
            kw = dict(device=device, amp=amp, progress=False)
            first = timed(lambda: train_steps(net, stream, opt, sched, first_step=0,
                                              last_step=3, **kw), device, 1)[0]
            t = timed(lambda: train_steps(net, stream, opt, sched, first_step=0,
                                          last_step=steps, **kw), device, 3)
        rate = batch * steps / statistics.median(t)
        row.update(images_per_s=round(rate, 1), first_3_steps_s=round(first, 2),
                   steps_timed=f"3 x {steps}",
                   tflops=round(3 * fwd * rate / 1e12, 3),
                   share_of_bf16_peak=share(3 * fwd * rate, peak))
        if device.type == "cuda":
            row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
            torch.cuda.reset_peak_memory_stats(device)
        log(f"  {preset} batch {batch} {row['data']} amp {amp} tf32 {tf32}: "
            f"{rate:.0f} images/s, {row['tflops']:.2f} TFLOP/s, share {row['share_of_bf16_peak']}")
        rows.append(row)

    big = (256,) if quick else (512, 2048)
    s = 2 if quick else 30
    for preset, batches in (("vit_fast", (64, *big)), ("course", (64, *big)),
                            ("video_fast", (8, 64) if not quick else (8,))):
        for b in batches:
            engine(preset, b, s)
        engine(preset, batches[-1], s, fixed=True)
        engine(preset, batches[-1], s, data_only=True)
    if device.type == "cuda":   # the presets as they are (amp = false): fp32, then with TF32
        for b in (64, 2048):
            engine("vit_fast", b, s, amp=False)
            engine("vit_fast", b, s, amp=False, tf32=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    return {"rows": rows}


def train_compiled(device, peak, quick):
    """vit_fast training steps under torch.compile (inductor), bf16 autocast, fixed batch."""
    import torch
    from denoise_vit.training.config import load_config
    from denoise_vit.training.data import make_train_stream
    from denoise_vit.training.setup import build_run_model, make_optimizer

    rows = []
    amp = device.type == "cuda"
    for batch in ((64,) if quick else (64, 2048)):
        cfg = load_config("vit_fast", [], {"device": device.type, "batch_size": batch})
        model = build_run_model(cfg, device)
        fwd = forward_flops(model, (1, cfg.data.size, cfg.data.size))
        opt = make_optimizer(cfg, model)
        net = torch.compile(model)
        step = fixed_step(net, opt, *next(make_train_stream(cfg.data, batch, seed=1,
                                                             device=device)), device, amp)
        first = timed(lambda: [step() for _ in range(3)], device, 1)[0]
        steps = 2 if quick else 30
        t = timed(lambda: [step() for _ in range(steps)], device, 3)
        rate = batch * steps / statistics.median(t)
        rows.append({"preset": "vit_fast", "batch": batch, "amp": amp, "compile": True,
                     "data": "fixed batch", "images_per_s": round(rate, 1),
                     "first_3_steps_s": round(first, 1), "tflops": round(3 * fwd * rate / 1e12, 3),
                     "share_of_bf16_peak": share(3 * fwd * rate, peak)})
        log(f"  compiled vit_fast batch {batch}: {rate:.0f} images/s (compile + 3 steps "
            f"{first:.0f} s)")
    return {"rows": rows}


def step_profile(device, quick):
    """Where a vit_fast training step at the preset's batch (64) spends its time: the profiler
    over steps of `train_steps` (generator, bf16 autocast), wall and GPU-busy time per step,
    kernels launched per step, the CPU-side operations that take longest."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from denoise_vit.training.config import load_config
    from denoise_vit.training.data import make_train_stream
    from denoise_vit.training.engine import train_steps
    from denoise_vit.training.setup import build_run_model, make_optimizer, make_run_scheduler

    amp = device.type == "cuda"
    cfg = load_config("vit_fast", [], {"device": device.type})
    model = build_run_model(cfg, device)
    opt = make_optimizer(cfg, model)
    sched = make_run_scheduler(cfg, opt)
    stream = make_train_stream(cfg.data, cfg.batch_size, seed=1, device=device)
    kw = dict(device=device, amp=amp, progress=False)
    train_steps(model, stream, opt, sched, first_step=0, last_step=5, **kw)
    steps = 3 if quick else 20
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sync(device)
    t = time.perf_counter()
    with profile(activities=activities) as prof:
        train_steps(model, stream, opt, sched, first_step=0, last_step=steps, **kw)
        sync(device)
    wall = (time.perf_counter() - t) / steps
    events = prof.key_averages()
    kernels = [e for e in events if getattr(e, "device_type", None) is not None
               and str(e.device_type).endswith("CUDA") and e.self_device_time_total > 0]
    gpu_busy = sum(e.self_device_time_total for e in kernels) / 1e6 / steps
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel",
                                                         "cudaLaunchKernelExC", "cuLaunchKernelEx"))
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:12]
    out = {"batch": cfg.batch_size, "amp": amp, "steps_profiled": steps,
           "wall_ms_per_step": round(1e3 * wall, 2),
           "gpu_busy_ms_per_step": round(1e3 * gpu_busy, 2),
           "kernel_launches_per_step": round(launches / steps, 1),
           "optimizer": type(opt).__name__,
           "top_cpu_ops": [{"op": e.key, "calls_per_step": round(e.count / steps, 1),
                            "self_cpu_ms_per_step": round(e.self_cpu_time_total / 1e3 / steps, 3)}
                           for e in top]}
    log(f"  vit_fast batch {cfg.batch_size}: {out['wall_ms_per_step']} ms/step wall, GPU busy "
        f"{out['gpu_busy_ms_per_step']} ms, {out['kernel_launches_per_step']} launches/step")
    return out


def train_preset(device, work, quick):
    """vit_fast as its preset says (all its steps, batch 64, amp on the GPU): seconds and PSNR."""
    from denoise_vit.checkpoint import atomic_save, make_checkpoint
    from denoise_vit.inference.intensity import training_record
    from denoise_vit.training.config import load_config
    from denoise_vit.training.data import make_eval_data, make_train_stream
    from denoise_vit.training.engine import evaluate, train_steps
    from denoise_vit.training.setup import build_run_model, make_optimizer, make_run_scheduler

    over = {"device": device.type, "amp": device.type == "cuda"}
    if quick:
        over.update(epochs=1, steps_per_epoch=5)
    cfg = load_config("vit_fast", [], over)
    model = build_run_model(cfg, device)
    opt = make_optimizer(cfg, model)
    sched = make_run_scheduler(cfg, opt, budget_seconds=None)
    stream = make_train_stream(cfg.data, cfg.batch_size, seed=cfg.seed, device=device)
    total = cfg.epochs * cfg.steps_per_epoch
    sync(device)
    t = time.perf_counter()
    train_steps(model, stream, opt, sched, first_step=0, last_step=total, device=device,
                amp=cfg.amp, progress=False)
    sync(device)
    seconds = time.perf_counter() - t
    inputs, targets = make_eval_data(cfg.data)
    scores = evaluate(model, inputs, targets, device=device, amp=cfg.amp)
    path = work / "vit_fast_gpu.pt"
    # with the intensity record `denoise-vit train` writes: without it, `denoise` regenerates
    # the training data to find the range (seconds of start-up that users' checkpoints skip)
    atomic_save(make_checkpoint(model.cpu(), config={"data": {"kind": cfg.data.kind}},
                                intensity=training_record(inputs)), path)
    model.to(device)
    log(f"  vit_fast preset: {total} steps in {seconds:.1f} s, eval PSNR {scores['psnr']:.2f} dB")
    return {"steps": total, "batch": cfg.batch_size, "amp": cfg.amp, "seconds": round(seconds, 1),
            "images_per_s": round(total * cfg.batch_size / seconds, 1),
            "eval_psnr_db": round(float(scores["psnr"]), 2), "eval_ssim": round(float(scores["ssim"]), 4),
            "checkpoint": str(path)}


def inference(device, peak, work, quick):
    """Denoiser on whole images and stacks; the model alone on large batches of tiles."""
    import torch
    from data_gen import generate_images, generate_videos
    from denoise_vit.checkpoint import load_model
    from denoise_vit.inference.tiling import Denoiser, tile_starts
    from denoise_vit.metrics import psnr
    from denoise_vit.training.config import load_config
    from denoise_vit.training.setup import build_run_model

    path = work / "vit_fast_gpu.pt"
    if path.exists():
        model = load_model(path)
        trained = True
    else:
        model = build_run_model(load_config("vit_fast", []))
        trained = False
    model.eval()
    fwd_tile = forward_flops(model, (1, 64, 64))
    out = {"trained_model": trained, "forward_mflop_per_tile": round(fwd_tile / 1e6, 2),
           "images": []}
    g = torch.Generator().manual_seed(7)
    sides = (256, 512) if quick else (1024, 4096)
    inputs = {s: generate_images(1, size=s, generator=g) for s in sides}

    def wrap(den, bf16):
        if bf16:
            inner = den.model

            class Cast(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.inner = inner

                def forward(self, x):
                    with torch.autocast(device.type, dtype=torch.bfloat16):
                        return self.inner(x)
            den.model = Cast()
        return den

    # (bf16, batch, tiling): None = Denoiser's default for the device (on a CUDA GPU 512 tiles of
    # 64x64, tiling on the GPU, since 2026-12-04; before: 32 tiles, tiling in numpy on the CPU)
    configs = [(False, None, "device"), (False, None, "numpy"), (False, 32, "numpy"),
               (False, 2048, "device"), (True, None, "device")]
    if quick:
        configs = configs[:2]
    for side in sides:
        x, clean = inputs[side]
        tiles = len(tile_starts(side, 64, 16)) ** 2
        for bf16, batch, tiling in configs:
            den = wrap(Denoiser(model, device=device, batch_size=batch,
                                tile_on_device=tiling == "device"), bf16)
            den.denoise(x[:, :, :256, :256])   # warm-up (cuDNN plans, allocator)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            result = {}
            times = timed(lambda: result.__setitem__("y", den.denoise(x)), device,
                          1 if side > 2048 or quick else 5)
            sec = statistics.median(times)
            row = {"side": side, "bf16": bf16, "tiling": tiling,
                   "batch": batch or f"default ({den.batch_for((64, 64))} tiles)",
                   "tiles": tiles, "seconds": round(sec, 4),
                   "megapixels_per_s": round(side * side / sec / 1e6, 2),
                   "tiles_per_s": round(tiles / sec, 1),
                   "share_of_bf16_peak": share(fwd_tile * tiles / sec, peak),
                   "psnr_db": round(float(psnr(result["y"], clean)), 3),
                   "input_psnr_db": round(float(psnr(x, clean)), 3)}
            if device.type == "cuda":
                row["peak_gpu_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20)
            out["images"].append(row)
            log(f"  {side}x{side} {'bf16' if bf16 else 'fp32'} batch {row['batch']} tiling "
                f"{tiling}: {sec:.3f} s, {row['megapixels_per_s']:.1f} MP/s, "
                f"PSNR {row['psnr_db']:.2f}")
    # the model alone: batches of 64x64 tiles, no tiling around it
    model_dev = copy.deepcopy(model).to(device).to(memory_format=torch.channels_last)
    rows = []
    batch = 64 if quick else 4096
    xb = torch.rand(batch, 1, 64, 64, device=device).contiguous(memory_format=torch.channels_last)
    levers = [("fp32", False, False), ("bf16 autocast", True, False)]
    if device.type == "cuda" or not quick:
        levers.append(("bf16 autocast + torch.compile", True, True))
    for name, bf16, comp in levers:
        net = torch.compile(model_dev) if comp else model_dev

        def fwd():
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16,
                                                        enabled=bf16):
                net(xb)
        first = timed(fwd, device, 2)[0]
        t = statistics.median(timed(fwd, device, 5))
        rate = batch / t
        rows.append({"lever": name, "batch": batch, "tiles_per_s": round(rate, 1),
                     "megapixels_per_s": round(rate * 4096 / 1e6, 1),
                     "first_call_s": round(first, 1), "tflops": round(fwd_tile * rate / 1e12, 3),
                     "share_of_bf16_peak": share(fwd_tile * rate, peak)})
        log(f"  model alone, {name}: {rate:.0f} tiles/s, share {rows[-1]['share_of_bf16_peak']}")
    out["model_alone"] = rows
    # stacks: 100 frames of 512x512, image model plane by plane and a video model
    frames, side = (10, 128) if quick else (100, 512)
    clip, _ = generate_videos(1, size=side, frames=frames, generator=g)   # (1, 1, T, H, W)
    stack = clip[0].transpose(0, 1).contiguous()                          # (T, 1, H, W)
    vmodel = build_run_model(load_config("video_fast", []))
    out["stack"] = []
    for name, m in (("image model (vit_fast)", model), ("video model (video_fast, untrained)", vmodel)):
        for tiling in ("device", "numpy"):
            den = Denoiser(m, device=device, tile_on_device=tiling == "device")
            den.denoise(stack[:min(frames, 16), :, :128, :128])
            sec = statistics.median(timed(lambda: den.denoise(stack), device, 3))
            out["stack"].append({"model": name, "tiling": tiling, "frames": frames, "side": side,
                                 "seconds": round(sec, 3), "frames_per_s": round(frames / sec, 1)})
            log(f"  stack {frames}x{side}x{side}, {name}, tiling {tiling}: "
                f"{frames / sec:.1f} frames/s")
    return out


def tiling_phases(device, work, quick):
    """Where `Denoiser.change` spends its time with the tiling on the device: the grid built on
    the CPU, the input's copy to the device, the model alone on as many tiles, the result's copy
    back; and what `Denoiser.denoise` adds (the sum of input and change, on the CPU). Medians of
    5 (synchronised)."""
    import numpy as np
    import torch
    from data_gen import generate_images
    from denoise_vit.checkpoint import load_model
    from denoise_vit.inference.tiling import Denoiser, TileGrid, device_dtype
    from denoise_vit.training.config import load_config
    from denoise_vit.training.setup import build_run_model

    path = work / "vit_fast_gpu.pt"
    model = load_model(path) if path.exists() else build_run_model(load_config("vit_fast", []))
    model.eval()
    rows = []
    g = torch.Generator().manual_seed(7)
    for side in ((256,) if quick else (1024, 4096)):
        x = (generate_images(1, size=side, generator=g)[0].numpy() * 10000).astype(np.uint16)
        den = Denoiser(model, device=device)
        den.change(x[:, :, :256, :256])
        tiles = (den.tile, den.tile)
        pads = ((0, 0), (0, 0))
        batch = den.batch_for(tiles)

        def grid():
            TileGrid(1, (side, side), tiles, (den.overlap, den.overlap), pads).on_device(device)

        def upload():
            torch.from_numpy(np.ascontiguousarray(x, dtype=device_dtype(x.dtype))).to(device)

        acc = torch.zeros((1, 1, side, side), device=device)
        n_tiles = len(TileGrid(1, (side, side), tiles, (den.overlap, den.overlap), pads))
        xb = torch.rand(batch, 1, *tiles, device=device).contiguous(
            memory_format=torch.channels_last)

        def model_alone():
            with torch.inference_mode():
                for first in range(0, n_tiles, batch):
                    den.model(xb[:min(batch, n_tiles - first)])

        phases = {"change_s": lambda: den.change(x), "denoise_s": lambda: den.denoise(x),
                  "grid_s": grid, "upload_s": upload, "model_alone_s": model_alone,
                  "download_s": lambda: acc.cpu()}
        row = {"side": side, "tiles": n_tiles, "batch": batch}
        for name, fn in phases.items():
            row[name] = round(statistics.median(timed(fn, device, 5)), 4)
        rows.append(row)
        log(f"  {side}x{side}: " + ", ".join(f"{k} {v}" for k, v in row.items()))
    return {"rows": rows}


def commands(device, work, quick):
    """The commands as a user runs them on this device: wall seconds, exit status."""
    import numpy as np
    import tifffile
    import torch
    from data_gen import generate_images

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = {}
    steps = 5 if quick else 200
    cmd = [sys.executable, "-m", "denoise_vit", "train", "--config", "quick",
           "--device", device.type, "--out-dir", str(work / "runs"), "--no-progress",
           "epochs=1", f"steps_per_epoch={steps}", f"amp={'true' if device.type == 'cuda' else 'false'}"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True)
    out["train_quick"] = {"command": " ".join(cmd[1:]).replace(str(work), "WORK"),
                          "seconds": round(time.perf_counter() - t, 1), "status": proc.returncode,
                          "tail": (proc.stdout + proc.stderr)[-1500:]}
    log(f"  train: status {proc.returncode}, {out['train_quick']['seconds']} s")
    ckpt = work / "vit_fast_gpu.pt"
    if ckpt.exists():
        side = 256 if quick else 1024
        x, _ = generate_images(1, size=side, generator=torch.Generator().manual_seed(3))
        tif = work / "noisy.tif"
        tifffile.imwrite(tif, np.clip(x[0, 0].numpy() * 10000, 0, 65535).astype(np.uint16))
        cmd = [sys.executable, "-m", "denoise_vit", "denoise", str(tif), "--checkpoint", str(ckpt),
               "--device", device.type, "--output", str(work / "out.tif"), "--overwrite",
               "--no-progress"]
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            proc = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True)
            runs.append(round(time.perf_counter() - t, 3))
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch; torch.zeros(1, device='"
                        + device.type + "')"], env=env, cwd=work)
        out["denoise_1024"] = {"command": " ".join(cmd[1:]).replace(str(work), "WORK"),
                               "seconds": runs, "status": proc.returncode,
                               "import_torch_and_first_cuda_tensor_s": round(time.perf_counter() - t, 3),
                               "tail": (proc.stdout + proc.stderr)[-1500:]}
        log(f"  denoise: status {proc.returncode}, {runs} s")
    return out


# ----------------------------------------------------------------------------- report
TILING = {"device": "on the GPU", "numpy": "numpy (CPU)"}   # where Denoiser cut and blended tiles


def _pct(v):
    return "–" if v is None else (f"{100 * v:.2f} %" if v < 0.1 else f"{100 * v:.1f} %")


def render(doc, figure_name=None):
    """The GPU section of docs/SPEED.md, from a speed_gpu.json (every number read from it)."""
    sec, m = doc["sections"], doc["sections"].get("machine", {})
    mm = sec.get("matmul", {})
    peak = mm.get("bf16_tflops")
    lines = ["## GPU (goal 5)", "",
             f"Produced by `{doc['command']}` on an {m.get('gpu', '?')} ({m.get('multiprocessors')} "
             f"multiprocessors, {m.get('gpu_memory_gib')} GiB; `nvidia-smi`: {m.get('nvidia_smi')}), "
             f"CUDA {m.get('cuda')}, torch {m.get('torch')}, Python {m.get('python')}, "
             f"{m.get('cpu_count')} CPU cores, started {doc.get('started')}, {doc.get('wall_s', 0):.0f} s "
             "in all; the machine was lent for this run alone (nothing else ran on it).", "",
             f"Dense bf16 matmul in the same run: **{peak:.0f} TFLOP/s** ({mm.get('n')}^3, mean of 10 "
             f"after 3 warm-ups; datasheet {m.get('datasheet_bf16_tflops', '?')}); fp32 "
             f"{mm.get('fp32_tflops', 0):.0f}, TF32 {mm.get('tf32_tflops', 0):.0f}. Every share below is of the "
             f"measured {peak:.0f} TFLOP/s. FLOPs as on the CPU: forward FLOPs (FlopCounterMode, "
             "attention on its plain path), x 3 for a training step.", ""]
    if figure_name:
        lines += [f"![GPU training and inference speed]({figure_name})", ""]
    errors = doc.get("errors") or {}
    for name in errors:
        lines.append(f"- section `{name}` failed in this run (its traceback is in the JSON)")
    for note in doc.get("notes", []):   # added to the JSON by hand after the run, dated
        lines.append(f"- {note}")
    if errors or doc.get("notes"):
        lines.append("")
    tp = sec.get("train_preset")
    if tp:
        lines += [f"vit_fast trained as its preset says ({tp['steps']} steps of batch {tp['batch']}, "
                  f"bf16 autocast): **{tp['seconds']} s** ({tp['images_per_s']:.0f} images/s "
                  f"through `train_steps`, generator on the GPU), evaluation PSNR "
                  f"**{tp['eval_psnr_db']} dB** (config seed 0; the same 1650 steps in the preset's 270 "
                  "CPU seconds on the 2-core EPYC gave 35.63 dB for seed 0, as the preset file "
                  "records).", ""]
    rows = (sec.get("training", {}).get("rows", []) + sec.get("train_compiled", {}).get("rows", []))
    if rows:
        lines += ["### Training", "",
                  "| preset | batch | data | precision | compile | images/s (video: clips/s) | TFLOP/s | "
                  "of bf16 peak |", "|---|---:|---|---|---|---:|---:|---:|"]
        for r in rows:
            prec = "bf16 autocast" if r.get("amp") else ("fp32 + TF32" if r.get("tf32") else "fp32")
            tfl = r.get("tflops")
            lines.append(f"| {r['preset']} | {r['batch']} | {r['data']} | {prec} | "
                         f"{'yes' if r.get('compile') else 'no'} | {r['images_per_s']:.0f} | "
                         f"{'–' if tfl is None else f'{tfl:.2f}'} | "
                         f"{_pct(r.get('share_of_bf16_peak'))} |")
        lines += ["", "*generator*: `train_steps` on fresh batches drawn on the GPU each step (as "
                  "`denoise-vit train` runs); *fixed batch*: the same step on one batch (the "
                  "model's own ceiling); *generator only*: drawing the batches, no model. "
                  "Timings: median of 3 runs of 30 steps after 3 warm-up steps, synchronised.", ""]
    sp = sec.get("step_profile")
    if sp:
        lines += [f"Where a vit_fast step at batch {sp['batch']} goes (`torch.profiler` over "
                  f"{sp['steps_profiled']} steps of `train_steps`, generator on the GPU, "
                  f"{'bf16 autocast' if sp['amp'] else 'fp32'}, optimizer {sp['optimizer']}): "
                  f"**{sp['wall_ms_per_step']} ms** a step, of which the GPU was busy "
                  f"{sp['gpu_busy_ms_per_step']} ms, with {sp['kernel_launches_per_step']:.0f} "
                  "kernel launches a step. The CPU-side operations that took longest (self "
                  "time per step): " + "; ".join(
                      f"`{r['op']}` {r['self_cpu_ms_per_step']:.2f} ms ({r['calls_per_step']:g} calls)"
                      for r in sp["top_cpu_ops"][:8]) + ".", ""]
    inf = sec.get("inference")
    if inf:
        lines += ["### Inference", "",
                  f"`Denoiser` with the vit_fast model trained above ({'trained' if inf['trained_model'] else 'untrained'}), "
                  f"{inf['forward_mflop_per_tile']} MFLOP per 64x64 tile, tiles overlapping by 16 "
                  "pixels, on a synthetic image (`generate_images`); seconds: median of 5 "
                  "(4096: one run) after a warm-up; PSNR against the clean image.", "",
                  "| image | tiles | batch (tiles) | tiling | precision | seconds | megapixels/s | "
                  "of bf16 peak | PSNR (dB) | peak GPU memory |",
                  "|---|---:|---|---|---|---:|---:|---:|---:|---:|"]
        for r in inf["images"]:
            lines.append(f"| {r['side']}x{r['side']} | {r['tiles']} | {r['batch']} | "
                         f"{TILING.get(r.get('tiling', 'numpy'))} | "
                         f"{'bf16 autocast' if r['bf16'] else 'fp32'} | {r['seconds']:.3f} | "
                         f"{r['megapixels_per_s']:.1f} | {_pct(r['share_of_bf16_peak'])} | "
                         f"{r['psnr_db']:.2f} | {r.get('peak_gpu_memory_mib', '–')} MiB |")
        lines += ["", "The model alone (no tiling, one batch of 64x64 tiles already on the GPU):", "",
                  "| precision | batch | tiles/s | megapixels/s | TFLOP/s | of bf16 peak | first call (s) |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for r in inf["model_alone"]:
            lines.append(f"| {r['lever']} | {r['batch']} | {r['tiles_per_s']:.0f} | "
                         f"{r['megapixels_per_s']:.0f} | {r['tflops']:.2f} | "
                         f"{_pct(r['share_of_bf16_peak'])} | {r['first_call_s']} |")
        lines += ["", "Stacks (`Denoiser.denoise` of a (T, 1, H, W) stack; median of 3): " + "; ".join(
            f"{r['frames']} frames of {r['side']}x{r['side']}, {r['model']}, "
            f"{TILING.get(r.get('tiling', 'numpy'))}: "
            f"**{r['frames_per_s']} frames/s**" for r in inf["stack"]) + ".", ""]
    tp_rows = sec.get("tiling_phases", {}).get("rows", [])
    if tp_rows:
        lines += ["Where `Denoiser.change` spends its time with the tiling on the GPU (medians of "
                  "5, synchronised; the grid is built on the CPU, the model alone runs on as many "
                  "random tiles; *denoise* adds the sum of input and change on the CPU):", "",
                  "| image | tiles | batch | change (s) | grid | input to GPU | model alone | "
                  "result to CPU | denoise (s) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in tp_rows:
            lines.append(f"| {r['side']}x{r['side']} | {r['tiles']} | {r['batch']} | "
                         f"{r['change_s']:.4f} | {r['grid_s']:.4f} | {r['upload_s']:.4f} | "
                         f"{r['model_alone_s']:.4f} | {r['download_s']:.4f} | {r['denoise_s']:.4f} |")
        lines.append("")
    cmd = sec.get("commands")
    if cmd:
        lines += ["### The commands end to end", ""]
        t = cmd.get("train_quick")
        if t:
            lines.append(f"- `python {t['command']}`: exit {t['status']}, {t['seconds']} s wall "
                         "(start-up, 200 steps, evaluation, figures).")
        d = cmd.get("denoise_1024")
        if d:
            lines.append(f"- `python {d['command']}` (a 1024x1024 uint16 TIFF): exit {d['status']}, "
                         f"{', '.join(str(s) for s in d['seconds'])} s wall in three runs; "
                         f"`import torch` and a first CUDA tensor alone: "
                         f"{d['import_torch_and_first_cuda_tensor_s']} s.")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def figure(doc, path):
    """Training images/s against batch (left) and inference megapixels/s (right)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sec = doc["sections"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.6))
    rows = sec.get("training", {}).get("rows", [])
    for i, preset in enumerate(("vit_fast", "course", "video_fast")):
        pts = sorted((r["batch"], r["images_per_s"]) for r in rows if r["preset"] == preset
                     and r["data"] == "generator" and r.get("amp"))
        if pts:
            line, = a.plot(*zip(*pts), "o-", label=f"{preset}, bf16, generator")
            fixed = [(r["batch"], r["images_per_s"]) for r in rows if r["preset"] == preset
                     and r["data"] == "fixed batch"]
            if fixed:
                a.plot(*zip(*fixed), "s", color=line.get_color(), mfc="none", ms=9,
                       label=f"{preset}, fixed batch")
    fp32 = sorted((r["batch"], r["images_per_s"]) for r in rows if r["preset"] == "vit_fast"
                  and not r.get("amp") and not r.get("tf32") and r["data"] == "generator")
    if fp32:
        a.plot(*zip(*fp32), "x--", color="C0", label="vit_fast, fp32, generator")
    comp = [(r["batch"], r["images_per_s"]) for r in sec.get("train_compiled", {}).get("rows", [])]
    if comp:
        a.plot(*zip(*comp), "*", color="C0", ms=13, label="vit_fast, bf16, compiled, fixed batch")
    a.set_xscale("log", base=2)
    a.set_yscale("log")
    a.set_xlabel("batch (images; video_fast: clips of 8 frames)")
    a.set_ylabel("training images/s (video_fast: clips/s)")
    a.set_title("Training on the GPU: the small models need large batches")
    a.grid(True, which="both", alpha=0.3)
    if a.get_legend_handles_labels()[0]:
        a.legend(fontsize=7)
    inf = sec.get("inference")
    if inf:
        bars = [(f"Denoiser {r['side']}², batch {str(r['batch']).split(' ')[0]}, tiling "
                 f"{'GPU' if r.get('tiling') == 'device' else 'numpy'}", r["megapixels_per_s"])
                for r in inf["images"] if not r["bf16"]]
        bars += [(f"model alone, {r['lever']}", r["megapixels_per_s"]) for r in inf["model_alone"]]
        names, values = zip(*bars)
        colors = ["C1" if n.startswith("Denoiser") else "C2" for n in names]
        b.barh(range(len(values)), values, color=colors)
        b.set_yticks(range(len(values)), names, fontsize=8)
        b.set_xscale("log")
        b.invert_yaxis()
        for i, v in enumerate(values):
            b.text(v, i, f" {v:.0f}", va="center", fontsize=8)
        b.set_xlabel("megapixels/s (log)")
        b.set_title("Inference, vit_fast (megapixels/s)")
    m = sec.get("machine", {})
    fig.suptitle(f"{m.get('gpu', '?')}, torch {m.get('torch', '?')}: "
                 f"`python experiments/speed_gpu.py` ({doc.get('started', '')})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(doc, out_dir):
    """speed_gpu.png and speed_gpu.md beside the JSON (SPEED.md takes the same section)."""
    figure(doc, out_dir / "speed_gpu.png")
    (out_dir / "speed_gpu.md").write_text("# GPU speed (issue 14, goal 5)\n\n" +
                                          render(doc, "speed_gpu.png").split("\n", 2)[2])
    log(f"wrote {out_dir / 'speed_gpu.md'} and {out_dir / 'speed_gpu.png'}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", default=str(ROOT / "docs"))
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run on the CPU)")
    p.add_argument("--skip", default="", help="comma-separated sections to leave out")
    p.add_argument("--render-only", action="store_true",
                   help="write speed_gpu.md and speed_gpu.png again from the speed_gpu.json in "
                        "--out-dir (no GPU needed)")
    args = p.parse_args(argv)
    out_dir = Path(args.out_dir)
    if args.render_only:
        try:
            doc = json.loads((out_dir / "speed_gpu.json").read_text())
        except (OSError, ValueError) as exc:
            p.exit(2, f"speed_gpu: cannot read {out_dir / 'speed_gpu.json'}: {exc}\n")
        write_outputs(doc, out_dir)
        return 0
    import torch
    try:
        device = torch.device(args.device)
    except RuntimeError as exc:
        p.exit(2, f"speed_gpu: unknown device {args.device!r}: {exc}\n")
    if device.type == "cuda" and not torch.cuda.is_available():
        p.exit(2, "speed_gpu: no CUDA GPU here; the GPU figures stay unmeasured "
                  "(--device cpu --quick runs the script as a smoke test)\n")
    out_dir.mkdir(parents=True, exist_ok=True)
    report = Report(out_dir / "speed_gpu.json")
    report.doc["quick"] = args.quick
    report.doc["started"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    work = Path(tempfile.mkdtemp(prefix="speed_gpu_"))
    t0 = time.perf_counter()
    report.section("machine", machine, device)
    report.section("matmul", matmul_peak, device, args.quick)
    peak = report.doc["sections"].get("matmul", {}).get("bf16_tflops")
    plan = [("train_preset", train_preset, (device, work, args.quick)),
            ("inference", inference, (device, peak, work, args.quick)),
            ("step_profile", step_profile, (device, args.quick)),
            ("tiling_phases", tiling_phases, (device, work, args.quick)),
            ("commands", commands, (device, work, args.quick)),
            ("training", train_rates, (device, peak, args.quick)),
            ("train_compiled", train_compiled, (device, peak, args.quick))]
    for name, fn, fargs in plan:
        if name not in skip:
            report.section(name, fn, *fargs)
    report.doc["wall_s"] = round(time.perf_counter() - t0, 1)
    report.save()
    write_outputs(report.doc, out_dir)
    log(f"wrote {report.path} ({report.doc['wall_s']:.0f} s; "
        f"{len(report.doc['errors'])} section(s) failed)")
    return 1 if report.doc["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
