"""docs/BENCHMARKS.md and its figures, from the results of `denoise_vit.benchmark.runner`.

`write_report(results, out_dir)` writes BENCHMARKS.md, benchmarks.json and the PNGs under
out_dir/benchmarks/. The sample-grid figure needs the output images, so it is only drawn
when they are present (a fresh run); `--report-only` re-renders the text and the plots from
benchmarks.json (and the ViT ablation from ablation.json, if there is one).
"""
import json
import textwrap
from pathlib import Path

from matplotlib.figure import Figure

from ..errors import DenoiseVitError
from ..outputs import read_json

FIG_DIR = "benchmarks"


def networks(results):
    return [r for r in results["methods"] if r["kind"] == "network"]


def classical(results):
    return [r for r in results["methods"] if r["kind"] == "classical"]


# the project's transformer models: the ViT denoiser and the U-Net with a transformer bottleneck
VIT_MODELS = ("vit_denoiser", "vit_unet")


def is_vit(rec):
    return rec.get("model", {}).get("name") in VIT_MODELS


def is_transformer(rec):
    """One of the project's transformer presets: a ViT whose blocks keep their attention."""
    return is_vit(rec) and rec.get("model", {}).get("attention", True) is not False


def point_at(rec, budget, key="curve"):
    """The point of `rec` at a time budget (seconds) or, with key="curve_images", an image
    count; None where the network did not train to it (a --max-budget cap, not reached)."""
    field = "budget_images" if key == "curve_images" else "budget_s"
    return next((p for p in rec.get(key) or () if p.get(field) == budget), None)


def clock_name(results):
    return "CPU time" if results.get("budget_clock") == "cpu" else "wall clock"


def x_minutes(results, point):
    """Minutes of the clock the budgets count."""
    seconds = point["cpu_seconds"] if results.get("budget_clock") == "cpu" else point["train_seconds"]
    return seconds / 60


def machine_short(machine):
    """The recorded machine in a few words: "2 CPU cores, no GPU"."""
    gpu = f"GPU {machine['gpu']}" if machine.get("gpu") else "no GPU"
    return f"{machine['cores']} CPU cores, {gpu}"


def threads(results):
    """Torch threads of a network's run (each worker's, where networks trained side by side)."""
    n = results.get("threads_per_job") or results["machine"].get("torch_threads")
    return f"{n} torch thread{'s' if n != 1 else ''}" if n else "default threads"


def fmt_num(value, digits=2):
    return "–" if value is None else f"{value:.{digits}f}"


def fmt_params(n):
    return "0" if not n else (f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.0f} k")


def minutes(seconds):
    """A budget in minutes: "1 min", "0.5 min"."""
    return f"{seconds / 60:g} min"


def duration(seconds):
    """A measured time: "5.9 min", "42 s"."""
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


# ---------------------------------------------------------------- figures

