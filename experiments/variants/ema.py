"""EMA of weights on vit_fast (issue 11 names it among what helps small restoration transformers),
paired: one training run, and at the end of each epoch the raw weights and their exponential
moving averages, each decay with a warm-up (timm.utils.ModelEmaV3, use_warmup=True, power 1),
scored on the same evaluation set. The same trajectory for all, so no seed noise between them.

    # round 17 (about 11 min of wall clock for both seeds at once, 1 torch thread each):
    python experiments/variants/ema.py --seed 0 &  python experiments/variants/ema.py --seed 1
    python experiments/variants/report.py          # the round's section of docs/VARIANTS.md

The schedule is the preset's by steps (epochs x steps_per_epoch, warm-up then cosine to the
floor); its time stop (max_train_seconds) is off so that every run does the same steps on any
machine. Writes docs/variants/ema_s{seed}.json (one row per epoch: step, process CPU seconds,
PSNR of the raw weights and of each EMA).
"""
import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", default="vit_fast")
    p.add_argument("--decays", default="0.99,0.995,0.999")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out-dir", default=str(ROOT / "docs" / "variants"))
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, as `denoise-vit train` takes them (e.g. epochs=2)")
    args = p.parse_args(argv)
    try:
        decays = [float(v) for v in args.decays.split(",")]
    except ValueError:
        p.exit(2, f"ema: --decays must be numbers, got {args.decays!r}\n")
    if not all(0 < d < 1 for d in decays):
        p.exit(2, f"ema: every value of --decays must lie between 0 and 1, got {args.decays!r}\n")

    import torch
    from timm.utils import ModelEmaV3

    from denoise_vit.benchmark.runner import machine_info
    from denoise_vit.errors import DenoiseVitError
    from denoise_vit.training.config import load_config
    from denoise_vit.training.data import make_eval_data, make_train_stream
    from denoise_vit.training.engine import evaluate, train_steps
    from denoise_vit.training.setup import build_run_model, make_optimizer, make_run_scheduler

    try:
        cfg = load_config(args.config, [f"seed={args.seed}", *args.overrides])
    except DenoiseVitError as exc:
        p.exit(2, f"ema: {exc}\n")
    cfg.max_train_seconds = None   # the same steps on any machine
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    model = build_run_model(cfg)
    optimizer = make_optimizer(cfg, model)
    scheduler = make_run_scheduler(cfg, optimizer)
    stream = make_train_stream(cfg.data, cfg.batch_size, seed=cfg.seed * 1000, device=cpu)
    eval_inputs, eval_targets = make_eval_data(cfg.data)
    # warm-up power 1: decay min(d, 1 - 1/(1 + t)), a plain average of the steps so far until it
    # reaches d (at t = 99 for 0.99, 999 for 0.999); timm's default power 2/3 reaches 0.99
    # only at t = 999 and 0.995 after these 1650 steps, which would make the decays one curve
    emas = {d: ModelEmaV3(model, decay=d, use_warmup=True, warmup_power=1.0) for d in decays}
    total = cfg.epochs * cfg.steps_per_epoch
    rows, start = [], time.process_time()
    for step in range(1, total + 1):
        # the engine's own step (loss, non-finite check, grad_clip), one at a time for the EMAs
        train_steps(model, stream, optimizer, scheduler, first_step=step - 1, last_step=step,
                    device=cpu, amp=cfg.amp, grad_clip=cfg.grad_clip, progress=False,
                    loss=cfg.loss)
        for ema in emas.values():
            ema.update(model, step=step)
        if step % cfg.steps_per_epoch == 0 or step == total:
            row = {"step": step, "cpu_s": round(time.process_time() - start, 1),
                   "lr": scheduler.get_last_lr()[0],
                   "raw": round(evaluate(model, eval_inputs, eval_targets, device=cpu)["psnr"], 3)}
            for d, ema in emas.items():
                row[f"ema_{d:g}"] = round(evaluate(ema.module, eval_inputs, eval_targets,
                                                   device=cpu)["psnr"], 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
    report = {"command": f"python experiments/variants/ema.py --seed {args.seed} "
                         f"--config {args.config} --decays {args.decays}"
                         + "".join(f" {o}" for o in args.overrides),
              "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine_info(),
              "threads": args.threads, "config": args.config, "seed": args.seed,
              "steps": total, "batch_size": cfg.batch_size, "lr": cfg.lr,
              "optimizer": cfg.optimizer, "schedule": cfg.schedule, "decays": decays,
              "ema": "timm.utils.ModelEmaV3(use_warmup=True, warmup_power=1): decay min(d, 1 - 1/(1 + t))",
              "rows": rows}
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"ema_s{args.seed}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
