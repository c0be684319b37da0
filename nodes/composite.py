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
        }, "optional": {
            "region_mask": ("MASK", {"tooltip": "Per frame, the region to paste in the 512 crop (Footage Motion's "
                            "region_mask) instead of the feathered square; outside it the frame is kept exactly."}),
            "colour_match": ("BOOLEAN", {"default": False, "tooltip": "Match the pasted region's mean and spread in "
                             "CIE Lab to the frame's inside the mask (lighting changes in footage carry over)."}),
            "pass_through": ("BOOLEAN", {"default": False, "tooltip": "Leave the frames where the motion found no "
                             "face (its missing frames) exactly as they are."}),
        }}

    def paste(self, driving_frames, generated, driving_motion, feather, region_mask=None, colour_match=False,
              pass_through=False):
        n = len(generated)
        if region_mask is not None or colour_match or pass_through:
            return _region_paste(driving_frames, generated, driving_motion, feather, region_mask, colour_match,
                                 pass_through)
        return paste_back(driving_frames, generated, driving_motion.frame_to_crop(), feather,
                          frame_size=driving_motion.frame_size, progress=_comfy.Progress(n),
                          names={"frames": "driving_frames", "generated": "generated", "matrices": "driving_motion"})


def _region_paste(frames, generated, motion, feather, region_mask, colour_match, pass_through):
    """Paste Back with a region mask, colour match or pass-through (``footage.composite``)."""
    from mimaface_core.face.paste_back import check_paste_inputs, feathered_square
    from mimaface_core.footage.composite import composite_region

    names = {"frames": "driving_frames", "generated": "generated", "matrices": "driving_motion"}
    frames = check_paste_inputs(frames, generated, motion.frame_to_crop(), motion.frame_size, names)
    n, size = len(generated), generated.shape[1]
    masks = feathered_square(size, feather)[0].expand(n, -1, -1) if region_mask is None else region_mask
    if len(masks) != n or tuple(masks.shape[1:]) != (size, size):
        raise ValueError(f"region_mask: {tuple(masks.shape)}, expected ({n}, {size}, {size}) (one crop mask per "
                         "generated frame, from Footage Motion).")
    matrices = motion.frame_to_crop()
    passed = motion.missing if pass_through else None
    progress, out, got = _comfy.Progress(n), [], []
    for i in range(n):
        image, mask = composite_region(frames[i:i + 1], generated[i:i + 1], matrices[i:i + 1], masks[i:i + 1],
                                       colour_match=colour_match,
                                       passthrough=None if passed is None else passed[i:i + 1])
        out.append(image)
        got.append(mask)
        progress(i + 1, n)
    import torch

    return torch.cat(out), torch.cat(got)
