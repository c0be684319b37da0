"""Paste-back of several faces into one frame: each generated crop warped back with its own
matrix and feathered mask (:func:`.paste_back.paste_back`), smaller faces first so that larger
faces are on top where masks overlap. Outside every mask the frame is unchanged, bit for bit."""

from __future__ import annotations

import numpy as np
import torch

from .paste_back import paste_back


def face_scale(frame_to_crop: np.ndarray) -> float:
    """Size of a crop's face in frame pixels, relative (1/√det of the frame → crop matrix)."""
    m = np.asarray(frame_to_crop, np.float64).reshape(-1, 2, 3)[0]
    return float(1 / np.sqrt(abs(np.linalg.det(m[:, :2]))))


def paste_faces(frames: torch.Tensor, generated: list[torch.Tensor], frame_to_crop: list[np.ndarray],
                feather: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite several faces' generated crops into the same frames.

    Args:
        frames: (B, H, W, C ≥ 3) float in [0, 1] (or one frame used for all B).
        generated: per face, (B, S, S, 3) float in [0, 1] crops.
        frame_to_crop: per face, (B, 2, 3) frame pixels → crop pixels (``MotionSequence.frame_to_crop``;
            a source photo's one matrix repeated).
        feather: soft edge of each mask, in crop pixels.

    Returns:
        (images (B, H, W, 3) float32, masks (B, H, W) float32: the union of the faces' masks).

    Raises:
        ValueError: as many crops as matrices are needed, and matching batch sizes.
    """
    if len(generated) != len(frame_to_crop):
        raise ValueError(f"paste_faces needs one matrix set per face: {len(generated)} faces, "
                         f"{len(frame_to_crop)} matrix sets.")
    b = len(generated[0]) if generated else len(frames)
    out = frames[..., :3].float()
    if len(out) == 1 and b > 1:
        out = out.expand(b, -1, -1, -1)
    union = torch.zeros(out.shape[:3])
    order = sorted(range(len(generated)), key=lambda i: face_scale(frame_to_crop[i]))
    for i in order:  # smallest first: larger faces end on top
        out, mask = paste_back(out, generated[i], frame_to_crop[i], feather)
        union = 1 - (1 - union) * (1 - mask)
    return out, union
