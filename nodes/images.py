"""Conversions between ComfyUI IMAGE/MASK tensors and the core's arrays."""

from __future__ import annotations

import numpy as np
import torch


def frames_of(image: torch.Tensor, name: str) -> list[np.ndarray]:
    """IMAGE [B, H, W, C] float in [0, 1] → B frames (H, W, C) float arrays (RGB/RGBA/gray).

    Raises:
        ValueError: naming the input when it is not a [B, H, W, C] batch.
    """
    if not torch.is_tensor(image) or image.ndim != 4:
        raise ValueError(f"{name}: expected an IMAGE batch [B, H, W, C], got {getattr(image, 'shape', type(image))}.")
    return [f for f in image.detach().cpu().float().numpy()]


def to_image(frames_uint8) -> torch.Tensor:
    """(N, H, W, 3) uint8 (array or list) → IMAGE [N, H, W, 3] float32 in [0, 1]."""
    return torch.from_numpy(np.stack(list(frames_uint8))).float() / 255


def signed_to_image(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [−1, 1] → IMAGE [N, H, W, 3] float32 in [0, 1] on the CPU."""
    return ((x.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu()


def image_to_signed(image: torch.Tensor) -> torch.Tensor:
    """IMAGE [N, H, W, 3] in [0, 1] → (N, 3, H, W) float32 in [−1, 1]."""
    return image[..., :3].float().permute(0, 3, 1, 2) * 2 - 1
