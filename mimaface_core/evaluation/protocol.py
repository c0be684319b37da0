"""The paper's evaluation protocol on a VoxCeleb1-style folder (MIMAFace §4.1: same- and
cross-identity reenactment on the VoxCeleb1 test set, Table 1), with pairs sampled as PIRenderer's
evaluation does (Ren et al. 2021, §4: the first frame of a test video is the source and its other
frames drive it; for cross-identity, the source is the first frame of a video of another person).

Folder layout: ``ROOT/<identity>/<video id>/<clip>.mp4`` (the VoxCeleb1 test layout, e.g.
``id10270/5r0dWxy17C8/00001.mp4``) or ``ROOT/<identity>/<clip>.mp4``: the identity is the first
folder level. Nothing is downloaded; the user provides the videos.

Sampling (documented so runs can be compared): the clips are sorted by path, then shuffled with
``random.Random(seed)``; the first ``limit`` give the same-identity pairs; for each of the first
``limit`` clips of a second shuffle (``seed + 1``), the k-th driving clip's source is the first
clip of the first shuffle, searching from position k onwards (wrapping), whose identity differs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from ..media.video_in import VIDEO_SUFFIXES


@dataclass(frozen=True)
class TestClip:
    """One test video: its file and its identity (the first folder level under the root)."""

    path: Path
    identity: str


@dataclass(frozen=True)
class Pair:
    """A source clip (its first frame is the source photo) and a driving clip; ``kind`` is "same"
    or "cross"."""

    kind: str
    source: TestClip
    driving: TestClip


def find_clips(root: str | Path) -> list[TestClip]:
    """Every video under ``root``, sorted by path.

    Raises:
        ValueError: no video, or videos directly in ``root`` (no identity folder).
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"--vox: folder not found: {root}")
    clips = []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file():
            rel = p.relative_to(root)
            if len(rel.parts) < 2:
                raise ValueError(f"--vox: {rel} is not inside an identity folder; lay videos out as "
                                 "ROOT/<identity>/<video id>/<clip>.mp4 (VoxCeleb1) or ROOT/<identity>/<clip>.mp4.")
            clips.append(TestClip(p, rel.parts[0]))
    if not clips:
        raise ValueError(f"--vox {root}: no video found ({', '.join(sorted(VIDEO_SUFFIXES))}).")
    return clips


def sample_pairs(clips: list[TestClip], limit: int | None = None, seed: int = 0) -> list[Pair]:
    """Same-identity then cross-identity pairs (see the module docstring); ``limit`` pairs of each
    kind (None = one per clip). Cross-identity pairs need two identities (else none)."""
    order = list(clips)
    random.Random(seed).shuffle(order)
    n = len(order) if limit is None else min(limit, len(order))
    pairs = [Pair("same", c, c) for c in order[:n]]
    drivers = list(clips)
    random.Random(seed + 1).shuffle(drivers)
    for d in drivers:
        k = sum(p.kind == "cross" for p in pairs)
        if k >= n:
            break
        rolled = order[k % len(order):] + order[:k % len(order)]
        source = next((c for c in rolled if c.identity != d.identity), None)
        if source is not None:
            pairs.append(Pair("cross", source, d))
    return pairs
