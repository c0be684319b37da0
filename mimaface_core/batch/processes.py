"""``--workers N`` without Ray: N local processes (one per visible GPU), each with its own
:class:`~mimaface_core.jobs.ModelCache`, taking the next job from one queue when free.

Each process sees one GPU (``CUDA_VISIBLE_DEVICES`` set before torch loads, as Ray does for its
actors); on a machine without GPUs the processes run on the CPU. Jobs travel as argv specs
(:func:`~mimaface_core.batch.worker.spec_of`) and are checked again in the worker.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def _worker(gpu, tasks, results) -> None:  # pragma: no cover - runs in a child process
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    from ..jobs import ModelCache
    from .worker import run_spec

    models = ModelCache()
    while True:
        item = tasks.get()
        if item is None:
            return
        index, spec = item
        results.put((index, run_spec(spec, models)))


def visible_gpus() -> list[int]:
    """Indices of the visible CUDA devices (empty without CUDA)."""
    try:
        import torch

        return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    except ImportError:  # pragma: no cover
        return []


def run_processes(todo, finish, workers: int | None = None) -> None:
    """Run the entries over ``workers`` processes (default: one per visible GPU).

    Raises:
        KeyboardInterrupt: after stopping the workers (the finished jobs are recorded).
    """
    import multiprocessing as mp

    from tqdm import tqdm

    from .worker import spec_of

    gpus = visible_gpus()
    n = workers or max(1, len(gpus))
    ctx = mp.get_context("spawn")
    tasks, results = ctx.Queue(), ctx.Queue()
    for index, entry in enumerate(todo):
        tasks.put((index, spec_of(entry.job)))
    procs = []
    for k in range(n):
        gpu = gpus[k % len(gpus)] if gpus else None
        tasks.put(None)
        procs.append(ctx.Process(target=_worker, args=(gpu, tasks, results), daemon=True))
    log.info("batch: %d worker process(es)%s", n, f" on GPUs {gpus[:n]}" if gpus else " on the CPU")
    for p in procs:
        p.start()
    try:
        with tqdm(total=len(todo), desc="jobs", unit="job") as bar:
            for _ in range(len(todo)):
                while True:
                    try:
                        index, outcome = results.get(timeout=5)
                        break
                    except Exception:  # queue.Empty: a worker may have died
                        if not any(p.is_alive() for p in procs):
                            raise RuntimeError("every batch worker process died; see their errors above") from None
                finish(todo[index], outcome)
                bar.update(1)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(timeout=10)
