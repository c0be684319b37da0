"""The manifest: one job per line of a JSON-lines file (``{"id": ..., "kind": "animate",
"source": ..., "driving": ..., "out": ..., "steps": 4}``) or per row of a CSV with the same
columns. Keys are the command's options without ``--`` (``-`` or ``_``); paths are relative to
the manifest's folder, outputs to the batch's ``--out-dir``. Every line is built and checked
before any model loads; a bad line is kept with its line number and its error."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import MIMAFaceError
from ..jobs import Job
from ..jobs.spec import OUT_OPTION

IMAGE_DRIVERS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


@dataclass
class Entry:
    """One manifest line: its number (1-based; a CSV's header is line 1), the job's id, and the
    checked job or the error that made the line bad."""

    line: int
    id: str
    job: Job | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def read_lines(path: Path) -> list[tuple[int, dict | None, str | None]]:
    """(line number, options or None, error or None) for each job line; blank lines and lines
    starting with ``#`` are skipped (JSON lines).

    Raises:
        MIMAFaceError: the manifest cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise MIMAFaceError(f"manifest not found: {path}")
    rows: list = []
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            for row in reader:
                extra = row.pop(None, None)
                error = f"{len(extra)} cell(s) more than the header's columns" if extra else None
                rows.append((reader.line_num, None if error else {k.strip(): v for k, v in row.items() if k}, error))
        return rows
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            rows.append((number, None, f"not JSON: {exc.msg} at column {exc.colno}"))
            continue
        if not isinstance(value, dict):
            rows.append((number, None, "a line is one JSON object {\"source\": ..., ...}"))
            continue
        rows.append((number, value, None))
    return rows


def _default_out(options: dict, job_id: str) -> str:
    kind = str(options.get("kind") or "animate").strip().lower()
    if kind == "evaluate":
        return f"{job_id}.json"
    driving = str(options.get("driving") or "")
    return f"{job_id}.png" if Path(driving).suffix.lower() in IMAGE_DRIVERS else f"{job_id}.mp4"


def load_manifest(path: str | Path, out_dir: str | Path, defaults: dict[str, list[str]] | None = None,
                  progress=None) -> list[Entry]:
    """Every line of the manifest as a built and checked job, or as an error with its line number.

    Args:
        path: the .jsonl (or .csv) manifest.
        out_dir: where outputs go (relative ``out`` values and the default ``<id>.mp4`` / ``<id>.json``).
        defaults: {kind: argv} every job of that kind starts from (the batch's own options).
        progress: called with each entry as it is checked.

    Duplicate ids and two jobs writing the same file make the later line bad.
    """
    path, out_dir = Path(path).resolve(), Path(out_dir).resolve()
    defaults = defaults or {}
    entries: list[Entry] = []
    ids: dict[str, int] = {}
    outs: dict[Path, int] = {}
    for number, options, error in read_lines(path):
        job_id = str((options or {}).get("id") or f"line{number}").strip()
        entry = Entry(number, job_id, error=error)
        entries.append(entry)
        if error is None:
            try:
                options = dict(options)
                kind = str(options.get("kind") or "animate").strip().lower()
                if kind in OUT_OPTION and not any(k in options for k in ("out", OUT_OPTION[kind][2:])):
                    options["out"] = _default_out(options, job_id)
                job = Job.from_options(options, base=path.parent, out_dir=out_dir, defaults=defaults.get(kind, []),
                                       id=job_id, origin=f"{path.name} line {number}")
                job.check()
                entry.job = job
            except MIMAFaceError as exc:
                entry.error = " ".join(str(exc).split())
        if entry.ok:
            if job_id in ids:
                entry.error, entry.job = f"duplicate id {job_id!r} (first on line {ids[job_id]})", None
            else:
                ids[job_id] = number
        if entry.ok:
            for out in entry.job.outputs():
                out = out.resolve()
                if out in outs:
                    entry.error = f"writes {out.name} like line {outs[out]}: give each job its own 'out'"
                    entry.job = None
                    break
            else:
                for out in entry.job.outputs():
                    outs[out.resolve()] = number
        if progress is not None:
            progress(entry)
    return entries
