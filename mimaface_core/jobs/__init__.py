"""Jobs: one ``animate`` or ``evaluate`` run as data (:class:`Job`), built from command-line
arguments, from a line of a ``batch`` manifest or from Python, checked by one :func:`check_job`
before any model loads, and run by one :func:`run_job` with the networks of a
:class:`ModelCache` (docs/ARCHITECTURE.md §2). The ``animate`` and ``evaluate`` commands and
``batch`` all go through here, so they cannot drift apart."""

from __future__ import annotations

from .check import check_job
from .models import ModelCache
from .runner import JobResult, run_job
from .spec import KINDS, Job

__all__ = ["KINDS", "Job", "JobResult", "ModelCache", "check_job", "run_job"]
