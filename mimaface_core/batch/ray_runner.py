"""The batch on a Ray cluster (the optional extra ``[cluster]``; Ray is imported only here, only
with ``--ray``).

One actor per GPU (``num_gpus=1``; Ray gives each its own ``CUDA_VISIBLE_DEVICES``), or ``--workers
N`` CPU actors; each holds a :class:`~mimaface_core.jobs.ModelCache`, so its networks stay loaded
between its jobs. Scheduling is dynamic: a job goes to whichever actor is free (a loop over
pending futures with ``ray.wait``). When an actor dies (its node lost, killed, out of memory) its
job goes back to the front of the queue for another actor, up to ``max_retries`` times, and a new
actor takes the dead one's place. Workers write the outputs themselves: every path is absolute
and must be the same on every node (a shared filesystem; README "Batch and clusters").

Source: Ray's actor and ``ray.wait`` APIs (docs.ray.io, "Actors", "ray.wait", "Fault tolerance").
"""

from __future__ import annotations

import logging
import os
from collections import deque
from pathlib import Path

from ..errors import MIMAFaceError

log = logging.getLogger(__name__)
PACK_ROOT = Path(__file__).resolve().parents[2]


def import_ray():
    """``ray``, or a MIMAFaceError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise MIMAFaceError("--ray needs Ray: pip install 'comfyui-mimaface[cluster]' (or pip install 'ray>=2.9') "
                            "on this machine and on every node of the cluster.") from None
    return ray


class BatchWorker:
    """A Ray actor's body: its networks and :func:`~mimaface_core.batch.worker.run_spec`."""

    def __init__(self, threads: int | None = None):
        import torch

        from ..jobs import ModelCache

        if threads:
            torch.set_num_threads(threads)
        self.models = ModelCache()

    def run(self, spec: dict) -> dict:
        from .worker import run_spec

        outcome = run_spec(spec, self.models)
        outcome["worker"] = f"{os.uname().nodename}:{os.getpid()}"
        return outcome

    def pid(self) -> int:
        return os.getpid()


def connect(address: str, workers: int | None):
    """``ray.init`` for ``--ray local`` (a Ray instance on this machine) or ``auto`` / ADDRESS (a
    running cluster); nothing when Ray is already initialised (a test, a notebook)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in (str(PACK_ROOT), os.environ.get("PYTHONPATH"))
                                                      if p)}}
    if address == "local":
        ray.init(num_cpus=workers or None, include_dashboard=False, runtime_env=env)
    else:
        ray.init(address=address, runtime_env=env)
    return ray


def run_ray(todo, finish, address: str = "local", workers: int | None = None, max_retries: int = 2,
            on_submit=None) -> None:
    """Run the entries on Ray actors; ``finish(entry, outcome)`` as each ends (``outcome["retries"]``:
    times its worker died under it). ``on_submit(actor, entry)`` is called when a job is sent (tests
    kill an actor there).

    The actors are ended when the batch ends (or is interrupted).

    Raises:
        MIMAFaceError: Ray missing or no cluster at ``address``.
    """
    ray = connect(address, workers)
    from ray.exceptions import RayActorError

    gpus = int(ray.cluster_resources().get("GPU", 0))
    n = workers or gpus or 1
    if gpus:
        actor_class = ray.remote(num_gpus=1, num_cpus=1, max_restarts=0)(BatchWorker)
        threads = None
    else:
        actor_class = ray.remote(num_cpus=1, max_restarts=0)(BatchWorker)
        # Ray limits a 1-CPU actor to one thread (OMP_NUM_THREADS=1); torch's CPU kernels split their
        # reductions by thread count, so a job gives the same bits as the same job run here only with
        # this process's thread count (a CPU actor may then use more threads than its Ray CPU share)
        import torch

        threads = torch.get_num_threads()
    log.info("batch: %d Ray worker(s)%s", n, " (one per GPU)" if gpus else " on CPUs")
    from tqdm import tqdm

    from .worker import spec_of

    actors = [actor_class.remote(threads) for _ in range(n)]
    used = list(actors)
    idle = deque(actors)
    pending = deque(todo)
    retries = {id(e): 0 for e in todo}
    inflight: dict = {}
    try:
        with tqdm(total=len(todo), desc="jobs", unit="job") as bar:
            while pending or inflight:
                while pending and idle:
                    actor, entry = idle.popleft(), pending.popleft()
                    inflight[actor.run.remote(spec_of(entry.job))] = (actor, entry)
                    if on_submit is not None:
                        on_submit(actor, entry)
                ready, _ = ray.wait(list(inflight), num_returns=1)
                actor, entry = inflight.pop(ready[0])
                try:
                    outcome = ray.get(ready[0])
                except RayActorError as exc:
                    retries[id(entry)] += 1
                    replacement = actor_class.remote(threads)
                    used.append(replacement)
                    idle.append(replacement)
                    if retries[id(entry)] <= max_retries:
                        log.warning("batch: the worker running job %s died (%s); retrying it on another worker "
                                    "(retry %d of %d)", entry.id, type(exc).__name__, retries[id(entry)], max_retries)
                        pending.appendleft(entry)
                        continue
                    outcome = {"frames": 0, "seconds": 0.0, "error": f"its worker died {retries[id(entry)]} times "
                               f"(--max-retries {max_retries}): {' '.join(str(exc).split())[:200]}"}
                except Exception as exc:  # noqa: BLE001 - a task error is the job's failure
                    outcome = {"frames": 0, "seconds": 0.0, "error": f"{type(exc).__name__}: "
                               f"{' '.join(str(exc).split())[:500]}"}
                    idle.append(actor)
                else:
                    idle.append(actor)
                outcome["retries"] = retries[id(entry)]
                finish(entry, outcome)
                bar.update(1)
    finally:
        for actor in used:
            ray.kill(actor)
