"""Access to the alignment golden fixture (released MTCNN + crop pipeline on real media).

The folder is ``$MIMAFACE_ALIGNMENT_DIR`` when set, else ``tests/fixtures/alignment`` (a copy of
the shared fixture, with the media it names in ``tests/fixtures/media``). Every file name, frame
index and parameter is read from its JSON files; side files (crop PNG, id112) may be absent.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

DEFAULT_DIR = Path(__file__).parent / "fixtures" / "alignment"


def alignment_dir() -> Path:
    return Path(os.environ.get("MIMAFACE_ALIGNMENT_DIR", DEFAULT_DIR))


def entries(kind: str) -> list[dict]:
    """The index entries of one kind ("photo" or "video"), each with its JSON loaded as ``data``."""
    index = json.loads((alignment_dir() / "index.json").read_text())
    out = []
    for e in index["entries"]:
        if e["kind"] == kind:
            out.append({**e, "data": json.loads((alignment_dir() / e["json"]).read_text())})
    return out


def media_path(entry: dict) -> Path:
    """The source file of an entry (``source.file`` is relative to the fixture folder's parent)."""
    return alignment_dir().parent / entry["data"]["source"]["file"]


def side_file(name: str | None) -> Path | None:
    """A side file of the folder, or None when absent."""
    if not name:
        return None
    path = alignment_dir() / name
    return path if path.is_file() else None


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def template_error(m_full_ours, m_full_ref, template) -> float:
    """Largest distance (px at 256) between the template points mapped back through two
    input→256 transforms and forward through the other: where our transform sends the points
    the reference maps onto the template."""
    def full(m):
        return np.vstack([np.asarray(m, np.float64), [0, 0, 1]])

    back = np.linalg.inv(full(m_full_ref))
    pts = np.hstack([template, np.ones((len(template), 1))]) @ back.T
    moved = pts @ full(m_full_ours).T
    return float(np.abs(moved[:, :2] - template).max())


def compose(m256, m512) -> np.ndarray:
    """``M256·M512`` as a (2, 3) input → 256 matrix."""
    a = np.vstack([np.asarray(m256, np.float64), [0, 0, 1]])
    b = np.vstack([np.asarray(m512, np.float64), [0, 0, 1]])
    return (a @ b)[:2]


def m512_scale_centre(m) -> tuple[float, np.ndarray]:
    """Scale and the input point mapped to the crop centre (256, 256)."""
    m = np.asarray(m, np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    centre = np.linalg.solve(m[:, :2], np.array([256.0, 256.0]) - m[:, 2])
    return scale, centre
