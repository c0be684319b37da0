"""Every face of a source photo (a group photo), ordered left to right, each aligned and encoded
as :func:`.extract.encode_source` does for one face (beyond the release, which takes the largest)."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import FaceNotFoundError
from ..face.align import align_with_box
from ..face.detection import FaceDetector
from ..media.images import to_rgb_uint8, to_signed_tensor
from .extract import SourceFace, regress_coefficients, source_identity


def source_face_boxes(image, detector: FaceDetector, what: str = "source image") -> np.ndarray:
    """(F, 4) boxes of every face of the photo, left to right (box centre x); detection only, no
    network beyond the detector, so a command can check face numbers before loading a model.

    Raises:
        FaceNotFoundError: no face.
    """
    rgb = to_rgb_uint8(image, what)
    dets = detector.detect(rgb)
    if not len(dets):
        raise FaceNotFoundError(f"{what}: the {detector.name} detector found no face. Use a photo where the faces "
                                "are clearly visible, roughly frontal and at least ~40 px tall.")
    order = np.argsort((dets.boxes[:, 0] + dets.boxes[:, 2]) / 2, kind="stable")
    return dets.boxes[order]


def encode_source_faces(image, detector: FaceDetector, d3dfr: torch.nn.Module, identity_encoder: torch.nn.Module,
                        faces: list[int] | None = None, what: str = "source image",
                        boxes: np.ndarray | None = None) -> list[SourceFace]:
    """Every face of the photo (or those listed), left to right, each with its own 512 box crop,
    ``M256`` on the crop (the face nearest the crop centre), D3DFR coefficients and identity.

    Face k equals ``encode_source(image, face=j)`` where j is its rank by box area (the same box,
    crop and networks).

    Args:
        image: the photo at its original size (PIL, (H, W, C) uint8 or [0, 1] float array).
        faces: indices (left to right) to encode; None = all. The result keeps the photo's order
            and length: faces not listed are None.
        boxes: the faces' boxes when already found (:func:`source_face_boxes`).

    Raises:
        FaceNotFoundError: no face, or a listed face not found again on its crop.
        ValueError: a listed index beyond the faces found.
    """
    rgb = to_rgb_uint8(image, what)
    boxes = source_face_boxes(rgb, detector, what) if boxes is None else boxes
    chosen = range(len(boxes)) if faces is None else faces
    for k in chosen:
        if not 0 <= k < len(boxes):
            raise ValueError(f"{what}: face {k} does not exist; {len(boxes)} face(s) were found (0 = leftmost).")
    out: list[SourceFace | None] = [None] * len(boxes)
    for k in chosen:
        aligned = align_with_box(detector, rgb, boxes[k], 0)
        if not aligned.found:
            raise FaceNotFoundError(f"{what}: face {k} (left to right) was found, but not again on its 512x512 crop, "
                                    "so the 5-point alignment failed. Leave it out, or use a larger, sharper photo.")
        src512 = to_signed_tensor(aligned.crop512)
        coeffs = regress_coefficients(d3dfr, src512, torch.from_numpy(aligned.m256).float()[None])
        out[k] = SourceFace(aligned, src512, coeffs, source_identity(identity_encoder, src512, aligned.m256),
                            (rgb.shape[1], rgb.shape[0]))
    return out
