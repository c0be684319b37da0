"""Gaze Embed."""

from __future__ import annotations

import torch

from mimaface_core.motion.extract import extract_image_motion
from mimaface_core.motion.gaze import adjust_gaze, gaze_of

from . import _comfy
from .images import frames_of
from .wires import CATEGORY, GAZE, MODEL, MOTION, GazeSequence

METHODS = ("per_frame", "first_frame", "mean", "zero")


class GazeEmbed:
    """Per-frame gaze from the D3DFR eye outputs, with a method, a strength and smoothing."""

    CATEGORY = CATEGORY
    RETURN_TYPES = (GAZE,)
    RETURN_NAMES = ("gaze",)
    OUTPUT_TOOLTIPS = ("Per-frame gaze (4 values: the D3DFR eye outputs) for MIA Appearance Encode.",)
    FUNCTION = "embed"
    DESCRIPTION = ("The released gaze is the D3DFR eye output of each driving frame (coefficients 257:261). "
                   "Choose per-frame (released), the first frame's or the mean gaze for every frame, or zero.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (MODEL, {"tooltip": "From Load MIMAFace Model (used when gaze comes from crops)."}),
            "method": (list(METHODS), {"default": "per_frame", "tooltip": "per_frame: each frame's own gaze "
                       "(released). first_frame / mean: one gaze for every frame (steady eyes). zero: the "
                       "regressor's zero gaze."}),
            "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0, "step": 0.05,
                                   "tooltip": "Factor on the gaze values (1 = as measured)."}),
            "smoothing": ("INT", {"default": 1, "min": 1, "max": 61, "step": 2,
                                  "tooltip": "Savitzky-Golay window over frames (1 = off)."}),
        }, "optional": {
            "motion": (MOTION, {"tooltip": "The driving motion (or a blended one): its gaze coefficients are used."}),
            "crops": ("IMAGE", {"tooltip": "Instead of a motion: 512x512 face crops whose gaze is measured."}),
        }}

    def embed(self, model, method, strength, smoothing, motion=None, crops=None):
        if motion is not None:
            gaze = gaze_of(motion.coeffs)
        elif crops is not None:
            frames = frames_of(crops, "crops")
            progress = _comfy.Progress(len(frames))
            parts = []
            with model.use("face") as m:
                for i, f in enumerate(frames):
                    parts.append(gaze_of(extract_image_motion(f, m.detector, m.d3dfr, as_crop=None,
                                                              what=f"crop {i}").coeffs))
                    progress(i + 1, len(frames))
            gaze = torch.cat(parts)
        else:
            raise ValueError("Gaze Embed needs a motion or crops input: connect one of them.")
        if method == "first_frame":
            gaze = gaze[:1].expand_as(gaze)
        elif method == "mean":
            gaze = gaze.mean(0, keepdim=True).expand_as(gaze)
        elif method == "zero":
            gaze = torch.zeros_like(gaze)
        return (GazeSequence(adjust_gaze(gaze, scale=strength, smoothing=smoothing), method),)
