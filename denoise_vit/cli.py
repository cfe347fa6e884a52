"""The `denoise-vit` command line (also `python -m denoise_vit`)."""
import argparse
import gc
import signal
import sys
from contextlib import nullcontext
from pathlib import Path

from .errors import DenoiseVitError


def cmd_train(args):
    from .training.config import load_config
    from .training.run import run_training
    if args.list_configs:
        from . import presets
        names = presets.list_presets()
        width = max(map(len, names))
        for name in names:
            print(f"{name:{width}s}  {presets.describe(name)}")
        return
    options = {"device": args.device, "out_dir": args.out_dir}   # values, never parsed as TOML
    cfg = load_config(args.config, args.overrides,
                      {key: value for key, value in options.items() if value is not None})
    summary = run_training(cfg, resume=args.resume, progress=not args.no_progress)
    if summary["signal"]:  # stopped by SIGINT / SIGTERM after writing a checkpoint
        return 128 + summary["signal"]  # the shell's code for a signal: `&&` chains stop here
    if summary.get("final_psnr") is not None:
        print(f"done: {summary['steps']} steps in {summary['train_seconds']:.0f} s of training; "
              f"eval PSNR {summary['final_psnr']:.2f} dB (best {summary['best_psnr']:.2f}, noisy "
              f"input {summary['noisy_psnr']:.2f}); outputs in {summary['run_dir']}")


# Evaluation sets are made whole (a fixed set must not depend on how it is cut): inputs, targets
# and outputs at 4 bytes per pixel each, the generator's temporaries while it draws them and the
# metrics' (measured: 37.7 bytes per pixel for `evaluate --n 4000` of 64x64 images).
EVAL_BYTES_PER_PIXEL = 40
FIGURE_MAX_IMAGES = 100   # columns of the visualize figure (matplotlib's limit is 2**16 pixels)


def check_eval_options(args):
    """--n and --seed of evaluate / visualize, before any work."""
    if args.n is not None and args.n < 1:
        raise DenoiseVitError(f"--n must be at least 1 (got {args.n})")
    if args.command == "visualize" and args.n is not None and args.n > FIGURE_MAX_IMAGES:
        raise DenoiseVitError(f"--n {args.n}: a figure shows at most {FIGURE_MAX_IMAGES} images")
    if args.seed is not None and not 0 <= args.seed < 2**63:
        raise DenoiseVitError(f"--seed must be in [0, 2**63) (got {args.seed})")


def eval_data(ckpt, args):
    """The fixed evaluation set of the checkpoint's training run (seed and size overridable)."""
    from .memory import gib, require_memory
    from .training.config import from_dict
    from .training.data import make_eval_data
    data = from_dict({"data": ckpt.get("config", {}).get("data", {})}).data
    if args.n is not None:
        data.eval_size = args.n
    if args.seed is not None:
        data.eval_seed = args.seed
    size = data.size if isinstance(data.size, (list, tuple)) else (data.size, data.size)
    pixels = data.eval_size * size[0] * size[1] * (data.frames if data.kind == "videos" else 1)
    require_memory(pixels * EVAL_BYTES_PER_PIXEL, f"an evaluation set of {data.eval_size} "
                   f"{data.kind}", f"{EVAL_BYTES_PER_PIXEL} bytes per pixel x {pixels} pixels; "
                   f"{gib(pixels * EVAL_BYTES_PER_PIXEL)}; give a smaller --n")
    inputs, targets = make_eval_data(data)
    return inputs, targets, data.eval_size, data.eval_seed, data.kind


def checkpoint_and_model(args):
    from .checkpoint import open_checkpoint
    from .device import resolve_device
    device = resolve_device(args.device or "auto")
    return (*open_checkpoint(args.checkpoint, device=device), device)


def cmd_evaluate(args):
    from .training.engine import evaluate
    from .metrics import psnr, ssim
    check_eval_options(args)
    ckpt, model, device = checkpoint_and_model(args)
    inputs, targets, n, seed, kind = eval_data(ckpt, args)
    metrics = evaluate(model, inputs, targets, device=device)
    print(f"evaluation set: {n} {kind}, seed {seed}; model {ckpt['model_name']} "
          f"from {args.checkpoint}")
    print(f"{'':10s} {'PSNR (dB)':>10s} {'SSIM':>8s}")
    print(f"{'noisy':10s} {psnr(inputs, targets):10.2f} {ssim(inputs, targets):8.3f}")
    print(f"{'denoised':10s} {metrics['psnr']:10.2f} {metrics['ssim']:8.3f}")


