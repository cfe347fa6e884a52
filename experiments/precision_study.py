"""fp32 against bf16 in `denoise`: seconds and PSNR of `Denoiser(precision=...)` (issue 14's
lever "bf16 on CPUs that support it").

    flock /tmp/cpu.lock python experiments/precision_study.py --checkpoint runs/vit_fast/checkpoint_best.pt

The image checkpoint's model denoises --images synthetic images of --size (data_gen, seeds
0..N-1, model units) with the default tiling; a video model (--video-checkpoint, or the
video_fast preset as built: untrained, for speed only, no PSNR) denoises a --frames-frame clip of
--video-size. Each precision takes its turn within every repeat, so a slow spell of the machine
falls on both; the seconds are the best of --repeats. PSNR against the clean images, pooled over
the set. Writes precision.json and precision.png to --out-dir (default docs/) and prints the
table of docs/DENOISE.md; --render-only draws the figure and prints the table again.
"""
import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from saved_report import read_saved  # noqa: E402  (experiments/, the script's own folder)
PRECISIONS = ("fp32", "bf16")


def plot(report, path):
    """Seconds per precision (left) and bf16's PSNR change against fp32 (right), per model."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = report["rows"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    by = {(r["model"], r["precision"]): r for r in rows}
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    width = 0.38
    for j, precision in enumerate(PRECISIONS):
        xs = [i + (j - 0.5) * width for i in range(len(models))]
        left.bar(xs, [by[m, precision]["seconds"] for m in models], width, label=precision,
                 color=f"C{j}")
    left.legend(fontsize=8)
    left.set_ylabel("seconds (best of the repeats)")
    left.set_title("time")
    scored = [m for m in models if by[m, "fp32"]["psnr_db"]]
    right.bar(range(len(scored)), [by[m, "bf16"]["psnr_db"] - by[m, "fp32"]["psnr_db"]
                                   for m in scored], 0.5, color="C1")
    right.axhline(0, color="0.3", lw=0.8)
    right.axhline(-0.1, color="C3", lw=0.8, ls=":", label="-0.1 dB (issue 14's tolerance)")
    right.set_ylim(-0.15, 0.05)
    right.legend(fontsize=8, loc="lower right")
    right.set_ylabel("PSNR of bf16 minus fp32 (dB)")
    right.set_title("quality (trained checkpoints)")
    for ax, names in ((left, models), (right, scored)):
        ax.set_xticks(range(len(names)), [m.replace(" (", "\n(") for m in names], fontsize=8)
    fig.suptitle(f"fp32 and bf16 in denoise ({report['machine']['cpu']}, "
                 f"{report['machine'].get('cpu_capability', '')}, bf16 in hardware: "
                 f"{'yes' if report['native_bf16'] else 'no'}; {report['date']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(report):
    """The markdown table of docs/DENOISE.md: bf16 against fp32 for each model."""
    lines = ["| model | input | precision | seconds | speed-up over fp32 | PSNR (dB) | vs fp32 |",
             "|---|---|---|---:|---:|---:|---:|"]
    ref = {r["model"]: r for r in report["rows"] if r["precision"] == "fp32"}
    for r in report["rows"]:
        f = ref[r["model"]]
        gain = f"{f['seconds'] / r['seconds']:.2f}x" if r is not f else ""
        quality = f"{r['psnr_db']:.3f}" if r["psnr_db"] else "untrained"
        diff = f"{r['psnr_db'] - f['psnr_db']:+.3f}" if r["psnr_db"] and r is not f else ""
        lines.append(f"| {r['model']} | {r['input']} | {r['precision']} | {r['seconds']:.3f} | "
                     f"{gain} | {quality} | {diff} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="an image checkpoint (trained: its PSNR is compared)")
    p.add_argument("--video-checkpoint", help="a video checkpoint (default: video_fast as built)")
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--video-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out-dir", default=str(ROOT / "docs"))
    p.add_argument("--render-only", action="store_true",
                   help="draw precision.png again from the precision.json in --out-dir")
    args = p.parse_args(argv)
    out = Path(args.out_dir)
    if args.render_only:
        report = read_saved(p, out / "precision.json", "precision_study", "run the study first")
        plot(report, out / "precision.png")
        print(table(report))
        return 0
    for name in ("checkpoint", "video_checkpoint"):
        value = getattr(args, name)
        if (value or name == "checkpoint") and not (value and Path(value).is_file()):
            p.exit(2, f"precision_study: no checkpoint at {value} "
                      f"(give --{name.replace('_', '-')})\n")
    if min(args.images, args.size, args.frames, args.video_size, args.repeats) < 1:
        p.exit(2, "precision_study: --images, --size, --frames, --video-size and --repeats "
                  "must be at least 1\n")

    import torch
    from einops import rearrange
    from data_gen import generate_images, generate_videos
    from denoise_vit import build_model
    from denoise_vit.benchmark.runner import machine_info
    from denoise_vit.checkpoint import load_model
    from denoise_vit.errors import DenoiseVitError
    from denoise_vit.inference.tiling import Denoiser, native_bf16
    from denoise_vit.metrics import psnr
    from denoise_vit.training.config import load_config
    from denoise_vit.training.setup import model_args_for

    try:
        image_model = load_model(args.checkpoint)
        if args.video_checkpoint:
            video_model = load_model(args.video_checkpoint)
            video_name = f"video ({Path(args.video_checkpoint).resolve().parent.name})"
        else:
            cfg = load_config("video_fast", [])
            torch.manual_seed(0)
            video_model = build_model(cfg.model_name, **model_args_for(cfg)).eval()
            video_name = "video_fast (as built)"
    except DenoiseVitError as exc:
        p.exit(2, f"precision_study: {exc}\n")
    if image_model.facts.kind != "image" or video_model.facts.kind != "video":
        p.exit(2, "precision_study: --checkpoint must hold an image model and "
                  "--video-checkpoint a video model\n")
    pairs = [generate_images(1, size=args.size, generator=torch.Generator().manual_seed(s))
             for s in range(args.images)]
    clip, clip_clean = (rearrange(v, "1 c t h w -> t c h w") for v in generate_videos(
        1, frames=args.frames, size=args.video_size, generator=torch.Generator().manual_seed(0)))
    cases = [(f"image ({Path(args.checkpoint).resolve().parent.name})",
              f"{args.images} x {args.size}x{args.size}", image_model,
              [x for x, _ in pairs], torch.cat([c for _, c in pairs]), True),
             (video_name, f"{args.frames} frames of {args.video_size}x{args.video_size}",
              video_model, [clip], clip_clean, bool(args.video_checkpoint))]
    load_before = float(open("/proc/loadavg").read().split()[0])
    best, outs, dens = {}, {}, {}
    for name, _, model, _, _, _ in cases:
        for precision in PRECISIONS:
            dens[name, precision] = Denoiser(model, precision=precision)
    for repeat in range(args.repeats):
        for name, _, _, inputs, _, _ in cases:
            for precision in PRECISIONS:
                den = dens[name, precision]
                t = time.perf_counter()
                outs[name, precision] = torch.cat([den.denoise(x) for x in inputs])
                seconds = time.perf_counter() - t
                best[name, precision] = min(best.get((name, precision), seconds), seconds)
                print(f"  pass {repeat + 1}/{args.repeats}: {name}, {precision}: {seconds:.3f} s",
                      flush=True)
    rows = []
    for name, what, _, _, clean, scored in cases:
        for precision in PRECISIONS:
            rows.append({"model": name, "input": what, "precision": precision,
                         "seconds": round(best[name, precision], 3),
                         "psnr_db": round(psnr(outs[name, precision], clean), 3) if scored
                         else None})
    options = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                       if v is not None and k not in ("out_dir", "render_only"))
    report = {"command": f"flock /tmp/cpu.lock python experiments/precision_study.py {options}",
              "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine_info(),
              "torch_threads": torch.get_num_threads(), "native_bf16": native_bf16("cpu"),
              "noisy_psnr_db": round(psnr(torch.cat([x for x, _ in pairs]),
                                          torch.cat([c for _, c in pairs])), 3),
              "loadavg_1min": [load_before, float(open("/proc/loadavg").read().split()[0])],
              "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "precision.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(report, out / "precision.png")
    print(table(report))
    print(f"wrote {out / 'precision.json'} and {out / 'precision.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
