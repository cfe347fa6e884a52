"""Ctrl-C under torchrun, then --resume: the same final weights as an uninterrupted 2-rank run.

    python experiments/ddp_interrupt.py [--out-dir /tmp/ddp_interrupt]

Three `torchrun --standalone --nproc_per_node 2 -m denoise_vit train` runs on the CPU (gloo,
deterministic=true, same seed): one uninterrupted; one sent SIGINT (as Ctrl-C would) once its
first checkpoint exists, so the signal lands mid-epoch 2; and that one again with --resume.
torchrun forwards the signal to its workers, which agree on a step, write checkpoint_last.pt and
exit; torchrun itself then exits non-zero with its own SignalException traceback. Too slow for
the test suite (about a minute of CPU); tests/test_distributed.py covers a plain 2-rank run.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from denoise_vit.checkpoint import read_checkpoint

ARGS = ["--no-progress", "model.depth=1", "data.size=16", "batch_size=4", "steps_per_epoch=150",
        "epochs=2", "data.eval_size=16", "figure_samples=1", "deterministic=true", "seed=7",
        "model.drop_rate=0.1"]


def torchrun(out_dir, name, *extra):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "denoise_vit", "train", "--out-dir", str(out_dir), *ARGS, f"name={name}", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def last_lines(text, keys):
    return [line for line in text.splitlines() if any(k in line for k in keys)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/ddp_interrupt"))
    out = parser.parse_args().out_dir
    shutil.rmtree(out, ignore_errors=True)

    reference = torchrun(out, "reference")
    reference_out = reference.communicate()[0]
    print(f"uninterrupted: torchrun exit {reference.returncode}")

    interrupted = torchrun(out, "interrupted")
    checkpoint = out / "interrupted" / "checkpoint_last.pt"
    while not checkpoint.exists() and interrupted.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    interrupted.send_signal(signal.SIGINT)
    interrupted_out = interrupted.communicate()[0]
    left = read_checkpoint(checkpoint)
    print(f"interrupted: torchrun exit {interrupted.returncode}; checkpoint at step {left['step']}"
          f" (epoch {left['epoch']}), streams at steps {[s['step'] for s in left['streams']]}")
    for line in last_lines(interrupted_out, ["stopped by", "closing signal"]):
        print("   ", line.strip())

    resumed = torchrun(out, "interrupted", "--resume")
    resumed_out = resumed.communicate()[0]
    print(f"resumed: torchrun exit {resumed.returncode}")
    for line in last_lines(resumed_out, ["resumed from", "done:"]):
        print("   ", line.strip())

    a = read_checkpoint(out / "interrupted" / "checkpoint_last.pt")
    b = read_checkpoint(out / "reference" / "checkpoint_last.pt")
    different = [k for k in b["model"] if not torch.equal(a["model"][k], b["model"][k])]
    print(f"final steps: resumed {a['step']}, uninterrupted {b['step']}")
    print(f"final weights identical: {not different} ({len(different)} of {len(b['model'])} "
          "tensors differ)")
    if reference.returncode or resumed.returncode:
        print(reference_out[-2000:], resumed_out[-2000:])
    return 0 if not different and a["step"] == b["step"] else 1


if __name__ == "__main__":
    sys.exit(main())
