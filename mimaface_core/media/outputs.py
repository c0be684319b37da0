"""Writing outputs safely: into a temporary file beside the target, renamed over it on success.

An interrupted or failed run leaves nothing under the final name (the temporary file is removed;
if the process is killed outright, a file named ``.<name>.<id>.partial<suffix>`` may remain, clearly
marked). Each run has its own temporary name and the rename is atomic (``os.replace``), so two
runs writing the same path never produce a mixed file: the last one to finish wins whole.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def partial_path(target: str | Path) -> Path:
    """A unique temporary path beside ``target`` with the same suffix (so writers pick the format)."""
    target = Path(target)
    return target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}.partial{target.suffix}")


@contextmanager
def atomic_output(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``target`` when the block succeeds, delete it
    when the block raises (KeyboardInterrupt included)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
