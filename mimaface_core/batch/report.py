"""``batch_report.csv`` (one row per manifest line) and the closing line."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from pathlib import Path

REPORT_FILE = "batch_report.csv"


@dataclass
class Row:
    """One job's outcome. ``status``: done, failed, skipped, invalid (a bad manifest line, counted
    as failed) or interrupted; ``retries``: times it was sent to another worker after one died."""

    line: int
    id: str
    kind: str = ""
    status: str = ""
    seconds: float = 0.0
    frames: int = 0
    retries: int = 0
    outputs: str = ""
    note: str = ""
    error: str = ""


def write_report(path: str | Path, rows: list[Row]) -> Path:
    """Write the rows as CSV (atomically)."""
    from ..media.outputs import atomic_output

    path = Path(path)
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=[x.name for x in fields(Row)])
            writer.writeheader()
            for row in sorted(rows, key=lambda r: r.line):
                writer.writerow(asdict(row))
    return path


def summary_line(rows: list[Row], seconds: float) -> str:
    """``batch: N done, M failed, K skipped, F frames, S s`` (bad lines and interrupted jobs count as failed)."""
    done = sum(r.status == "done" for r in rows)
    failed = sum(r.status in ("failed", "invalid", "interrupted") for r in rows)
    skipped = sum(r.status == "skipped" for r in rows)
    frames = sum(r.frames for r in rows if r.status == "done")
    return f"batch: {done} done, {failed} failed, {skipped} skipped, {frames} frames, {seconds:.0f} s"
