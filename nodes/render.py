"""Render Coeff Image."""

from __future__ import annotations

import torch

from mimaface_core.morphable.render import render_motion, render_to_image
from mimaface_core.motion.retarget import POSE_MODES, retarget

from . import _comfy
from .types import CATEGORY, MODEL, MOTION

CHUNK = 1  # one frame at a time: progress and Cancel per frame


class RenderCoeffImage:
    """Blends source and driving coefficients and renders the BFM face in each driving crop."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "MASK", MOTION)
    RETURN_NAMES = ("render", "mask", "blended_motion")
    OUTPUT_TOOLTIPS = ("The rendered 3DMM face per driving frame, 512x512, black background: the motion "
                       "signal for the sampler.", "Where the face was rendered.",
                       "Blended coefficients (identity, albedo, light of the source; expression, pose, gaze of "
                       "the driver) with the driver's crop matrices.")
    FUNCTION = "render"
    DESCRIPTION = "The released coefficient blend (docs/ALIGNMENT.md §11) and a z-buffer render of the BFM09 face."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (MODEL, {"tooltip": "From Load MIMAFace Model."}),
            "source_motion": (MOTION, {"tooltip": "Extract 3DMM Motion of the source photo (its first frame is used)."}),
            "driving_motion": (MOTION, {"tooltip": "Extract 3DMM Motion of the driving frames (or Load Motion)."}),
            "pose_mode": (list(POSE_MODES), {"default": "absolute", "tooltip": "absolute: the driver's head pose "
                          "(released). relative: the source keeps its pose and gets the driver's change since "
                          "its first frame."}),
            "expression_scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 3.0, "step": 0.05,
                                 "tooltip": "Factor on the driver's expression (1 = released)."}),
            "smoothing": ("INT", {"default": 1, "min": 1, "max": 61, "step": 2, "tooltip": "Savitzky-Golay window "
                          "(frames) on the driver's expression, pose and gaze (1 = off, released)."}),
        }}

    def render(self, model, source_motion, driving_motion, pose_mode, expression_scale, smoothing):
        blended = retarget(source_motion.coeffs[:1], driving_motion.coeffs, pose_mode, expression_scale, smoothing)
        renders, masks = [], []
        progress = _comfy.Progress(len(blended))
        with model.use("bfm") as m:
            for start in range(0, len(blended), CHUNK):
                r, k = render_motion(m.bfm, blended[start:start + CHUNK], driving_motion.m256_inv[start:start + CHUNK],
                                     out_device="cpu")
                renders.append(render_to_image(r))
                masks.append(k[:, 0])
                progress(min(start + CHUNK, len(blended)), len(blended))
        return (torch.cat(renders), torch.cat(masks), driving_motion.with_coeffs(blended))
