"""The alignment golden fixture (released MTCNN + crop pipeline on real media; ``fixture_families``).

The folder is ``$MIMAFACE_ALIGNMENT_DIR`` when set, else ``tests/fixtures/alignment`` (a copy of
the shared fixture, with the media it names in ``tests/fixtures/media``). Every file name, frame
index and parameter is read from its JSON files; side files (crop PNG, id112) may be absent.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from fixture_families import ALIGNMENT as FAMILY

alignment_dir = FAMILY.folder
#: a side file of the folder (crop PNG, id112), or None when absent
side_file = FAMILY.side_file


def entries(kind: str) -> list[dict]:
    """The index entries of one kind ("photo" or "video"), each with its JSON loaded as ``data``."""
    return [{**e, "data": FAMILY.json(e["json"])} for e in FAMILY.json("index.json")["entries"] if e["kind"] == kind]


def media_path(entry: dict) -> Path:
    """The source file of an entry (``source.file`` is relative to the fixture folder's parent)."""
    return FAMILY.folder().parent / entry["data"]["source"]["file"]


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
