"""Conversions between ComfyUI IMAGE/MASK tensors and the core's arrays."""

from __future__ import annotations

import numpy as np
import torch


class Frames:
    """A lazy sequence over an IMAGE batch: ``frames[i]`` is frame i as an (H, W, C) float array in
    [0, 1], converted one at a time (no copy of the whole batch)."""

    def __init__(self, image: torch.Tensor):
        self.image = image

    def __len__(self) -> int:
        return len(self.image)

    def __getitem__(self, i: int) -> np.ndarray:
        if not 0 <= i < len(self.image):
            raise IndexError(i)
        return self.image[i].detach().cpu().float().numpy()


def frames_of(image: torch.Tensor, name: str) -> Frames:
    """IMAGE [B, H, W, C] float in [0, 1] → a lazy sequence of B (H, W, C) frames.

    Raises:
        ValueError: naming the input when it is not a non-empty [B, H, W, C] batch.
    """
    if not torch.is_tensor(image) or image.ndim != 4 or len(image) == 0:
        raise ValueError(f"{name}: expected an IMAGE batch [B, H, W, C], got {getattr(image, 'shape', type(image))}.")
    return Frames(image)


def to_image(frames_uint8) -> torch.Tensor:
    """(N, H, W, 3) uint8 (array or list) → IMAGE [N, H, W, 3] float32 in [0, 1]."""
    return torch.from_numpy(np.stack(list(frames_uint8))).float() / 255
