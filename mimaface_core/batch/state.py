"""``batch_state.jsonl`` in the output folder: one line per finished or failed job (id,
fingerprint of its inputs and options, status, seconds, frames, error, retries), appended and
flushed as each job ends, so an interrupted batch goes on where it stopped. The last line of an id wins."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

STATE_FILE = "batch_state.jsonl"


class BatchState:
    """The state of the batches run into ``out_dir``."""

    def __init__(self, out_dir: str | Path):
        self.path = Path(out_dir) / STATE_FILE
        self.records: dict[str, dict] = {}
        if self.path.is_file():
            for text in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(text)
                except json.JSONDecodeError:  # a line cut by a killed run
                    continue
                if isinstance(record, dict) and "id" in record:
                    self.records[record["id"]] = record

    def decide(self, job, fingerprint: str, retry_failed: bool = False) -> tuple[bool, str]:
        """(run it?, why): done with the same fingerprint and its outputs present → skip; failed
        with the same fingerprint → skip unless ``retry_failed``; anything else runs."""
        record = self.records.get(job.id)
        if record is None:
            return True, "new"
        if record.get("fingerprint") != fingerprint:
            return True, "changed"
        if record.get("status") == "done":
            if all(Path(p).exists() for p in job.outputs()):
                return False, "done before, unchanged"
            return True, "output missing"
        if retry_failed:
            return True, "retrying a failed job"
        return False, "failed before, unchanged (--retry-failed reruns it)"

    def record(self, job_id: str, fingerprint: str | None, status: str, seconds: float = 0.0, frames: int = 0,
               error: str | None = None, retries: int = 0) -> dict:
        """Append one line and flush it to disk."""
        record = {"id": job_id, "fingerprint": fingerprint, "status": status, "seconds": round(seconds, 3),
                  "frames": frames, "error": error, "retries": retries, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.records[job_id] = record
        return record
