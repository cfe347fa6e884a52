"""Speed-report part "inference" (issue 14, goal 1): `denoise-vit denoise` measured on a tree.

    flock /tmp/cpu.lock python experiments/speed_parts/inference.py --tree PATH --json OUT.json [--quick]

Every measured process runs `python` with PYTHONPATH=PATH and the current folder set to a
scratch folder (a `denoise_vit/` in the current folder would shadow PYTHONPATH), so the same
script measures the code before issue 14 and after it. Figures:

- import_torch_s: `python -c "import torch"`, wall, median of N (the processes paired with the
  1024x1024 runs below).
- startup_s: the imports of the denoise path beyond torch (denoise_vit.cli, .inference.denoise,
  .checkpoint, .models, tifffile), timed inside one process after `import torch`, median of N;
  help_s: `python -m denoise_vit denoise --help`, wall, median of N.
- denoise_1024_s: `python -m denoise_vit denoise` of a 1024x1024 uint16 TIFF (a synthetic noisy
  image of data_gen.generate_images(1, size=1024), x 10000) with a vit_fast checkpoint, the whole
  command's wall time, median of N; denoise_1024_beyond_torch_s: each command run right after
  an `import torch` process, the median of the N differences (the time of `import torch` moves
  by half a second from minute to minute on a shared VM, so two medians taken minutes apart
  did not measure the same thing; N is at least 5 here);
  psnr_1024_db: the output against the clean image (both / 10000, data range 1).
- peak_rss_mb_{1024,2048,4096}: the command's peak resident memory (wait4) on images of those
  sides; rss_slope_bytes_per_pixel between 1024 and 4096 (input and output uint16: 4 bytes per
  pixel of them; the blended change in float32: 4 more).
- tyx_100x512_fps_image / _video: frames per second of a 100-frame 512x512 uint16 TYX stack
  (data_gen.generate_videos), from the seconds the command logs for the file (read, denoise,
  write), with the image checkpoint (plane by plane) and with a video_fast checkpoint.

Checkpoints: trained once by this script with the code of its own checkout (not --tree), into
--work, and reused by both trees (the checkpoint format is the same before and after): vit_fast
for 60 steps (batch 64), video_fast for 4 steps (untrained for quality, for speed only). Give
your own with --checkpoint / --video-checkpoint. --quick: tiny sizes, untrained checkpoints,
one repeat, under 30 s.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]          # the checkout this script belongs to: trains the checkpoints
PART = "inference"
SCALE = 10000.0                 # float images (0..~1.5) to uint16 counts
PAIRS = 9                       # pairs (import torch, denoise) behind denoise_1024_beyond_torch_s
# (5 until 2026-12-06: their median moved by 0.3 s from run to run on the shared VM)
# The same command with three time stamps: after `import torch` in its own process, when the
# command's main() returns, and the process's end as the parent sees it (its exit)
STAMPED = ("import sys, time\n"
           "try:  # the thread policy's window starts before torch's import, as in main()\n"
           "    from denoise_vit import threads as _th\n"
           "    _th.start(None)\n"
           "    _th.start = lambda option=None, **kw: _th.current()\n"
           "except ImportError:  # a tree from before the policy\n"
           "    pass\n"
           "import torch; sys.stderr.write(f'@torch {time.time()!r}\\n'); "
           "import runpy; sys.argv = ['denoise-vit'] + sys.argv[1:]\n"
           "try:\n    runpy.run_module('denoise_vit', run_name='__main__')\n"
           "finally:\n    sys.stderr.write(f'@main {time.time()!r}\\n')")
TORCH_STAMPED = "import sys, time; import torch; sys.stderr.write(f'@torch {time.time()!r}\\n')"


def log(msg):
    print(f"[inference] {msg}", file=sys.stderr, flush=True)


def loadavg():
    one, five, fifteen = os.getloadavg()
    return {"1min": round(one, 2), "5min": round(five, 2), "15min": round(fifteen, 2)}


def run(cmd, tree, cwd, *, timeout=None, env=None):
    """(wall seconds, peak RSS in MiB, stdout+stderr) of `cmd` with PYTHONPATH=tree; raises on
    failure. Peak RSS from wait4 (the child alone)."""
    # bytecode caching on, as an installed package has its .pyc files: with
    # PYTHONDONTWRITEBYTECODE set (this project's sandboxes set it) every command compiled the
    # package's modules again, about 0.05 s (2026-12-05, cProfile of the 1024x1024 command)
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environment.update({"PYTHONPATH": str(tree), **(env or {})})
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = None if timeout is None else start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.perf_counter() > deadline:
            proc.kill()
            _, _, usage = os.wait4(proc.pid, 0)
            exc = TimeoutError(f"stopped after {timeout} s")
            exc.peak_rss_mb = usage.ru_maxrss / 1024.0
            raise exc
        time.sleep(0.005)
    wall = time.perf_counter() - start
    out = proc.stdout.read().decode(errors="replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{out[-2000:]}")
    return wall, usage.ru_maxrss / 1024.0, out


def stamped(cmd, tree, cwd):
    """Seconds of a command printing STAMPED's stamps: {'torch': start to torch imported,
    'work': torch imported to main() returned, 'exit': main() returned (or torch imported) to
    the process's end}."""
    start = time.time()
    _, _, text = run(cmd, tree, cwd)
    end = time.time()
    marks = {line.split()[0][1:]: float(line.split()[1]) for line in text.splitlines()
             if line.startswith(("@torch ", "@main "))}
    last = marks.get("main", marks["torch"])
    return {"torch": marks["torch"] - start, "work": last - marks["torch"], "exit": end - last}


