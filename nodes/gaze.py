"""Gaze Embed."""

from __future__ import annotations

from mimaface_core.motion.gaze import (
    GAZE_METHODS,
    gaze_by_method,
    gaze_of,
    measure_gaze,
)

from . import _comfy
from .images import frames_of
from .types import CATEGORY, GAZE, MODEL, MOTION, GazeSequence

METHODS = GAZE_METHODS


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
            with model.use("face") as m:
                gaze = measure_gaze(frames, m.detector, m.d3dfr, _comfy.Progress(len(frames)))
        else:
            raise ValueError("Gaze Embed needs a motion or crops input: connect one of them.")
        return (GazeSequence(gaze_by_method(gaze, method, strength, smoothing), method),)
