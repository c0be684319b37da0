"""Face tracks: every face on every frame of a driving video, linked into tracks (beyond the release,
which follows one face).

Rule (:func:`track_faces`), frame by frame:

1. Detect every face on the frame's own pixels (no squash), keep detections with score ≥
   ``min_score``.
2. Live tracks (seen within the last ``max_gap + 1`` frames) predict their box: the last box moved
   by the track's last per-frame velocity for at most ``max_extrapolation`` frames (motion
   continuity). The cost of giving detection d to track t is
   ``(1 − w)·(1 − IoU(predicted box, d)) + w·(1 − cos(track identity, d identity))/2`` with
   ``w = identity_weight`` (0 when no identity encoder is given); a pair is allowed when the IoU
   is at least ``iou_gate`` or, for a track that missed frames, when the identity similarity is at
   least ``reid_similarity``. The Hungarian method (``scipy.optimize.linear_sum_assignment``)
   picks the pairs of least total cost among the allowed ones.
3. Detections left over are offered to ended tracks (unseen for more than ``max_gap`` frames):
   a face that left and came back gets its old track back when its identity similarity to the
   track is at least ``reid_similarity`` (Hungarian again, on ``1 − similarity``). Anything still
   left starts a new track.
4. At the end, tracks with fewer than ``min_frames`` detections (stray detections) are dropped and
   the rest are numbered by first appearance, then left to right (box centre on that frame).

A track's identity is the running mean of the L2-normalised CurricularFace embeddings of its
detections (ArcFace-aligned 112x112 crops from the five landmarks). With weak (e.g. random)
identity weights the box overlap and the predicted motion still link the faces; the identity term
decides between candidate pairs and brings back faces after long gaps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..media.images import to_rgb_uint8
from ..media.warp import warp_affine
from .crops import ARCFACE_TEMPLATE_112, five_point_matrix
from .detection import Detections, FaceDetector

_BLOCKED = 1e6


@dataclass(frozen=True)
class TrackingOptions:
    """How faces are linked into tracks (see the module docstring for the rule).

    Attributes:
        max_gap: frames a track survives without a detection (a blink of the detector, a hand in
            front of the face) and is still matched by box overlap; after that it has ended and
            only its identity brings it back. 12 frames ≈ half a second at 25 fps.
        identity_weight: weight ``w`` of the identity term in the matching cost, 0..1 (0: box
            overlap only; 1: identity only within the gates).
        iou_gate: least IoU between a track's predicted box and a detection to link them by overlap.
        reid_similarity: least cosine similarity of identities to link a face to a track that
            missed frames or has ended.
        max_extrapolation: at most this many frames of the track's velocity are added to its
            last box when predicting where it is.
        min_frames: tracks with fewer detections are dropped (stray detections); for videos
            shorter than this, every track is kept.
        min_score: least detection score counted as a face.
    """

    max_gap: int = 12
    identity_weight: float = 0.3
    iou_gate: float = 0.1
    reid_similarity: float = 0.5
    max_extrapolation: int = 5
    min_frames: int = 3
    min_score: float = 0.9

    def check(self) -> None:
        """Raises ValueError when a value is out of its range (the message names it)."""
        if self.max_gap < 0:
            raise ValueError(f"max_gap must be ≥ 0, got {self.max_gap}.")
        if not 0 <= self.identity_weight <= 1:
            raise ValueError(f"identity_weight must be in [0, 1], got {self.identity_weight}.")
        if not 0 < self.iou_gate <= 1:
            raise ValueError(f"iou_gate must be in (0, 1], got {self.iou_gate}.")
        if not -1 <= self.reid_similarity <= 1:
            raise ValueError(f"reid_similarity must be in [-1, 1], got {self.reid_similarity}.")
        if self.min_frames < 1:
            raise ValueError(f"min_frames must be ≥ 1, got {self.min_frames}.")


@dataclass
class FaceTrack:
    """One face followed through the video.

    Attributes:
        id: stable id (first appearance, then left to right).
        frames: (K,) int frame indices where the face was detected, increasing.
        boxes: (K, 4) float64 ``[x1, y1, x2, y2]`` on those frames (frame pixels).
        landmarks: (K, 5, 2) float64 five points on those frames.
        scores: (K,) float64 detection scores.
        identity: (E,) float32 mean normalised identity embedding, or None (no encoder).
    """

    id: int
    frames: np.ndarray
    boxes: np.ndarray
    landmarks: np.ndarray
    scores: np.ndarray
    identity: np.ndarray | None = None

    @property
    def first_frame(self) -> int:
        return int(self.frames[0])

    def present(self, n_frames: int) -> np.ndarray:
        """(n_frames,) bool: where the face was detected."""
        mask = np.zeros(n_frames, bool)
        mask[self.frames] = True
        return mask

    def missing_frames(self, n_frames: int) -> list[int]:
        """Frames (from 0) where the track has no detection."""
        return np.flatnonzero(~self.present(n_frames)).tolist()

    def held_boxes(self, n_frames: int) -> np.ndarray:
        """(n_frames, 4) a box on every frame: the last detected box held over gaps, the first one
        before the first detection."""
        idx = np.searchsorted(self.frames, np.arange(n_frames), side="right") - 1
        return self.boxes[np.clip(idx, 0, None)]


@dataclass
class FaceTracks:
    """Every face track of a video. ``tracks[i].id == i``."""

    tracks: list[FaceTrack]
    n_frames: int
    frame_size: tuple[int, int]
    options: TrackingOptions = field(default_factory=TrackingOptions)

    def __len__(self) -> int:
        return len(self.tracks)

    def __getitem__(self, i: int) -> FaceTrack:
        return self.tracks[i]

    def summary(self) -> str:
        """One line per track: where it starts and the frames it is missing."""
        lines = []
        for t in self.tracks:
            missing = t.missing_frames(self.n_frames)
            shown = _ranges(missing) if missing else "none"
            x = (t.boxes[0, 0] + t.boxes[0, 2]) / 2
            lines.append(f"track {t.id}: from frame {t.first_frame} at x≈{x:.0f}, {len(t.frames)}/{self.n_frames} "
                         f"frames, missing: {shown}")
        return "\n".join(lines)


def _ranges(frames: list[int]) -> str:
    out, start = [], None
    for i, f in enumerate(frames):
        if start is None:
            start = f
        if i + 1 == len(frames) or frames[i + 1] != f + 1:
            out.append(str(start) if start == f else f"{start}-{f}")
            start = None
    return ", ".join(out)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, B) IoU of boxes ``a`` (A, 4) and ``b`` (B, 4), ``[x1, y1, x2, y2]``."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def identity_embeddings(identity_encoder: torch.nn.Module, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(N, E) L2-normalised CurricularFace embeddings of the faces with ``landmarks`` (N, 5, 2) on
    the (H, W, 3) uint8 frame ``rgb`` (ArcFace-aligned 112x112 crops)."""
    if not len(landmarks):
        return np.zeros((0, 0), np.float32)
    param = next(identity_encoder.parameters())
    img = torch.from_numpy(np.asarray(rgb)).to(param.device).permute(2, 0, 1)[None].float() / 127.5 - 1
    mats = torch.from_numpy(np.stack([five_point_matrix(p, ARCFACE_TEMPLATE_112) for p in landmarks])).float()
    crops = warp_affine(img.expand(len(landmarks), -1, -1, -1), mats.to(param.device), (112, 112))
    with torch.inference_mode():
        e = identity_encoder.embedding(crops.to(param.dtype)).float()
    return torch.nn.functional.normalize(e, dim=1).cpu().numpy()


