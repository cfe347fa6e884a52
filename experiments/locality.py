"""How far do the trained networks look? Effective receptive fields and attention distances.

    python experiments/locality.py                      # the seed-0 runs of attention_ablation.py
    python experiments/locality.py --checkpoint unet=runs/unet-cpu/checkpoint_last.pt ...
    python experiments/locality.py --render-only        # LOCALITY.md from its json

docs/LOCALITY.md of 2026-12-06 measured the three vit_fast arms and the U-Net, each trained for
4 CPU minutes by

    denoise-vit train --config P budget_clock=cpu max_train_seconds=240 epochs=1000 seed=0 \
        name='"P-s0"' --out-dir runs/attention_ablation

(P = vit_fast, vit_fast_no_attention, vit_fast_no_blocks, unet; the first three as
attention_ablation.py trains them, which also trains vit_fast_local), and vit_fast at a fifth of
its rate by the same command with `lr=2e-3` and the name "vit_fast_lr2e-3-s0"; all named with
--checkpoint.

Issue 11, item 4 asks why attention adds so little to vit_fast. This script measures where the
trained networks take their information from, on the evaluation set (seed 1234):

* the effective receptive field (Luo et al. 2016): for an output pixel, |d output / d input| over
  the input, summed over the images; its mass within each distance of the pixel, averaged over
  output pixels on a grid in the tile's centre (so that no border cuts the field). `r50`, `r90`,
  `r99`: the radius (Euclidean, pixels) within which that share of the mass lies. The networks run
  in eval mode (batch norms on their running statistics), so images do not interact.
* for networks with attention: each head's mean attention distance (ViT paper, fig. 7): the
  distance between a token and the tokens it attends to, weighted by the attention, in pixels
  (token grid distance times the patch), and the weight a token gives itself; beside it the
  same distance for uniform attention (every token alike).

Writes docs/LOCALITY.md, docs/locality.json and docs/locality/locality.png. The figures depend on
the checkpoints it reads: the json names them and their training runs.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from saved_report import read_saved  # noqa: E402  (experiments/, the script's own folder)

RUNS = Path("runs/attention_ablation")
DEFAULTS = {"vit_fast": RUNS / "vit_fast-s0/checkpoint_last.pt",
            "vit_fast_no_attention": RUNS / "vit_fast_no_attention-s0/checkpoint_last.pt",
            "vit_fast_no_blocks": RUNS / "vit_fast_no_blocks-s0/checkpoint_last.pt"}
SHARES = (0.5, 0.9, 0.99)
COMMAND = "python experiments/locality.py"


def parse_checkpoints(items):
    """NAME=PATH pairs (an error message for the first bad one, else the dict)."""
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            return f"--checkpoint takes NAME=PATH, not {item!r}"
        out[name] = Path(path)
    return out


def receptive_field(model, x, centres):
    """Mass of |d out[c] / d x| at each integer distance (pixels, rounded) from c, averaged over
    the output pixels c in `centres`, each normalised to sum 1; and the mean map (centred)."""
    import torch

    n, _, h, w = x.shape
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    dmax = int((h ** 2 + w ** 2) ** 0.5) + 1
    hist = torch.zeros(dmax + 1, dtype=torch.float64)
    x = x.clone().requires_grad_(True)
    out = model(x)
    for i, (cy, cx) in enumerate(centres):
        grad, = torch.autograd.grad(out[:, 0, cy, cx].sum(), x, retain_graph=i + 1 < len(centres))
        mass = grad.abs().sum(dim=(0, 1)).double()
        mass /= mass.sum()
        dist = ((yy - cy) ** 2 + (xx - cx) ** 2).double().sqrt().round().long()
        hist += torch.bincount(dist.flatten(), weights=mass.flatten(), minlength=dmax + 1)
    hist /= len(centres)
    return hist


def radii(hist):
    """For each share in SHARES, the smallest radius whose disc holds it."""
    import torch
    cum = torch.cumsum(hist, 0)
    return {f"r{round(100 * s)}": int(torch.searchsorted(cum, torch.tensor(s, dtype=cum.dtype)))
            for s in SHARES}


def attention_distances(model, x):
    """Per block and head: mean attention distance (pixels) and mean self-weight, over the
    images and the query tokens; plus uniform attention's distance on the same grid."""
    import torch
    from denoise_vit.layers import Attention
    from denoise_vit.layers.attention import grid_distances

    patch = model.config.patch_size
    grid = (x.shape[-2] // patch, x.shape[-1] // patch)
    dist = grid_distances(grid, dtype=torch.float64) * patch  # (N, N) pixels
    records = []

    def recorder(module):
        def attend(q, k, v, bias=None):
            logits = (q * module.scale) @ k.transpose(-2, -1)
            weights = (logits if bias is None else logits + bias).softmax(dim=-1)
            w = weights.double()                              # (B, h, N, N)
            records.append({
                "distance_px": (w * dist).sum(-1).mean(dim=(0, 2)).tolist(),
                "self_weight": w.diagonal(dim1=-2, dim2=-1).mean(dim=(0, 2)).tolist()})
            return weights @ v
        return attend

    layers = [m for m in model.modules() if isinstance(m, Attention)]
    for layer in layers:
        layer.attend = recorder(layer)
    try:
        with torch.no_grad():
            model(x)
    finally:
        for layer in layers:
            del layer.attend                                  # back to the class's method
    return {"blocks": records, "uniform_px": float(dist.mean()), "patch": patch}


def measure(name, path, x, centres):
    from denoise_vit.checkpoint import open_checkpoint
    from denoise_vit.layers import Attention

    saved, model = open_checkpoint(path)
    metrics = saved.get("metrics") or [{}]
    t = time.perf_counter()
    hist = receptive_field(model, x, centres)
    entry = {"name": name, "checkpoint": str(path), "hist": hist.tolist(), **radii(hist),
             "params": sum(p.numel() for p in model.parameters()),
             "model": type(model).__name__, "steps": saved.get("step"),
             "eval_psnr": metrics[-1].get("eval_psnr")}
    cfg = saved.get("config")                                 # the training run's config
    if cfg:
        entry["run"] = {k: cfg.get(k) for k in ("name", "seed", "optimizer", "lr", "batch_size",
                                                 "max_train_seconds", "budget_clock")}
    if any(isinstance(m, Attention) for m in model.modules()):
        entry["attention"] = attention_distances(model, x)
    entry["seconds"] = time.perf_counter() - t
    return entry


def plot(report, path):
    from matplotlib.figure import Figure

    nets = report["networks"]
    with_attention = [n for n in nets if "attention" in n]
    fig = Figure(figsize=(10 if with_attention else 5.5, 3.8), dpi=120)
    ax = fig.add_subplot(1, 2 if with_attention else 1, 1)
    for net in nets:
        cum, total = [], 0.0
        for v in net["hist"]:
            total += v
            cum.append(total)
        ax.plot(range(len(cum)), cum, label=f"{net['name']} (r90 {net['r90']} px)")
    ax.axhline(0.9, color="k", lw=0.5, ls=":")
    ax.set_xlim(0, report["size"] // 2 + 8)
    ax.set_xlabel("distance from the output pixel (px)")
    ax.set_ylabel("share of |d output / d input|")
    ax.set_title("Effective receptive field")
    ax.legend(fontsize=7, loc="lower right")
    if with_attention:
        ax = fig.add_subplot(1, 2, 2)
        for net in with_attention:
            att = net["attention"]
            for b, block in enumerate(att["blocks"]):
                ax.scatter([b + 1] * len(block["distance_px"]), block["distance_px"], s=14,
                           color=f"C{nets.index(net)}", label=net["name"] if b == 0 else None)
            ax.axhline(att["uniform_px"], color="k", lw=0.8, ls="--",
                       label="uniform attention" if net is with_attention[0] else None)
        ax.set_xlabel("block")
        ax.set_ylabel("mean attention distance (px)")
        ax.set_ylim(bottom=0)
        ax.set_title("Attention distance per head")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def render(report):
    nets = report["networks"]
    lines = [
        "# How far the trained networks look (issue 11, item 4)", "",
        f"Produced by `{report['command']}` ({report['date']}, {report['machine']['cpu']}); "
        f"{report['images']} images of the evaluation set (seed 1234), output pixels on a "
        f"{report['grid']} grid in the tile's centre ({report['centres']} of them, from "
        f"{report['lo']} to {report['hi']} px). The checkpoints are the final weights of the "
        "runs named below.", "",
        "![receptive fields and attention distances](locality/locality.png)", "",
        "Effective receptive field (Luo et al. 2016): |d output / d input| for one output "
        "pixel, summed over the images, normalised; `rNN` is the radius (pixels) of the disc "
        "around the output pixel that holds NN % of it. The PSNR is the one the run measured "
        "on its evaluation set at its last evaluation.", "",
        "| network | checkpoint | params | steps | its PSNR (dB) | r50 | r90 | r99 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for net in nets:
        psnr = net.get("eval_psnr")
        lines.append(f"| {net['name']} | `{net['checkpoint']}` | {net['params']:,} | "
                     f"{net.get('steps') if net.get('steps') is not None else '-'} | "
                     f"{'-' if psnr is None else f'{psnr:.2f}'} | "
                     f"{net['r50']} | {net['r90']} | {net['r99']} |")
    runs = [net for net in nets if "run" in net]
    if runs:
        lines += ["", "How the runs were trained (the config their checkpoints hold):", ""]
        for net in runs:
            r = net["run"]
            lines.append(f"- {net['name']}: run `{r['name']}`, seed {r['seed']}, {r['optimizer']} "
                         f"at {r['lr']:g}, batch {r['batch_size']}, {r['max_train_seconds']:g} s "
                         f"of {r['budget_clock']} time")
    for net in nets:
        if "attention" not in net:
            continue
        att = net["attention"]
        lines += ["", f"Attention in {net['name']}: each head's mean attention distance (pixels; "
                  f"uniform attention over the {report['size'] // att['patch']} x "
                  f"{report['size'] // att['patch']} tokens: {att['uniform_px']:.1f} px) and the "
                  "weight a token gives itself (uniform: "
                  f"{1 / (report['size'] // att['patch']) ** 2:.3f}).", "",
                  "| block | distance per head (px) | self-weight per head |", "|---:|---|---|"]
        for b, block in enumerate(att["blocks"]):
            lines.append(f"| {b + 1} | " + ", ".join(f"{d:.1f}" for d in block["distance_px"])
                         + " | " + ", ".join(f"{s:.2f}" for s in block["self_weight"]) + " |")
        dists = [d for block in att["blocks"] for d in block["distance_px"]]
        selfs = [s for block in att["blocks"] for s in block["self_weight"]]
        lines += ["", f"Over all {len(dists)} heads: distance {min(dists):.1f} to "
                  f"{max(dists):.1f} px (uniform {att['uniform_px']:.1f}), self-weight "
                  f"{min(selfs):.3f} to {max(selfs):.3f} (uniform "
                  f"{1 / (report['size'] // att['patch']) ** 2:.3f})."]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH",
                   help="a network to measure (repeat); default: attention_ablation.py's seed-0 "
                        "runs of the three vit_fast arms")
    p.add_argument("--images", type=int, default=64, help="evaluation images (default 64)")
    p.add_argument("--out-dir", default=None, help="docs folder (default docs/)")
    p.add_argument("--render-only", action="store_true",
                   help="write LOCALITY.md and its figure again from locality.json")
    args = p.parse_args(argv)
    docs = Path(args.out_dir) if args.out_dir else ROOT / "docs"
    if args.render_only:
        report = read_saved(p, docs / "locality.json", "locality", "run the measurement first")
        plot(report, docs / "locality" / "locality.png")
        (docs / "LOCALITY.md").write_text(render(report) + "\n")
        print(f"wrote {docs / 'LOCALITY.md'}")
        return
    checkpoints = parse_checkpoints(args.checkpoint) if args.checkpoint else dict(DEFAULTS)
    if isinstance(checkpoints, str):
        p.exit(2, f"locality: {checkpoints}\n")
    missing = [f"{name} ({path})" for name, path in checkpoints.items() if not path.is_file()]
    if missing:
        p.exit(2, f"locality: no checkpoint for {', '.join(missing)}; run "
                  "experiments/attention_ablation.py first or name them with --checkpoint\n")
    if args.images < 1:
        p.exit(2, f"locality: --images must be at least 1, not {args.images}\n")

    from data_gen.streams import make_eval_set
    from denoise_vit.benchmark.runner import machine_info

    size, lo, hi, step = 64, 20, 44, 3
    x, _ = make_eval_set(args.images, size=size, seed=1234)
    centres = [(cy, cx) for cy in range(lo, hi + 1, step) for cx in range(lo, hi + 1, step)]
    networks = []
    for name, path in checkpoints.items():
        networks.append(measure(name, path, x, centres))
        net = networks[-1]
        print(f"{name}: r50 {net['r50']} / r90 {net['r90']} / r99 {net['r99']} px "
              f"({net['seconds']:.0f} s)", flush=True)
    command = " ".join([COMMAND, *(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))])
    report = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M"),
              "machine": machine_info(), "images": args.images, "size": size,
              "grid": f"{len(range(lo, hi + 1, step))} x {len(range(lo, hi + 1, step))}",
              "centres": len(centres), "lo": lo, "hi": hi, "networks": networks}
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "locality.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(report, docs / "locality" / "locality.png")
    (docs / "LOCALITY.md").write_text(render(report) + "\n")
    print(f"wrote {docs / 'LOCALITY.md'}")


if __name__ == "__main__":
    main()
