"""Paste Back: generated 512 crops composited into the original driving frames."""

from __future__ import annotations

import numpy as np
import torch

from mimaface_core.face.crops import invert_affine
from mimaface_core.warp import warp_affine

from . import _comfy
from .images import image_to_signed
from .wires import CATEGORY, MOTION


def feathered_square(size: int, feather: int) -> torch.Tensor:
    """(1, 1, size, size) mask: 1 inside, a linear ramp over ``feather`` pixels to 0 at the border."""
    d = torch.arange(size, dtype=torch.float32)
    edge = torch.minimum(d, size - 1 - d)
    ramp = (edge / max(feather, 1)).clamp(0, 1) if feather > 0 else torch.ones(size)
    return (ramp[:, None] * ramp[None, :])[None, None]


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
        to_frame = torch.from_numpy(np.stack([invert_affine(m) for m in driving_motion.frame_to_crop()])).float()
        mask512 = feathered_square(generated.shape[1], feather)
        out, masks = [], []
        for start in range(0, n, 8):
            sl = slice(start, start + 8)
            b = len(generated[sl])
            crop = warp_affine(image_to_signed(generated[sl]) * 0.5 + 0.5, to_frame[sl], (h, w))
            mask = warp_affine(mask512.expand(b, 1, -1, -1), to_frame[sl], (h, w)).clamp(0, 1)
            base = driving_frames[sl, ..., :3].permute(0, 3, 1, 2).float()
            out.append((base * (1 - mask) + crop * mask).permute(0, 2, 3, 1).clamp(0, 1))
            masks.append(mask[:, 0])
            _comfy.check_interrupt()
        return (torch.cat(out), torch.cat(masks))
