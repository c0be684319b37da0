"""Extract 3DMM Motion and Edit Motion."""

from __future__ import annotations

import logging

import numpy as np

from mimaface_core.motion.edit import edit_motion
from mimaface_core.motion.extract import (
    AS_IS_512,
    BOX_MODES,
    DEFAULT_BOX_MODE,
    extract_crops_motion,
    extract_image_motion,
    extract_motion,
)

from . import _comfy
from .images import frames_of, to_image
from .types import CATEGORY, MODEL, MOTION

log = logging.getLogger(__name__)
AS_IS = AS_IS_512
#: What one image is: a source photo (always box-cropped) or a driving image (released: 512x512 as is).
SINGLE_IMAGE = ("source_photo", "driving_image")
CROP_MODES = BOX_MODES + (AS_IS,)


class ExtractMotion:
    """Faces → 3DMM coefficients, crop matrices and aligned 512 crops, frame by frame."""

    CATEGORY = CATEGORY
    RETURN_TYPES = (MOTION, "IMAGE")
    RETURN_NAMES = ("motion", "crops")
    OUTPUT_TOOLTIPS = ("Per-frame 3DMM coefficients (id, exp, tex, angles, gamma, translation, gaze), crop matrices "
                       "and missing-face flags.", "The aligned 512x512 face crops (the frames the output lives in).")
    FUNCTION = "extract"
    DESCRIPTION = ("Detects the face (released MTCNN by default), crops it the released way and regresses D3DFR "
                   "coefficients. One image = a source photo (or one driving image); a batch = driving frames. "
                   "Frames without a face are filled from their neighbours and counted in the console.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (MODEL, {"tooltip": "From Load MIMAFace Model."}),
            "images": ("IMAGE", {"tooltip": "The source photo, a driving image, or the driving video's frames."}),
            "crop_mode": (list(CROP_MODES), {"default": DEFAULT_BOX_MODE, "tooltip": "auto: the released "
                          "first_frame box when the face stays in it on every frame, else tracked (the console says "
                          "which and why). first_frame: the released recipe "
                          "(the 512 box of the first frame reused for every frame). tracked: a box per frame, "
                          "smoothed (for heads that move a lot). as_is_512: images are already 512x512 face crops "
                          "(the released image-mode driver)."}),
            "face_index": ("INT", {"default": 0, "min": 0, "max": 32, "tooltip": "Which face when there are several: "
                           "0 = the largest (released), 1 = the second largest, ..."}),
            "box_smoothing": ("INT", {"default": 9, "min": 1, "max": 61, "step": 2, "tooltip": "tracked mode: frames "
                              "in the Savitzky-Golay window smoothing the box (1 = off)."}),
        }, "optional": {
            "single_image": (list(SINGLE_IMAGE), {"default": SINGLE_IMAGE[0], "tooltip": "For ONE image: "
                             "source_photo: box-crop it like the release's source (any size). driving_image: the "
                             "release's driving-image recipe: a 512x512 image is used as is (not re-cropped), other "
                             "sizes are box-cropped. Batches of frames follow crop_mode."}),
        }}

    def extract(self, model, images, crop_mode, face_index, box_smoothing, single_image=SINGLE_IMAGE[0]):
        frames = frames_of(images, "images")
        face = "largest" if face_index == 0 else face_index
        crops = [None] * len(frames)

        def keep(i, crop):
            crops[i] = crop

        with model.use("face") as m:
            detector = m.detector
            if len(frames) == 1:
                as_crop = True if crop_mode == AS_IS else (None if single_image == SINGLE_IMAGE[1] else False)
                motion = extract_image_motion(frames[0], detector, m.d3dfr, face, keep, as_crop, "image")
            elif crop_mode == AS_IS:
                motion = extract_crops_motion(frames, detector, m.d3dfr, face, keep, _comfy.Progress(len(frames)))
            else:
                progress = _comfy.Progress(len(frames))
                motion = extract_motion(frames, detector, m.d3dfr, box_mode=crop_mode, face=face,
                                        box_smoothing=box_smoothing, progress=progress, on_crop=keep)
        if motion.missing_count:
            missing = ", ".join(str(int(i)) for i in np.flatnonzero(motion.missing)[:20])
            log.warning("[MIMAFace] %d of %d frames had no face on the crop (frames %s%s); they are filled from "
                        "their neighbours. If there are many, use crop_mode tracked.", motion.missing_count,
                        len(motion), missing, " ..." if motion.missing_count > 20 else "")
        return (motion, to_image(crops))


class EditMotion:
    """Edits a motion sequence: head rotation offsets, expression scale, temporal smoothing."""

    CATEGORY = CATEGORY
    RETURN_TYPES = (MOTION,)
    RETURN_NAMES = ("motion",)
    OUTPUT_TOOLTIPS = ("The edited motion (same frames and crop matrices).",)
    FUNCTION = "edit"
    DESCRIPTION = "Adds head-rotation offsets, scales the expression and smooths the coefficients over time."

    @classmethod
    def INPUT_TYPES(cls):
        angle = {"default": 0.0, "min": -45.0, "max": 45.0, "step": 0.5}
        return {"required": {
            "motion": (MOTION, {"tooltip": "A driving motion (Extract 3DMM Motion or Load Motion)."}),
            "pitch": ("FLOAT", {**angle, "tooltip": "Added rotation about the x axis (nod), degrees."}),
            "yaw": ("FLOAT", {**angle, "tooltip": "Added rotation about the y axis (turn), degrees."}),
            "roll": ("FLOAT", {**angle, "tooltip": "Added rotation about the z axis (tilt), degrees."}),
            "expression_scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 3.0, "step": 0.05,
                                 "tooltip": "Factor on the expression coefficients (0 = neutral face)."}),
            "smoothing": ("INT", {"default": 1, "min": 1, "max": 61, "step": 2, "tooltip": "Savitzky-Golay window "
                          "(frames) over every coefficient (1 = off)."}),
        }}

    def edit(self, motion, pitch, yaw, roll, expression_scale, smoothing):
        return (edit_motion(motion, pitch, yaw, roll, expression_scale, smoothing),)
