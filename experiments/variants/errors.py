"""Where a denoiser's squared error lies: clean regions, the rim of the clutter, the clutter.

    python experiments/variants/errors.py RUNS/x_vit_fast-seed0.pt RUNS/x_unet-seed0.pt ... \
        [--json docs/variants/errors.json]

For each checkpoint (trained networks, e.g. those a `denoise-vit benchmark` run leaves in its
--runs-dir) it scores
- the evaluation set (512 images, seed 1234) split into regions: clean background and clean
  cells (3 px or more from any clutter), the rim (1-2 px from clutter) and the clutter itself
  (input > target; the generator adds clutter, so input = target elsewhere). Per region: the
  PSNR of its pixels and its share of the whole set's squared error.
- two sets with one kind of clutter each (512 images, generator seed 77, that kind at twice the
  default rate, the other off): filled rectangles only, noisy rectangles only; PSNR inside the
  clutter (dilated by 1 px) and elsewhere, and for the filled set the interior of the clutter
  (eroded by 1 px), where subtracting the rectangle's constant value would restore the target.
The figures go to stdout and, with --json, to a file that experiments/variants/report.py reads;
--figure draws, for 8 images of the filled-only set, the input, the target and each network's
output and error.
Runs on one torch thread; about 10 s per checkpoint on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from data_gen import generate_images, make_eval_set  # noqa: E402
from denoise_vit.checkpoint import load_model  # noqa: E402


def grow(mask, px):
    """The mask dilated by `px` pixels (a square neighbourhood)."""
    return F.max_pool2d(mask.float(), 2 * px + 1, 1, px) > 0


def shrink(mask, px):
    return ~grow(~mask, px)


def psnr_of(se):
    return float(10 * torch.log10(1 / se.mean()))


def regions_of(inp, target):
    clutter = inp > target
    near = grow(clutter, 2)
    return {"clean background": ~near & (target == 0), "clean cells": ~near & (target > 0),
            "rim": near & ~clutter, "clutter": clutter}


def predict(model, inp):
    with torch.no_grad():
        return torch.cat([model(inp[i:i + 128]) for i in range(0, len(inp), 128)])


def one_kind_sets():
    sets = {}
    for kind, rates in {"filled": dict(noisy_rate=0.0, filled_rate=0.0006),
                        "noisy": dict(filled_rate=0.0, noisy_rate=0.0006)}.items():
        sets[kind] = generate_images(512, size=64, generator=torch.Generator().manual_seed(77),
                                     **rates)
    return sets


def score(model, eval_set, sets):
    inp, target = eval_set
    se = (predict(model, inp) - target) ** 2
    total = se.sum()
    rec = {"psnr": psnr_of(se), "regions": {
        name: {"psnr": psnr_of(se[m]), "share": float(se[m].sum() / total)}
        for name, m in regions_of(inp, target).items()}}
    for kind, (inp, target) in sets.items():
        se = (predict(model, inp) - target) ** 2
        inside = grow(inp > target, 1)
        rec[kind] = {"psnr": psnr_of(se), "inside": psnr_of(se[inside]),
                     "elsewhere": psnr_of(se[~inside])}
        if kind == "filled":
            rec[kind]["interior"] = psnr_of(se[shrink(inp > target, 1)])
    return rec


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--json", help="write the figures here too")
    ap.add_argument("--figure", help="error maps on 8 filled-only images (PNG)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    eval_set, sets = make_eval_set(512, seed=1234), one_kind_sets()
    out, models = {}, {}
    for path in args.checkpoints:
        name = Path(path).stem
        models[name] = model = load_model(path)
        out[name] = rec = score(model, eval_set, sets)
        regions = "  ".join(f"{k} {v['psnr']:.1f} dB ({v['share']:.0%})"
                            for k, v in rec["regions"].items())
        print(f"{name}: {rec['psnr']:.2f} dB | {regions} | filled: inside "
              f"{rec['filled']['inside']:.1f}, interior {rec['filled']['interior']:.1f}, "
              f"elsewhere {rec['filled']['elsewhere']:.1f} | noisy: inside "
              f"{rec['noisy']['inside']:.1f}, elsewhere {rec['noisy']['elsewhere']:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.figure:
        error_maps(models, sets["filled"], args.figure)
        print(f"wrote {args.figure}", file=sys.stderr)


def error_maps(models, filled, path, n=8):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    inp, target = filled[0][:n], filled[1][:n]
    rows = 2 + 2 * len(models)
    fig, axes = plt.subplots(rows, n, figsize=(1.6 * n, 1.7 * rows), squeeze=False)
    panels = [("input", inp, "gray"), ("target", target, "gray")]
    for name, model in models.items():
        out = predict(model, inp)
        panels += [(name, out, "gray"), (f"{name} - target", out - target, "RdBu_r")]
    for r, (label, maps, cmap) in enumerate(panels):
        lim = dict(vmin=-0.15, vmax=0.15) if cmap == "RdBu_r" else dict(vmin=0, vmax=1)
        for c in range(n):
            axes[r, c].imshow(maps[c, 0], cmap=cmap, **lim)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(label, fontsize=7)
    fig.suptitle("Filled rectangles only: outputs and errors (red: too bright, blue: too dark; "
                 "+-0.15)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=55)


if __name__ == "__main__":
    main()
