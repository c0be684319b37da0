"""What the paper's face metrics measure on one 512 face crop: the five MTCNN landmarks, the D3DFR
coefficients (expression, pose, gaze) and the CurricularFace identity embedding (MIMAFace §4.1
"Evaluation metrics"; docs/ALIGNMENT.md §4, docs/WEIGHTS.md §9–§10). The estimators are the networks of the MIMAFace
snapshot, so no other weight file is needed for these metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..face.align import LARGEST, choose_face
from ..face.crops import ARCFACE_SIZE, ARCFACE_TEMPLATE_112, CROP_512, five_point_matrix
from ..media.images import to_signed_tensor
from ..media.warp import warp_affine
from ..motion.extract import regress_coefficients


@dataclass(frozen=True)
class Estimators:
    """The networks the face metrics run: a face detector (MTCNN by default, the release's),
    D3DFR (float32) and CurricularFace IR-101 (float32), on ``device``."""

    detector: object
    d3dfr: torch.nn.Module
    identity_encoder: torch.nn.Module
    device: torch.device


def check_estimator_files(root: str | Path) -> dict[str, Path]:
    """The D3DFR and CurricularFace files of a snapshot ({"d3dfr", "curricularface"}: path), checked
    without reading them.

    Raises:
        MissingWeightFileError: one is missing (the message names it and says where to get it).
    """
    from ..errors import MissingWeightFileError
    from ..weights.layout import ReleasedLayout

    layout = ReleasedLayout(Path(root))
    files = {name: layout.weight_file(name) for name in ("d3dfr", "curricularface")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise MissingWeightFileError(f"--weights {root}: the evaluation's estimators are missing: {', '.join(missing)}. "
                                     "Point --weights at a MIMAFace snapshot (python -m mimaface_core download DEST).")
    return files


def load_estimators(root: str | Path, device: str | torch.device = "cpu", detector: str = "mtcnn",
                    models_dir: str | Path | None = None) -> Estimators:
    """Load only the estimators of a MIMAFace snapshot (D3DFR, CurricularFace, the detector).

    Args:
        root: the MIMAFace snapshot folder (the released layout, .pth or converted .safetensors).
        device: where they run. detector: "mtcnn" (released) or "mediapipe" (needs ``models_dir``).

    Raises:
        MissingWeightFileError: the D3DFR or CurricularFace file is missing (the message names it).
        WeightMismatchError / UnsafeWeightFileError: a wrong or unsafe file.
    """
    from ..face.detectors import make_detector
    from ..weights.components import load_d3dfr, load_identity_encoder

    device = torch.device(device)
    files = check_estimator_files(root)
    return Estimators(make_detector(detector, device=device, models_dir=models_dir),
                      load_d3dfr(files["d3dfr"], device), load_identity_encoder(files["curricularface"], device), device)


@dataclass(frozen=True)
class FaceMeasure:
    """The measurements of one 512 crop.

    Attributes:
        found: whether a face was found on the crop (else every other field is None).
        landmarks: (5, 2) float64 MTCNN points in 512-crop pixels.
        coeffs: (261,) float32 D3DFR coefficients of the crop's 256 alignment (docs/WEIGHTS.md §9).
        embedding: (512,) float32 L2-normalised CurricularFace embedding of the ArcFace-aligned
            112x112 crop.
        box: (4,) float64 detector box of that face on the crop (where :func:`landmarks_in_box`
            measures both clips' landmarks).
    """

    found: bool
    landmarks: np.ndarray | None = None
    coeffs: np.ndarray | None = None
    embedding: np.ndarray | None = None
    box: np.ndarray | None = None


def landmarks_in_box(detector, crop512: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """The five landmarks of the face in ``box`` of a crop, by the detector's landmark stage alone
    (MTCNN's ONet on that box): the LMD measures the generated and the driving crop in the same
    box, the driving crop's face (the face the crop is built from), so a re-encode cannot move
    the landmarks by making the cascade keep another candidate box. None when the detector has
    no such stage (mediapipe: the detected landmarks are compared instead)."""
    measure = getattr(detector, "landmarks_in", None)
    return None if measure is None else measure(crop512, box)


def arcface_crop(crop512: torch.Tensor, landmarks: np.ndarray) -> torch.Tensor:
    """The 112x112 recognition crop: the similarity that maps the 5 points onto
    :data:`ARCFACE_TEMPLATE_112`, bilinear (the alignment CurricularFace was trained with).

    Args:
        crop512: (1, 3, 512, 512) float in [-1, 1]. landmarks: (5, 2) pixels of the crop.

    Returns:
        (1, 3, 112, 112) float32 in [-1, 1] (0 outside the crop).
    """
    m = five_point_matrix(landmarks, ARCFACE_TEMPLATE_112)
    return warp_affine(crop512.float(), torch.as_tensor(m, dtype=torch.float32)[None].to(crop512.device),
                       (ARCFACE_SIZE, ARCFACE_SIZE))


def measure_face(crop512: np.ndarray, estimators: Estimators, face: int | str = LARGEST,
                 identity: bool = True) -> FaceMeasure:
    """Detect, align and measure the face of one 512 crop.

    Args:
        crop512: (512, 512, 3) uint8 RGB, a face crop in the released 512 framing.
        face: which face ("largest", as released, or an index; on crops the one nearest the centre).
        identity: also compute the identity embedding (False leaves ``embedding`` None).

    Returns:
        A :class:`FaceMeasure` (``found=False`` when the detector finds no face on the crop).
    """
    dets = estimators.detector.detect(crop512)
    k = choose_face(dets, face, near=np.array([CROP_512 / 2, CROP_512 / 2]))
    if k is None:
        return FaceMeasure(False)
    landmarks, m256 = dets.landmarks[k], five_point_matrix(dets.landmarks[k])
    device = estimators.device
    x = to_signed_tensor(crop512).to(device)
    coeffs = regress_coefficients(estimators.d3dfr, x, torch.from_numpy(np.asarray(m256)).float()[None])[0]
    emb = None
    if identity:
        with torch.inference_mode():
            e = estimators.identity_encoder.embedding(arcface_crop(x, landmarks)).float()[0]
            emb = (e / e.norm().clamp_min(1e-12)).cpu().numpy()
    return FaceMeasure(True, np.asarray(landmarks, np.float64), coeffs.cpu().numpy(), emb,
                       np.asarray(dets.boxes[k], np.float64))
