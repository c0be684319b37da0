"""What every kind of batch worker does with one job: build it from its spec (kind, argv, id,
field names), check it, run it with the worker's :class:`~mimaface_core.jobs.ModelCache`, and
return the outcome as plain data (a failing job is an outcome, not an exception)."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


def spec_of(job) -> dict:
    """A job as plain data another process can rebuild (argv, id, origin, field names)."""
    return {"kind": job.kind, "argv": list(job.argv), "id": job.id, "origin": job.origin, "names": dict(job.names)}


def job_of(spec: dict):
    """The :class:`~mimaface_core.jobs.Job` of :func:`spec_of`'s data (not yet checked)."""
    from ..jobs import Job

    return Job.from_argv(spec["kind"], spec["argv"], id=spec["id"], origin=spec["origin"], names=spec["names"])


def run_one(job, models) -> dict:
    """Check (when not yet) and run ``job``; {"frames", "seconds", "error"} with ``error`` None on
    success, else one line naming what failed (the job's fields named as its manifest line does).
    KeyboardInterrupt passes through."""
    from ..errors import MIMAFaceError
    from ..jobs import run_job

    start = time.perf_counter()
    try:
        result = run_job(job if job.checked is not None else job.check(), models)
        return {"frames": result.frames, "seconds": result.seconds, "error": None}
    except (MIMAFaceError, ValueError) as exc:
        error = job.rename(" ".join(str(exc).split()))
    except Exception as exc:  # noqa: BLE001 - a failing job never stops the batch
        log.debug("job %s failed", job.id, exc_info=True)
        error = f"{type(exc).__name__}: {job.rename(' '.join(str(exc).split()))}"
    return {"frames": 0, "seconds": time.perf_counter() - start, "error": error or "failed"}


def run_spec(spec: dict, models) -> dict:
    """:func:`run_one` on a job rebuilt from its spec (a worker in another process)."""
    from ..errors import MIMAFaceError

    try:
        job = job_of(spec)
    except MIMAFaceError as exc:
        return {"frames": 0, "seconds": 0.0, "error": " ".join(str(exc).split())}
    return run_one(job, models)