def python_code(code, tree, cwd):
    return run([sys.executable, "-c", code], tree, cwd)


def make_data(work, sizes, tyx):
    """Synthetic noisy/clean uint16 TIFFs (made with this checkout's data_gen), cached."""
    missing = [s for s in sizes if not (work / f"noisy_{s}.tif").exists()]
    frames, side = tyx
    stack = work / f"tyx_{frames}x{side}.tif"
    if not missing and stack.exists():
        return
    code = f"""
import numpy as np, tifffile, torch
from data_gen import generate_images, generate_videos
for size in {missing}:
    noisy, clean = generate_images(1, size=size, generator=torch.Generator().manual_seed(size))
    for name, img in (("noisy", noisy), ("clean", clean)):
        counts = np.clip(img[0, 0].numpy() * {SCALE}, 0, 65535).round().astype(np.uint16)
        tifffile.imwrite(f"{work}/{{name}}_{{size}}.tif", counts)
v, _ = generate_videos(1, frames={frames}, size={side}, generator=torch.Generator().manual_seed(7))
counts = np.clip(v[0, 0].numpy() * {SCALE}, 0, 65535).round().astype(np.uint16)
tifffile.imwrite("{stack}", counts, imagej=True, metadata={{"axes": "TYX"}})
"""
    log(f"making test images {missing} and a {frames}x{side}x{side} TYX stack in {work}")
    python_code(code, ROOT, work)


def untrained_checkpoint(preset, path, work):
    """A checkpoint of the preset's model as built (no training), written by this checkout."""
    code = f"""
import torch
from denoise_vit import build_model
from denoise_vit.checkpoint import atomic_save, make_checkpoint
from denoise_vit.training.config import load_config
from denoise_vit.training.setup import model_args_for
cfg = load_config("{preset}", [])
torch.manual_seed(0)
model = build_model(cfg.model_name, **model_args_for(cfg)).eval()
atomic_save(make_checkpoint(model, config={{"data": {{"kind": cfg.data.kind}}}},
            intensity={{"percentiles": [1.0, 99.8], "low": 0.0, "high": 1.0}}), "{path}")
"""
    python_code(code, ROOT, work)
    portable_checkpoint(path, work)


