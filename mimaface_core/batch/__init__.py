"""Batch: a manifest of jobs run resumably, with networks loaded once per worker, in this process,
in one process per GPU, or on a Ray cluster (docs/ARCHITECTURE.md §2, README "Batch and clusters").

- :mod:`.manifest`: the JSON-lines / CSV manifest into checked :class:`~mimaface_core.jobs.Job`\\ s.
- :mod:`.state`: ``batch_state.jsonl``, what ran and with which inputs (resume, skip, rerun).
- :mod:`.local`: one process with a :class:`~mimaface_core.jobs.ModelCache`.
- :mod:`.processes`: ``--workers N`` local processes, one per GPU, without Ray.
- :mod:`.ray_runner`: Ray actors (imported only with ``--ray``).
- :mod:`.report`: ``batch_report.csv`` and the closing line.
- :mod:`.run`: :func:`run_batch`, what ``python -m mimaface_core batch`` calls.
"""

from __future__ import annotations

from .run import BatchSummary, run_batch

__all__ = ["BatchSummary", "run_batch"]
