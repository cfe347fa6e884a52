"""What the benchmark's warm-up did to the slow networks, and what ending it within a share of
the smallest budget changes (`denoise-vit benchmark --warmup-share`).

    python experiments/warmup_share.py            # docs/warmup/WARMUP.md and warmup.png from the runs below
    python experiments/warmup_share.py --dir D    # another folder laid out the same way

Why: until 2026-12-07 (night) every benchmark run warmed up over its config's 50 steps however
short the budget, while the rate sweep's warm-up already ended within the first 20 % of its
run. CARE's U-Net makes about 40 steps in a CPU minute, SCUNet 42 and Restormer 30 in four
(docs/BENCHMARKS.md), so their budgets were all warm-up: they never trained at the rate their
sweep chose, a care the fast networks got. Issue 11 asks the benchmark to give every side the
same care. The two arms ran at once, one invocation each on one torch thread, the networks
one after another in the same order, alone under the CPU lock (2-core Xeon). A first start
without `--idle-wait 0` had one arm wait for the other's run to end before its second network;
both were stopped and started again as below, `--resume` reading back the runs already done
(SCUNet in both arms, Restormer in the first), so each run had one of the other arm's beside it:

    denoise-vit benchmark --budgets 1,4 --configs peer_scunet,peer_restormer,peer_care_unet,peer_drunet,dncnn_small,unet,vit_unet \\
        --methods none --clock cpu --cooldown --optimizer adamw --jobs 1 --threads 1 \\
        --idle-wait 0 --resume --warmup-share 0 --runs-dir runs/warmup/steps --out-dir docs/warmup/steps
    denoise-vit benchmark --budgets 1,4 --configs peer_scunet,peer_restormer,peer_care_unet,peer_drunet,dncnn_small,unet,vit_unet \\
        --methods none --clock cpu --cooldown --optimizer adamw --jobs 1 --threads 1 \\
        --idle-wait 0 --resume --runs-dir runs/warmup/share --out-dir docs/warmup/share

Each network at its preset's rate (no sweep: both arms train at the same rate, so the warm-up
is the only difference), AdamW 0.05, one seed, the cooldown protocol. At those rates the short
warm-up cost the U-Net and vit_unet 1-3 dB, so the same two arms were run again for the U-Net and
DRUNet with the benchmark's rate sweep, each arm choosing its rate under its own protocol
(2-core Xeon, the two at once, alone under the CPU lock):

    denoise-vit benchmark --budgets 1,4 --configs unet,peer_drunet --methods none --clock cpu \
        --cooldown --optimizer adamw --lr-sweep 0.003,0.01,0.03 --jobs 1 --threads 1 --idle-wait 0 \
        --warmup-share 0 --runs-dir runs/warmup/steps-swept --out-dir docs/warmup/steps-swept
    denoise-vit benchmark --budgets 1,4 --configs unet,peer_drunet --methods none --clock cpu \
        --cooldown --optimizer adamw --lr-sweep 0.003,0.01,0.03 --jobs 1 --threads 1 --idle-wait 0 \
        --runs-dir runs/warmup/share-swept --out-dir docs/warmup/share-swept

The sweep's own runs are the same in both arms (a cosine over 1 CPU min, its warm-up ending
within the first 20 %); only the training runs' warm-up differs. SwinIR is left out: one
evaluation of the 512 images costs it about 4 min on one thread, longer than its budget.

Writes DIR/WARMUP.md and DIR/warmup.png.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from saved_report import read_saved  # noqa: E402

ARMS = {"steps": "the config's 50 steps (until 2026-12-07)",
        "share": "ending within 20 % of the smallest budget (now)"}
PAIRS = {"": "at its preset's rate", "-swept": "at the rate its arm's sweep chose"}


def collect(folder, parser):
    """({row label: (50-step record, share record)}, {arm folder: report}). The pair at the
    presets' rates must be there and hold the same networks in both arms; the swept pair
    (folders steps-swept/ and share-swept/) is read when present."""
    rows, reports = {}, {}
    for suffix, what in PAIRS.items():
        folders = [f"{arm}{suffix}" for arm in ARMS]
        if suffix and not all((folder / f / "benchmarks.json").is_file() for f in folders):
            continue
        nets = []
        for f in folders:
            reports[f] = read_saved(parser, folder / f / "benchmarks.json", "warmup_share",
                                    "run the benchmark commands in this script's docstring first")
            nets.append({r["name"]: r for r in reports[f]["methods"] if r.get("kind") == "network"})
        if list(nets[0]) != list(nets[1]):
            parser.exit(2, f"warmup_share: {folders[0]} and {folders[1]} hold different networks "
                           f"({', '.join(nets[0])} against {', '.join(nets[1])})\n")
        for name in nets[0]:
            rows[name + (" (swept)" if suffix else "")] = (nets[0][name], nets[1][name])
    return rows, reports


def at(rec, budget_s):
    return next(p for p in rec["curve"] if p["budget_s"] == budget_s)


def budgets(rows):
    old, _ = next(iter(rows.values()))
    return [p["budget_s"] for p in old["curve"]]


def warmup_note(rec, budget_s):
    """How much of the step-warm-up run's trunk was warm-up at this budget."""
    steps = at(rec, budget_s)["steps"]
    warm = rec.get("warmup_steps") or 0
    return "all" if steps <= warm else f"{warm / steps:.0%}"