def portable_checkpoint(path, work):
    """Drop the model keys at their defaults from a checkpoint this checkout wrote, so that the
    before tree, which predates some of them (attention, stem_full_res), builds the same model
    from it (it failed with 'unknown vit_denoiser key(s)' otherwise)."""
    code = (f"import dataclasses, torch\n"
            f"from denoise_vit.registry import check_model_args\n"
            f"from denoise_vit.checkpoint import atomic_save\n"
            f"c = torch.load({str(path)!r}, weights_only=True)\n"
            f"defaults = dataclasses.asdict(check_model_args(c['model_name'], {{}}))\n"
            f"c['model_args'] = {{k: v for k, v in c['model_args'].items()\n"
            f"                   if k not in defaults or defaults[k] != v}}\n"
            f"atomic_save(c, {str(path)!r})\n")
    python_code(code, ROOT, work)


def trained_checkpoint(preset, path, work, overrides):
    """Train the preset briefly with this checkout's code; the best checkpoint goes to path."""
    out = work / f"run_{preset}"
    cmd = [sys.executable, "-m", "denoise_vit", "train", "--config", preset, *overrides,
           "--out-dir", str(out), "--no-progress"]
    log(f"training {preset} ({' '.join(overrides)}) with {ROOT}")
    wall, _, text = run(cmd, ROOT, work)
    best = out / preset / "checkpoint_best.pt"
    best.replace(path)
    portable_checkpoint(path, work)
    tail = [line for line in text.splitlines() if line.startswith("done:")]
    return f"{preset}: {' '.join(overrides)}, trained in {wall:.0f} s by {ROOT}" + \
        (f" ({tail[-1]})" if tail else "")


def psnr(paths, clean_path, work):
    """PSNR (dB, data range 1 after / SCALE) of each image against the clean one."""
    code = (f"import numpy as np, tifffile; c = tifffile.imread('{clean_path}') / {SCALE}\n"
            f"for p in {[str(p) for p in paths]}:\n"
            f"    o = tifffile.imread(p) / {SCALE}; print(10 * np.log10(1 / np.mean((o - c) ** 2)))")
    text = python_code(code, ROOT, work)[2].split()
    return [round(float(v), 3) for v in text[-len(paths):]]