class _Builder:
    def __init__(self, frame: int, box, landmarks, score, embedding):
        self.frames, self.boxes, self.landmarks, self.scores = [frame], [box], [landmarks], [score]
        self.emb_sum = None if embedding is None else np.array(embedding, np.float64)

    def add(self, frame, box, landmarks, score, embedding):
        self.frames.append(frame)
        self.boxes.append(box)
        self.landmarks.append(landmarks)
        self.scores.append(score)
        if embedding is not None:
            self.emb_sum = embedding.astype(np.float64) if self.emb_sum is None else self.emb_sum + embedding

    @property
    def identity(self):
        if self.emb_sum is None:
            return None
        return (self.emb_sum / max(np.linalg.norm(self.emb_sum), 1e-12)).astype(np.float32)

    def predicted(self, frame: int, max_extrapolation: int) -> np.ndarray:
        last = self.boxes[-1]
        if len(self.frames) < 2:
            return last
        velocity = (last - self.boxes[-2]) / (self.frames[-1] - self.frames[-2])
        return last + velocity * min(frame - self.frames[-1], max_extrapolation)


def _similarity(builders, embeddings) -> np.ndarray | None:
    if embeddings is None or not len(builders):
        return None
    ids = [b.identity for b in builders]
    if any(i is None for i in ids):
        return None
    return np.stack(ids) @ embeddings.T


