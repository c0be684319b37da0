"""The one runner of a checked job."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class JobResult:
    """What a job did: ``frames`` written (animate) or measured (evaluate), ``seconds`` of wall
    time, ``outputs`` the files it wrote."""

    id: str | None
    frames: int
    seconds: float
    outputs: list = field(default_factory=list)


def run_job(job, models=None) -> JobResult:
    """Run ``job`` (checked first if it was not) with the networks of ``models``.

    Args:
        job: a :class:`~mimaface_core.jobs.spec.Job`.
        models: a :class:`~mimaface_core.jobs.models.ModelCache` kept across jobs (a batch
            worker's); None loads for this job alone.

    The job runs under its own random state (``torch.random.fork_rng``, seeded with the job's
    ``--seed``): every draw of the pipeline already comes from generators seeded by the options,
    and no global state passes from one job to the next, so a job's frames are those of its solo
    run (bit for bit on the CPU; tests/test_batch.py).

    Raises:
        MIMAFaceError / ValueError: bad inputs (checks), or what the run met (no face...).
    """
    import torch

    from .models import ModelCache

    if job.checked is None:
        job.check()
    models = ModelCache() if models is None else models
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(getattr(job.args, "seed", 0) or 0))
        if job.kind == "animate":
            from ..cli.animate import execute
        else:
            from ..cli.evaluate import execute
        frames = execute(job.args, job.checked, models)
    return JobResult(job.id, int(frames or 0), time.perf_counter() - start,
                     [Path(p) for p in job.outputs() if Path(p).exists()])
