"""Distributed data parallel set up from torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE).

Without torchrun everything here is a single-process no-op, so the same training code runs
alone on a laptop CPU and under `torchrun --nproc_per_node N` (gloo on CPU, nccl on GPUs).
"""
import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist



@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self):
        return self.world_size > 1

    @property
    def is_main(self):
        return self.rank == 0


def init_distributed():
    """Join the process group when launched by torchrun; returns this process's DistInfo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world)
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def all_max(values, device):
    """The maximum of each number over all ranks (for flags: their logical OR)."""
    t = torch.tensor([float(v) for v in values], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def broadcast_buffers(module):
    """Give every rank rank 0's buffers (BatchNorm statistics).

    DDP broadcasts them at the start of each forward, so after the last step each rank still
    holds its own update; this makes the final model the same everywhere (and equal to the
    checkpoint, which rank 0 writes).
    """
    if dist.is_initialized():
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def barrier():
    if dist.is_initialized():
        dist.barrier()


def cleanup(synchronize=False):
    """Leave the process group. With `synchronize` (every rank got here normally) first wait for
    the others and collect the objects still holding the group (the DDP wrapper's reducer), so
    no rank destroys its gloo pairs while a peer's are still in use. After an error, leave at
    once: a peer may never arrive."""
    if not dist.is_initialized():
        return
    if synchronize:
        gc.collect()
        try:
            dist.barrier()
        except RuntimeError:    # a peer left after an error of its own, which it reports
            pass
    dist.destroy_process_group()


def broadcast_object(obj):
    """Rank 0's `obj` on every rank (itself when not distributed)."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
