"""Writing outputs safely: into a temporary file beside the target, renamed over it on success.

An interrupted or failed run leaves nothing under the final name (the temporary file is removed;
if the process is killed outright, a file named ``.<name>.<id>.partial<suffix>`` may remain, clearly
marked). Each run has its own temporary name and the rename is atomic (``os.replace``), so two
runs writing the same path never produce a mixed file: the last one to finish wins whole.

Every output gets the mode of a file the user creates: ``0o666 & ~umask`` for files (0644 under
umask 022), ``0o777 & ~umask`` for folders, whatever the writer used (safetensors, for one, creates
its files with mode 0600). The modes are set just before the rename, by :func:`apply_umask_mode`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def partial_path(target: str | Path) -> Path:
    """A unique temporary path beside ``target`` with the same suffix (so writers pick the format)."""
    target = Path(target)
    return target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}.partial{target.suffix}")


def current_umask() -> int:
    """The process's umask (read from ``/proc/self/status`` where it is shown, so no other thread
    ever sees a changed umask; elsewhere set and restored at once)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask_mode(path: str | Path) -> None:
    """Give ``path`` (and, for a folder, everything in it) the mode of a file the user creates:
    files ``0o666 & ~umask``, folders ``0o777 & ~umask``. Symbolic links (e.g. a checkpoint's links
    to the untouched snapshot files) are left alone, and so are the files they point to."""
    mask = current_umask()
    path = Path(path)
    if path.is_symlink():
        return
    if not path.is_dir():
        os.chmod(path, 0o666 & ~mask)
        return
    for folder, dirs, files in os.walk(path):
        os.chmod(folder, 0o777 & ~mask)
        for name in files:
            file = os.path.join(folder, name)
            if not os.path.islink(file):
                os.chmod(file, 0o666 & ~mask)
        for name in dirs:
            if os.path.islink(os.path.join(folder, name)):
                dirs.remove(name)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def atomic_output(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write (a file, or a folder the block creates); when the block
    succeeds, give it the umask's mode (:func:`apply_umask_mode`) and rename it to ``target`` (a
    folder replaces an existing folder of that name); delete it when the block raises
    (KeyboardInterrupt included)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(target)
    try:
        yield tmp
        apply_umask_mode(tmp)
        if tmp.is_dir() and target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        _remove(tmp)
