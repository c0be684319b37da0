"""Motion of every face track of a driving video: one :class:`MotionSequence` per track, in the
track's own 512 crops (beyond the release, which follows one face).

Each track is cropped on the frame's own pixels (``m512_frame="original"``, no squash: a wide
two-person frame is not distorted) with the released box crop of its first detection
(``box_mode="first_frame"``, the release's recipe per track) or of its box on every frame, held
over gaps and smoothed (``"tracked"``); then the released detection on the crop, ``M256`` and
D3DFR. Frames where the track has no detection (or no face on its crop) are flagged in
``missing`` and HOLD the last pose seen (the first one before the track appears).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from ..face.align import align_crop, warp_crop_512
from ..face.crops import box_crop_matrix, invert_affine
from ..face.detection import FaceDetector
from ..face.tracks import FaceTracks
from ..media.images import to_rgb_uint8, to_signed_tensor
from .extract import regress_coefficients
from .sequence import MotionSequence
from .smoothing import smooth

#: Crops of a track: "first_frame" (the box of its first detection, the release's recipe per
#: track) or "tracked"; "auto" (the single-face default) means "first_frame" here.
TRACK_BOX_MODES = ("auto", "first_frame", "tracked")


def hold_missing(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """``values`` (N, ...) with each missing row replaced by the last present row before it (the
    first present row before any). All missing: unchanged."""
    present = np.flatnonzero(~np.asarray(missing, bool))
    if not len(present):
        return values
    idx = np.searchsorted(present, np.arange(len(values)), side="right") - 1
    return values[present[np.clip(idx, 0, None)]]


def _track_boxes(tracks: FaceTracks, box_mode: str, box_smoothing: int) -> list[np.ndarray]:
    out = []
    for t in tracks.tracks:
        if box_mode == "first_frame":
            out.append(np.broadcast_to(t.boxes[0], (tracks.n_frames, 4)))
            continue
        b = t.held_boxes(tracks.n_frames)
        centre, size = (b[:, :2] + b[:, 2:]) / 2, (b[:, 2:] - b[:, :2]).max(1, keepdims=True)
        centre, size = smooth(centre, box_smoothing), smooth(size, box_smoothing)
        out.append(np.concatenate([centre - size / 2, centre + size / 2], 1))
    return out


def extract_track_motions(frames: Iterable, tracks: FaceTracks, detector: FaceDetector, d3dfr: torch.nn.Module, *,
                          box_mode: str = "first_frame", box_smoothing: int = 9, fps: float | None = None,
                          batch_size: int = 8, progress: Callable[[int, "int | None"], None] | None = None,
                          on_crop: Callable[[int, int, np.ndarray], None] | None = None) -> list[MotionSequence]:
    """One motion per track, reading the frames once more (after :func:`..face.tracks.track_faces`).

    Args:
        frames: the same driving frames the tracks were found on (read once).
        tracks: from ``track_faces``.
        box_mode: "first_frame" or "auto" (the box of the track's first detection for every frame) or
            "tracked" (its box on every frame, held over gaps, smoothed over ``box_smoothing``).
        fps: stored in each sequence.
        batch_size: crops per D3DFR batch.
        progress: ``progress(done, total)`` after each frame; it may raise to cancel.
        on_crop: called with (track id, frame index, (512, 512, 3) uint8 crop).

    Returns:
        ``[MotionSequence | None]`` in track order (None for a track whose face was never found
        again on its own crop); ``missing`` flags the frames without the face, whose values hold
        the last pose seen; ``info["track"]`` is the track id.

    Raises:
        ValueError: unknown ``box_mode``, or not as many frames as the tracks were made from.
    """
    if box_mode not in TRACK_BOX_MODES:
        raise ValueError(f"box_mode must be one of {TRACK_BOX_MODES}, got {box_mode!r}.")
    box_mode = "first_frame" if box_mode == "auto" else box_mode
    n, k = tracks.n_frames, len(tracks)
    boxes = _track_boxes(tracks, box_mode, box_smoothing)
    present = [t.present(n) for t in tracks.tracks]
    m512 = [np.stack([box_crop_matrix(b) for b in boxes[t]]) if box_mode == "tracked"
            else np.broadcast_to(box_crop_matrix(boxes[t][0]), (n, 2, 3)).copy() for t in range(k)]
    m256 = [np.full((n, 2, 3), np.nan) for _ in range(k)]
    scores = [np.zeros(n, np.float32) for _ in range(k)]
    coeffs: list[dict[int, torch.Tensor]] = [{} for _ in range(k)]
    batch: list[tuple[int, int, np.ndarray, np.ndarray]] = []

    def flush():
        if batch:
            ts, fs, crops, mats = zip(*batch)
            x = torch.cat([to_signed_tensor(c) for c in crops])
            out = regress_coefficients(d3dfr, x, torch.from_numpy(np.stack(mats)).float()).cpu()
            for t, f, c in zip(ts, fs, out):
                coeffs[t][f] = c
            batch.clear()

    count = 0
    for f, frame in enumerate(frames):
        if f >= n:
            raise ValueError(f"driving frames: more than the {n} frames the tracks were made from.")
        rgb = to_rgb_uint8(frame, f"driving frame {f}")
        for t in range(k):
            if not present[t][f]:
                continue
            crop = warp_crop_512(rgb, m512[t][f])
            if on_crop is not None:
                on_crop(t, f, crop)
            _, score, mat, _ = align_crop(detector, crop, 0)  # the face nearest the crop centre
            if mat is None:
                continue
            m256[t][f], scores[t][f] = mat, score
            batch.append((t, f, crop, mat))
            if len(batch) >= batch_size:
                flush()
        count = f + 1
        if progress is not None:
            progress(count, n)
    flush()
    if count != n:
        raise ValueError(f"driving frames: {count} frames, the tracks were made from {n}.")
    out = []
    for t in range(k):
        missing = np.array([f not in coeffs[t] for f in range(n)])
        if missing.all():  # detected, but never again on its own crop: nothing to drive with
            out.append(None)
            continue
        template = next(iter(coeffs[t].values()))
        c = np.stack([coeffs[t][f].numpy() if f in coeffs[t] else np.zeros_like(template.numpy()) for f in range(n)])
        held256 = hold_missing(m256[t], missing)
        out.append(MotionSequence(
            coeffs=torch.from_numpy(hold_missing(c, missing)).float(), m512=m512[t], m256=held256,
            m256_inv=np.stack([invert_affine(m) for m in held256]), scores=scores[t], missing=missing,
            frame_size=tracks.frame_size, fps=fps,
            info={"detector": detector.name, "box_mode": box_mode, "track": t, "box_smoothing": box_smoothing,
                  "missing_count": int(missing.sum())},
            m512_frame="original"))
    return out
