"""Source/driver blending with the options beyond the release: relative pose, expression scale
and temporal smoothing of the driver's coefficients (docs/ALIGNMENT.md §11)."""

from __future__ import annotations

import torch

from ..morphable.coefficients import ANGLES, EXP, GAZE, NUM_COEFFS, TRANSLATION, blend
from .smoothing import smooth

POSE_MODES = ("absolute", "relative")


def retarget(source: torch.Tensor, driver: torch.Tensor, pose: str = "absolute",
             expression_scale: float = 1.0, smoothing: int = 0) -> torch.Tensor:
    """Blended coefficients per frame: the release's blend plus the options.

    Args:
        source: (1, 261) or (261,) source coefficients.
        driver: (N, 261) driver coefficients per frame.
        pose: ``"absolute"`` (released: the driver's angles and translation as they are) or
            ``"relative"`` (the driver's change since its first frame added to the source's pose,
            so the source keeps its own head position and only the motion is transferred).
        expression_scale: factor on the driver's expression coefficients (1 = released; 0 gives
            the neutral BFM expression, > 1 exaggerates).
        smoothing: Savitzky–Golay window in frames applied to the driver's expression, angles,
            translation and gaze before blending (0 or 1 = off).

    Returns:
        (N, 261) float32 ``[id_S | exp | tex_S | angles | gamma_S | translation | gaze]``.

    Raises:
        ValueError: unknown ``pose`` or wrong shapes.
    """
    if pose not in POSE_MODES:
        raise ValueError(f"pose must be one of {POSE_MODES}, got {pose!r}.")
    source = source.reshape(1, -1).float()
    driver = driver.float()
    if driver.ndim != 2 or driver.shape[1] != NUM_COEFFS:
        raise ValueError(f"driver coefficients must be (N, {NUM_COEFFS}), got {tuple(driver.shape)}.")
    drv = driver.clone()
    if smoothing and smoothing > 1:
        for part in (EXP, ANGLES, TRANSLATION, GAZE):
            drv[:, part] = torch.from_numpy(smooth(drv[:, part].cpu().numpy(), smoothing)).to(drv)
    out = blend(source.to(drv.device), drv)
    out[:, EXP] = drv[:, EXP] * expression_scale
    if pose == "relative":
        for part in (ANGLES, TRANSLATION):
            out[:, part] = source[:, part].to(drv.device) + drv[:, part] - drv[:1, part]
    return out
