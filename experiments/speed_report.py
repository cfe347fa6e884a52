"""Speed near the limit (issue 14): every figure before and after, in one report.

    flock /tmp/cpu.lock python experiments/speed_report.py          # ~7 minutes on a 2-core CPU
    python experiments/speed_report.py --render-only                # SPEED.md again from speed.json
    python experiments/speed_report.py --quick --out-dir /tmp/speed # smoke run (a test runs it)

Runs each part in ``experiments/speed_parts/`` (inference, training, load, generator) twice, as
separate processes: once on the code as it was before issue 14 (``--before REV``, extracted from
git into a temporary folder) and once on this checkout. Each part measures its code in
subprocesses with ``PYTHONPATH`` set to the tree it is given, so both sides run the same
measurement. Around every part the report records the load average and the share of the CPU
other processes used (from /proc/stat; the ``load`` part starts its own busy process on purpose,
and says so). The dense float32 matmul rate is measured in the same run, at the start.

Writes ``docs/SPEED.md`` and ``docs/speed.json`` (or into ``--out-dir``). Where that folder
holds a ``speed_gpu.json`` (``experiments/speed_gpu.py``, run on a machine with a GPU), its
figures become SPEED.md's GPU section.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))   # speed_gpu: the GPU section

PARTS = ("inference", "training", "load", "generator")
BEFORE_REV = "ecd84de"  # main before issue 14
COMMAND = "flock /tmp/cpu.lock python experiments/speed_report.py"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def extract_tree(rev, dest):
    """The repository at `rev`, written into `dest` (git archive: no worktree bookkeeping)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        raise SystemExit(f"speed_report: cannot extract revision {rev!r} from git: "
                         f"{archive.stderr.decode(errors='replace').strip()}")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as f:
        f.write(archive.stdout)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(dest, filter="data")
    return dest


def run_part(part, tree, out_json, *, quick):
    """One part on one tree: (result dict or None, wall seconds, load dict)."""
    from denoise_vit.benchmark.runner import ForeignLoad

    script = ROOT / "experiments" / "speed_parts" / f"{part}.py"
    cmd = [sys.executable, str(script), "--tree", str(tree), "--json", str(out_json)]
    if quick:
        cmd.append("--quick")
    load_before = os.getloadavg()
    foreign = ForeignLoad()
    t = time.perf_counter()
    # cwd: a scratch folder, never the repository root: `python -c` puts the working folder
    # ahead of PYTHONPATH, so a measurement run from the root would import this checkout's
    # code on the "before" side too.
    proc = subprocess.run(cmd, cwd=out_json.parent, check=False)
    wall = time.perf_counter() - t
    load = {"loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()],
            "other_processes_cpu_share": _round(foreign.stop(), 3)}
    if proc.returncode != 0 or not out_json.exists():
        log(f"speed_report: part {part} on {tree} failed (exit {proc.returncode})")
        return None, wall, load
    return json.loads(out_json.read_text()), wall, load


def _round(value, digits):
    return None if value is None else round(value, digits)


def fmt(value):
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    if isinstance(value, list):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def ratio(before, after):
    if isinstance(before, (int, float)) and isinstance(after, (int, float)) \
            and not isinstance(before, bool) and before:
        return f"{after / before:.2f}x"
    return ""


def figures_table(before, after):
    """Every figure either side has, before / after / after over before."""
    b = (before or {}).get("figures", {})
    a = (after or {}).get("figures", {})
    names = list(a) + [n for n in b if n not in a]
    rows = ["| figure | before | after | after / before |", "|---|---:|---:|---:|"]
    for name in names:
        rows.append(f"| `{name}` | {fmt(b.get(name))} | {fmt(a.get(name))} | "
                    f"{ratio(b.get(name), a.get(name))} |")
    return rows


def load_line(side, load, wall):
    share = load["other_processes_cpu_share"]
    share = "unknown" if share is None else f"{100 * share:.0f} %"
    return (f"{side}: {wall:.0f} s wall; load average {load['loadavg_before'][0]:.2f} before, "
            f"{load['loadavg_after'][0]:.2f} after; other processes used {share} of the CPU")


