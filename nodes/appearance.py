"""MIA Appearance Encode."""

from __future__ import annotations

import numpy as np

from mimaface_core.errors import FaceNotFoundError
from mimaface_core.face.align import align_crop
from mimaface_core.media.images import to_rgb_uint8, to_signed_tensor
from mimaface_core.motion.extract import source_identity
from mimaface_core.motion.gaze import with_gaze

from .images import frames_of
from .types import APPEARANCE, CATEGORY, GAZE, MODEL, MOTION, Appearance


class MIAAppearanceEncode:
    """The source's appearance (CLIP tokens, identity feature) with the motion that modulates it."""

    CATEGORY = CATEGORY
    RETURN_TYPES = (APPEARANCE,)
    RETURN_NAMES = ("appearance",)
    OUTPUT_TOOLTIPS = ("Source appearance + per-frame motion, gaze and identity for the ICA Clip Sampler "
                       "(the MIA module runs per clip there).",)
    FUNCTION = "encode"
    DESCRIPTION = ("CLIP tokens of the source crop and its CurricularFace identity feature, computed once, paired "
                   "with the blended coefficients and gaze (MIA, paper §3.2; docs/SAMPLING.md §3).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (MODEL, {"tooltip": "From Load MIMAFace Model."}),
            "source_crop": ("IMAGE", {"tooltip": "The source's aligned 512x512 crop (the crops output of Extract 3DMM "
                            "Motion on the source photo)."}),
            "blended_motion": (MOTION, {"tooltip": "The blended_motion output of Render Coeff Image."}),
        }, "optional": {
            "gaze": (GAZE, {"tooltip": "Gaze Embed output; without it the blended motion's own gaze (released)."}),
            "source_motion": (MOTION, {"tooltip": "Extract 3DMM Motion of the source photo: its alignment of the crop "
                              "is reused (no second face detection). Without it the face is found on the crop again."}),
        }}

    def encode(self, model, source_crop, blended_motion, gaze=None, source_motion=None):
        from mimaface_core.networks.appearance_encoder import appearance_tokens

        crop = to_rgb_uint8(frames_of(source_crop, "source_crop")[0], "source_crop")
        blended = blended_motion.coeffs.float()
        if gaze is not None:
            if len(gaze.gaze) != len(blended):
                raise ValueError(f"gaze has {len(gaze.gaze)} frames but the blended motion {len(blended)}: "
                                 "make both from the same driving frames.")
            blended = with_gaze(blended, gaze.gaze)
        m256 = None
        if source_motion is not None:
            m256 = np.asarray(source_motion.m256[0])
            if not np.isfinite(m256).all():
                m256 = None
        with model.use("face", "clip") as m:
            if m256 is None:
                _, _, m256, _ = align_crop(m.detector, crop)
            if m256 is None:
                raise FaceNotFoundError("source_crop: no face found on the source crop; connect the crops output of "
                                        "Extract 3DMM Motion run on the source photo.")
            identity = source_identity(m.identity_encoder, to_signed_tensor(crop), m256)
            tokens = appearance_tokens(m.appearance_encoder, crop)
        return (Appearance(tokens.float().cpu(), identity.float().cpu(), blended),)
