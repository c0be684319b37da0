"""Re-performing the tracked faces of footage: the faces found and chosen (:func:`track_footage`),
their appearance (:func:`reference_source`), and the output frames (:func:`iter_reperform`): each
chosen face runs the single-face pipeline (``pipeline.iter_animate``) on its footage motion, the
faces advance clip by clip in step, and every output frame is the footage frame with each face
composited through its region mask (:mod:`.composite`), as soon as every face has made it."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator

import numpy as np
import torch

from ..errors import MIMAFaceError
from ..face.tracks import FaceTracks, TrackingOptions, track_faces
from ..group import aligned_chunks, face_steps
from ..morphable.coefficients import ID
from ..motion.sequence import MotionSequence
from .composite import composite_uint8, region_crop_masks

log = logging.getLogger(__name__)


def default_track(tracks: FaceTracks) -> int:
    """The track seen on the most frames (ties: the larger mean box)."""
    def key(t):
        sides = (t.boxes[:, 2:] - t.boxes[:, :2]).max(1)
        return (len(t.frames), float(sides.mean()))

    return max(tracks.tracks, key=key).id


def track_footage(frames, detector, *, faces: list[int] | None | str = "default",
                  tracking: TrackingOptions = TrackingOptions(), what: str = "--source",
                  progress: Callable[[int, "int | None"], None] | None = None) -> tuple[FaceTracks, list[int]]:
    """Every face of the footage linked into tracks (``face.tracks.track_faces`` by box overlap and
    motion; no network but the detector, so it runs before any model loads), and the tracks to
    re-perform.

    Args:
        frames: the footage's frames, read once.
        faces: "default" (:func:`default_track`), None (all tracks) or track indices.

    Returns:
        (tracks, chosen track ids).

    Raises:
        MIMAFaceError: no face on any frame, or a chosen track that does not exist (naming ``what``
            and ``--faces``).
    """
    tracks = track_faces(frames, detector, None, tracking, progress=progress)
    if not len(tracks):
        raise MIMAFaceError(f"{what}: the {detector.name} detector found no face on any of the footage's "
                            f"{tracks.n_frames} frames; footage mode needs a visible face.")
    if faces == "default":
        chosen = [default_track(tracks)]
    elif faces is None:
        chosen = list(range(len(tracks)))
    else:
        bad = [f for f in faces if f >= len(tracks)]
        if bad:
            raise MIMAFaceError(f"--faces: face {bad[0]} does not exist; the footage has {len(tracks)} face "
                                f"track(s) (0..{len(tracks) - 1}, by first appearance, then left to right).")
        chosen = list(faces)
    return tracks, chosen


def reference_source(frame: np.ndarray, box: np.ndarray, detector, d3dfr, identity_encoder, identity=None):
    """The appearance of one face on one footage frame: a ``SourceFace`` cropped with the track's
    ``box`` there (``motion.sources.encode_source_faces``); with ``identity`` (80,) its identity
    coefficients are replaced (the footage's median shape).

    Raises:
        FaceNotFoundError: the face is not found again on its crop.
    """
    from ..motion.sources import encode_source_faces

    source = encode_source_faces(frame, detector, d3dfr, identity_encoder, [0], "reference frame",
                                 boxes=np.asarray(box, np.float64)[None])[0]
    return with_identity(source, identity)


def detection_box(track, frame: int) -> np.ndarray:
    """(4,) the track's detector box on ``frame``, or on its nearest detected frame."""
    k = int(np.argmin(np.abs(track.frames - frame)))
    return np.asarray(track.boxes[k], np.float64)


def with_identity(source, identity):
    """``source`` (a ``SourceFace``) with its identity coefficients replaced (None: unchanged)."""
    if identity is None:
        return source
    coeffs = source.coeffs.clone()
    coeffs[:, ID] = torch.as_tensor(identity, dtype=coeffs.dtype).to(coeffs.device)
    return dataclasses.replace(source, coeffs=coeffs)


def iter_reperform(model, faces: dict[int, tuple], frames: Iterator[np.ndarray], options, *, region: str,
                   feather: int = 24, colour_match: bool = True, fps: float | None = None,
                   on_step: Callable[[int, int], None] | None = None,
                   cancel: Callable[[], bool] | None = None, stats=None) -> Iterator[np.ndarray]:
    """The output frames: footage frames with every chosen face re-performed.

    Args:
        model: from ``load_mimaface`` (video mode) with a VAE.
        faces: {track: (SourceFace, MotionSequence)}, every motion of the same length M, in the
            footage frame's crops (``.motion.footage_motion``); frames where a motion is
            ``missing`` pass through for that face.
        frames: the M footage frames in output order, (H, W, 3) uint8.
        options: ``pipeline.AnimateOptions`` (pose "absolute", as the motion is the final one).
        region: "face" or "lower_face" (the mask). feather: crop pixels. colour_match: Lab match.
        on_step: ``on_step(done, total)`` over every face's denoising steps. cancel: as ``iter_animate``.
        stats: a ``sampling.cost.SamplingStats`` that every face's sampling adds to (its output
            frames are the re-performed face frames, one per face per output frame).

    Yields:
        (k, H, W, 3) uint8 frames in order, M in all; outside every face's mask the footage frame
        bit for bit.

    Raises:
        ValueError: no face, or motions of different lengths.
    """
    from ..pipeline import iter_animate

    if not faces:
        raise ValueError("no face to re-perform.")
    lengths = {len(m) for _, m in faces.values()}
    if len(lengths) != 1:
        raise ValueError(f"the faces' motions have different lengths {sorted(lengths)}.")
    order = sorted(faces)
    stepper = face_steps(order, on_step)
    gens = {f: iter_animate(model, faces[f][0], faces[f][1], options, fps=fps, on_step=stepper(f), cancel=cancel,
                            stats=stats)
            for f in order}
    for done, k, crops in aligned_chunks(gens, lengths.pop()):
        out = np.stack([next(frames) for _ in range(k)])
        for f in order:
            motion: MotionSequence = faces[f][1]
            part = slice(done, done + k)
            masks = region_crop_masks(model.bfm, motion.coeffs[part], motion.m256_inv[part], region, feather)
            out, _ = composite_uint8(out, crops[f], motion.frame_to_crop()[part], masks,
                                     colour_match=colour_match, passthrough=motion.missing[part])
        yield out


def ordered_frames(read: Callable[[], Iterator[np.ndarray]], order: np.ndarray) -> Iterator[np.ndarray]:
    """The footage frames in output ``order``: streamed when the order only goes forward one frame
    at a time (a cut), else decoded once and held in memory (ping-pong and loop; logged)."""
    order = np.asarray(order, np.int64)
    if np.array_equal(order, np.arange(len(order))):
        it = read()
        for _ in order:
            yield next(it)
        return
    held = list(read())
    log.info("footage: %d frame(s) held in memory to play them %s.", len(held), "in the output's order")
    for i in order:
        yield held[int(i)]
