"""Temporal filling and smoothing of per-frame values (scipy; beyond the release)."""

from __future__ import annotations

import numpy as np


def fill_missing(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Fill the rows of frames without a face from their neighbours.

    Linear interpolation in time between the nearest frames with a face; frames before the first
    (after the last) face copy the first (last) one.

    Args:
        values: (N, ...) float per-frame values. missing: (N,) bool.

    Returns:
        (N, ...) float64 copy.

    Raises:
        ValueError: every frame is missing (nothing to fill from).
    """
    values = np.asarray(values, np.float64)
    missing = np.asarray(missing, bool)
    if missing.all():
        raise ValueError("no frame has a face: nothing to fill missing frames from.")
    if not missing.any():
        return values.copy()
    t = np.arange(len(values))
    flat = values.reshape(len(values), -1)
    known = ~missing
    filled = np.stack([np.interp(t, t[known], flat[known, j]) for j in range(flat.shape[1])], 1)
    return filled.reshape(values.shape)


def smooth(values: np.ndarray, window: int, polyorder: int = 2) -> np.ndarray:
    """Savitzky–Golay smoothing along time (axis 0), ``scipy.signal.savgol_filter(mode="interp")``.

    Args:
        values: (N, ...) per-frame values.
        window: frames in the filter window (odd; an even value is rounded up). ``window ≤ 1``
            returns the values unchanged; a window longer than the sequence is shortened to it.
        polyorder: polynomial order (< window).

    Returns:
        (N, ...) float64.
    """
    values = np.asarray(values, np.float64)
    n = len(values)
    window = int(window) | 1
    window = min(window, n if n % 2 else n - 1)
    if window <= polyorder or window <= 1:
        return values.copy()
    from scipy.signal import savgol_filter

    return savgol_filter(values, window, polyorder, axis=0, mode="interp")
