"""The released face alignment: detector → 512 box crop → detection on the crop → 256 matrix
(docs/ALIGNMENT.md §4–§6), plus the choice of face when there are several.

Coordinates are pixels with centres at integers (MTCNN/OpenCV convention); matrices are (2, 3)
float64, source → destination.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import FaceNotFoundError
from ..media.warp import warp_affine
from .crops import CROP_512, box_crop_matrix, five_point_matrix, invert_affine
from .detection import Detections, FaceDetector

#: Face choice: "largest" (the release: index 0 of the area-sorted detections) or an int index.
LARGEST = "largest"


def warp_crop_512(rgb: np.ndarray, m512: np.ndarray) -> np.ndarray:
    """The 512 box crop: bilinear warp of a uint8 image, black outside, rounded to uint8.

    This is an exact float bilinear warp, the result OpenCV 5's ``warpAffine(INTER_LINEAR)``
    gives; OpenCV 4's fixed-point warp of the release differs by ≤ 3 grey levels on a few pixels
    (alignment fixture README, "Recommended tolerances").

    Args:
        rgb: (H, W, 3) uint8 RGB. m512: (2, 3) image → crop matrix.

    Returns:
        (512, 512, 3) uint8.
    """
    img = torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1)[None]
    out = warp_affine(img.double(), torch.as_tensor(m512)[None], (CROP_512, CROP_512))
    return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def choose_face(dets: Detections, face: int | str = LARGEST, near: np.ndarray | None = None) -> int | None:
    """Index of the face to use, or None when there is none.

    Args:
        dets: detections sorted by decreasing area.
        face: ``"largest"`` (index 0, as released) or an int index into the area-sorted faces.
        near: (2,) pixel position; when given (and ``face`` is not "largest") the face whose box
            centre is nearest to it is used instead of the index (used on crops, where the chosen
            person is near the crop centre).

    Raises:
        ValueError: ``face`` is neither "largest" nor a non-negative int.
    """
    if not len(dets):
        return None
    if face == LARGEST:
        return 0
    if not isinstance(face, (int, np.integer)) or face < 0:
        raise ValueError(f"face must be 'largest' or a face index ≥ 0, got {face!r}.")
    if near is not None:
        centres = (dets.boxes[:, :2] + dets.boxes[:, 2:]) / 2
        return int(np.argmin(np.linalg.norm(centres - near, axis=1)))
    return int(face) if face < len(dets) else None


@dataclass(frozen=True)
class Alignment:
    """One photo or frame aligned the released way.

    Attributes:
        box: (4,) detector box ``[x1, y1, x2, y2]`` the 512 crop was made from (input pixels).
        m512: (2, 3) input → 512-crop matrix.
        crop512: (512, 512, 3) uint8 RGB box crop.
        landmarks: (5, 2) five points detected on the crop (512-crop pixels), or None.
        score: face probability of the detection on the crop (0 when none).
        m256: (2, 3) 512-crop → 256-crop matrix (None when no face on the crop).
        m256_inv: (2, 3) its inverse (None when no face on the crop).
    """

    box: np.ndarray
    m512: np.ndarray
    crop512: np.ndarray
    landmarks: np.ndarray | None
    score: float
    m256: np.ndarray | None
    m256_inv: np.ndarray | None

    @property
    def found(self) -> bool:
        """Whether a face was found on the 512 crop."""
        return self.m256 is not None


def align_crop(detector: FaceDetector, crop512: np.ndarray, face: int | str = LARGEST):
    """Detect on a 512 crop and fit ``M256`` (docs/ALIGNMENT.md §4.2). Returns (landmarks, score, m256, m256_inv)
    or four Nones when no face is found on the crop."""
    dets = detector.detect(crop512)
    k = choose_face(dets, face, near=np.array([CROP_512 / 2, CROP_512 / 2]))
    if k is None:
        return None, 0.0, None, None
    m256 = five_point_matrix(dets.landmarks[k])
    return dets.landmarks[k], float(dets.scores[k]), m256, invert_affine(m256)


def align_with_box(detector: FaceDetector, rgb: np.ndarray, box: np.ndarray, face: int | str = LARGEST) -> Alignment:
    """512 crop from a given detector box, then the crop's own detection and ``M256``."""
    m512 = box_crop_matrix(box)
    crop = warp_crop_512(rgb, m512)
    landmarks, score, m256, m256_inv = align_crop(detector, crop, face)
    return Alignment(np.asarray(box, np.float64), m512, crop, landmarks, score, m256, m256_inv)


def align_source(detector: FaceDetector, rgb: np.ndarray, face: int | str = LARGEST,
                 what: str = "source image") -> Alignment:
    """The source recipe (docs/ALIGNMENT.md §6.1): detect, 512 box crop, detect on the crop, ``M256``.

    Args:
        rgb: (H, W, 3) uint8 RGB at its original size.
        face: which face when there are several ("largest" or an index, largest first).
        what: the input's name for error messages.

    Raises:
        FaceNotFoundError: no face (or not that many faces) in the image or on its crop.
    """
    dets = detector.detect(rgb)
    k = choose_face(dets, face)
    if k is None:
        found = f"found {len(dets)} face(s)" if len(dets) else "found no face"
        raise FaceNotFoundError(
            f"{what}: the {detector.name} detector {found} (face={face!r}). Use a photo where the face is "
            "clearly visible, roughly frontal and at least ~40 px tall, or choose another face index.")
    aligned = align_with_box(detector, rgb, dets.boxes[k], LARGEST if face == LARGEST else 0)
    if not aligned.found:
        raise FaceNotFoundError(
            f"{what}: a face was found, but not again on its 512x512 crop, so the 5-point alignment "
            "failed. Try a larger, sharper or more frontal photo.")
    return aligned


def align_driver_image(detector: FaceDetector, rgb: np.ndarray, face: int | str = LARGEST,
                       what: str = "driving image") -> Alignment:
    """A single driving image (docs/ALIGNMENT.md §6.3): a 512x512 input is used as the crop as is (the release's
    image mode) and only supplies ``M256``; any other size is box-cropped like a source photo.

    Raises:
        FaceNotFoundError: no face in the image.
    """
    if rgb.shape[:2] != (CROP_512, CROP_512):
        return align_source(detector, rgb, face, what)
    landmarks, score, m256, m256_inv = align_crop(detector, rgb, face)
    if m256 is None:
        raise FaceNotFoundError(f"{what}: no face found. Use a 512x512 face crop framed like the source crop.")
    eye = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    return Alignment(np.array([0.0, 0, CROP_512, CROP_512]), eye, rgb, landmarks, score, m256, m256_inv)
