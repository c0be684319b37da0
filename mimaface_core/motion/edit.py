"""Edits of a motion sequence beyond the release: head-rotation offsets, expression scale and
temporal smoothing of the 3DMM coefficients (the Edit Motion node, the ``animate`` command's
``--pitch/--yaw/--roll``, the Python API)."""

from __future__ import annotations

import math

import torch

from ..morphable.coefficients import ANGLES, EXP
from .sequence import MotionSequence
from .smoothing import smooth


def edit_coefficients(coeffs: torch.Tensor, pitch: float = 0.0, yaw: float = 0.0, roll: float = 0.0,
                      expression_scale: float = 1.0, smoothing: int = 1) -> torch.Tensor:
    """Edited copy of (N, 261) coefficients.

    Applied in this order: the angles (coefficients 224:227, radians) get the offsets, the
    expression (80:144) is multiplied by ``expression_scale``, then every coefficient is smoothed
    over time (Savitzky–Golay, ``smoothing`` frames; 0 or 1 = off).

    Args:
        pitch, yaw, roll: degrees added to the rotation about x (nod), y (turn) and z (tilt).
        expression_scale: factor on the expression (0 = the neutral face, 1 = unchanged).

    Returns:
        (N, 261) float32 on the CPU.

    Raises:
        ValueError: ``coeffs`` is not (N, 261), or ``expression_scale``/``smoothing`` is negative;
            ``ranges.ValueRangeError`` (a ValueError): an offset, scale or window beyond the limits of
            ``ranges.OPTION_RANGES`` (docs/RANGES.md).
    """
    if coeffs.ndim != 2 or coeffs.shape[1] < ANGLES.stop:
        raise ValueError(f"coefficients must be (N, 261), got {tuple(coeffs.shape)}.")
    if expression_scale < 0 or smoothing < 0:
        raise ValueError(f"expression_scale ({expression_scale}) and smoothing ({smoothing}) must not be negative.")
    from ..ranges import check_options  # ValueRangeError beyond the limits, a warning beyond the plausible range

    check_options({"pitch": pitch, "yaw": yaw, "roll": roll, "expression_scale": expression_scale,
                   "smoothing": smoothing}, "motion edit")
    c = coeffs.detach().float().cpu().clone()
    c[:, ANGLES] += torch.tensor([math.radians(pitch), math.radians(yaw), math.radians(roll)])
    c[:, EXP] *= expression_scale
    if smoothing > 1:
        c = torch.from_numpy(smooth(c.numpy(), smoothing)).float()
    return c


def edit_motion(motion: MotionSequence, pitch: float = 0.0, yaw: float = 0.0, roll: float = 0.0,
                expression_scale: float = 1.0, smoothing: int = 1) -> MotionSequence:
    """A copy of ``motion`` (same frames and crop matrices) with :func:`edit_coefficients` applied."""
    return motion.with_coeffs(edit_coefficients(motion.coeffs, pitch, yaw, roll, expression_scale, smoothing))
