"""The `denoise-vit` command line (also `python -m denoise_vit`)."""
import argparse
import sys
from pathlib import Path

from .errors import DenoiseVitError


def cmd_train(args):
    from .config import load_config
    from .train import run_training
    overrides = list(args.overrides)
    if args.device:
        overrides.append(f'device="{args.device}"')
    if args.out_dir:
        overrides.append(f'out_dir="{args.out_dir}"')
    cfg = load_config(args.config, overrides)
    summary = run_training(cfg, resume=args.resume, progress=not args.no_progress)
    if summary.get("final_psnr") is not None:
        print(f"done: {summary['steps']} steps in {summary['train_seconds']:.0f} s of training; "
              f"eval PSNR {summary['final_psnr']:.2f} dB (best {summary['best_psnr']:.2f}, noisy "
              f"input {summary['noisy_psnr']:.2f}); outputs in {summary['run_dir']}")


def eval_data(ckpt, args):
    """The fixed evaluation set of the checkpoint's training run (seed and size overridable)."""
    from .config import from_dict
    from .data import make_eval_data
    data = from_dict({"data": ckpt.get("config", {}).get("data", {})}).data
    if args.n is not None:
        data.eval_size = args.n
    if args.seed is not None:
        data.eval_seed = args.seed
    inputs, targets = make_eval_data(data)
    return inputs, targets, data.eval_size, data.eval_seed, data.kind


def open_checkpoint(args):
    from .checkpoint import model_from_checkpoint, read_checkpoint
    from .distributed import resolve_device
    ckpt = read_checkpoint(args.checkpoint)
    device = resolve_device(args.device or "auto")
    return ckpt, model_from_checkpoint(ckpt, args.checkpoint).to(device).eval(), device


def cmd_evaluate(args):
    from .engine import evaluate
    from .metrics import psnr, ssim
    ckpt, model, device = open_checkpoint(args)
    inputs, targets, n, seed, kind = eval_data(ckpt, args)
    metrics = evaluate(model, inputs, targets, device=device)
    print(f"evaluation set: {n} {kind}, seed {seed}; model {ckpt['model_name']} "
          f"from {args.checkpoint}")
    print(f"{'':10s} {'PSNR (dB)':>10s} {'SSIM':>8s}")
    print(f"{'noisy':10s} {psnr(inputs, targets):10.2f} {ssim(inputs, targets):8.3f}")
    print(f"{'denoised':10s} {metrics['psnr']:10.2f} {metrics['ssim']:8.3f}")


def cmd_visualize(args):
    from .engine import predict
    from .figures import save_batch_figure
    from .metrics import psnr
    ckpt, model, device = open_checkpoint(args)
    args.n = args.n or 6
    inputs, targets, n, seed, kind = eval_data(ckpt, args)
    out = Path(args.output)
    if not out.parent.is_dir():
        raise DenoiseVitError(f"output folder does not exist: {out.parent}")
    outputs = predict(model, inputs, device=device)
    try:
        save_batch_figure(out, inputs, targets, outputs,
                          title=f"{ckpt['model_name']}: {n} images (seed {seed}), "
                                f"PSNR {psnr(inputs, targets):.1f} -> {psnr(outputs, targets):.1f} dB")
    except OSError as exc:
        raise DenoiseVitError(f"cannot write figure {out}: {exc.strerror or exc}") from exc
    print(f"wrote {out}")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="denoise-vit", description="Train, evaluate and look at transformer denoisers.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model from an experiment config",
                       description="Train from a TOML config (a path, or a name in experiments/), "
                                   "with key=value overrides, e.g. lr=3e-4 model.depth=6.")
    p.add_argument("--config", "-c", help="config file or experiment name (e.g. quick)")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--out-dir", help="parent folder of the run folder (default: runs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
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
            p.add_argument("--output", "-o", default="denoised.png", help="PNG to write")
        p.set_defaults(func=func)
    return parser


def main(argv=None):
    parser = build_parser()
    # key=value overrides may stand anywhere among train's options
    args, extra = parser.parse_known_args(argv)
    if extra and (args.command != "train" or any(e.startswith("-") or "=" not in e for e in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    try:
        args.func(args)
    except DenoiseVitError as exc:
        print(f"denoise-vit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"denoise-vit {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
