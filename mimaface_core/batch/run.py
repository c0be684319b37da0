""":func:`run_batch`: check every manifest line, decide what to run from the saved state, run it
locally, in processes or on Ray, record each job as it ends, write the report."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import MIMAFaceError
from .report import REPORT_FILE, Row, summary_line, write_report

log = logging.getLogger(__name__)


@dataclass
class BatchSummary:
    """What a batch did: one :class:`~mimaface_core.batch.report.Row` per manifest line, the
    wall time, the closing line, and the report's path (None with ``check_only``)."""

    rows: list
    seconds: float
    line: str
    report: Path | None

    @property
    def failed(self) -> int:
        return sum(r.status in ("failed", "invalid", "interrupted") for r in self.rows)

    def row(self, job_id: str) -> Row:
        return next(r for r in self.rows if r.id == job_id)


def run_batch(manifest: str | Path, out_dir: str | Path, *, defaults: dict | None = None, check_only: bool = False,
              strict: bool = False, hash_files: bool = False, retry_failed: bool = False, ray: str | None = None,
              workers: int | None = None, max_retries: int = 2, models=None, on_submit=None) -> BatchSummary:
    """Run a manifest of jobs into ``out_dir`` (README "Batch and clusters").

    Args:
        manifest: a .jsonl (or .csv) file, one job per line (:mod:`~mimaface_core.batch.manifest`).
        out_dir: where outputs, ``batch_state.jsonl`` and ``batch_report.csv`` go.
        defaults: {kind: argv} every job of that kind starts from (``batch``'s own ``--weights``...).
        check_only: check every line and stop (nothing runs, nothing is written).
        strict: refuse to run anything when a line is bad.
        hash_files: fingerprint inputs by sha256 instead of path, size and modification time.
        retry_failed: rerun jobs that failed before with unchanged inputs.
        ray: None (no Ray), "local", "auto" or a cluster address.
        workers: Ray actors, or without Ray local processes (default: one per GPU; 1 = this process).
        max_retries: times a job whose Ray worker died is sent to another.
        models: a :class:`~mimaface_core.jobs.ModelCache` for the local run (default: a new one).
        on_submit: Ray only, ``on_submit(actor, entry)`` when a job is sent.

    Returns:
        :class:`BatchSummary` (also printed: the closing line).

    Raises:
        MIMAFaceError: the manifest cannot be read, or ``strict`` and a line is bad.
        KeyboardInterrupt: after saving the state and the report.
    """
    from .manifest import load_manifest
    from .state import BatchState

    start = time.perf_counter()
    out_dir = Path(out_dir)
    entries = load_manifest(manifest, out_dir, defaults)
    rows = {e.line: Row(e.line, e.id, e.job.kind if e.job else "", status="pending") for e in entries}
    bad = [e for e in entries if not e.ok]
    for e in bad:
        rows[e.line].status, rows[e.line].error = "invalid", e.error
        log.error("error: %s line %d (job %s): %s", Path(manifest).name, e.line, e.id, e.error)
    if check_only:
        for e in entries:
            if e.ok:
                print(f"line {e.line}: job {e.id} ok ({e.job.kind} -> {', '.join(map(str, e.job.outputs()))})")
        print(f"check: {len(entries) - len(bad)} job(s) ok, {len(bad)} bad line(s)")
        return BatchSummary(list(rows.values()), time.perf_counter() - start,
                            f"check: {len(entries) - len(bad)} ok, {len(bad)} bad", None)
    if strict and bad:
        raise MIMAFaceError(f"--strict: {len(bad)} bad line(s) in {manifest} (line(s) "
                            f"{', '.join(str(e.line) for e in bad)}); nothing ran.")
    out_dir.mkdir(parents=True, exist_ok=True)
    state = BatchState(out_dir)
    todo, prints = [], {}
    for e in entries:
        if not e.ok:
            continue
        prints[e.line] = e.job.fingerprint(hash_files)
        go, why = state.decide(e.job, prints[e.line], retry_failed)
        rows[e.line].note = why
        if go:
            todo.append(e)
        else:
            record = state.records[e.id]
            rows[e.line].status, rows[e.line].frames = "skipped", 0
            rows[e.line].outputs = ";".join(map(str, e.job.outputs()))
            log.info("job %s (line %d): skipped, %s", e.id, e.line, why)
            if record.get("status") == "failed":
                rows[e.line].error = record.get("error") or ""

    def finish(entry, outcome):
        row = rows[entry.line]
        row.seconds, row.frames = round(outcome.get("seconds", 0.0), 3), outcome.get("frames", 0)
        row.retries = outcome.get("retries", 0)
        row.outputs = ";".join(map(str, entry.job.outputs()))
        if outcome.get("error"):
            row.status, row.error = "failed", outcome["error"]
            log.error("error: job %s (line %d) failed: %s", entry.id, entry.line, outcome["error"])
        else:
            row.status = "done"
        if row.retries:
            row.note = f"{row.note}; retried {row.retries} time(s) after its worker died".lstrip("; ")
        state.record(entry.id, prints[entry.line], row.status, row.seconds, row.frames, row.error or None, row.retries)

    try:
        if ray:
            from .ray_runner import run_ray

            run_ray(todo, finish, ray, workers, max_retries, on_submit=on_submit)
        elif workers is not None and workers > 1 or (workers is None and _gpu_count() > 1):
            from .processes import run_processes

            run_processes(todo, finish, workers)
        else:
            from .local import run_local

            run_local(todo, finish, models)
    except KeyboardInterrupt:
        for row in rows.values():
            if row.status == "pending":
                row.status, row.note = "interrupted", "not finished; the next run goes on from here"
        _close(out_dir, rows, start)
        raise
    return _close(out_dir, rows, start)


def _gpu_count() -> int:
    from .processes import visible_gpus

    return len(visible_gpus())


def _close(out_dir: Path, rows: dict, start: float) -> BatchSummary:
    report = write_report(out_dir / REPORT_FILE, list(rows.values()))
    seconds = time.perf_counter() - start
    line = summary_line(list(rows.values()), seconds)
    print(line)
    return BatchSummary(sorted(rows.values(), key=lambda r: r.line), seconds, line, report)