def figure_paths(output, video):
    """(figure, animation or None) that `visualize -o output` writes; refused before any work
    if matplotlib cannot write the type or the folder is missing or read-only.

    A folder gets denoised.png inside it; a name without a suffix gets .png (matplotlib would
    add it anyway); a video checkpoint also writes the GIF beside the figure, and `-o x.gif`
    names the GIF, the figure going to x.png.
    """
    import os
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    out = Path(output)
    if out.is_dir():
        out = out / "denoised.png"
    if not out.suffix:
        out = out.with_name(out.name + ".png")
    suffix = out.suffix.lower()[1:]
    animation = None
    if video:
        animation = out.with_suffix(".gif")
        if suffix == "gif":
            out, suffix = out.with_suffix(".png"), "png"
    supported = FigureCanvasAgg.get_supported_filetypes()
    if suffix not in supported:
        raise DenoiseVitError(f"-o {output}: matplotlib cannot write .{suffix} figures; use one "
                              f"of {', '.join('.' + k for k in sorted(supported))}"
                              + ("" if video else " (a GIF only for video checkpoints)"))
    if not out.parent.is_dir():
        raise DenoiseVitError(f"output folder does not exist: {out.parent}")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise DenoiseVitError(f"cannot write into {out.parent} (read-only)")
    return out, animation


def cmd_visualize(args):
    from contextlib import ExitStack
    from .training.engine import predict
    from .figures import save_batch_figure, save_clip_figures
    from .metrics import psnr
    from .outputs import atomic_output, remove_stale_temps
    check_eval_options(args)
    ckpt, model, device = checkpoint_and_model(args)
    args.n = args.n or 6
    video = ckpt.get("config", {}).get("data", {}).get("kind") == "videos"
    out, animation = figure_paths(args.output, video)
    inputs, targets, n, seed, kind = eval_data(ckpt, args)
    if (kind == "videos") != video:
        raise DenoiseVitError(f"{args.checkpoint}: data kind {kind!r} is not what the checkpoint "
                              "says")
    remove_stale_temps(out.parent, {out.suffix.lower(), ".gif"}, log=print)
    if kind == "videos":  # one clip, frame by frame, and an animation beside the figure
        inputs, targets = inputs[:1], targets[:1]
    outputs = predict(model, inputs, device=device)
    title = (f"{ckpt['model_name']}: {'1 clip' if kind == 'videos' else f'{n} images'} "
             f"(seed {seed}), PSNR {psnr(inputs, targets):.1f} -> {psnr(outputs, targets):.1f} dB")
    written = [out] + ([animation] if animation else [])
    try:
        with ExitStack() as stack:  # every file complete, or none replaced
            tmp = [stack.enter_context(atomic_output(path)) for path in written]
            if kind == "videos":
                save_clip_figures(tmp[0], tmp[1], inputs[0], targets[0], outputs[0], title=title)
            else:
                save_batch_figure(tmp[0], inputs, targets, outputs, title=title)
    except OSError as exc:
        raise DenoiseVitError(f"cannot write figure {out}: {exc.strerror or exc}") from exc
    print(f"wrote {' and '.join(map(str, written))}")


def cmd_denoise(args):
    from .inference.denoise import DenoiseOptions, run_denoise
    from .device import resolve_device
    from tqdm.auto import tqdm
    options = DenoiseOptions(axes=args.axes, dtype=args.dtype, normalize=args.normalize,
                             overwrite=args.overwrite)
    denoiser_args = dict(tile=args.tile, overlap=args.overlap, frame_overlap=args.frame_overlap,
                         batch_size=args.batch_size, progress=not args.no_progress,
                         precision=args.precision)
    written, _ = run_denoise(args.inputs, args.output, args.checkpoint, options=options,
                             denoiser_args=denoiser_args, device=resolve_device(args.device or "auto"),
                             log=tqdm.write)
    print(f"denoised {written} file(s) into {args.output}")