GOALS = [  # (part, figure, test, goal in words)
    ("inference", "denoise_1024_beyond_torch_s", lambda v: v <= 0.6,
     "denoise of a 1024x1024 uint16 TIFF at most 0.6 s beyond `import torch`"),
    ("inference", "denoise_1024_stamped_work_s", lambda v: v <= 0.6,
     "the same without the help of the command's faster exit (gc.freeze: `python -c \"import "
     "torch\"` exits slower than the command): its own work after `import torch`, at most 0.6 s"),
    ("inference", "startup_s", lambda v: v <= 0.3, "imports beyond torch at most 0.3 s"),
    ("training", "vit_fast.share_of_matmul", lambda v: v >= 0.40,
     "vit_fast training at 40 % of the matmul rate or more"),
    ("load", "train_busy_policy_ratio", lambda v: v >= 0.5,
     "training with one core busy at 50 % of idle or more"),
    ("load", "denoise1024_ratio", lambda v: v >= 0.5,
     "denoise with one core busy at 50 % of idle or more"),
    ("generator", "speedup_1t", lambda v: v >= 20,
     "generator 20x the per-image loop at 1 thread (as the commands run it)"),
    ("generator", "speedup_2t", lambda v: v >= 30,
     "generator 30x the per-image loop at 2 threads (as the commands run it)"),
    ("generator", "speedup_system_1t", lambda v: v >= 20,
     "the same at 1 thread with glibc's default malloc (a script importing data_gen)"),
    ("generator", "speedup_system_2t", lambda v: v >= 30,
     "the same at 2 threads with glibc's default malloc"),
]


def goal_lines(report):
    """Each goal of issue 14 against the figure measured on this checkout."""
    after = {part["name"]: (part["after"]["result"] or {}).get("figures", {})
             for part in report["parts"]}
    lines = []
    for part, name, test, words in GOALS:
        value = after.get(part, {}).get(name)
        if value is None:
            continue
        lines.append(f"- {words}: `{name}` = {fmt(value)}: {'met' if test(value) else '**not met**'}")
    inf = after.get("inference", {})
    if inf.get("peak_rss_mb_4096") is not None and inf.get("rss_slope_bytes_per_pixel") is not None:
        lines.append(f"- a 4096x4096 image in bounded memory: peak RSS {inf['peak_rss_mb_4096']:.0f} "
                     f"MiB, growing {inf['rss_slope_bytes_per_pixel']:.1f} bytes per pixel from "
                     "1024 to 4096 (the uint16 input and output and the float32 blended change "
                     "are 8): bounded")
    if inf.get("psnr_1024_db") is not None:
        before = next((p["before"]["result"] or {}).get("figures", {}) for p in report["parts"]
                      if p["name"] == "inference").get("psnr_1024_db")
        if before is not None:
            d = inf["psnr_1024_db"] - before
            lines.append(f"- denoise PSNR within 0.1 dB of before: {d:+.3f} dB: "
                         f"{'met' if abs(d) <= 0.1 else '**not met**'}")
    return lines


def gpu_goal_line(gpu):
    """Goal 5 in one line, from a speed_gpu.json."""
    sec = gpu["sections"]
    name = sec.get("machine", {}).get("gpu", "a GPU")
    rows = sec.get("training", {}).get("rows", []) + sec.get("train_compiled", {}).get("rows", [])
    shares = [r for r in rows if r.get("share_of_bf16_peak") is not None]
    parts = [f"- GPU (images/s, share of the bf16 peak): measured on an {name} in a separate run "
             f"({gpu.get('started')}; the GPU section below)"]
    preset = next((r for r in shares if r["preset"] == "vit_fast" and r["batch"] == 64
                   and r["data"] == "generator" and r.get("amp")), None)
    best = max(shares, key=lambda r: r["share_of_bf16_peak"], default=None)
    if preset and best:
        parts.append(f"vit_fast training {preset['images_per_s']:.0f} images/s at its batch of 64 "
                     f"({100 * preset['share_of_bf16_peak']:.2f} % of the bf16 peak), at best "
                     f"{best['images_per_s']:.0f} images/s ({100 * best['share_of_bf16_peak']:.1f} %, "
                     f"batch {best['batch']}{', compiled' if best.get('compile') else ''})")
    images = sec.get("inference", {}).get("images", [])
    # the command's default on a CUDA GPU: 512 tiles, tiling on the GPU (rows of runs before
    # the tiling moved there have no "tiling" and name the batch as a number)
    default = next((r for r in images if r["side"] == 1024 and not r["bf16"]
                    and r.get("tiling") == "device" and str(r["batch"]).startswith("default")), None)
    old = next((r for r in images if r["side"] == 1024 and not r["bf16"]
                and str(r["batch"]) in ("512", "default (512 tiles)")
                and r.get("tiling", "numpy") == "numpy"), None)
    if default:
        parts.append(f"`Denoiser` on a 1024x1024 image {default['seconds']:.3f} s with its "
                     f"defaults on a CUDA GPU ({100 * default['share_of_bf16_peak']:.2f} % of the "
                     "peak)" + (f"; {old['seconds']:.3f} s with the tiling in numpy"
                                if old else ""))
    elif old:
        parts.append(f"`Denoiser` on a 1024x1024 image {old['seconds']:.3f} s at batch 512, "
                     f"now the default on a CUDA GPU ({100 * old['share_of_bf16_peak']:.2f} % of "
                     "the peak: the tiling around the model is the limit)")
    return "; ".join(parts)


