"""How the footage's frames fill the output when the performance is longer or shorter than the
footage (``--footage-loop``)."""

from __future__ import annotations

import numpy as np

#: pingpong: forward, backward, forward...; loop: forward again from the start; cut: stop at the
#: footage's end (the output is shorter than the performance).
LOOP_MODES = ("pingpong", "loop", "cut")


def frame_order(footage_frames: int, wanted: int, mode: str = "pingpong") -> np.ndarray:
    """Footage frame index of every output frame.

    Args:
        footage_frames: frames in the footage (n ≥ 1).
        wanted: frames the performance lasts (≥ 1).
        mode: :data:`LOOP_MODES`, used only when ``wanted > footage_frames``; a longer footage is
            always cut to ``wanted``.

    Returns:
        (M,) int64 indices into the footage: M = ``wanted``, or ``footage_frames`` with ``cut``
        when the performance is longer. ``pingpong`` goes 0..n−1, n−2..0, 1..n−1, ... (the turning
        frames are not repeated); with one footage frame every index is 0.

    Raises:
        ValueError: unknown mode or counts below 1.
    """
    if mode not in LOOP_MODES:
        raise ValueError(f"footage loop must be one of {LOOP_MODES}, got {mode!r}.")
    if footage_frames < 1 or wanted < 1:
        raise ValueError(f"frame counts must be at least 1, got footage {footage_frames}, wanted {wanted}.")
    n = footage_frames
    i = np.arange(wanted, dtype=np.int64)
    if wanted <= n:
        return i
    if mode == "cut":
        return np.arange(n, dtype=np.int64)
    if mode == "loop" or n == 1:
        return i % n
    period = 2 * n - 2
    k = i % period
    return np.where(k < n, k, period - k)