def cmd_benchmark(args):
    from .benchmark.runner import BenchmarkOptions, rebuild_report, run_and_report
    if args.report_only:
        print(f"wrote {rebuild_report(args.out_dir)}")
        return
    opts = BenchmarkOptions.from_cli(
        budgets=args.budgets, configs=args.configs, methods=args.methods, eval_size=args.eval_size,
        val_size=args.val_size, separate_runs=args.separate_runs, workers=args.workers,
        runs_dir=args.runs_dir, clock=args.clock, images=args.images, lr_sweep=args.lr_sweep,
        sweep_min=args.sweep_budget, sweep_extend=args.sweep_extend,
        idle_wait=args.idle_wait, seeds=args.seeds, optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        seed_margin=args.seed_margin, cooldown=args.cooldown, max_budget=args.max_budget,
        jobs=args.jobs, resume=args.resume, rate_check=args.rate_check,
        warmup_share=args.warmup_share)
    print(f"wrote {run_and_report(opts, args.out_dir)}")


def cmd_export(args):
    from .export.command import run_export
    print(run_export(args.checkpoint, args.format, args.output, overwrite=args.overwrite,
                     author=args.author))


def threads_option(text):
    """argparse type of --threads: a positive integer or 'auto' (one-line usage error else)."""
    from .threads import ThreadsError, parse_threads
    try:
        return parse_threads(text)
    except ThreadsError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--threads ")) from None


def add_threads_option(p):
    p.add_argument("--threads", type=threads_option, metavar="N",
                   help="torch threads: N, or auto (default: the cores other processes leave "
                        "free, re-checked during training; else DENOISE_VIT_THREADS or "
                        "OMP_NUM_THREADS when set)")