def logged_seconds(folder):
    lines = (folder / "denoise_log.jsonl").read_text().splitlines()
    return json.loads(lines[-1])["seconds"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tree", required=True, help="checkout whose code is measured")
    p.add_argument("--json", required=True, help="where the result goes")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, under 30 s")
    p.add_argument("--checkpoint", help="an image checkpoint (default: vit_fast, trained here)")
    p.add_argument("--video-checkpoint", help="a video checkpoint (default: video_fast, 4 steps)")
    p.add_argument("--work", help="scratch and cache folder (default: a folder in the system "
                                  "temp dir, kept so that both trees use the same checkpoints)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each timing (median)")
    args = p.parse_args()
    tree = Path(args.tree).resolve()
    quick = args.quick
    repeats = 1 if quick else args.repeats
    side = 256 if quick else 1024
    sizes = (128, 256) if quick else (1024, 2048, 4096)
    tyx = (2, 64) if quick else (100, 512)
    work = Path(args.work or Path(tempfile.gettempdir()) /
                f"denoise-vit-speed-inference{'-quick' if quick else ''}-{os.getuid()}")
    work.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    figures, notes, loads = {}, [], {"start": loadavg()}

    make_data(work, sorted({side, *sizes}), tyx)
    ckpt = Path(args.checkpoint) if args.checkpoint else work / "vit_fast.pt"
    vckpt = Path(args.video_checkpoint) if args.video_checkpoint else work / "video_fast.pt"
    info = work / "checkpoints.json"
    made = json.loads(info.read_text()) if info.exists() else {}
    if not ckpt.exists():
        if quick:
            untrained_checkpoint("vit_fast", ckpt, work)
            made["image"] = "vit_fast as built (untrained: --quick)"
        else:
            made["image"] = trained_checkpoint(
                "vit_fast", ckpt, work, ["steps_per_epoch=60", "epochs=1", "warmup_steps=10"])
    if not vckpt.exists():
        untrained_checkpoint("video_fast", vckpt, work)
        made["video"] = "video_fast as built (untrained: for speed only)"
    info.write_text(json.dumps(made))
    notes.append(f"image checkpoint {ckpt}: {made.get('image', 'given')}")
    notes.append(f"video checkpoint {vckpt}: {made.get('video', 'given')}")

    # --- start-up ------------------------------------------------------------------------
    # one command first, unmeasured: it writes the tree's bytecode cache (see `run`)
    run([sys.executable, "-m", "denoise_vit", "denoise", str(work / f"noisy_{side}.tif"),
         "--checkpoint", str(ckpt), "-o", str(scratch / "warm.tif"), "--no-progress"],
        tree, scratch)
    code = ("import time; import torch; t = time.perf_counter(); "
            "import denoise_vit.cli, denoise_vit.inference.denoise, denoise_vit.checkpoint, "
            "denoise_vit.models, tifffile; print(time.perf_counter() - t)")
    times = [float(python_code(code, tree, scratch)[2].split()[-1]) for _ in range(repeats)]
    figures["startup_s"] = round(statistics.median(times), 3)
    times = [run([sys.executable, "-m", "denoise_vit", "denoise", "--help"], tree, scratch)[0]
             for _ in range(repeats)]
    figures["help_s"] = round(statistics.median(times), 3)
    loads["startup"] = loadavg()
    log(f"start-up beyond torch {figures['startup_s']} s, --help {figures['help_s']} s")

    def denoise(src, dst, model=ckpt, timeout=None, env=None):
        cmd = [sys.executable, "-m", "denoise_vit", "denoise", str(src), "--checkpoint",
               str(model), "-o", str(dst), "--overwrite", "--no-progress"]
        return run(cmd, tree, scratch, timeout=timeout, env=env)

    # --- 1024x1024 -------------------------------------------------------------------------
    out = scratch / f"out_{side}.tif"
    times, peaks, torch_times = [], [], []
    for i in range(repeats if quick else max(repeats, PAIRS)):
        torch_times.append(run([sys.executable, "-c", "import torch"], tree, scratch)[0])
        wall, peak, _ = denoise(work / f"noisy_{side}.tif", out)
        times.append(wall)
        peaks.append(peak)
        log(f"import torch {torch_times[-1]:.2f} s, then denoise {side}x{side}: {wall:.2f} s, "
            f"peak RSS {peak:.0f} MiB")
    figures["import_torch_s"] = round(statistics.median(torch_times), 3)
    figures[f"denoise_{side}_s"] = round(statistics.median(times), 3)
    figures[f"denoise_{side}_beyond_torch_s"] = round(
        statistics.median(w - t for w, t in zip(times, torch_times)), 3)
    figures[f"denoise_{side}_beyond_torch_pairs"] = [round(w - t, 3)
                                                     for w, t in zip(times, torch_times)]
    figures[f"denoise_{side}_file_s"] = logged_seconds(scratch)
    # where the command's time beyond torch goes: the same command stamped (see STAMPED)
    splits, exits = [], []
    for i in range(repeats if quick else max(repeats, PAIRS)):
        exits.append(stamped([sys.executable, "-c", TORCH_STAMPED], tree, scratch)["exit"])
        splits.append(stamped([sys.executable, "-c", STAMPED, "denoise",
                               str(work / f"noisy_{side}.tif"), "--checkpoint", str(ckpt), "-o",
                               str(out), "--overwrite", "--no-progress"], tree, scratch))
    for key in ("torch", "work", "exit"):
        figures[f"denoise_{side}_stamped_{key}_s"] = round(
            statistics.median(x[key] for x in splits), 3)
    figures["import_torch_exit_s"] = round(statistics.median(exits), 3)
    log(f"stamped denoise {side}x{side}: torch imported in "
        f"{figures[f'denoise_{side}_stamped_torch_s']} s, then work "
        f"{figures[f'denoise_{side}_stamped_work_s']} s and exit "
        f"{figures[f'denoise_{side}_stamped_exit_s']} s; python -c 'import torch' exits in "
        f"{figures['import_torch_exit_s']} s")
    figures[f"psnr_{side}_db"], figures[f"psnr_{side}_noisy_db"] = psnr(
        [out, work / f"noisy_{side}.tif"], work / f"clean_{side}.tif", work)
    loads[f"denoise_{side}"] = loadavg()
    # the same with one thread (OMP_NUM_THREADS=1): with another process on a core, two
    # threads wait at every barrier for the one that is descheduled (see the load part)
    times = [denoise(work / f"noisy_{side}.tif", out, env={"OMP_NUM_THREADS": "1"})[0]
             for _ in range(repeats)]
    figures[f"denoise_{side}_1thread_s"] = round(statistics.median(times), 3)
    log(f"denoise {side}x{side}, OMP_NUM_THREADS=1: {figures[f'denoise_{side}_1thread_s']} s")
    loads[f"denoise_{side}_1thread"] = loadavg()

    # --- memory ----------------------------------------------------------------------------
    for s in sizes:
        if s == side:   # the timing runs above: the largest of their peaks
            figures[f"peak_rss_mb_{s}"] = round(max(peaks), 1)
            figures[f"denoise_{s}_wall_s"] = round(statistics.median(times), 2)
            continue
        try:
            wall, rss, _ = denoise(work / f"noisy_{s}.tif", scratch / f"out_{s}.tif",
                                   timeout=None if quick else 180)
            figures[f"peak_rss_mb_{s}"] = round(rss, 1)
            figures[f"denoise_{s}_wall_s"] = round(wall, 2)
            log(f"{s}x{s}: peak RSS {rss:.0f} MiB, {wall:.1f} s")
        except TimeoutError as exc:
            # the input and the float32 change are allocated at the start: the peak so far
            # lacks only the output array (2 bytes per pixel) and the conversion chunks
            figures[f"peak_rss_mb_{s}"] = None
            figures[f"peak_rss_mb_{s}_until_stopped"] = round(exc.peak_rss_mb, 1)
            notes.append(f"{s}x{s}: {exc} (a busy machine); peak RSS until then "
                         f"{exc.peak_rss_mb:.0f} MiB")
    lo, hi = sizes[0], sizes[-1]
    if figures.get(f"peak_rss_mb_{lo}") is not None and figures.get(f"peak_rss_mb_{hi}") is not None:
        slope = ((figures[f"peak_rss_mb_{hi}"] - figures[f"peak_rss_mb_{lo}"]) * 2**20
                 / (hi * hi - lo * lo))
        figures["rss_slope_bytes_per_pixel"] = round(slope, 2)
    else:
        figures["rss_slope_bytes_per_pixel"] = None
    loads["memory"] = loadavg()

    # --- TYX stack -------------------------------------------------------------------------
    frames, tside = tyx
    stack = work / f"tyx_{frames}x{tside}.tif"
    for kind, model in (("image", ckpt), ("video", vckpt)):
        name = f"tyx_{frames}x{tside}_fps_{kind}"
        folder = scratch / f"tyx_{kind}"
        folder.mkdir(exist_ok=True)
        try:
            wall, _, _ = denoise(stack, folder / "out.tif", model, timeout=None if quick else 180)
            seconds = logged_seconds(folder)
            figures[name] = round(frames / seconds, 2)
            figures[f"tyx_{frames}x{tside}_{kind}_file_s"] = seconds
            log(f"TYX {frames}x{tside}x{tside}, {kind} model: {seconds:.1f} s for the file "
                f"({frames / seconds:.1f} frames/s), {wall:.1f} s the command")
        except TimeoutError as exc:
            figures[name] = None
            notes.append(f"TYX stack, {kind} model: {exc}")
        loads[f"tyx_{kind}"] = loadavg()

    result = {"part": PART, "figures": figures, "load": loads, "notes": notes,
              "markdown": markdown(figures, loads, notes, side, sizes, tyx, repeats, tree)}
    Path(args.json).write_text(json.dumps(result, indent=1))
    log(f"wrote {args.json}")


def fmt(v, unit=""):
    return "n/a" if v is None else f"{v}{unit}"


def markdown(f, loads, notes, side, sizes, tyx, repeats, tree):
    frames, tside = tyx
    lines = [
        "## Inference: `denoise-vit denoise`",
        "",
        f"Measured on `{tree}`, each figure in its own `python` process (PYTHONPATH = that tree); "
        f"timings are medians of {repeats}. Test data: `data_gen.generate_images(1, size=N)` "
        f"(noisy and clean) x {SCALE:g}, saved as uint16 TIFF; checkpoints below. Python's "
        f"bytecode cache is on for the measured commands (PYTHONDONTWRITEBYTECODE removed from "
        f"their environment), as it is for an installed package, and one unmeasured `denoise` "
        f"command writes it first.",
        "",
        "| figure | value | load (1 min) |",
        "|---|---|---|",
        f"| `python -c \"import torch\"` (wall; the runs paired with the {side}x{side} "
        f"commands) | {fmt(f['import_torch_s'], ' s')} | {loads[f'denoise_{side}']['1min']} |",
        f"| imports of the denoise path beyond torch (cli, inference, checkpoint, models, "
        f"tifffile; in-process) | {fmt(f['startup_s'], ' s')} | {loads['startup']['1min']} |",
        f"| `denoise --help` (wall) | {fmt(f['help_s'], ' s')} | {loads['startup']['1min']} |",
        f"| `denoise` {side}x{side} uint16, whole command (wall) | "
        f"{fmt(f[f'denoise_{side}_s'], ' s')} | {loads[f'denoise_{side}']['1min']} |",
        f"| the same beyond `import torch` (each run after its own `import torch` process; "
        f"median of the differences "
        f"{', '.join(format(v, '.3f') for v in f.get(f'denoise_{side}_beyond_torch_pairs', []))})"
        f" | {fmt(f[f'denoise_{side}_beyond_torch_s'], ' s')} | |",
        f"| the same, the file's own seconds (read, denoise, write; from denoise_log.jsonl) | "
        f"{fmt(f[f'denoise_{side}_file_s'], ' s')} | |",
        f"| the command stamped in its own process: from `import torch` done to main() returned "
        f"(checkpoint, model, file, denoising, log) | "
        f"{fmt(f.get(f'denoise_{side}_stamped_work_s'), ' s')} | |",
        f"| the same process's exit after main() (the interpreter's teardown) | "
        f"{fmt(f.get(f'denoise_{side}_stamped_exit_s'), ' s')} | |",
        f"| the exit of `python -c \"import torch\"` after its import (stamped the same way): "
        f"part of the baseline the goal subtracts | {fmt(f.get('import_torch_exit_s'), ' s')} | |",
        f"| the whole command with OMP_NUM_THREADS=1 | {fmt(f[f'denoise_{side}_1thread_s'], ' s')}"
        f" | {loads[f'denoise_{side}_1thread']['1min']} |",
        f"| PSNR of the output (noisy input: {f[f'psnr_{side}_noisy_db']} dB) | "
        f"{fmt(f[f'psnr_{side}_db'], ' dB')} | |",
    ]
    for s in sizes:
        lines.append(f"| peak RSS of the command, {s}x{s} | {fmt(f.get(f'peak_rss_mb_{s}'), ' MiB')}"
                     f" ({fmt(f.get(f'denoise_{s}_wall_s'), ' s')}) | {loads['memory']['1min']} |")
    lines += [
        f"| peak RSS slope {sizes[0]} -> {sizes[-1]} | "
        f"{fmt(f['rss_slope_bytes_per_pixel'], ' bytes/pixel')} | |",
        f"| {frames}-frame {tside}x{tside} TYX stack, image model (plane by plane) | "
        f"{fmt(f[f'tyx_{frames}x{tside}_fps_image'], ' frames/s')} | {loads['tyx_image']['1min']} |",
        f"| the same stack, video model (sliding 8-frame windows) | "
        f"{fmt(f[f'tyx_{frames}x{tside}_fps_video'], ' frames/s')} | {loads['tyx_video']['1min']} |",
        "",
        "The RSS slope counts every byte per pixel: the uint16 input and output (2 + 2) and the "
        "float32 blended change (4) are the arrays the command must hold; the rest of the "
        "peak (torch, the model, one batch of tiles) does not grow with the image.",
        "",
    ]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
