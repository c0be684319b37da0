"""Live previews of a clip being denoised: its frames' denoised estimates tiled into one latent
image, so that a host's latent previewer (ComfyUI's latent2rgb or TAESD) decodes a whole clip in
one call and the motion is visible.
"""

from __future__ import annotations

import math

import torch


def grid_shape(frames: int) -> tuple[int, int]:
    """(rows, columns) of the preview grid for ``frames`` frames: ⌈√frames⌉ columns, as many rows
    as needed (12 frames: 3 × 4; 2 frames: 1 × 2; 1 frame: 1 × 1).

    Raises:
        ValueError: ``frames`` < 1.
    """
    if frames < 1:
        raise ValueError(f"a preview needs at least one frame, got {frames}.")
    cols = math.ceil(math.sqrt(frames))
    return math.ceil(frames / cols), cols


def latent_grid(latents: torch.Tensor) -> torch.Tensor:
    """Tile a clip's latents into one latent image, frames in reading order.

    Args:
        latents: (1, C, F, h, w) video latents (a clip) or (1, C, h, w) (one image, returned as is);
            any dtype and device.

    Returns:
        (1, C, rows·h, cols·w) with ``grid_shape(F)``; cells after the last frame are zero (the
        latent space's mean, grey in latent2rgb). Same dtype and device.

    Raises:
        ValueError: a tensor of another rank, or a batch other than 1.
    """
    if latents.ndim == 4 and latents.shape[0] == 1:
        return latents
    if latents.ndim != 5 or latents.shape[0] != 1:
        raise ValueError(f"latent_grid expects (1, C, F, h, w) or (1, C, h, w) latents, got {tuple(latents.shape)}.")
    _, c, f, h, w = latents.shape
    rows, cols = grid_shape(f)
    cells = latents[0].new_zeros(c, rows * cols, h, w)
    cells[:, :f] = latents[0]
    grid = cells.reshape(c, rows, cols, h, w).permute(0, 1, 3, 2, 4).reshape(c, rows * h, cols * w)
    return grid[None]
