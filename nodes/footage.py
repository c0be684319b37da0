"""Footage Motion: the face of a video (an IMAGE batch) re-performed by speech (AUDIO) or by another
motion: the motion per output frame in the footage's own crops, the reference crop and source
motion for the appearance, the region MASK for Paste Back, and the footage frames in output order
(``mimaface_core.footage``)."""

from __future__ import annotations

import contextlib
import logging

import numpy as np
import torch

from mimaface_core.footage.length import LOOP_MODES
from mimaface_core.footage.motion import REGIONS

from . import _comfy
from .audio import NO_WEIGHTS, _networks
from .images import frames_of, to_image
from .types import CATEGORY, MODEL, MOTION

log = logging.getLogger(__name__)


class FootageMotion:
    """Footage + a performance → the motion of every output frame (the footage's pose, identity and
    gaze; the performance's expression by region), the reference crop, the region mask."""

    CATEGORY = CATEGORY
    RETURN_TYPES = (MOTION, MOTION, "IMAGE", "MASK", "IMAGE", "FLOAT")
    RETURN_NAMES = ("motion", "source_motion", "reference_crop", "region_mask", "footage_frames", "fps")
    OUTPUT_TOOLTIPS = (
        "The motion of every output frame, in the footage's own crops (give it to Render Coeff Image as the driving "
        "motion and to Paste Back).",
        "The reference frame's face as a one-frame motion (Render Coeff Image's and MIA's source motion).",
        "The reference frame's 512x512 crop (MIA Appearance Encode's source_crop).",
        "Per output frame, the region's mask in the 512 crop (rendered from the BFM, feathered): Paste Back's "
        "region_mask.",
        "The footage frames in output order (ping-pong or loop when the audio is longer): Paste Back's driving_frames.",
        "The footage's frame rate, for Create Video.")
    FUNCTION = "perform"
    DESCRIPTION = ("Re-performs the face of footage: the footage's faces are tracked, the chosen one cropped with "
                   "smoothed tracked boxes and its 3DMM regressed; head pose, identity and gaze stay the footage's, "
                   "the expression comes from the audio (SadTalker) or the performance motion (its change since its "
                   "first frame), by region: lower_face keeps the eyes and brows the footage's.")

    @classmethod
    def INPUT_TYPES(cls):
        files = _comfy.audio_weight_choices() or [NO_WEIGHTS]
        return {"required": {
            "model": (MODEL, {"tooltip": "Load MIMAFace Model (its face networks and BFM are used here)."}),
            "footage": ("IMAGE", {"tooltip": "The footage's frames (Load Video -> Get Video Components)."}),
            "fps": ("FLOAT", {"default": 25.0, "min": 1.0, "max": 240.0, "step": 0.001, "tooltip": "The footage's "
                    "frame rate (Get Video Components' fps)."}),
            "region": (["auto", *REGIONS], {"default": "auto", "tooltip": "What the performance replaces. lower_face: "
                       "jaw, lips, cheeks (eyes and brows stay the footage's). face: the whole expression. auto: "
                       "lower_face with audio, face otherwise."}),
            "footage_loop": (list(LOOP_MODES), {"default": "pingpong", "tooltip": "When the audio is longer than the "
                             "footage: pingpong (forward, backward...), loop, or cut (stop at the footage's end)."}),
            "reference_frame": ("INT", {"default": -1, "min": -1, "max": 1_000_000, "tooltip": "The footage frame "
                                "whose appearance is used; -1: the most frontal frame with open eyes and a closed "
                                "mouth in the first 3 seconds."}),
            "face": ("INT", {"default": -1, "min": -1, "max": 64, "tooltip": "Which face track to re-perform (by first "
                     "appearance, then left to right); -1: the face seen on the most frames."}),
            "audio_weights": (files, {"tooltip": "SadTalker's weights (used with audio)."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFF, "control_after_generate": True,
                             "tooltip": "Seeds SadTalker's blinks (face region with audio)."}),
            "frame_limit": ("INT", {"default": 0, "min": 0, "max": 1_000_000, "tooltip": "Make at most this many "
                            "frames (0 = as long as the audio, or the footage). Cut the AUDIO the same way."}),
        }, "optional": {
            "audio": ("AUDIO", {"tooltip": "New speech (dubbing): the output lasts as long as it."}),
            "performance_motion": (MOTION, {"tooltip": "Another performance (Extract 3DMM Motion on a video): its "
                                   "change since its first frame, resampled to the footage's rate."}),
        }}

    def perform(self, model, footage, fps, region, footage_loop, reference_frame, face, audio_weights, seed,
                frame_limit, audio=None, performance_motion=None):
        from mimaface_core.audio.decode import speech_from_waveform
        from mimaface_core.audio.motion import AudioMotionOptions
        from mimaface_core.face.tracks import FaceTracks
        from mimaface_core.footage.composite import region_crop_masks
        from mimaface_core.footage.perform import face_performance, output_order
        from mimaface_core.footage.reperform import track_footage
        from mimaface_core.morphable.controls import controls_for
        from mimaface_core.motion.tracks import extract_track_motions

        if audio is not None and performance_motion is not None:
            raise ValueError("Footage Motion: connect audio or performance_motion, not both.")
        frames = frames_of(footage, "footage")
        n = len(frames)
        kind = "audio" if audio is not None else "transfer" if performance_motion is not None else "footage"
        region = region if region != "auto" else ("lower_face" if kind == "audio" else "face")
        speech = None
        if audio is not None:
            speech = speech_from_waveform(audio["waveform"], int(audio["sample_rate"]), "audio")
            if speech.is_silent:
                raise ValueError("audio: the sound is silent; there is no speech to dub the footage with.")
        if reference_frame >= n:
            raise ValueError(f"reference_frame {reference_frame}: past the footage's end ({n} frames).")
        order = output_order(n, fps, speech=speech, limit=frame_limit, loop=footage_loop)
        with model.use("face", "bfm") as m:
            progress = _comfy.Progress(2 * n)
            tracks, chosen = track_footage(frames, m.detector, faces="default" if face < 0 else [face],
                                           what="footage", progress=lambda d, _: progress(d, 2 * n))
            picked = FaceTracks([tracks[t] for t in chosen], n, tracks.frame_size, tracks.options)
            motion = extract_track_motions(frames, picked, m.detector, m.d3dfr, box_mode="tracked", fps=fps,
                                           progress=lambda d, _: progress(n + d, 2 * n))[0]
            if motion is None:
                raise ValueError("footage: the chosen face is never found on its own crop.")
            nets = _networks(audio_weights) if speech is not None else None
            with (nets.use("audio") if nets is not None else contextlib.nullcontext()) as loaded:
                performed = face_performance(
                    motion, tracks[chosen[0]], order, fps, kind=kind, region=region, detector=m.detector,
                    d3dfr=m.d3dfr, identity_encoder=m.identity_encoder, bfm=m.bfm, controls=controls_for(m.bfm),
                    frame_at=lambda i: frames[i], reference_frame=None if reference_frame < 0 else reference_frame,
                    speech=speech, audio_nets=None if loaded is None else loaded.audio,
                    audio_options=AudioMotionOptions("still", 0, "random", seed), driver=performance_motion,
                    driver_fps=None if performance_motion is None else float(performance_motion.fps or fps))
            log.info("[MIMAFace] footage: %s", performed.reference.describe())
            source, out = performed.source, performed.motion
            masks = region_crop_masks(m.bfm, out.coeffs, out.m256_inv, region)
        if out.missing.any():
            log.warning("[MIMAFace] footage: the face is absent on %d of %d output frame(s); Paste Back with "
                        "pass_through leaves them unchanged.", int(out.missing.sum()), len(out))
        ordered = footage[torch.from_numpy(np.asarray(order))]
        crop = to_image(source.alignment.crop512[None])
        return (out, source.motion(), crop, masks, ordered, float(fps))
