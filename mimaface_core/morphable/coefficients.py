"""Layout of the 261 D3DFR coefficients and the source/driver blend (docs/ALIGNMENT.md §7, §11)."""

from __future__ import annotations

import torch

#: Slices of the coefficient vector (docs/ALIGNMENT.md §7). angles in radians; gamma is 3 colours x 9 SH terms.
ID = slice(0, 80)
EXP = slice(80, 144)
TEX = slice(144, 224)
ANGLES = slice(224, 227)
GAMMA = slice(227, 254)
TRANSLATION = slice(254, 257)
GAZE = slice(257, 261)
NUM_COEFFS = 261
#: Coefficients the renderer uses (everything but gaze).
NUM_RENDER_COEFFS = 257


def blend(source: torch.Tensor, driver: torch.Tensor) -> torch.Tensor:
    """Reenactment blend: identity, albedo and lighting of the source; expression, pose,
    translation and gaze of the driver (docs/ALIGNMENT.md §11).

    Args:
        source: (B, 261) or (1, 261) source coefficients (broadcast over frames).
        driver: (B, 261) driver coefficients of each frame.

    Returns:
        (B, 261) ``[id_S | exp_D | tex_S | angles_D | gamma_S | translation_D | gaze_D]``, in
        the dtype of ``driver``.

    Raises:
        ValueError: if either input is not (·, 261).
    """
    if source.shape[-1] != NUM_COEFFS or driver.shape[-1] != NUM_COEFFS:
        raise ValueError(f"blend expects (B, {NUM_COEFFS}) coefficients, got {tuple(source.shape)} and {tuple(driver.shape)}.")
    out = driver.clone()
    src = source.to(driver.dtype).expand_as(driver)
    for part in (ID, TEX, GAMMA):
        out[:, part] = src[:, part]
    return out
