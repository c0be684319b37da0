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


def _full(m) -> np.ndarray:
    return np.vstack([np.asarray(m, np.float64), [0, 0, 1]])


def compose(m256, m512) -> np.ndarray:
    """``M256·M512`` as a (2, 3) input → 256 matrix."""
    return (_full(m256) @ _full(m512))[:2]


def template_error(ours, ref, template) -> float:
    """Largest displacement (Euclidean, px of the destination) of the template points between two
    input → destination transforms: the points the reference maps onto the template, mapped by
    ours (the fixture README's ``m256_template_px`` when given ``M256·M512`` matrices)."""
    pts = np.hstack([template, np.ones((len(template), 1))]) @ np.linalg.inv(_full(ref)).T
    moved = pts @ _full(ours).T
    return float(np.linalg.norm(moved[:, :2] - template, axis=1).max())


def m512_errors(ours, ref) -> tuple[float, float]:
    """(relative scale error, centre error in px at 512) of a 512 box-crop matrix: the scale ratio
    minus 1, and how far ours puts the input point the reference maps to the crop centre."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(ours[:, :2]) / np.linalg.det(ref[:, :2]))) - 1)
    centre_in = np.linalg.solve(ref[:, :2], np.array([256.0, 256.0]) - ref[:, 2])
    return scale, float(np.linalg.norm(ours @ [*centre_in, 1] - 256))
