"""Paste Back: generated 512 crops composited into the original driving frames."""

from __future__ import annotations

from mimaface_core.face.paste_back import paste_back

from . import _comfy
from .types import CATEGORY, MOTION


class PasteBack:
    """Puts each generated 512 crop back where it came from in the driving frame, with a feathered MASK."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("images", "mask")
    OUTPUT_TOOLTIPS = ("The driving frames with the animated face pasted in, at their original size.",
                       "Where the crop was pasted (feathered), per frame.")
    FUNCTION = "paste"
    DESCRIPTION = ("Warps each generated crop back with the inverse of its crop matrix (the 512 box crop of the "
                   "squashed frame, or of the photo itself for source photos and audio-driven motion) and blends it "
                   "into the original frame.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "driving_frames": ("IMAGE", {"tooltip": "The original frames the motion's crops come from (the images given "
                               "to Extract 3DMM Motion); one image (the source photo, for audio or image driving) is "
                               "used for every generated frame."}),
            "generated": ("IMAGE", {"tooltip": "The decoded animation: 512x512, one per driving frame."}),
            "driving_motion": (MOTION, {"tooltip": "The driving motion: its crop matrices say where each crop came from."}),
            "feather": ("INT", {"default": 24, "min": 0, "max": 256, "tooltip": "Width in crop pixels of the soft "
                        "edge of the pasted square (0 = hard edge)."}),
        }}

    def paste(self, driving_frames, generated, driving_motion, feather):
        n = len(generated)
        return paste_back(driving_frames, generated, driving_motion.frame_to_crop(), feather,
                          frame_size=driving_motion.frame_size, progress=_comfy.Progress(n),
                          names={"frames": "driving_frames", "generated": "generated", "matrices": "driving_motion"})
