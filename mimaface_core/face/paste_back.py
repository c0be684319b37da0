"""Paste-back: the generated 512 crops composited into the original frames they came from.

Each generated frame lives in its frame's 512 crop; ``MotionSequence.frame_to_crop`` gives the
matrix from original-frame pixels to that crop (the squash of the video recipe included, spec
§1.3). The crop is warped back with its inverse (bilinear, ``warp.warp_affine``) and blended into
the frame through a feathered square mask warped the same way. Beyond the release (which stops at
the crops).
"""

from __future__ import annotations

import numpy as np
import torch

from ..media.warp import warp_affine
from .crops import invert_affine


def feathered_square(size: int, feather: int) -> torch.Tensor:
    """(1, 1, size, size) float32 mask: 1 inside, a linear ramp over ``feather`` pixels to 0 at the border."""
    d = torch.arange(size, dtype=torch.float32)
    edge = torch.minimum(d, size - 1 - d)
    ramp = (edge / max(feather, 1)).clamp(0, 1) if feather > 0 else torch.ones(size)
    return (ramp[:, None] * ramp[None, :])[None, None]


def paste_back(frames: torch.Tensor, generated: torch.Tensor, frame_to_crop: np.ndarray,
               feather: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite generated crops into their original frames.

    Args:
        frames: (B, H, W, C ≥ 3) float in [0, 1], the original frames (or one frame broadcast to B).
        generated: (B, S, S, 3) float in [0, 1], the generated crops (S = 512).
        frame_to_crop: (B, 2, 3) original pixels → crop pixels (``MotionSequence.frame_to_crop``).
        feather: width in crop pixels of the mask's soft edge (0 = hard edge).

    Returns:
        (images (B, H, W, 3) float32 in [0, 1], masks (B, H, W) float32 in [0, 1]), on the CPU.

    Raises:
        ValueError: the batch sizes differ.
    """
    b = len(generated)
    if len(frames) == 1 and b > 1:
        frames = frames.expand(b, -1, -1, -1)
    if len(frames) != b or len(frame_to_crop) != b:
        raise ValueError(f"paste-back needs as many frames ({len(frames)}), generated crops ({b}) and matrices "
                         f"({len(frame_to_crop)}).")
    h, w = frames.shape[1:3]
    to_frame = torch.from_numpy(np.stack([invert_affine(m) for m in frame_to_crop])).float()
    crop = warp_affine(generated[..., :3].float().permute(0, 3, 1, 2), to_frame, (h, w))
    mask = warp_affine(feathered_square(generated.shape[1], feather).expand(b, 1, -1, -1), to_frame, (h, w)).clamp(0, 1)
    base = frames[..., :3].float().permute(0, 3, 1, 2)
    out = (base * (1 - mask) + crop * mask).permute(0, 2, 3, 1).clamp(0, 1)
    return out, mask[:, 0]
