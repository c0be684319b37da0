"""One process of tests/test_training_distributed.py (spawned twice): the image-stage step of the
train_step fixture's networks through training.distributed, with rank-specific draws."""

from __future__ import annotations

import os
import random
import sys


def run(rank: int, world: int, port: int, root: str, out: str) -> None:
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    import torch

    torch.set_num_threads(1)
    from mimaface_core.training.distributed import rank_seed, setup, wrap
    from mimaface_core.training.models import load_training_models, set_trainable
    from mimaface_core.training.step import StepOptions, TrainBatch, draw_step, forward_step

    dist = setup("cpu")
    assert (dist.rank, dist.world) == (rank, world)
    models = load_training_models(root, "image")
    trainable = set_trainable(models)
    g = torch.Generator().manual_seed(rank_seed(11, rank))
    batch = TrainBatch(torch.randn(1, 3, 224, 224, generator=g), torch.randn(1, 1, 4, 16, 16, generator=g),
                       torch.randn(1, 1, 4, 16, 16, generator=g), torch.randn(1, 261, generator=g) * 0.1,
                       torch.randn(1, 25088, generator=g))
    draws = draw_step("image", (1, 4, 16, 16), g, random.Random(rank))
    draws.dropout = rank == 1  # rank 1 leaves the MIA module and CLIP out of its graph
    # local gradients first (no DDP), then the distributed step
    forward_step(models, batch, draws, StepOptions()).loss.backward()
    local = {n: p.grad.clone() if p.grad is not None else torch.zeros_like(p) for n, p in trainable}
    for _, p in trainable:
        p.grad = None
    step = wrap(models, dist)  # kept alive until backward (DDP's reducer lives on it)
    loss, _ = step(batch, draws, StepOptions())
    loss.backward()
    synced = {n: p.grad.clone() if p.grad is not None else torch.zeros_like(p) for n, p in trainable}
    torch.save({"local": {n: local[n] for n in ("unet.conv_in.weight", "mim.transform_dim_gaze.weight")},
                "synced": {n: synced[n] for n in ("unet.conv_in.weight", "mim.transform_dim_gaze.weight")},
                "norms": torch.tensor([float(synced[n].norm()) for n, _ in trainable])}, f"{out}/rank{rank}.pt")
    dist.close()


if __name__ == "__main__":
    run(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
