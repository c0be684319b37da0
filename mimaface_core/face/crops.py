"""The two crop matrices of the release and their templates (docs/ALIGNMENT.md §4).

All matrices are 2x3 in the OpenCV convention: they map source pixel coordinates to destination
pixel coordinates, pixel centres at integer coordinates.
"""

from __future__ import annotations

import numpy as np

#: Corners of the 512 box template: (x1,y1), (x1,y2), (x2,y2), (x2,y1) in 512-crop pixels.
BOX_TEMPLATE_512 = np.array([(80, 80), (80, 432), (432, 432), (432, 80)], dtype=np.float64)
#: Five-point template of the 256 crop: left eye, right eye, nose tip, left and right mouth corner.
FIVE_POINT_TEMPLATE_256 = np.array(
    [(92.5892, 103.3926), (163.0636, 103.0028), (128.0504, 143.4732), (99.0986, 184.7310), (157.4598, 184.4082)],
    dtype=np.float64,
)
CROP_512 = 512
CROP_256 = 256


def square_box_corners(box_xyxy) -> np.ndarray:
    """Corners of the detector box squared about its centre (docs/ALIGNMENT.md §4.1).

    Args:
        box_xyxy: [x1, y1, x2, y2] in pixels.

    Returns:
        (4, 2) float64 corners (x1,y1), (x1,y2), (x2,y2), (x2,y1) of the square of side
        ``max(x2−x1, y2−y1)`` with the box's centre.
    """
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box_xyxy, dtype=np.float32))
    side = max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    a, b, c, d = cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2
    return np.array([(a, b), (a, d), (c, d), (c, b)], dtype=np.float64)


def procrustes_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Orthogonal-Procrustes similarity mapping ``src`` points onto ``dst`` (docs/ALIGNMENT.md §4.1).

    Both sets are centred and divided by the standard deviation of all their coordinates; the
    rotation comes from the SVD of the cross-covariance, the scale is the ratio of the deviations.

    Args:
        src, dst: (N, 2) points in pixels.

    Returns:
        (2, 3) float64 matrix M with ``dst ≈ M · [src, 1]``.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    c1, c2 = src.mean(0), dst.mean(0)
    p1, p2 = src - c1, dst - c2
    s1, s2 = p1.std(), p2.std()
    u, _, vt = np.linalg.svd((p1 / s1).T @ (p2 / s2))
    rot = (u @ vt).T
    scale = s2 / s1
    return np.hstack([scale * rot, (c2 - scale * rot @ c1)[:, None]])


def box_crop_matrix(box_xyxy) -> np.ndarray:
    """``M512``: detector box → 512 box crop (docs/ALIGNMENT.md §4.1). (2, 3) float64.

    For a square box it equals ``[[k, 0, 256 − k·cx], [0, k, 256 − k·cy]]`` with ``k = 352/side``.
    """
    return procrustes_similarity(square_box_corners(box_xyxy), BOX_TEMPLATE_512)


def five_point_matrix(points5, template: np.ndarray = FIVE_POINT_TEMPLATE_256) -> np.ndarray:
    """``M256``: least-squares similarity ``[[a, −b, tx], [b, a, ty]]`` from 5 landmarks to the template.

    Args:
        points5: (5, 2) landmarks in MTCNN order (left eye, right eye, nose, left mouth, right mouth),
            pixels of the 512 crop.
        template: (5, 2) target points (the 256 template by default).

    Returns:
        (2, 3) float64 matrix (no reflection), as the release's SVD least-squares solve computes it.
    """
    p = np.asarray(points5, np.float32).astype(np.float64)
    q = np.asarray(template, np.float64)
    n = len(p)
    a = np.zeros((2 * n, 4))
    a[0::2] = np.stack([p[:, 0], -p[:, 1], np.ones(n), np.zeros(n)], 1)
    a[1::2] = np.stack([p[:, 1], p[:, 0], np.zeros(n), np.ones(n)], 1)
    sol, *_ = np.linalg.lstsq(a, q.reshape(-1), rcond=None)
    ca, cb, tx, ty = sol
    return np.array([[ca, -cb, tx], [cb, ca, ty]])


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix (as ``cv2.invertAffineTransform``). (2, 3) float64."""
    m = np.asarray(m, np.float64)
    inv = np.linalg.inv(m[:, :2])
    return np.hstack([inv, -(inv @ m[:, 2:])])


#: The five-point template of ArcFace/CurricularFace 112x112 crops (insightface's ``arcface_dst``,
#: face.evoLVe's ``get_reference_facial_points(default_square=True)``), pixels, MTCNN order (eyes,
#: nose, mouth corners). Used for identity embeddings of tracked faces and for CSIM.
ARCFACE_TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                                 [41.5493, 92.3655], [70.7299, 92.2041]], np.float64)
ARCFACE_SIZE = 112
