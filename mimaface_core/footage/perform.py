"""One face's re-performance plan, shared by the CLI (``cli/footage.run_footage``) and the Footage
Motion node: how many output frames and in which footage order (:func:`output_order`), and for a
tracked face its appearance and its motion on every output frame (:func:`face_performance`)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import numpy as np
import torch

from ..morphable.coefficients import ID
from ..motion.sequence import MotionSequence
from .length import frame_order
from .motion import footage_motion, resample
from .reference import ReferenceChoice, choose_reference_frame
from .reperform import detection_box, reference_source, with_identity

log = logging.getLogger(__name__)


def output_order(footage_frames: int, fps: float, *, speech=None, limit: int | None = None,
                 loop: str = "pingpong") -> np.ndarray:
    """The footage frame of each output frame (logged when the length changes).

    Args:
        footage_frames: frames in the footage. fps: its frame rate (Hz).
        speech: the new speech (``audio.decode.Speech``) or None: with speech the output lasts as
            long as the speech (its 25 fps frames converted to ``fps``), else as the footage.
        limit: at most this many output frames (None or 0: no limit).
        loop: ``footage.length.LOOP_MODES`` when the speech outlasts the footage.

    Returns:
        (M,) int footage indices (``footage.length.frame_order``).
    """
    from ..audio.decode import FPS

    n, wanted = footage_frames, footage_frames
    if speech is not None:
        wanted = max(1, int(speech.num_frames * fps / FPS))
    if limit:
        wanted = min(wanted, limit)
    if wanted > n:
        log.info("footage: the audio lasts %d frame(s), the footage %d: %s.", wanted, n,
                 {"cut": f"cut to the footage's {n} frames", "loop": "looped",
                  "pingpong": "played forward and backward"}[loop])
    elif wanted < n:
        log.info("footage: cut to %d of its %d frames (the %s).", wanted, n,
                 "audio's length" if speech is not None else "frame limit")
    return frame_order(n, wanted, loop)


@dataclasses.dataclass
class FacePerformance:
    """One tracked face, ready to re-perform.

    Attributes:
        source: its appearance (``motion.extract.SourceFace``), identity coefficients set to the
            footage's median shape.
        motion: (M frames) its motion on every output frame, in the footage's crops
            (``footage.motion.footage_motion``); ``missing`` marks frames without the face.
        reference: how the appearance was chosen (``footage.reference.ReferenceChoice``).
    """

    source: object
    motion: MotionSequence
    reference: ReferenceChoice


def face_performance(track_motion: MotionSequence, track, order: np.ndarray, fps: float, *, kind: str, region: str,
                     detector, d3dfr, identity_encoder, bfm, controls, frame_at: Callable[[int], np.ndarray],
                     reference_frame: int | None = None, reference_image=None, reference_name: str = "--reference",
                     speech=None, audio_nets=None, audio_options=None, driver: MotionSequence | None = None,
                     driver_fps: float | None = None,
                     audio_progress: Callable[[int, int], None] | None = None) -> FacePerformance:
    """The appearance and the output motion of one tracked face (README "Re-perform footage").

    Args:
        track_motion: the face's tracked motion, one row per footage frame
            (``motion.tracks.extract_track_motions``). track: its ``face.tracks`` track (boxes).
        order: (M,) footage frame of each output frame (:func:`output_order`). fps: the footage's rate.
        kind: "footage", "audio" or "transfer" (``footage.motion.PERFORMANCES``). region: the
            region the performance replaces (``footage.motion.REGIONS``).
        detector, d3dfr, identity_encoder, bfm: the loaded networks. controls:
            ``morphable.controls.controls_for(bfm)``.
        frame_at: footage frame ``i`` as (H, W, 3) uint8 RGB (read when the reference needs it).
        reference_frame: the footage frame to take the appearance from; None chooses one
            (``footage.reference.choose_reference_frame``).
        reference_image: a photo (PIL, array) to take the appearance from instead; reference_name
            names it in errors.
        speech, audio_nets, audio_options: kind "audio": the speech, SadTalker's networks and
            ``audio.motion.AudioMotionOptions``.
        driver, driver_fps: kind "transfer": the driving motion and its frame rate (Hz).
        audio_progress: progress of the audio networks, ``(done, total)``.

    Raises:
        FaceNotFoundError: the face is not found again on the reference frame's crop or photo.
        ValueError: a reference frame without the face; a missing performance for ``kind``.
    """
    identity = held_identity(track_motion.coeffs, track_motion.missing)
    if reference_image is not None:
        from ..motion.extract import encode_source

        source = with_identity(encode_source(reference_image, detector, d3dfr, identity_encoder, what=reference_name),
                               identity)
        choice = ReferenceChoice(-1, 0.0, 0.0, 0.0, 0.0, "photo")
    else:
        choice = choose_reference_frame(track_motion.coeffs, track_motion.missing, controls, fps, frame=reference_frame)
        source = reference_source(frame_at(choice.frame), detection_box(track, choice.frame), detector, d3dfr,
                                  identity_encoder, identity)
    performance = None
    if kind == "audio":
        if speech is None or audio_nets is None or audio_options is None:
            raise ValueError("face_performance: kind 'audio' needs speech, audio_nets and audio_options.")
        from ..audio.decode import FPS
        from ..audio.motion import audio_motion

        spoken = audio_motion(source.motion(detector.name), speech, audio_nets, audio_options, progress=audio_progress)
        performance = resample(spoken.coeffs, float(FPS), fps, len(order))
    elif kind == "transfer":
        if driver is None:
            raise ValueError("face_performance: kind 'transfer' needs the driving motion.")
        performance = resample(driver.coeffs, float(driver_fps or driver.fps or fps), fps, len(order))
    motion = footage_motion(track_motion, order, performance, kind, region, controls, bfm)
    return FacePerformance(source, motion, choice)


def held_identity(coeffs: torch.Tensor, missing: np.ndarray) -> torch.Tensor:
    """(80,) the median identity coefficients over the frames with the face."""
    return coeffs[~np.asarray(missing, bool)][:, ID].median(0).values


__all__ = ["FacePerformance", "face_performance", "output_order"]
