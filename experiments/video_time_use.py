"""How much each trained video model uses the other frames (docs/VIDEO.md, divided_space_time).

    python experiments/video_time_use.py runs/compare_video    # after compare_video.py

For the default task's equal-CPU-time checkpoints (seed 0): replace frames 1..T-1 of each of 16
evaluation clips by another clip's and measure how much the output of frame 0 moves (mean
absolute change, relative to the mean absolute output), and, for TimeSformer's divided
attention, how far each block's temporal_fc has grown from its zero start (Frobenius norm of
its weight, beside the spatial attention's output projection in the same block). Prints one
JSON object.
"""
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data_gen import generate_videos  # noqa: E402
from denoise_vit.checkpoint import model_from_checkpoint, read_checkpoint  # noqa: E402

PRESETS = ("video_framewise", "video_factorised_self_attention", "video_factorised_dot_product",
           "video_divided_space_time", "video_fast", "video_fastdvdnet")


@torch.no_grad()
def frame0_sensitivity(model, x):
    swapped = torch.cat([x[:, :, :1], x.roll(1, dims=0)[:, :, 1:]], dim=2)
    a, b = model(x)[:, :, 0], model(swapped)[:, :, 0]
    return ((a - b).abs().mean() / a.abs().mean()).item()


def main():
    runs = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "runs" / "compare_video")
    x, _ = generate_videos(16, 8, 64, generator=torch.Generator().manual_seed(1234))
    out = {}
    for preset in PRESETS:
        path = runs / f"{preset}-default-cpu-s0" / "checkpoint_last.pt"
        if not path.exists():
            continue
        model = model_from_checkpoint(read_checkpoint(path)).eval()
        row = {"frame0_change_when_other_frames_swapped": frame0_sensitivity(model, x)}
        if preset == "video_divided_space_time":
            row["temporal_fc_norm_per_block"] = [
                b.mixers[0].fc.weight.norm().item() for b in model.encoder.blocks]
            row["spatial_proj_norm_per_block"] = [
                b.mixers[1].attn.proj.weight.norm().item() for b in model.encoder.blocks]
        out[preset] = row
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