def track_faces(frames: Iterable, detector: FaceDetector, identity_encoder: torch.nn.Module | None = None,
                options: TrackingOptions = TrackingOptions(),
                progress: Callable[[int, "int | None"], None] | None = None) -> FaceTracks:
    """Detect every face on every frame and link them into tracks (module docstring).

    Args:
        frames: the driving frames ((H, W, C) uint8 or [0, 1] float, or PIL), read once.
        detector: any backend (:mod:`.detectors`).
        identity_encoder: CurricularFace (``MIMAFaceModel.identity_encoder``) for the identity
            term; None tracks by boxes only.
        options: :class:`TrackingOptions`.
        progress: ``progress(done, total or None)`` after each frame; it may raise to cancel.

    Returns:
        :class:`FaceTracks` (possibly with no track when no frame has a face).

    Raises:
        ValueError: no frames, frames of different sizes, or bad options.
    """
    from scipy.optimize import linear_sum_assignment

    options.check()
    total = len(frames) if hasattr(frames, "__len__") else None
    builders: list[_Builder] = []
    frame_size = None
    w = options.identity_weight if identity_encoder is not None else 0.0
    n = 0
    for f, frame in enumerate(frames):
        rgb = to_rgb_uint8(frame, f"driving frame {f}")
        size = (rgb.shape[1], rgb.shape[0])
        if frame_size is None:
            frame_size = size
        elif size != frame_size:
            raise ValueError(f"driving frame {f} is {size[0]}x{size[1]}, frame 0 is {frame_size[0]}x{frame_size[1]}.")
        dets = detector.detect(rgb)
        keep = dets.scores >= options.min_score
        dets = Detections(dets.boxes[keep], dets.scores[keep], dets.landmarks[keep])
        emb = identity_embeddings(identity_encoder, rgb, dets.landmarks) if identity_encoder is not None else None
        taken = np.zeros(len(dets), bool)
        live = [b for b in builders if f - b.frames[-1] <= options.max_gap + 1]
        if live and len(dets):
            pred = np.stack([b.predicted(f, options.max_extrapolation) for b in live])
            iou = box_iou(pred, dets.boxes)
            sim = _similarity(live, emb)
            missed = np.array([f - b.frames[-1] > 1 for b in live])[:, None]
            allowed = iou >= options.iou_gate
            cost = 1 - iou
            if sim is not None:
                allowed |= missed & (sim >= options.reid_similarity)
                cost = (1 - w) * cost + w * (1 - sim) / 2
            rows, cols = linear_sum_assignment(np.where(allowed, cost, _BLOCKED))
            for r, c in zip(rows, cols):
                if allowed[r, c]:
                    live[r].add(f, dets.boxes[c], dets.landmarks[c], dets.scores[c], None if emb is None else emb[c])
                    taken[c] = True
        left = np.flatnonzero(~taken)
        ended = [b for b in builders if f - b.frames[-1] > options.max_gap + 1]
        sim = _similarity(ended, None if emb is None else emb[left])
        if sim is not None and len(left):
            allowed = sim >= options.reid_similarity
            rows, cols = linear_sum_assignment(np.where(allowed, 1 - sim, _BLOCKED))
            for r, c in zip(rows, cols):
                if allowed[r, c]:
                    d = left[c]
                    ended[r].add(f, dets.boxes[d], dets.landmarks[d], dets.scores[d], emb[d])
                    taken[d] = True
        for d in np.flatnonzero(~taken):
            builders.append(_Builder(f, dets.boxes[d], dets.landmarks[d], dets.scores[d],
                                     None if emb is None else emb[d]))
        n = f + 1
        if progress is not None:
            progress(n, total)
    if n == 0:
        raise ValueError("driving frames: no frames were given.")
    least = min(options.min_frames, n)
    kept = [b for b in builders if len(b.frames) >= least]
    kept.sort(key=lambda b: (b.frames[0], (b.boxes[0][0] + b.boxes[0][2]) / 2))
    tracks = [FaceTrack(i, np.array(b.frames, int), np.array(b.boxes, np.float64), np.array(b.landmarks, np.float64),
                        np.array(b.scores, np.float64), b.identity) for i, b in enumerate(kept)]
    return FaceTracks(tracks, n, frame_size, options)