class Parser(argparse.ArgumentParser):
    """argparse with usage mistakes as one line (exit 2), like every other error here."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = Parser(
        prog="denoise-vit", description="Train, evaluate and look at transformer denoisers.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("train", help="train a model from an experiment config",
                       description="Train from a TOML config (a preset name such as quick, or "
                                   "the path of your own file), with key=value overrides, e.g. "
                                   "lr=3e-4 model.depth=6.")
    p.add_argument("--config", "-c", help="preset name (see --list-configs) or TOML file path")
    p.add_argument("--list-configs", action="store_true",
                   help="list the presets that ship with the package, one line each, and exit")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--resume", action="store_true",
                   help="continue the run from its newest complete checkpoint (checkpoint_last.pt, "
                        "else checkpoint_prev.pt). SIGINT / SIGTERM write one and exit 130 / 143")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--out-dir", help="parent folder of the run folder (default: runs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_threads_option(p)
    p.set_defaults(func=cmd_train)

    for name, func, helptext in (("evaluate", cmd_evaluate, "PSNR and SSIM on the fixed evaluation set"),
                                 ("visualize", cmd_visualize, "write the inputs / targets / outputs / error figure")):
        p = sub.add_parser(name, help=helptext, description=helptext + ".")
        p.add_argument("--checkpoint", required=True, help="a .pt checkpoint of a training run")
        p.add_argument("--n", type=int, help="number of images (default: the run's eval set size"
                                             + (")" if name == "evaluate" else "; 6 for the figure)"))
        p.add_argument("--seed", type=int, help="evaluation seed (default: the run's)")
        p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
        if name == "visualize":
            p.add_argument("--output", "-o", default="denoised.png",
                           help="figure to write: .png (default denoised.png), .pdf, .svg, ...; "
                                "a folder gets denoised.png; video checkpoints add a .gif beside")
        add_threads_option(p)
        p.set_defaults(func=func)

    p = sub.add_parser("denoise", help="denoise image files, stacks or folders of any size",
                       description="Denoise PNG, JPEG, TIFF (multi-page too) or .npy files, or "
                                   "folders of them, of any size, with a trained checkpoint. "
                                   "Output has the input's shape, axes and (by default) dtype.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    p.add_argument("--checkpoint", required=True, help="a .pt checkpoint (image or video model)")
    p.add_argument("--output", "-o", required=True,
                   help="output file (one input) or folder (several inputs or a folder)")
    p.add_argument("--axes", help="axes of the inputs, e.g. YX, ZYX, TYX, YXC (default: recorded "
                                  "in the TIFF, else guessed from the shape and logged)")
    p.add_argument("--tile", type=int, help="tile side in pixels, a multiple of the patch "
                                            "(default: the model's training size; 0: whole image)")
    p.add_argument("--overlap", type=int, help="pixels shared by neighbouring tiles "
                                               "(default: a quarter of the tile)")
    p.add_argument("--frame-overlap", type=int, help="video models: frames shared by consecutive "
                                                     "temporal windows (default: half the window)")
    p.add_argument("--batch-size", type=int, help="tiles per model call (default: 32 tiles of "
                                                  "64x64 pixels or as many pixels of larger ones; "
                                                  "on a CUDA GPU 512)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="the model's arithmetic (default fp32); bf16: 1.1-1.2x faster on a CPU "
                        "with AVX512-BF16 or AMX, 0.07 dB lower PSNR for vit_fast "
                        "(docs/DENOISE.md); slower without them")
    p.add_argument("--dtype", choices=("input", "float32"), default="input",
                   help="output pixel type (default: the input's)")
    p.add_argument("--normalize", choices=("stack", "frame", "none"), default="stack",
                   help="percentile intensity normalisation per file (stack, default), per plane "
                        "(frame) or none (pixels go to the model as they are)")
    p.add_argument("--overwrite", action="store_true", help="replace output files that exist")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_threads_option(p)
    p.set_defaults(func=cmd_denoise)

    p = sub.add_parser("benchmark", help="every method side by side: quality, training time, cost",
                       description="Evaluate classical filters and train the networks of the "
                                   "given experiment configs for equal wall-clock budgets on one "
                                   "evaluation set; write BENCHMARKS.md, benchmarks.json and plots.")
    p.add_argument("--budgets", default="1,3,6", help="training budgets in minutes (default 1,3,6)")
    p.add_argument("--configs", default=None,
                   help="experiment configs of the networks, comma-separated "
                        "(default: the shipped ViT preset, unet, dncnn, course)")
    p.add_argument("--methods", default=None, help="classical filters, comma-separated, or 'none' "
                                                   "(default: all available)")
    p.add_argument("--eval-size", type=int, help="evaluation images (default: 512, SPEC §4)")
    p.add_argument("--val-size", type=int, default=32, help="validation images for the filters' "
                                                            "grid search (default 32)")
    p.add_argument("--separate-runs", action="store_true",
                   help="one run per budget with a cosine schedule timed to it (costs the sum of "
                        "the budgets) instead of one warm-up + constant run evaluated at each")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="what --budgets count: wall-clock or process CPU minutes (both are "
                        "recorded either way; default wall)")
    p.add_argument("--images", default=None,
                   help="second axis: training-image counts, comma-separated (e.g. "
                        "25000,50000,100000); one more run per network, scored after each")
    p.add_argument("--lr-sweep", default=None,
                   help="learning rates, comma-separated: each network trains at the one that "
                        "scores best on the validation set after a short run")
    p.add_argument("--sweep-budget", type=float, default=None,
                   help="minutes (of --clock) of each learning-rate sweep run (default: the "
                        "smallest of --budgets; a 30-s run of the U-Net is about 50 steps and "
                        "picked a rate its budgets do not favour, docs/sweep-check)")
    p.add_argument("--sweep-extend", type=int, default=2,
                   help="when a network scores best at the highest (lowest) rate of --lr-sweep, "
                        "try up to this many rates beyond it, one step of the sweep each, until "
                        "one scores lower (default 2; 0: only the given rates)")
    p.add_argument("--rate-check", action="store_true",
                   help="a network within --seed-margin dB of another is trained at the "
                        "swept rates next to its own and at its close rivals' rates too (and, "
                        "while the best is at an edge, up to --sweep-extend more steps that "
                        "way), and keeps the rate that scores highest on the validation set "
                        "at its largest budget")
    p.add_argument("--seeds", type=int, default=1,
                   help="networks whose PSNR is within --seed-margin dB of another network's "
                        "are trained with this many seeds and reported as the mean (default 1)")
    p.add_argument("--seed-margin", type=float, default=1.5,
                   help="dB at the largest budget below which --seeds applies (default 1.5)")
    p.add_argument("--cooldown", action="store_true",
                   help="one run per network at a constant rate; for each budget (time and "
                        "--images) a copy is cooled down over its last 20 %% and scored (costs "
                        "the largest budget plus a fifth of the others)")
    p.add_argument("--warmup-share", type=float, default=0.2, metavar="F",
                   help="every training run's warm-up ends within this share of the smallest "
                        "budget if that is sooner than its config's warm-up steps, as the rate "
                        "sweep's does (default 0.2; 0: the config's steps however short the "
                        "budget, the protocol until 2026-12-07)")
    p.add_argument("--max-budget", metavar="NAME=MIN,...",
                   help="networks that stop at a smaller budget (the slowest peers), e.g. "
                        "peer_restormer=4; said in the report")
    p.add_argument("--optimizer", choices=("adam", "adamw", "config"), default="adam",
                   help="the optimizer of every network, whatever its preset says: the same "
                        "care for all (default adam); config: each network's own (to compare "
                        "optimizers)")
    p.add_argument("--weight-decay", type=float, default=None, metavar="F",
                   help="its decay on weight matrices and kernels (default 0.05 with adamw, "
                        "0 with adam)")
    p.add_argument("--jobs", type=int, default=1,
                   help="networks trained at once, in worker processes sharing the torch "
                        "threads (default 1; 2 on a 2-core machine: one thread each)")
    p.add_argument("--resume", action="store_true",
                   help="read back the runs a stopped benchmark finished (runs-dir/*.json, "
                        "same options) instead of training them again")
    p.add_argument("--idle-wait", type=float, default=1200.0,
                   help="seconds to wait, before each network, for other processes to leave "
                        "the CPU (default 1200; 0: start at once, e.g. for a smoke run)")
    p.add_argument("--workers", type=int, help="processes for the filters (default: all cores)")
    p.add_argument("--runs-dir", default="runs/benchmark", help="where the trained networks go")
    p.add_argument("--out-dir", default="docs", help="folder of BENCHMARKS.md (default docs)")
    p.add_argument("--report-only", action="store_true",
                   help="rewrite BENCHMARKS.md and the plots from out-dir/benchmarks.json")
    add_threads_option(p)
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser("export", help="write a checkpoint as a bioimage.io package, ONNX or "
                                      "TorchScript",
                       description="Export a trained checkpoint for use outside this package: "
                                   "a BioImage Model Zoo package (.zip, for deepImageJ / Fiji, "
                                   "ilastik, napari, bioimageio.core), ONNX (.onnx) or "
                                   "TorchScript (.pt). Each export is checked before it is kept.")
    p.add_argument("checkpoint", help="a .pt checkpoint of a training run")
    p.add_argument("--format", "-f", required=True, choices=("bioimageio", "onnx", "torchscript"))
    p.add_argument("--output", "-o", required=True,
                   help="file to write: .zip (bioimageio), .onnx or .pt (torchscript)")
    p.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    p.add_argument("--author", default="denoise-vit",
                   help="author named in the bioimage.io package (default: denoise-vit)")
    p.set_defaults(func=cmd_export)
    return parser


def main(argv=None):
    parser = build_parser()
    # key=value overrides may stand anywhere among train's options
    args, extra = parser.parse_known_args(argv)
    if extra and (args.command != "train" or any(e.startswith("-") or "=" not in e for e in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    from .outputs import signals_raise
    from . import memory, threads
    try:
        memory.keep_freed_memory()   # reuse freed blocks instead of faulting in fresh pages
        if args.command != "export":
            threads.start(getattr(args, "threads", None))   # the imports are its first window
            import torch  # noqa: F401  (every command needs it)
            threads.apply()
            # torch's modules are never garbage: out of the collector's reach, neither a full
            # collection during the command nor the one at exit walks them. The denoise
            # command's exit took 0.21 s instead of 0.60 (experiments/denoise_levers.py)
            gc.freeze()
        # SIGTERM / SIGHUP end these commands as Ctrl-C does, so that partial files are removed;
        # train and benchmark handle their signals themselves (a checkpoint first)
        with signals_raise() if args.command in ("denoise", "evaluate", "visualize") \
                else nullcontext():
            status = args.func(args)
    except (DenoiseVitError, threads.ThreadsError) as exc:
        print(f"denoise-vit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"denoise-vit {args.command}: interrupted by {signal.Signals(signum).name}; "
              "no partial output left", file=sys.stderr)
        return 128 + signum
    finally:
        threads.reset()   # the policy lives as long as the command
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