def plot_psnr_vs_time(results, path, title):
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    for rec in networks(results):
        pts = rec["curve"]
        ax.plot([x_minutes(results, p) for p in pts], [p["psnr"] for p in pts], marker="o",
                label=rec["name"], linewidth=2.2 if is_transformer(rec) else 1.4,
                linestyle="-" if rec.get("library", "").startswith("denoise-vit") else "--")
    best = max(classical(results), key=lambda r: r["psnr"], default=None)
    if best is not None:
        ax.axhline(best["psnr"], color="grey", linestyle=":",
                   label=f"best classical ({best['name']})")
    ax.axhline(results["noisy"]["psnr"], color="grey", linestyle="--", label="noisy input")
    ax.set_xlabel(f"training {clock_name(results)} on this CPU (min)")
    ax.set_xscale("log")
    ax.set_ylabel("eval PSNR (dB)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_psnr_vs_images(results, path, title):
    """PSNR against training images: the equal-images points (solid), and for a network that
    reached none of them its time-axis points at the images they had seen (dotted)."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    for rec in networks(results):
        equal = rec.get("curve_images") or []
        pts = equal or rec["curve"]
        ax.plot([p["images"] for p in pts], [p["psnr"] for p in pts], marker="o" if equal else "x",
                linestyle="-" if equal else ":", linewidth=2.2 if is_transformer(rec) else 1.4,
                label=rec["name"] + ("" if equal else " (time budgets)"))
    ax.axhline(results["noisy"]["psnr"], color="grey", linestyle="--", label="noisy input")
    ax.set_xscale("log")
    ax.set_xlabel("training images seen")
    ax.set_ylabel("eval PSNR (dB)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def checked_networks(results):
    return [r for r in networks(results) if r.get("rate_check")]


def plot_rate_check(results, path, title):
    """Per checked network, validation PSNR against the rate: the sweep's short runs (dashed)
    and the rate check's runs over the whole budgets (solid), the rate kept starred."""
    checked = checked_networks(results)
    fig = Figure(figsize=(3.6 * len(checked) + 0.4, 3.6))
    axes = fig.subplots(1, len(checked), squeeze=False)[0]
    sweep_len = minutes((results.get("lr_sweep") or {}).get("budget_s", 0))
    for ax, rec in zip(axes, checked):
        check = rec["rate_check"]
        swept = (rec.get("lr_sweep") or {}).get("validation_psnr") or {}
        if swept:
            xs = sorted(swept, key=float)
            ax.plot([float(x) for x in xs], [swept[x] for x in xs], "s--", color="grey",
                    label=f"sweep ({sweep_len} run)")
        xs = sorted(check["validation_psnr"], key=float)
        ax.plot([float(x) for x in xs], [check["validation_psnr"][x] for x in xs], "o-",
                color="C0", label=f"whole budgets ({minutes(rec['curve'][-1]['budget_s'])})")
        ax.plot([check["kept"]], [check["validation_psnr"][f"{check['kept']:g}"]], "*",
                color="C3", ms=15, label="kept")
        ax.set_xscale("log")
        ax.set_title(rec["name"], fontsize=9)
        ax.set_xlabel("learning rate")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation PSNR (dB)")
    axes[-1].legend(fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_psnr_vs_params(results, path, title):
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    for rec in networks(results):
        ax.scatter(rec["params"], rec["psnr"], s=40, zorder=3)
        ax.annotate(rec["name"], (rec["params"], rec["psnr"]), textcoords="offset points",
                    xytext=(5, 4), fontsize=8)
    for rec in classical(results):
        ax.axhline(rec["psnr"], color="grey", linestyle=":", linewidth=0.8)
        ax.annotate(f"{rec['name']} (no weights)", (0.01, rec["psnr"]), xycoords=("axes fraction", "data"),
                    fontsize=7, color="grey", va="bottom")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("eval PSNR (dB)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_samples(results, path, title):
    """One row per method (after the input and the target), the same images in every column."""
    s = results["_samples"]
    psnrs = {r["name"]: r["psnr"] for r in results["methods"]}
    rows = [("noisy input", s["inputs"]), ("target", s["targets"])]
    rows += [(f"{name}\n{psnrs[name]:.1f} dB", out) for name, out in s["outputs"].items()]
    n = s["inputs"].shape[0]
    fig = Figure(figsize=(1.3 * n + 1.2, 1.3 * len(rows) + 0.5))
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(images[c, 0].float().numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def plot_ablation(ablation, path, title):
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    for run in ablation["runs"]:
        pts = run["curve"]
        ax.plot([p["train_seconds"] / 60 for p in pts], [p["psnr"] for p in pts], marker="o",
                label=run["name"])
    ax.set_xlabel("training time on this CPU (min)")
    ax.set_ylabel("eval PSNR (dB)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ---------------------------------------------------------------- text

def optimizer_name(name, decay):
    name = {"adam": "Adam", "adamw": "AdamW"}.get(name, name)
    return f"{name} without weight decay" if not decay else f"{name} with weight decay {decay:g}"


def optimizer_text(results):
    """Which optimizer the networks trained with: one for all (runs before the protocol named
    it: Adam), or with --optimizer config each its config's, listed."""
    opt = results.get("optimizer") or {"name": "adam", "weight_decay": 0.0}
    if opt["name"] == "config":
        own = [f"{r['name']} {optimizer_name(r.get('optimizer', 'adam'), r.get('weight_decay'))}"
               for r in results["methods"] if r.get("kind") == "network"]
        return "each network with its config's optimizer: " + ", ".join(own)
    text = optimizer_name(opt["name"], opt.get("weight_decay"))
    if opt.get("weight_decay"):
        text += " on weight matrices and kernels, not on norms, biases or position embeddings"
    return "one optimizer for all, whatever a preset says: " + text


def machine_line(results):
    """The recorded machine in full."""
    m = results["machine"]
    isa = f" ({m['cpu_capability']} kernels)" if m.get("cpu_capability") else ""
    return (f"{m['cpu']}{isa}, {m['cores']} cores ({m['torch_threads']} torch threads), "
            f"GPU: {m['gpu'] or 'none'}; Python {m['python']}, torch {m['torch']}")


def best_transformer(results):
    ours = [r for r in networks(results) if is_transformer(r)]
    return max(ours, key=lambda r: r["psnr"]) if ours else None


def rivals(results):
    """Every network that is not one of the project's ViT presets (the ViT with its attention
    removed is the transformer's ablation, not a rival)."""
    return [r for r in networks(results) if not is_vit(r)]


def _lead_lines(results, best, key):
    """One line per budget of one axis: the transformer against the best other network there."""
    budgets = results["budgets_s"] if key == "curve" else results.get("budgets_images") or []
    lines, behind = [], []
    for budget in budgets:
        mine = point_at(best, budget, key)
        others = [(r, point_at(r, budget, key)) for r in rivals(results)]
        others = [(r, p) for r, p in others if p is not None]
        where = (f"{minutes(budget)} of {clock_name(results)}" if key == "curve"
                 else f"{budget:,} images")
        if mine is None or not others:
            if mine is None and others:
                lines.append(f"- {where}: {best['name']} did not get there")
            continue
        rival, top = max(others, key=lambda rp: rp[1]["psnr"])
        d = mine["psnr"] - top["psnr"]
        lost = [r["name"] for r, p in others if p["psnr"] > mine["psnr"]]
        behind += [f"{name} at {where}" for name in lost]
        seeds = " (means over seeds)" if "psnr_seeds" in mine or "psnr_seeds" in top else ""
        ahead = "ahead of it" if len(others) == 1 else f"ahead of all {len(others)}"
        lines.append(f"- {where}: {best['name']} {mine['psnr']:.2f} dB, the best other network "
                     f"{rival['name']} {top['psnr']:.2f} dB ({d:+.2f} dB, "
                     f"{ahead if not lost else '**behind** ' + ', '.join(lost)})"
                     f"{seeds}")
    return lines, behind


def comparison(results):
    """Plain statements: the best transformer preset against every other network at every
    budget, on the time axis and on the training-images axis, and against the classical filters."""
    best = best_transformer(results)
    if best is None:
        return []
    lines = []
    best_cl = max(classical(results), key=lambda r: r["psnr"], default=None)
    if best_cl is not None:
        lines.append(f"- **{best['name']}** (the best transformer preset here) reaches "
                     f"{best['psnr']:.2f} dB, {best['psnr'] - best_cl['psnr']:+.2f} dB against the "
                     f"best classical filter ({best_cl['label']}, {best_cl['psnr']:.2f} dB).")
    time_lines, behind = _lead_lines(results, best, "curve")
    image_lines, behind_images = _lead_lines(results, best, "curve_images")
    lines += time_lines
    if image_lines:
        lines += ["- At equal training images:", *("  " + line for line in image_lines)]
    behind += behind_images
    lines.append(f"- At least as high as every other network at every budget: "
                 f"{'met' if not behind else 'NOT met (behind ' + '; '.join(behind) + ')'}")
    return lines


def attention_pairs(results):
    """(with attention, without) pairs of the project's ViT presets that differ only there."""
    nets = [r for r in networks(results) if is_vit(r)]
    pairs = []
    for a in nets:
        for b in nets:
            if is_transformer(a) and not is_transformer(b):
                rest = {k: v for k, v in b["model"].items() if k != "attention"}
                if rest == {k: v for k, v in a["model"].items() if k != "attention"}:
                    pairs.append((a, b))
    return pairs


def seed_gaps(a, b):
    """Per-seed gaps between two points trained with the same seeds (weights and data stream),
    seed by seed; None unless both hold several seeds' figures."""
    x, y = a.get("psnr_seeds"), b.get("psnr_seeds")
    if not x or not y or len(x) != len(y) or len(x) < 2:
        return None
    return [u - v for u, v in zip(x, y)]


def attention_lines(results, goal_db=1.0):
    """What attention adds: the transformer preset against itself without attention."""
    lines = []
    for with_, without in attention_pairs(results):
        gains = []
        for key in ("curve", "curve_images"):
            budgets = results["budgets_s"] if key == "curve" else results.get("budgets_images") or []
            for budget in budgets:
                a, b = point_at(with_, budget, key), point_at(without, budget, key)
                if a is None or b is None:
                    continue
                where = (f"{minutes(budget)} of {clock_name(results)}" if key == "curve"
                         else f"{budget:,} images")
                gains.append((where, a["psnr"] - b["psnr"], seed_gaps(a, b)))
        if not gains:
            continue
        met = [w for w, g, _ in gains if g >= goal_db]
        lines.append(f"- Attention in {with_['name']} (against {without['name']}, the same network "
                     f"with MLP-only blocks): " + ", ".join(
                         f"{g:+.2f} dB at {w}" + (f" (per seed {' / '.join(f'{x:+.2f}' for x in per)})"
                                                  if per else "") for w, g, per in gains)
                     + f". Goal, at least {goal_db:g} dB: "
                     + ("met at every budget" if len(met) == len(gains) else
                        f"met at {', '.join(met)}" if met else "**not met**")
                     + caveats(with_, without) + ".")
    return lines


def caveats(*pair):
    """What weakens a comparison of two networks: different rates, a seed that diverged."""
    notes = []
    if len({r.get("lr") for r in pair}) > 1:
        notes.append(", ".join(f"{r['name']} trained at lr {r['lr']:g}" for r in pair))
    notes += [f"{r['name']}'s seed {d['seed']} diverged at {d['at']} ({d['psnr']:.2f} dB, after "
              f"{d['best']:.2f}) and is in its mean" for r in pair
              for d in r.get("diverged_seeds", ())]
    return f" (caveats: {'; '.join(notes)})" if notes else ""


def where_vit_loses(results):
    """Every measured axis on which a method that is not a ViT beats the best ViT."""
    vit = best_transformer(results)
    if vit is None:
        return []
    out = []
    for rec in results["methods"]:
        if is_vit(rec):   # the other ViT configs are the ViT's own alternatives, not rivals
            continue
        if rec["psnr"] > vit["psnr"]:
            out.append(f"- PSNR: {rec['name']} is higher ({rec['psnr']:.2f} vs {vit['psnr']:.2f} dB).")
        if rec["ssim"] > vit["ssim"]:
            out.append(f"- SSIM: {rec['name']} is higher ({rec['ssim']:.3f} vs {vit['ssim']:.3f}).")
        if rec["infer_ms_per_image"] < vit["infer_ms_per_image"]:
            out.append(f"- Inference speed: {rec['label']} takes {rec['infer_ms_per_image']:.2f} "
                       f"ms/image against {vit['infer_ms_per_image']:.2f} (at "
                       f"{rec['psnr']:.2f} dB).")
        if rec["kind"] != "network":
            continue
        if rec["params"] < vit["params"]:
            out.append(f"- Size: {rec['name']} has fewer parameters ({fmt_params(rec['params'])} "
                       f"vs {fmt_params(vit['params'])}).")
        if rec["flops"] < vit["flops"]:
            out.append(f"- FLOPs: {rec['name']} needs fewer per image "
                       f"({rec['flops'] / 1e6:.0f} vs {vit['flops'] / 1e6:.0f} MFLOP).")
        for pv in vit["curve"]:
            pr = point_at(rec, pv["budget_s"])
            if pr is not None and pr["psnr"] > pv["psnr"]:
                out.append(f"- Training time: at {minutes(pv['budget_s'])} {rec['name']} is "
                           f"higher ({pr['psnr']:.2f} vs {pv['psnr']:.2f} dB).")
        for pv in vit.get("curve_images") or ():
            pr = point_at(rec, pv["budget_images"], "curve_images")
            if pr is not None and pr["psnr"] > pv["psnr"]:
                out.append(f"- Training images: at {pv['budget_images']:,} {rec['name']} is "
                           f"higher ({pr['psnr']:.2f} vs {pv['psnr']:.2f} dB).")
    return out or ["- Nowhere in these measurements."]


def ablation_section(ablation, fig_rel):
    lines = ["## ViT ablation", "",
             f"Produced by `{ablation['command']}` ({ablation['date']}, same machine, same "
             f"evaluation set). {ablation['note']}", "",
             "| run | what changes | params | MFLOP/img | images/s | "
             + " | ".join(f"PSNR @ {minutes(b)}" for b in ablation["budgets_s"]) + " |",
             "|---|---|---:|---:|---:|" + "---:|" * len(ablation["budgets_s"])]
    for run in ablation["runs"]:
        lines.append(f"| {run['name']} | {run['change']} | {fmt_params(run['params'])} | "
                     f"{run['flops'] / 1e6:.0f} | {run['images_per_s']:.0f} | "
                     + " | ".join(f"{p['psnr']:.2f}" for p in run["curve"]) + " |")
    lines += ["", f"![ViT ablation: PSNR against training time]({fig_rel}/ablation.png)", ""]
    if ablation.get("conclusion"):
        lines += [ablation["conclusion"], ""]
    return lines


def crosscheck_section(check):
    """The same networks trained once per budget with the rate decayed to that budget."""
    budgets = check["budgets_s"]
    lines = ["## Cross-check: learning rate decayed to each budget", "",
             f"Produced by `{check['command']}` ({check['date']}, {duration(check['wall_seconds'])} "
             f"of wall clock, same machine and evaluation set): one training run per network and "
             f"budget, with a cosine decay timed to end at that budget. Each figure is then an "
             f"end-of-schedule model rather than a snapshot taken at full rate, so it moves less "
             f"from run to run (see the ablation's note on snapshots).", "",
             "| network | " + " | ".join(f"PSNR @ {minutes(b)}" for b in budgets) + " | steps |",
             "|---|" + "---:|" * (len(budgets) + 1)]
    for r in networks(check):
        lines.append(f"| {r['name']} | " + " | ".join(f"{p['psnr']:.2f}" for p in r["curve"])
                     + " | " + ", ".join(str(p["steps"]) for p in r["curve"]) + " |")
    return lines + [""]


def skipped_lines(results):
    """The networks left out because their library is absent (one line each)."""
    skipped = results.get("skipped") or []
    return ["", *(f"- skipped {s['name']}: {s['reason']}" for s in skipped)] if skipped else []


def lr_sweep_section(results):
    """Each network's validation PSNR per swept rate, and the rate it trained with."""
    nets = [r for r in networks(results) if r.get("lr_sweep")]
    if not nets:
        return []
    sweep = results.get("lr_sweep") or {}
    # the union of the rates tried: a sweep extended beyond an edge adds its own
    rates = sorted({k for r in nets for k in r["lr_sweep"]["validation_psnr"]}, key=float)
    lines = ["", "### Learning rates", "",
             f"Each network trains at the rate that scored best on the validation set (seed "
             f"{sweep.get('validation_seed', '?')}) after a short run with a cosine timed to "
             f"{minutes(sweep.get('budget_s', 0))} of "
             f"{'process CPU time' if results.get('budget_clock') == 'cpu' else 'wall clock'}"
             + (f", its warm-up ended within the first {sweep['warmup_share']:.0%} of it (or "
                f"after the config's warm-up steps, if sooner)" if sweep.get("warmup_share")
                else ", after the config's warm-up steps (a run that did not reach them was all "
                     "warm-up: results before 2026-12-07)")
             + (f"; a network that scored best at an edge of the given rates was tried at up to "
                f"{sweep['extend']} more beyond it, stopping at the first that scored lower "
                f"(– : not tried)" if sweep.get("extend") else "")
             + ("; the rate check below may change the rate a close network trains at:"
                if results.get("rate_check") else ":"),
             "",
             "| network | " + " | ".join(f"lr {r}" for r in rates) + " | chosen | trained at |",
             "|---|" + "---:|" * len(rates) + "---:|---:|"]
    for r in nets:
        scores = r["lr_sweep"]["validation_psnr"]
        lines.append(f"| {r['name']} | " + " | ".join(fmt_num(scores.get(k)) for k in rates)
                     + f" | {r['lr_sweep']['chosen']:g} | {r['lr']:g} |")
    diverged = [r for r in nets if r.get("diverged")]
    if diverged:
        fall = results.get("divergence_fall_db")
        lines += ["", "A run that diverged (scored below the noisy input after having scored "
                      "above it" + (f", or more than {fall:g} dB below an earlier budget of the "
                                    f"same run" if fall else "")
                  + ") was trained again from scratch at the next lower rate of the "
                      "sweep; the figures are that run's:"]
        lines += [f"- {r['name']}: " + "; ".join(
            f"at lr {d['lr']:g}, {d['psnr']:.2f} dB at {d['at']} (after {d['best']:.2f})"
            for d in r["diverged"]) + f"; trained at lr {r['lr']:g}"
            + ("; no lower rate was swept, so these figures are that diverged run's"
               if r["diverged"][-1]["lr"] == r["lr"] else "") for r in diverged]
    fell = [r for r in nets if r.get("diverged_seeds")]
    if fell:
        lines += ["", "A further seed trains at the rate of the first, with no lower rate to go "
                      "to; where one diverged by the same rule, its figures are kept in the mean "
                      "over seeds:"]
        lines += [f"- {r['name']}: " + "; ".join(
            f"seed {d['seed']} at lr {d['lr']:g}, {d['psnr']:.2f} dB at {d['at']} (after "
            f"{d['best']:.2f})" for d in r["diverged_seeds"]) for r in fell]
    def at_edge(r):
        """Whether the rate it trained at (the sweep's choice, or lower after a divergence) is
        the highest or lowest of the rates tried for it."""
        tried = sorted(float(k) for k in r["lr_sweep"]["validation_psnr"])
        return len(tried) > 1 and r["lr"] in (tried[0], tried[-1])
    edge = [r["name"] for r in nets if at_edge(r)]
    if edge:
        lines += ["", f"At the edge of the swept range (a rate beyond it might score higher): "
                      f"{', '.join(edge)}."]
    return lines


def kept_at_edge(check):
    """Whether a rate check kept the highest (lowest) rate it tried, above (below) the
    sweep's pick: the check stopped there, and a rate beyond might score higher."""
    rates = [float(r) for r in check["validation_psnr"]]
    return (check["kept"] > check["swept"] and check["kept"] == max(rates)
            or check["kept"] < check["swept"] and check["kept"] == min(rates))


def rate_check_section(results):
    """--rate-check: each close network's runs at the rates checked, and the rate it kept."""
    options = results.get("rate_check")
    if not options:
        return []
    extend = options.get("extend", 0) if isinstance(options, dict) else 0
    checked = checked_networks(results)
    margin = results.get("seed_margin", 1.5)
    lines = ["", "### Rate check", ""]
    if not checked:
        return lines + [f"No network within {margin:g} dB of another had a rate to check "
                        f"(--rate-check)."]
    lines += [f"A short sweep can pick a rate that the longer budgets do not favour, so each "
              f"network within {margin:g} dB of another was trained for its whole budgets at "
              f"the swept rates next to its own and at its close rivals' rates too, and while "
              f"the best was at an edge away from the sweep's pick, at up to {extend} more "
              f"rates that way (its first seed), and kept the rate whose network scored highest "
              f"on the validation set at its largest budget (the evaluation set's figure "
              f"beside it is for reading, not choosing):", "",
              "| network | rate | chosen by | validation PSNR | evaluation PSNR | kept |",
              "|---|---:|---|---:|---:|---|"]
    for r in checked:
        check = r["rate_check"]
        for rate, val in sorted(check["validation_psnr"].items(), key=lambda kv: float(kv[0])):
            lines.append(f"| {r['name']} | {rate} | "
                         f"{'the sweep' if float(rate) == check['swept'] else 'checked'} | "
                         f"{val:.2f} | {check['eval_psnr'][rate]:.2f} | "
                         f"{'yes' if float(rate) == check['kept'] else ''} |")
    edge = [r["name"] for r in checked if kept_at_edge(r["rate_check"])]
    if edge:
        lines += ["", f"Kept at the edge of the rates checked, away from the sweep's pick (the "
                      f"check stopped there; a rate one more step beyond might score higher): "
                      f"{', '.join(edge)}."]
    return lines + ["", "![The sweep's scores against the rate check's, per rate]"
                        "(benchmarks/rate_check.png)"]


def equal_images_section(results):
    """PSNR after equal numbers of training images (learning per sample, not speed)."""
    counts = results.get("budgets_images") or []
    if not counts:
        return []
    how = ("The same run as the time axis, scored on a copy cooled down over the last "
           f"{results['cooldown']:.0%} of each count; a count a network does not reach within "
           "its largest time budget is left out ('not reached')" if results.get("cooldown")
           else "A run of its own per network (same rate, warm-up then constant), scored after "
                "each count")
    lines = ["", "### Quality against training images", "",
             f"{how}: learning per sample, whatever the speed (on a GPU the slow networks are "
             "not slow).", "",
             "| network | " + " | ".join(f"PSNR @ {n:,} images" for n in counts)
             + f" | images/s | {clock_name(results)} to the last |", "|---|" + "---:|" * (len(counts) + 2)]
    for r in networks(results):
        pts = [point_at(r, n, "curve_images") for n in counts]
        last = next((p for p in reversed(pts) if p), None)
        lines.append(f"| {r['name']} | " + " | ".join(f"{p['psnr']:.2f}" if p else "not reached"
                                                       for p in pts)
                     + f" | {r['images_per_s']:.0f} | "
                     + (duration(x_minutes(results, last) * 60) if last else "–") + " |")
    return lines + ["", "![PSNR against training images](benchmarks/psnr_vs_images.png)"]


def read_back_text(results):
    """Which runs `--resume` read back from earlier invocations (same protocol key), if any."""
    runs = results.get("read_back") or []
    if not runs:
        return ""
    return (f" {len(runs)} of the network runs were read back by `--resume` from earlier "
            f"invocations with the same options (each run's key covers its config and the "
            f"protocol): " + ", ".join(f"{r['name']} seed {r['seed']} ({r['date']})"
                                       for r in runs) + ".")


def render_markdown(results, ablation=None, fig_rel=FIG_DIR, crosscheck=None):
    ev, budgets = results["eval_set"], results["budgets_s"]
    cmd = results.get("command") or "denoise-vit benchmark"
    budget_text = ", ".join(minutes(b) for b in budgets)
    budget_text += (" of process CPU time (all threads; wall clock recorded too)"
                    if results.get("budget_clock") == "cpu" else " of wall clock")
    lines = [
        "# Benchmarks: is the ViT worth it, and how fast is it?", "",
        f"Every number and figure below comes from one run of `{cmd}` "
        f"({results['date']}, {duration(results['wall_seconds'])} of wall clock), with "
        f"other heavy jobs on the machine held off by a lock."
        + read_back_text(results), "",
        f"- **Machine**: {machine_line(results)}. Dense float32 matmul rate, measured in the "
        f"same run: {results['matmul_gflops']:.1f} GFLOP/s.",
        f"- **Evaluation set**: {ev['size']} images of the default generator (seed {ev['seed']}; "
        f"SPEC §4: PSNR pooled over the set, mean SSIM, data range 1). Noisy input: "
        f"{results['noisy']['psnr']:.2f} dB, SSIM {results['noisy']['ssim']:.3f}.",
        *([f"- **Classical filters**: each one's main parameter is chosen by a grid search on "
           f"a validation set of {results['validation_set']['size']} images drawn with another "
           f"seed ({results['validation_set']['seed']}), never on the evaluation set."]
          if any(r.get("kind") == "classical" for r in results["methods"]) else
          ["- **Classical filters**: none in this run (`--methods none`)."]),
        f"- **Networks**: trained on this CPU by the training engine of `denoise-vit train` "
        f"({optimizer_text(results)}; MSE; "
        f"fresh synthetic batches every step), with training-time budgets of "
        f"{budget_text} (evaluation time excluded). Schedule: {results['schedule']}."
        + (" Every network is trained with channels-last (NHWC) conv weights, whatever its preset "
           "says: "
           "the same memory format for all." if
           results.get("memory_format") == "channels_last" else "")
        + (f" {results['jobs']} networks trained at a time, each in its own process with "
           f"{results['threads_per_job']} torch thread(s): the other run is part of the "
           "'other load' recorded below." if results.get("jobs", 1) > 1 else ""), "",
        "## Verdict", "", *comparison(results), *attention_lines(results),
        *([f"- Cross-check with the rate decayed to each budget (below, `{crosscheck['command']}`):"]
          + ["  " + line for line in comparison(crosscheck)] if crosscheck else []), "",
        "## All methods", "",
        f"PSNR and SSIM on the evaluation set; networks after the largest budget "
        f"({minutes(budgets[-1])}). FLOPs are per 64 x 64 image, forward pass, as counted by "
        f"`torch.utils.flop_counter` (matmuls, convolutions, attention). Inference: ms per "
        f"image over the whole set, {threads(results)} (batches of 128 for the networks; the filters "
        f"spread over processes).", "",
        "| method | library | PSNR (dB) | SSIM | params | MFLOP/img | train time | infer ms/img | setting |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
        f"| noisy input | | {results['noisy']['psnr']:.2f} | {results['noisy']['ssim']:.3f} | | | | | |",
    ]
    for r in sorted(results["methods"], key=lambda r: r["psnr"]):
        setting = (f"{r['tuned']['param']} = {r['tuned']['value']}" if r["kind"] == "classical"
                   else ", ".join(f"{k}={v}" for k, v in r["model"].items() if k != "name")
                   or "defaults")
        lines.append(f"| {r['label']} | {r.get('library') or '–'} | {r['psnr']:.2f} | {r['ssim']:.3f} | {fmt_params(r['params'])} "
                     f"| {fmt_num(r['flops'] and r['flops'] / 1e6, 0)} | "
                     f"{duration(r['train_seconds']) if r['train_seconds'] else '–'} | "
                     f"{r['infer_ms_per_image']:.2f} | {setting} |")
    lines += ["", "## Quality against training time", "",
              "| network | " + " | ".join(f"PSNR @ {minutes(b)}" for b in budgets)
              + " | steps | lr, batch, warm-up | seeds (PSNR at the largest budget) |",
              "|---|" + "---:|" * len(budgets) + "---:|---|---|"]
    caps = results.get("max_budget_min") or {}
    for r in networks(results):
        seeds = " / ".join(f"{x['seed']}: {x['psnr']:.2f}" for x in r.get("seeds", ())) or "one"
        cells = [point_at(r, b) for b in budgets]
        lines.append(f"| {r['name']} | " + " | ".join(
            f"{p['psnr']:.2f}" if p else (f"– (stops at {caps[r['name']]:g} min)"
                                         if r["name"] in caps else "–") for p in cells)
                     + f" | {r['curve'][-1]['steps']} | {r['lr']:g}, {r['batch_size']}, "
                       f"{r['warmup_steps']} | {seeds} |")
    if caps:
        lines += ["", "The slowest networks train to a smaller budget (`--max-budget`, which "
                      "bounds the run's length): " + ", ".join(
                          f"{n} to {m:g} min" for n, m in caps.items())
                  + ". Their PSNR in the other tables is at that budget."]
    if results.get("seeds", 1) > 1:
        lines += ["", f"Networks within {results['seed_margin']:g} dB of another at the largest "
                      f"budget both reached were trained with {results['seeds']} seeds (weights and data "
                      "stream); their figures are the mean over seeds."]
    lines += [*skipped_lines(results), *lr_sweep_section(results), *rate_check_section(results),
              *equal_images_section(results)]
    lines += ["", f"![PSNR against training time]({fig_rel}/psnr_vs_time.png)", "",
              *(crosscheck_section(crosscheck) if crosscheck else []),
              "## Training cost", "",
              "Throughput counts the whole training step, including drawing the batch from the "
              "synthetic generator (timed alone in the 'data' column). The FLOP rate is forward + "
              "backward FLOPs per image times images/s, as a fraction of the matmul rate above. "
              "'Other load' is the largest share of the machine's CPU that other processes used "
              "while a network trained (from /proc/stat): near 0 % means the timings are clean."
              + (f" Here {results['jobs']} networks trained at a time with "
                 f"{results['threads_per_job']} thread(s) each, against a matmul rate measured "
                 f"with {results['machine']['torch_threads']}: a run's share of its own cores is "
                 f"about {results['machine']['torch_threads'] / results['threads_per_job']:g} times "
                 "the figure given, and the other run shows as other load."
                 if results.get("jobs", 1) > 1 else ""), "",
              "| network | images/s | train MFLOP/img | GFLOP/s reached | of matmul rate | "
              "data ms/batch | other load |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in networks(results):
        data_ms = results["data_ms_per_batch"].get(str(r["batch_size"]),
                                                   results["data_ms_per_batch"].get(r["batch_size"]))
        lines.append(f"| {r['name']} | {r['images_per_s']:.0f} | {r['train_flops_per_image'] / 1e6:.0f} "
                     f"| {r['train_gflops_per_s']:.1f} | {100 * r['fraction_of_matmul_rate']:.1f} % "
                     f"| {fmt_num(data_ms, 0)} | "
                     f"{fmt_num(r.get('foreign_cpu_max') and 100 * r['foreign_cpu_max'], 0)} % |")
    lines += ["", "## Quality against size", "",
              f"![PSNR against parameters]({fig_rel}/psnr_vs_params.png)", "",
              "## Same inputs, every method", "",
              "The first images of the evaluation set; one row per method, PSNR over the whole "
              "set in the row label.", "",
              f"![every method on the same inputs]({fig_rel}/samples.png)", ""]
    if ablation:
        lines += ablation_section(ablation, fig_rel)
    lines += ["## Where the ViT loses", "",
              "Against the best ViT of this run, every measured axis on which a method that is "
              "not a ViT does better:", "", *where_vit_loses(results), ""]
    return "\n".join(lines)


def write_report(results, out_dir="docs", *, ablation=None, crosscheck=None):
    """BENCHMARKS.md, benchmarks.json and the PNG figures under out_dir."""
    try:
        return _write_report(results, Path(out_dir), ablation, crosscheck)
    except OSError as exc:
        raise DenoiseVitError(f"cannot write the benchmark report into {out_dir}: "
                              f"{exc.strerror or exc}") from exc


def _write_report(results, out, ablation, crosscheck):
    figs = out / FIG_DIR
    figs.mkdir(parents=True, exist_ok=True)
    cmd = results.get("command") or "denoise-vit benchmark"
    ev = results["eval_set"]
    tag = (textwrap.fill(cmd, 95) + f"\n{machine_short(results['machine'])}; eval set "
           f"{ev['size']} images (seed {ev['seed']})")
    plot_psnr_vs_time(results, figs / "psnr_vs_time.png", tag)
    if results.get("budgets_images"):
        plot_psnr_vs_images(results, figs / "psnr_vs_images.png", tag)
    if checked_networks(results):
        plot_rate_check(results, figs / "rate_check.png", tag)
    plot_psnr_vs_params(results, figs / "psnr_vs_params.png",
                        tag + f"; networks after {minutes(results['budgets_s'][-1])}")
    if "_samples" in results:
        plot_samples(results, figs / "samples.png", tag)
    if ablation:
        plot_ablation(ablation, figs / "ablation.png",
                      f"{ablation['command']}\n{machine_short(results['machine'])}; "
                      f"eval set {ev['size']} images (seed {ev['seed']})")
    (out / "benchmarks.json").write_text(
        json.dumps({k: v for k, v in results.items() if not k.startswith("_")}, indent=1) + "\n")
    (out / "BENCHMARKS.md").write_text(render_markdown(results, ablation, FIG_DIR, crosscheck))
    return out / "BENCHMARKS.md"


def load_ablation(out_dir="docs"):
    path = Path(out_dir) / "ablation.json"
    return read_json(path, "ablation results") if path.exists() else None


CROSSCHECK_DIR = "cosine"   # out_dir/cosine: a --separate-runs benchmark of some networks


def load_crosscheck(out_dir="docs"):
    """The --separate-runs benchmark in out_dir/cosine/benchmarks.json, if there is one."""
    path = Path(out_dir) / CROSSCHECK_DIR / "benchmarks.json"
    return read_json(path, "cross-check results") if path.exists() else None
