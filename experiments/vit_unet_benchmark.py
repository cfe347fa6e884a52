"""vit_unet against the U-Net at every budget of issue 11, at the sweep's rate and at its own.

    python experiments/vit_unet_benchmark.py              # SUMMARY.md and summary.png from the runs below
    python experiments/vit_unet_benchmark.py --dir D      # another folder laid out the same way

Why: docs/BENCHMARKS.md (2026-12-03) capped vit_unet at 4 CPU min and trained it with Adam and
PyTorch's init; since 2026-12-07 it trains as the U-Net preset does (AdamW 0.05, output conv
at zero), and under `denoise-vit train` it is the best transformer preset. Issue 11, item 3
asks the best transformer preset to score at least as high as the U-Net at 1, 4 and 15 CPU min
and at equal training images; item 4, what attention adds there. The runs (2-core Xeon, each
command alone under the CPU lock but for the overlap the summary states):

    denoise-vit benchmark --budgets 1,4,15 --configs vit_unet,vit_unet_no_attention,unet \\
        --methods none --clock cpu --images 25000,50000,100000 --lr-sweep 0.003,0.01,0.03 \\
        --seeds 2 --cooldown --optimizer adamw --jobs 2 \\
        --runs-dir runs/benchmark-vit-unet --out-dir docs/benchmark-vit-unet

The 30-s sweep gave the U-Net 3e-3 (vit_unet and its twin 1e-2), a rate the U-Net's 4-min
runs do not favour (docs/VARIANTS.md round 5), so the U-Net was trained again at vit_unet's
rate, 1e-2, with the same protocol (experiments/variants/x_unet_zero_adamw_lr1e-2.toml is the
unet preset at 1e-2; its `_seed1` copy gives the second seed, the benchmark giving one only
to networks close to another):

    denoise-vit benchmark --budgets 1,4,15 --configs experiments/variants/x_unet_zero_adamw_lr1e-2.toml \\
        --methods none --clock cpu --images 25000,50000,100000 --seeds 1 --cooldown \\
        --optimizer adamw --jobs 1 --threads 1 --idle-wait 0 --runs-dir runs/benchmark-vit-unet-lr1e-2 \\
        --out-dir docs/benchmark-vit-unet/unet-lr1e-2-seed0      # and _seed1.toml -> ...-seed1

Writes DIR/SUMMARY.md and DIR/summary.png.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from saved_report import read_saved  # noqa: E402

MAIN = ("vit_unet", "vit_unet_no_attention", "unet")
EXTRA = ("unet-lr1e-2-seed0", "unet-lr1e-2-seed1")   # sub-folders, one seed each
UNET_1E2 = "unet at 1e-2"
NAMES = {"vit_unet": "vit_unet", "vit_unet_no_attention": "MLP-only twin",
         "unet": "U-Net (sweep's rate)", UNET_1E2: "U-Net at 1e-2"}


def points(rec):
    """{('cpu', minutes) or ('images', n): [psnr per seed]} of one benchmark record."""
    out = {}
    for p in rec.get("curve") or ():
        out[("cpu", p["budget_s"] / 60)] = p.get("psnr_seeds") or [p["psnr"]]
    for p in rec.get("curve_images") or ():
        out[("images", p["budget_images"])] = p.get("psnr_seeds") or [p["psnr"]]
    return out


def collect(folder, parser):
    """(networks {label: {point: [psnr per seed]}}, rates {label: lr}, the main report)."""
    report = read_saved(parser, folder / "benchmarks.json", "vit_unet_benchmark",
                        "run the benchmark command in this script's docstring first")
    recs = {r["name"]: r for r in report["methods"] if r.get("kind") == "network"}
    missing = [n for n in MAIN if n not in recs]
    if missing:
        parser.exit(2, f"vit_unet_benchmark: {folder / 'benchmarks.json'} has no "
                       f"{', '.join(missing)}\n")
    nets = {n: points(recs[n]) for n in MAIN}
    rates = {n: recs[n]["lr"] for n in MAIN}
    seeds = []
    for sub in EXTRA:
        path = folder / sub / "benchmarks.json"
        if path.is_file():
            extra = [r for r in json.loads(path.read_text())["methods"] if r.get("kind") == "network"]
            if len(extra) != 1:
                parser.exit(2, f"vit_unet_benchmark: {path} must hold one network, not {len(extra)}\n")
            seeds.append(points(extra[0]))
            rates[UNET_1E2] = extra[0]["lr"]
    if seeds:
        nets[UNET_1E2] = {pt: [s[pt][0] for s in seeds] for pt in seeds[0]
                          if all(pt in s for s in seeds)}
    return nets, rates, report


def mean(values):
    return sum(values) / len(values)


def label(pt):
    return f"{pt[1]:g} CPU min" if pt[0] == "cpu" else f"{pt[1]:,} images"


def cell(values):
    if values is None:
        return "not reached"
    each = " / ".join(f"{v:.2f}" for v in values)
    return f"{mean(values):.2f} ({each})" if len(values) > 1 else f"{values[0]:.2f}"


def gap(a, b):
    """Mean and per-seed gaps a - b (seeds paired), or None."""
    if a is None or b is None:
        return None
    each = [x - y for x, y in zip(a, b)]
    return mean(each), each


def gap_text(g):
    if g is None:
        return "–"
    m, each = g
    return f"{m:+.2f} ({' / '.join(f'{v:+.2f}' for v in each)})"


def render(nets, rates, report):
    order = [n for n in (*MAIN, UNET_1E2) if n in nets]
    pts = sorted({pt for n in order for pt in nets[n]}, key=lambda pt: (pt[0] != "cpu", pt[1]))
    from denoise_vit.benchmark.report import machine_line
    lines = ["# vit_unet against the U-Net at every budget (issue 11, items 3 and 4)", "",
             "Written by `python experiments/vit_unet_benchmark.py` from "
             "[BENCHMARKS.md](BENCHMARKS.md) (its command, machine and load are there) and, for the "
             "U-Net at vit_unet's rate, the one-seed runs in `unet-lr1e-2-seed0/` and "
             "`unet-lr1e-2-seed1/` (their commands in the script's docstring). "
             f"Machine: {machine_line(report)}; the main run {report.get('date', '?')}.", "",
             "Rates: " + ", ".join(f"{NAMES[n]} {rates[n]:g}" for n in order) + " (the sweep "
             "chose all but the last; AdamW 0.05 for all, output conv at zero, the cooldown "
             "protocol).", "", "![PSNR per CPU time and per training image](summary.png)", "",
             "| budget | " + " | ".join(NAMES[n] for n in order) + " |",
             "|---|" + "---:|" * len(order)]
    for pt in pts:
        lines.append(f"| {label(pt)} | " + " | ".join(cell(nets[n].get(pt)) for n in order) + " |")
    lines += ["", "Each cell: the mean over seeds (seeds 0 / 1 in brackets).", "",
              "| budget | vit_unet - U-Net (sweep's rate) | vit_unet - U-Net at 1e-2 "
              "| attention (vit_unet - twin) |", "|---|---:|---:|---:|"]
    other = nets.get(UNET_1E2, {})
    for pt in pts:
        v = nets["vit_unet"].get(pt)
        lines.append(f"| {label(pt)} | {gap_text(gap(v, nets['unet'].get(pt)))} | "
                     f"{gap_text(gap(v, other.get(pt)))} | "
                     f"{gap_text(gap(v, nets['vit_unet_no_attention'].get(pt)))} |")
    lines += ["", "Gaps in dB, the mean and each seed's (paired by seed: the same weights' seed "
              "and data stream).", "", "## Verdict", ""]
    for name in ("unet", UNET_1E2):
        if name not in nets:
            continue
        gaps = {pt: gap(nets["vit_unet"].get(pt), nets[name].get(pt)) for pt in pts}
        gaps = {pt: g for pt, g in gaps.items() if g is not None}
        behind = [label(pt) for pt, g in gaps.items() if g[0] < 0]
        lines.append(f"- vit_unet against the {NAMES[name]} (means): "
                     + (f"**behind** at {', '.join(behind)} ({len(behind)} of the {len(gaps)} "
                        f"budgets both reached)" if behind
                        else f"at least as high at all {len(gaps)} budgets both reached") + ".")
    att = {pt: gap(nets["vit_unet"].get(pt), nets["vit_unet_no_attention"].get(pt)) for pt in pts}
    met = [label(pt) for pt, g in att.items() if g is not None and g[0] >= 1.0]
    lines.append("- Attention adds at least 1 dB (issue 11, item 4): "
                 + (f"at {', '.join(met)}." if met else "**at no budget**."))
    return "\n".join(lines)


def figure(nets, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colors = {"vit_unet": "C0", "vit_unet_no_attention": "C1", "unet": "C2", UNET_1E2: "C3"}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, unit, xlabel in ((axes[0], "cpu", "CPU minutes"), (axes[1], "images", "training images")):
        for name, pts in nets.items():
            got = sorted((pt[1], v) for pt, v in pts.items() if pt[0] == unit)
            if not got:
                continue
            xs = [x for x, _ in got]
            ax.plot(xs, [mean(v) for _, v in got], "-o", color=colors[name], label=NAMES[name])
            for x, v in got:
                ax.scatter([x] * len(v), v, color=colors[name], s=10, alpha=0.5)
        ax.set_xscale("log")
        ticks = sorted({pt[1] for pts in nets.values() for pt in pts if pt[0] == unit})
        ax.set_xticks(ticks, [f"{t:g}" if unit == "cpu" else f"{t / 1000:g}k" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("PSNR (dB), evaluation set")
    axes[0].legend(fontsize=8)
    fig.suptitle("vit_unet, its MLP-only twin and the U-Net: mean line, each seed a dot")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", default=str(ROOT / "docs" / "benchmark-vit-unet"),
                   help="the benchmark's --out-dir (default docs/benchmark-vit-unet)")
    args = p.parse_args(argv)
    folder = Path(args.dir)
    nets, rates, report = collect(folder, p)
    (folder / "SUMMARY.md").write_text(render(nets, rates, report) + "\n")
    figure(nets, folder / "summary.png")
    print(f"wrote {folder / 'SUMMARY.md'} and {folder / 'summary.png'}")


if __name__ == "__main__":
    main()
