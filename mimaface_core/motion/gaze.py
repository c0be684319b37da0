"""Gaze: the released gaze is the D3DFR eye output, coefficients 257:261 (spec §2.2, §2.7).

The four values are the regressor's eye/pupil head, in its own units (two values per eye); the
MIM embeds them with ``transform_dim_gaze`` (spec §4.2). Overrides here go beyond the release.
"""

from __future__ import annotations

import torch

from ..morphable.coefficients import GAZE
from .smoothing import smooth

GAZE_DIM = GAZE.stop - GAZE.start


def gaze_of(coeffs: torch.Tensor) -> torch.Tensor:
    """The per-frame gaze of (N, 261) coefficients → (N, 4) float32."""
    return coeffs[:, GAZE].float().clone()


def adjust_gaze(gaze: torch.Tensor, *, fixed=None, offset=None, scale: float = 1.0,
                smoothing: int = 0) -> torch.Tensor:
    """Gaze overrides per frame.

    Applied in this order: smoothing (Savitzky–Golay window in frames, 0/1 = off), then
    ``fixed`` (replaces every frame's gaze) or ``scale`` (multiplies the values, 0 = the
    regressor's zero gaze, 1 = released), then ``offset`` (added).

    Args:
        gaze: (N, 4) gaze values.
        fixed: None or 4 values used for every frame.
        offset: None or 4 values added to every frame.

    Returns:
        (N, 4) float32 on the device of ``gaze``.

    Raises:
        ValueError: ``gaze`` is not (N, 4) or ``fixed``/``offset`` do not have 4 values.
    """
    if gaze.ndim != 2 or gaze.shape[1] != GAZE_DIM:
        raise ValueError(f"gaze must be (N, {GAZE_DIM}), got {tuple(gaze.shape)}.")
    out = gaze.float().clone()
    if smoothing and smoothing > 1:
        out = torch.from_numpy(smooth(out.cpu().numpy(), smoothing)).to(out)
    for name, value in (("fixed", fixed), ("offset", offset)):
        if value is not None and torch.as_tensor(value).numel() != GAZE_DIM:
            raise ValueError(f"gaze {name} needs {GAZE_DIM} values, got {value!r}.")
    if fixed is not None:
        out = torch.as_tensor(fixed, dtype=out.dtype, device=out.device).reshape(1, -1).expand_as(out).clone()
    else:
        out = out * scale
    if offset is not None:
        out = out + torch.as_tensor(offset, dtype=out.dtype, device=out.device).reshape(1, -1)
    return out


def with_gaze(coeffs: torch.Tensor, gaze: torch.Tensor) -> torch.Tensor:
    """(N, 261) coefficients with their gaze slice replaced by (N, 4) ``gaze``."""
    out = coeffs.clone()
    out[:, GAZE] = gaze.to(out)
    return out
