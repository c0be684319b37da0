"""Multi-GPU training through PyTorch's own engine: launch the train command with ``torchrun``
(``torchrun --nproc_per_node 4 -m mimaface_core train ...``); each process trains on its own GPU
with its own batches, and DistributedDataParallel averages the gradients (the release trained on
4 GPUs with accelerate, which does the same).

Process r draws its step-s batch and noise from ``seed · 1000003 + s + 7919·r`` (rank 0 draws what
a single-process run draws); rank 0 prepares the data cache first and writes the checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

RANK_SEED_STRIDE = 7919


@dataclass(frozen=True)
class Distributed:
    """Where this process stands: ``rank`` of ``world`` processes, its ``device``; ``owns_group``
    when it started the process group (and so ends it)."""

    rank: int = 0
    world: int = 1
    device: str = "cpu"
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def mean(self, value: float) -> float:
        """The mean of a number over the processes."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device if self.device.startswith("cuda") else "cpu")
        torch.distributed.all_reduce(t)
        return float(t) / self.world

    def close(self) -> None:
        if self.owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def setup(device: str) -> Distributed:
    """Join the process group when started by torchrun (``WORLD_SIZE`` > 1): NCCL on CUDA (one GPU
    per process, ``LOCAL_RANK``), gloo on the CPU. A single process gets ``Distributed()``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed(device=device)
    cuda = torch.device(device).type == "cuda"
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    owns = not torch.distributed.is_initialized()
    if owns:
        torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    return Distributed(torch.distributed.get_rank(), torch.distributed.get_world_size(), device, owns)


def rank_seed(step_seed: int, rank: int) -> int:
    """The seed of a process's draws at a step (rank 0: the single-process seed)."""
    return step_seed + RANK_SEED_STRIDE * rank


class StepModule(torch.nn.Module):
    """The three trained networks as one module whose forward is the training step's loss, so one
    DistributedDataParallel covers them all (one set of gradient buckets: the processes' collectives
    stay in step even when their draws leave different parts unused, e.g. appearance dropout)."""

    def __init__(self, models):
        super().__init__()
        self.unet, self.mim, self.clip, self.stage = models.unet, models.mim, models.clip, models.stage

    def forward(self, batch, draws, options):
        from .step import forward_step

        out = forward_step(self, batch, draws, options)
        return out.loss, out.out


def wrap(models, dist: Distributed):
    """A function ``step(batch, draws, options) → (loss, intermediates)``: the plain step for one
    process, or the step through one DistributedDataParallel over :class:`StepModule` (unused
    parameters allowed) for several. ``models`` keeps the plain modules for checkpoints."""
    if dist.world == 1:
        from .step import forward_step

        def single(batch, draws, options):
            out = forward_step(models, batch, draws, options)
            return out.loss, out.out

        return single
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [torch.device(dist.device).index] if dist.device.startswith("cuda") else None
    return DDP(StepModule(models), device_ids=ids, find_unused_parameters=True)
