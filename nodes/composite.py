"""Paste Back: generated 512 crops composited into the original driving frames."""

from __future__ import annotations

import torch

from mimaface_core.face.paste_back import paste_back

from . import _comfy
from .wires import CATEGORY, MOTION


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
        if len(driving_frames) == 1 and n > 1:
            driving_frames = driving_frames.expand(n, -1, -1, -1)
        if len(driving_frames) != n or len(driving_motion) != n:
            raise ValueError(f"Paste Back needs as many driving frames ({len(driving_frames)}), generated frames ({n}) "
                             f"and motion frames ({len(driving_motion)}).")
        h, w = driving_frames.shape[1:3]
        if (w, h) != tuple(driving_motion.frame_size):
            raise ValueError(f"driving_frames are {w}x{h} but the motion was extracted from "
                             f"{driving_motion.frame_size[0]}x{driving_motion.frame_size[1]} frames.")
        matrices = driving_motion.frame_to_crop()
        progress = _comfy.Progress(n)
        out, masks = [], []
        for i in range(n):  # one frame at a time: progress and Cancel per frame
            image, mask = paste_back(driving_frames[i:i + 1], generated[i:i + 1], matrices[i:i + 1], feather)
            out.append(image)
            masks.append(mask)
            progress(i + 1, n)
        return (torch.cat(out), torch.cat(masks))