def render(rows, reports):
    from denoise_vit.benchmark.report import machine_line
    marks = budgets(rows)
    lines = ["# The benchmark's warm-up: the config's steps against a share of the budget", "",
             f"Written by `python experiments/warmup_share.py` from `steps/benchmarks.json` and "
             f"`share/benchmarks.json` (their commands in the script's docstring; both started "
             f"{reports['steps'].get('date', '?')}) and, for the rows marked swept, "
             f"`steps-swept/` and `share-swept/` (started "
             f"{reports.get('steps-swept', {}).get('date', '–')}). "
             f"Machine: {machine_line(reports['steps'])}. "
             f"Each network at its preset's rate, or in the swept rows at the rate its arm's "
             f"sweep chose; AdamW 0.05, one seed, the cooldown protocol, "
             f"budgets in process CPU time; the two arms ran side by side, one torch thread "
             f"each, so beside each run ran one of the other arm's (after the restart the "
             f"script's docstring tells of, not always of the same network: the other-load "
             f"column says how busy the other core was).", "",
             "Warm-up: " + "; ".join(f"**{arm}**: {text}" for arm, text in ARMS.items()) + ".",
             "", "![PSNR with either warm-up](warmup.png)", "",
             "| network | library | lr (50 steps / share) | budget | steps (50 steps / share) | still warming up "
             "(50 steps) | PSNR, 50 steps (dB) | PSNR, share (dB) | change | other load "
             "(50 steps / share) |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    gains = {}
    for name, (old, new) in rows.items():
        for m in marks:
            a, b = at(old, m), at(new, m)
            gains.setdefault(m, {})[name] = b["psnr"] - a["psnr"]
            load = " / ".join(f"{100 * p['foreign_cpu']:.0f} %" if p.get("foreign_cpu") is not None
                              else "–" for p in (a, b))
            lines.append(f"| {name} | {old['library']} | {old['lr']:g} / {new['lr']:g} | "
                         f"{m / 60:g} min | "
                         f"{a['steps']} / {b['steps']} | {warmup_note(old, m)} | "
                         f"{a['psnr']:.2f} | {b['psnr']:.2f} | {b['psnr'] - a['psnr']:+.2f} | "
                         f"{load} |")
    lines += ["", "Still warming up: the share of the 50-step arm's steps made while its rate was "
              "still rising (all: the budget ended inside the warm-up). Other load: the share of "
              "the CPU other processes used since the run's previous point, mostly the "
              "other arm's run (two single-thread runs on two cores: about 50 %). Steps differ "
              "between the arms where the runs beside them differed: a CPU second buys fewer "
              "steps beside a heavier neighbour.", "", "## What it shows", ""]
    for m in marks:
        g = gains[m]
        up = sorted((n for n in g if g[n] > 0), key=g.get, reverse=True)
        lines.append(f"- At {m / 60:g} CPU min the share warm-up changes PSNR by "
                     + ", ".join(f"{n} {g[n]:+.2f}" for n in sorted(g, key=g.get, reverse=True))
                     + f" dB ({len(up)} of {len(g)} higher).")
    return "\n".join(lines + reading(rows, marks, gains))


def reading(rows, marks, gains):
    """What the figures say about the default, each figure taken from the rows."""
    first, last = marks[0], marks[-1]

    def changes(names, m):
        return ", ".join(f"{n} {gains[m][n]:+.2f}" for n in names)

    def base(name):
        return name.removesuffix(" (swept)")

    preset = [n for n in rows if n == base(n)]
    swept = [n for n in rows if n != base(n)]
    all_warm = [n for n in preset if warmup_note(rows[n][0], first) == "all"]
    fast = [n for n in preset if n not in all_warm]
    uneven = [n for n in rows if abs(at(rows[n][0], first)["steps"] - at(rows[n][1], first)["steps"])
              > 0.1 * at(rows[n][1], first)["steps"]]
    alone = [n for n in rows if any((at(r, m).get("foreign_cpu") or 0) < 0.1 for r in rows[n]
                                    for m in marks)]
    worse = all(gains[last][n] < 0 for n in fast)
    out = [f"- At the presets' rates the warm-up moves a network by several dB either way. Where "
           f"the 50 steps filled the whole {first / 60:g}-min budget ({', '.join(all_warm)}), "
           f"ending it sooner changes PSNR by {changes(all_warm, first)} dB at {first / 60:g} min "
           f"and {changes(all_warm, last)} dB at {last / 60:g} min. The networks that leave the "
           f"50-step warm-up within {first / 60:g} min ({', '.join(fast)}) change by "
           f"{changes(fast, first)} dB at {first / 60:g} min and {changes(fast, last)} dB at "
           f"{last / 60:g} min: at their rates ("
           + ", ".join(f"{n} {rows[n][0]['lr']:g}" for n in fast)
           + (") AdamW's first steps do better with the longer ramp." if worse
              else ") the longer ramp is not better for all of them at "
                   f"{last / 60:g} min.")]
    if swept:
        rates = ", ".join(f"{base(n)} {rows[n][1]['lr']:g}" for n in swept)
        against = ", ".join(f"{base(n)} {at(rows[n][0], last)['psnr']:.2f} against "
                            f"{at(rows[base(n)][0], last)['psnr']:.2f} dB"
                            for n in swept if base(n) in rows)
        level = all(gains[m][n] >= -0.1 for n in swept for m in marks)
        below = [n for n in swept if base(n) in rows
                 and at(rows[n][0], last)["psnr"] < at(rows[base(n)][0], last)["psnr"]]
        out.append(f"- With the rate chosen by each arm's sweep, whose runs warm up within their "
                   f"first 20 % in both arms, the short warm-up is "
                   f"{'level or ahead' if level else 'behind at some budget'}: "
                   f"{changes(swept, first)} dB at {first / 60:g} min, {changes(swept, last)} dB "
                   f"at {last / 60:g} min. The sweep picks its rate under a short warm-up "
                   f"({rates}), and the training runs now warm up as it did, so the rate the "
                   f"sweep chose is the rate it scored. At those rates "
                   f"{len(below)} of the {len(swept)} networks stay below what they scored at "
                   f"their preset's rate with the 50 steps ({against} at "
                   f"{last / 60:g} min): the 1-min sweep's picks are a matter of their own "
                   f"(docs/sweep-check, `--rate-check`).")
        if level:
            out.append("- So the benchmark's training runs warm up as its sweep does since "
                       "2026-12-07 (night), `--warmup-share 0.2` by default: against the old "
                       "protocol (the sweep's rate, trained with the 50 steps) it is level or "
                       "ahead where the rate was swept, and the slow networks' short budgets "
                       "are no longer all warm-up. `--warmup-share 0` runs the old protocol.")
    out.append("- One seed each, so differences under about 1 dB are not settled here"
               + (f"; {', '.join(uneven)} made more than 10 % more steps in one arm than in the "
                  f"other at {first / 60:g} min, beside a different neighbour" if uneven else "")
               + (f"; {', '.join(alone)} trained for a while with the other core idle (the "
                  f"other-load column)" if alone else "") + ".")
    return out


def figure(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    marks = budgets(rows)
    names = list(rows)
    fig, axes = plt.subplots(1, len(marks), figsize=(5 * len(marks), 0.5 * len(names) + 1.5),
                             sharey=True)
    for ax, m in zip(axes, marks):
        for i, name in enumerate(names):
            a, b = (at(rec, m)["psnr"] for rec in rows[name])
            ax.plot([a, b], [i, i], color="0.7", zorder=1)
            ax.scatter([a], [i], color="C1", zorder=2, label="config's 50 steps" if i == 0 else None)
            ax.scatter([b], [i], color="C0", zorder=2,
                       label="within 20 % of the smallest budget" if i == 0 else None)
        ax.set_title(f"{m / 60:g} CPU min")
        ax.set_xlabel("PSNR (dB), evaluation set")
        ax.grid(alpha=0.3)
    axes[0].set_yticks(range(len(names)), names)
    axes[0].invert_yaxis()
    axes[0].legend(fontsize=8, title="warm-up", title_fontsize=8)
    fig.suptitle("The benchmark's warm-up: each network at its preset's rate (swept: at "
                 "its arm's sweep's), one seed")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", default=str(ROOT / "docs" / "warmup"),
                   help="the folder holding steps/ and share/ (default docs/warmup)")
    args = p.parse_args(argv)
    folder = Path(args.dir)
    rows, reports = collect(folder, p)
    (folder / "WARMUP.md").write_text(render(rows, reports) + "\n")
    figure(rows, folder / "warmup.png")
    print(f"wrote {folder / 'WARMUP.md'} and {folder / 'warmup.png'}")


if __name__ == "__main__":
    main()
