"""Multi-process training through PyTorch's DistributedDataParallel (gloo on the CPU, two
processes): the gradients every process applies are the mean of the processes' own gradients, also
when one process's draws leave the MIA module and CLIP out of its step (appearance dropout)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from ports import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_two_processes_apply_the_mean_gradient(train_root, tmp_path):
    port, world = free_port(), 2
    procs = [subprocess.Popen([sys.executable, str(ROOT / "tests" / "ddp_worker.py"), str(r), str(world), str(port),
                               str(train_root), str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env={**os.environ,
                                                                         "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"})
             for r in range(world)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(o[-3000:] for o in outputs)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world)]
    torch.testing.assert_close(ranks[0]["norms"], ranks[1]["norms"], rtol=1e-6, atol=0)
    for name in ("unet.conv_in.weight", "mim.transform_dim_gaze.weight"):
        mean = (ranks[0]["local"][name] + ranks[1]["local"][name]) / world
        assert float(mean.abs().max()) > 0
        for r in range(world):
            torch.testing.assert_close(ranks[r]["synced"][name], mean, rtol=1e-5, atol=1e-8)
    assert float(ranks[1]["local"]["mim.transform_dim_gaze.weight"].abs().max()) == 0, "rank 1 dropped the MIA output"