def render(report, gpu=None, gpu_figure="speed_gpu.png"):
    m = report["machine"]
    lines = [
        "# Speed near the limit (issue 14)", "",
        f"Produced by `{report['command']}` on {m['cpu']}"
        f"{' (' + m['cpu_capability'] + ')' if m.get('cpu_capability') else ''}, {m['cores']} cores, "
        f"GPU: {m['gpu'] or 'none'}; Python {m['python']}, torch {m['torch']}. "
        f"Dense float32 matmul in the same run: **{report['matmul_gflops']:.0f} GFLOP/s** "
        f"(1024 x 1024 products, best of 2 s, {m['torch_threads']} threads); "
        f"{report['matmul_gflops_1t']:.0f} GFLOP/s on 1 thread. "
        f"Whole run: {report['wall_s'] / 60:.1f} min.", "",
        f"*Before* is the code at `{report['before_rev']}` (main before issue 14), *after* this "
        "checkout; each part ran once per side as its own process, measuring in subprocesses "
        "with `PYTHONPATH` set to that side's tree. The load is recorded around every part "
        "(the share of the CPU other processes used, from /proc/stat: near 0 % means the "
        "timing is clean; the `load` part holds one core busy on purpose).", "",
        ("**GPU**: this machine has none; the GPU figures (images/s and share of the bf16 peak, "
         f"training and inference) were measured on an {gpu['sections'].get('machine', {}).get('gpu')} "
         "by `python experiments/speed_gpu.py` in a separate run (the last section). "
         if gpu else "**GPU**: this machine has none, so every GPU figure (images/s and share of "
         "the bf16 peak, training and inference) is unmeasured. ") +
        "The CUDA paths (bf16 autocast, `torch.compile`, channels_last, fused attention) are "
        "covered by CPU-side tests.", "",
    ]
    goals = goal_lines(report)
    if goals:
        lines += ["## Goals of issue 14, on this checkout", "", *goals,
                  gpu_goal_line(gpu) if gpu else
                  "- GPU (images/s, share of the bf16 peak): unmeasured, no GPU here", ""]
    for part in report["parts"]:
        before, after = part["before"], part["after"]
        lines += [f"## {part['name']}: before / after", ""]
        lines += figures_table(before["result"], after["result"])
        lines += ["", "- " + load_line("before", before["load"], before["wall_s"]),
                  "- " + load_line("after", after["load"], after["wall_s"]), ""]
        if after["result"] is None:
            lines += [f"The part failed on this checkout; see the run's log.", ""]
            continue
        body = after["result"].get("markdown", "").strip()
        if body:
            lines += [body.replace("\n## ", "\n### ").replace("## ", "### ", 1)
                      if body.startswith("## ") else body, ""]
        for note in after["result"].get("notes", []):
            if note not in body:          # a part may already say it in its own section
                lines.append(f"- {note}")
        lines.append("")
    if gpu:
        from speed_gpu import render as gpu_section
        lines.append(gpu_section(gpu, gpu_figure))
    text = "\n".join(lines).rstrip() + "\n"
    if gpu:   # the CPU parts' own words about the GPU, from a machine without one
        text = text.replace("GPU (bf16 peak share, images/s): unmeasured, no GPU on this machine.",
                            "GPU figures: not on this machine (no GPU); see the GPU section.")
        text = text.replace("- GPU figures unmeasured: no GPU on this machine\n", "")
    return text


