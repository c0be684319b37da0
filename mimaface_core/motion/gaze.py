"""Gaze: the released gaze is the D3DFR eye output, coefficients 257:261 (docs/ALIGNMENT.md §7, §11).

The four values are the regressor's eye/pupil head, in its own units (two values per eye); the
MIM embeds them with ``transform_dim_gaze`` (docs/SAMPLING.md §3). Overrides here go beyond the release.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..morphable.coefficients import GAZE
from .smoothing import smooth

GAZE_DIM = GAZE.stop - GAZE.start
#: One gaze per frame: each frame's own (released), the first frame's or the mean for every frame,
#: or the regressor's zero gaze.
GAZE_METHODS = ("per_frame", "first_frame", "mean", "zero")


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


def gaze_by_method(gaze: torch.Tensor, method: str = "per_frame", strength: float = 1.0, smoothing: int = 0,
                   **overrides) -> torch.Tensor:
    """The gaze of every frame after a :data:`GAZE_METHODS` method, then :func:`adjust_gaze`
    (smoothing, ``strength`` as its scale, and any ``fixed``/``offset`` override).

    Args:
        gaze: (N, 4) measured gaze (:func:`gaze_of`).
        method: "per_frame" (released), "first_frame", "mean" or "zero".

    Returns:
        (N, 4) float32.

    Raises:
        ValueError: an unknown method (the message lists them), or what :func:`adjust_gaze` raises.
    """
    if method not in GAZE_METHODS:
        raise ValueError(f"gaze method must be one of {GAZE_METHODS}, got {method!r}.")
    if gaze.ndim != 2 or gaze.shape[1] != GAZE_DIM:
        raise ValueError(f"gaze must be (N, {GAZE_DIM}), got {tuple(gaze.shape)}.")
    if method == "first_frame":
        gaze = gaze[:1].expand_as(gaze)
    elif method == "mean":
        gaze = gaze.float().mean(0, keepdim=True).expand_as(gaze)
    elif method == "zero":
        gaze = torch.zeros_like(gaze)
    return adjust_gaze(gaze, scale=overrides.pop("scale", strength), smoothing=smoothing, **overrides)


def measure_gaze(crops, detector, d3dfr: torch.nn.Module,
                 progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """The gaze of 512x512 face crops, one D3DFR run per crop (the release's driving-image recipe).

    Args:
        crops: a sequence of (512, 512, 3) images (uint8 or [0, 1] float).
        progress: called as ``progress(done, total)`` after each crop; it may raise to cancel.

    Returns:
        (N, 4) float32.

    Raises:
        FaceNotFoundError: a crop without a face (the message names it).
    """
    from .extract import extract_image_motion

    parts = []
    for i, crop in enumerate(crops):
        parts.append(gaze_of(extract_image_motion(crop, detector, d3dfr, as_crop=None, what=f"crop {i}").coeffs))
        if progress is not None:
            progress(i + 1, len(crops))
    return torch.cat(parts)
