"""Tile overlap against PSNR and time: how much overlap `denoise` needs (issue 14's lever "less
overlap with the same blending").

    flock /tmp/cpu.lock python experiments/overlap_study.py --checkpoint runs/vit_fast/checkpoint_best.pt

For each overlap (pixels shared by neighbouring 64x64 tiles; the blending is the same half-Hann
ramp over the overlap), a `Denoiser` with the checkpoint's model denoises --images synthetic
images of --size (data_gen.generate_images, seeds 0..N-1, model units); PSNR against the clean
images (pooled over the set) and the seconds of the set (best of --repeats). Writes
docs/overlap.json and docs/overlap.png (or --out-dir); --render-only draws the figure again.
"""
import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def plot(report, path):
    """PSNR (left axis) and seconds per image (right axis) against the overlap."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = sorted(report["rows"], key=lambda r: r["overlap"])
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [r["overlap"] for r in rows]
    ax.plot(xs, [r["psnr_db"] for r in rows], "o-", color="C0")
    ax.set_xlabel("tile overlap (pixels, 64x64 tiles; default 16)")
    ax.set_ylabel("PSNR (dB)", color="C0")
    ax.axvline(16, color="0.7", lw=0.8, ls=":")
    ax2 = ax.twinx()
    ax2.plot(xs, [r["seconds_per_image"] for r in rows], "s--", color="C1")
    ax2.set_ylabel(f"seconds per {report['size']}x{report['size']} image", color="C1")
    ax.set_title(f"Overlap: PSNR and time ({report['images']} images, "
                 f"{report['machine']['cpu']}, {report['date']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint")
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--overlaps", default="16,12,8,4,0")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out-dir", default=str(ROOT / "docs"))
    p.add_argument("--render-only", action="store_true",
                   help="draw overlap.png again from the overlap.json in --out-dir")
    args = p.parse_args(argv)
    if args.render_only:
        plot(json.loads((Path(args.out_dir) / "overlap.json").read_text()),
             Path(args.out_dir) / "overlap.png")
        return 0
    try:
        overlaps = [int(v) for v in args.overlaps.split(",")]
    except ValueError:
        p.exit(2, f"overlap_study: --overlaps must be integers, got {args.overlaps!r}\n")
    if not args.checkpoint or not Path(args.checkpoint).is_file():
        p.exit(2, f"overlap_study: no checkpoint at {args.checkpoint} (give --checkpoint)\n")

    import torch
    from data_gen import generate_images
    from denoise_vit.benchmark.runner import machine_info
    from denoise_vit.checkpoint import load_model
    from denoise_vit.errors import DenoiseVitError
    from denoise_vit.inference.tiling import Denoiser
    from denoise_vit.metrics import psnr

    model = load_model(args.checkpoint)
    data = [generate_images(1, size=args.size, generator=torch.Generator().manual_seed(s))
            for s in range(args.images)]
    clean = torch.cat([c for _, c in data])
    noisy = torch.cat([x for x, _ in data])
    load_before = open("/proc/loadavg").read().split()[0]
    rows = []
    for overlap in overlaps:
        try:
            den = Denoiser(model, overlap=overlap)
        except DenoiseVitError as exc:
            p.exit(2, f"overlap_study: {exc}\n")
        outs, best = None, float("inf")
        for _ in range(args.repeats):
            t = time.perf_counter()
            outs = torch.cat([den.denoise(x) for x, _ in data])
            best = min(best, time.perf_counter() - t)
        tiles = den.describe(args.size, args.size)
        rows.append({"overlap": overlap, "tiles": tiles, "psnr_db": round(psnr(outs, clean), 3),
                     "seconds": round(best, 3), "seconds_per_image": round(best / args.images, 3)})
        print(f"overlap {overlap:2d}: {tiles}; PSNR {rows[-1]['psnr_db']:.3f} dB; "
              f"{best / args.images:.3f} s per image", flush=True)
    report = {"command": "flock /tmp/cpu.lock python experiments/overlap_study.py "
                         f"--checkpoint {args.checkpoint}",
              "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine_info(),
              "images": args.images, "size": args.size,
              "noisy_psnr_db": round(psnr(noisy, clean), 3),
              "loadavg_1min": [float(load_before), float(open("/proc/loadavg").read().split()[0])],
              "rows": rows}
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "overlap.json").write_text(json.dumps(report, indent=1) + "\n")

    plot(report, out / "overlap.png")
    print(f"wrote {out / 'overlap.json'} and {out / 'overlap.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