def read_gpu(out_dir):
    """(speed_gpu.json's figures, the path of its figure relative to out_dir) from out_dir, else,
    for a folder inside docs/ (another machine's report), from docs/;
    (None, None) where there is none (experiments/speed_gpu.py makes it on a GPU machine)."""
    out_dir = Path(out_dir).resolve()
    docs = (ROOT / "docs").resolve()
    for folder in (out_dir, docs) if docs in out_dir.parents else (out_dir,):
        try:
            gpu = json.loads((folder / "speed_gpu.json").read_text())
        except (OSError, ValueError):
            continue
        return gpu, os.path.relpath(folder / "speed_gpu.png", out_dir)
    return None, None


def write_speed_md(report, out_dir):
    gpu, figure = read_gpu(out_dir)
    (Path(out_dir) / "SPEED.md").write_text(render(report, gpu, figure))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", default=BEFORE_REV, help="git revision measured as 'before'")
    p.add_argument("--parts", default=",".join(PARTS),
                   help=f"comma-separated subset of {','.join(PARTS)}")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, no docs update")
    p.add_argument("--out-dir", default=None,
                   help="where SPEED.md and speed.json go (default docs/, or a temp folder with --quick)")
    p.add_argument("--render-only", action="store_true",
                   help="write SPEED.md again from the speed.json in --out-dir (default docs/)")
    args = p.parse_args(argv)
    if args.render_only:
        out_dir = Path(args.out_dir) if args.out_dir else ROOT / "docs"
        try:
            report = json.loads((out_dir / "speed.json").read_text())
        except (OSError, ValueError) as e:
            p.exit(2, f"speed_report: cannot read {out_dir / 'speed.json'}: {e}\n")
        write_speed_md(report, out_dir)
        log(f"speed_report: wrote {out_dir / 'SPEED.md'}")
        return 0
    parts = [s.strip() for s in args.parts.split(",") if s.strip()]
    unknown = [s for s in parts if s not in PARTS]
    if unknown or not parts:
        p.exit(2, f"speed_report: unknown part(s) {', '.join(unknown) or '(none given)'}; "
                  f"choose from {', '.join(PARTS)}\n")
    out_dir = Path(args.out_dir) if args.out_dir else (
        Path(tempfile.mkdtemp(prefix="speed_")) if args.quick else ROOT / "docs")
    out_dir.mkdir(parents=True, exist_ok=True)

    import torch  # noqa: F401  (after argument checks: a usage error costs no import)
    from denoise_vit.benchmark.runner import machine_info, matmul_gflops

    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="speed_work_"))
    try:
        log(f"speed_report: extracting {args.before} ...")
        before_tree = extract_tree(args.before, work / "before")
        log("speed_report: measuring the matmul rate ...")
        rate = matmul_gflops(seconds=0.5 if args.quick else 2.0)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        rate_1t = matmul_gflops(seconds=0.5 if args.quick else 2.0)
        torch.set_num_threads(threads)
        report = {"command": COMMAND + (" --quick" if args.quick else ""),
                  "machine": machine_info(), "matmul_gflops": rate, "matmul_gflops_1t": rate_1t,
                  "before_rev": args.before, "parts": []}
        for part in parts:
            entry = {"name": part}
            for side, tree in (("before", before_tree), ("after", ROOT)):
                log(f"speed_report: {part} on the {side} tree ...")
                result, wall, load = run_part(part, tree, work / f"{part}-{side}.json",
                                              quick=args.quick)
                entry[side] = {"result": result, "wall_s": wall, "load": load}
            report["parts"].append(entry)
        report["wall_s"] = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (out_dir / "speed.json").write_text(json.dumps(report, indent=1) + "\n")
    write_speed_md(report, out_dir)
    log(f"speed_report: wrote {out_dir / 'SPEED.md'} and {out_dir / 'speed.json'}")
    failed = [f"{e['name']} ({side})" for e in report["parts"] for side in ("before", "after")
              if e[side]["result"] is None]
    if failed:
        log(f"speed_report: failed parts: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
