"""Temporal consistency at the ICA sampler's clip boundaries (what ICA, MIMAFace §3.3, exists for).

A clip of length F starts every F − overlap frames; the first frame a clip contributes after the
first clip is a *seam* (its predecessor came from the previous clip). For a per-frame series x the
seam score is

    mean |x[t] − x[t−1]| over seam frames t  /  mean |x[t] − x[t−1]| over the other frames t ≥ 1,

so 1 means a boundary jumps no more than any other frame step, and 3 means three times as much
(a visible seam). Beyond the paper; it reports no such number.
"""

from __future__ import annotations

import numpy as np

from ..sampling.ica import plan_clips


def seam_frames(num_frames: int, clip_length: int, overlap: int) -> list[int]:
    """Indices of the first frame each clip after the first contributes (docs/SAMPLING.md §5).

    Raises:
        ValueError: clip length or overlap out of range (as :func:`plan_clips`).
    """
    seams = []
    for clip in plan_clips(num_frames, clip_length, overlap, skip_unused=True)[1:]:
        if clip.keep:
            seams.append(clip.start + clip.keep[0])
    return [t for t in seams if 0 < t < num_frames]


def seam_score(values, seams: list[int]) -> float | None:
    """The seam score of a (N,) series (NaN entries, frames without a face, are left out), or None
    when there is no seam or no other step to compare with."""
    x = np.asarray(values, np.float64)
    if len(x) < 3 or not seams:
        return None
    steps = np.abs(np.diff(x))  # steps[t-1] = |x[t] - x[t-1]|
    is_seam = np.zeros(len(steps), bool)
    is_seam[[t - 1 for t in seams]] = True
    at, inside = steps[is_seam & np.isfinite(steps)], steps[~is_seam & np.isfinite(steps)]
    if not len(at) or not len(inside):
        return None
    base = inside.mean()
    return float(at.mean() / base) if base > 0 else (1.0 if at.mean() == 0 else float("inf"))


def seam_level_ratio(values, seams: list[int]) -> float | None:
    """For a series that already is a step (the frame difference |G[t] − G[t−1]|, defined for
    t ≥ 1): its mean at the seam frames over its mean at the other frames; None when undefined."""
    x = np.asarray(values, np.float64)
    is_seam = np.zeros(len(x), bool)
    is_seam[[t for t in seams if t < len(x)]] = True
    ok = np.isfinite(x)
    ok[0] = False
    at, inside = x[is_seam & ok], x[~is_seam & ok]
    if not len(at) or not len(inside):
        return None
    base = inside.mean()
    return float(at.mean() / base) if base > 0 else (1.0 if at.mean() == 0 else float("inf"))


def seam_scores(per_frame: dict[str, list[float]], seams: list[int]) -> dict[str, float | None]:
    """:func:`seam_score` of each metric's per-frame series."""
    return {name: seam_score(values, seams) for name, values in per_frame.items()}
