"""Conversions between 8-bit RGB images and the [-1, 1] tensors of the release (spec conventions)."""

from __future__ import annotations

import numpy as np
import torch


def to_signed_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB → (1, 3, H, W) float32 in [-1, 1] (``x/127.5 − 1``, = ToTensor then (x−0.5)/0.5).

    Raises:
        ValueError: if the array is not (H, W, 3) uint8; convert grayscale or RGBA images to RGB first.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}; convert it to RGB.")
    x = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None].float() / 255
    return (x - 0.5) / 0.5
