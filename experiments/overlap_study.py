"""Tile size and overlap against PSNR and time: how much overlap `denoise` needs, and whether
bigger tiles pay (issue 14's levers "less overlap with the same blending" and "bigger tiles
where the model allows").

    flock /tmp/cpu.lock python experiments/overlap_study.py --checkpoint runs/vit_fast/checkpoint_best.pt \
        --tiles 64,96,128

For each tile side and each overlap smaller than it (pixels shared by neighbouring tiles; the
blending is the same half-Hann ramp over the overlap), a `Denoiser` with the checkpoint's model
denoises --images synthetic images of --size (data_gen.generate_images, seeds 0..N-1, model
units); PSNR against the clean images (pooled over the set) and the seconds of the set (best of
--repeats, the settings taken in turns within each repeat so that a slow spell of the machine
falls on all of them). Writes docs/overlap.json and docs/overlap.png (or --out-dir) and prints
the table of docs/DENOISE.md; --render-only draws the figure and prints the table again.
"""
import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def plot(report, path):
    """PSNR (left) and seconds per image (right) against the overlap, one line per tile side
    (runs before --tiles existed had 64x64 tiles only)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    tiles = sorted({r.get("tile", 64) for r in report["rows"]})
    for i, tile in enumerate(tiles):
        rows = sorted((r for r in report["rows"] if r.get("tile", 64) == tile),
                      key=lambda r: r["overlap"])
        xs = [r["overlap"] for r in rows]
        label = f"{tile}x{tile} tiles"
        left.plot(xs, [r["psnr_db"] for r in rows], "o-", color=f"C{i}", label=label)
        right.plot(xs, [r["seconds_per_image"] for r in rows], "s-", color=f"C{i}", label=label)
    for ax in (left, right):
        ax.set_xlabel("tile overlap (pixels; dotted: 16, the default for 64x64 tiles)")
        ax.axvline(16, color="0.7", lw=0.8, ls=":")
        ax.legend(fontsize=8)
    left.set_ylabel("PSNR (dB)")
    left.set_title("quality")
    right.set_ylabel(f"seconds per {report['size']}x{report['size']} image")
    right.set_title("time")
    fig.suptitle(f"Tiles and overlap: PSNR and time ({report['images']} images, "
                 f"{report['machine']['cpu']}, {report['date']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(report):
    """The markdown table of docs/DENOISE.md: every row against 64x64 tiles overlapping by 16."""
    rows = report["rows"]
    ref = next((r for r in rows if r.get("tile", 64) == 64 and r["overlap"] == 16), rows[0])
    lines = [f"| tile | overlap (pixels) | tiles | PSNR (dB) | vs {ref.get('tile', 64)} / "
             f"{ref['overlap']} | seconds per image | vs {ref.get('tile', 64)} / {ref['overlap']} |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.get('tile', 64)} | {r['overlap']} | {str(r.get('tiles', '')).split(' ')[0]} | "
                     f"{r['psnr_db']:.2f} | {r['psnr_db'] - ref['psnr_db']:+.2f} | "
                     f"{r['seconds_per_image']:.3f} | "
                     f"{r['seconds_per_image'] / ref['seconds_per_image']:.2f}x |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint")
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--overlaps", default="16,12,8,4,0")
    p.add_argument("--tiles", default="64",
                   help="tile sides, comma-separated (multiples of the model's patch)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out-dir", default=str(ROOT / "docs"))
    p.add_argument("--render-only", action="store_true",
                   help="draw overlap.png again from the overlap.json in --out-dir")
    args = p.parse_args(argv)
    if args.render_only:
        report = json.loads((Path(args.out_dir) / "overlap.json").read_text())
        plot(report, Path(args.out_dir) / "overlap.png")
        print(table(report))
        return 0
    try:
        overlaps = [int(v) for v in args.overlaps.split(",")]
    except ValueError:
        p.exit(2, f"overlap_study: --overlaps must be integers, got {args.overlaps!r}\n")
    try:
        tiles = [int(v) for v in args.tiles.split(",")]
    except ValueError:
        p.exit(2, f"overlap_study: --tiles must be integers, got {args.tiles!r}\n")
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
    settings = []
    for tile in tiles:
        for overlap in overlaps:
            if overlap >= tile:
                continue
            try:
                settings.append((tile, overlap, Denoiser(model, tile=tile, overlap=overlap)))
            except DenoiseVitError as exc:
                p.exit(2, f"overlap_study: {exc}\n")
    outs = {}
    best = {(tile, overlap): float("inf") for tile, overlap, _ in settings}
    for repeat in range(args.repeats):
        for tile, overlap, den in settings:
            t = time.perf_counter()
            outs[tile, overlap] = torch.cat([den.denoise(x) for x, _ in data])
            seconds = time.perf_counter() - t
            best[tile, overlap] = min(best[tile, overlap], seconds)
            print(f"  pass {repeat + 1}/{args.repeats}: tile {tile}, overlap {overlap}: "
                  f"{seconds:.2f} s", flush=True)
    rows = []
    for tile, overlap, den in settings:
        seconds = best[tile, overlap]
        rows.append({"tile": tile, "overlap": overlap, "tiles": den.describe(args.size, args.size),
                     "psnr_db": round(psnr(outs[tile, overlap], clean), 3),
                     "seconds": round(seconds, 3),
                     "seconds_per_image": round(seconds / args.images, 3)})
        print(f"tile {tile}, overlap {overlap:2d}: {rows[-1]['tiles']}; PSNR "
              f"{rows[-1]['psnr_db']:.3f} dB; {seconds / args.images:.3f} s per image", flush=True)
    report = {"command": "flock /tmp/cpu.lock python experiments/overlap_study.py "
                         f"--checkpoint {args.checkpoint} --tiles {args.tiles} --overlaps {args.overlaps}",
              "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine_info(),
              "images": args.images, "size": args.size,
              "noisy_psnr_db": round(psnr(noisy, clean), 3),
              "loadavg_1min": [float(load_before), float(open("/proc/loadavg").read().split()[0])],
              "rows": rows}
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "overlap.json").write_text(json.dumps(report, indent=1) + "\n")

    plot(report, out / "overlap.png")
    print(table(report))
    print(f"wrote {out / 'overlap.json'} and {out / 'overlap.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
