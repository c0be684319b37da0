"""Eye blinks for audio-driven expressions: SadTalker's blink ratio sequence.

Source: SadTalker ``src/generate_batch.py`` ``generate_blink_seq_randomly``. The ratio (0 = eyes as
in the reference expression, 1 = closed) is an input of Audio2Exp. The official pattern draws
blink starts with Python's ``random`` module without a seed; here a ``random.Random(seed)``
instance makes the same draws for the same seed, so runs are reproducible (and equal to the
official draws after ``random.seed(seed)``).
"""

from __future__ import annotations

import random

import numpy as np

#: The ratio of one blink over 5 frames (200 ms at 25 fps).
BLINK = (0.5, 0.9, 1.0, 0.9, 0.5)


def random_blinks(num_frames: int, seed: int) -> np.ndarray:
    """SadTalker's random blink pattern.

    A blink starts every ``choice(range(min(10, T), min(T // 2, 70)))`` frames after the end of
    the previous one, while it fits before the last frame; no blinks when T ≤ 20.

    Args:
        num_frames: T video frames (25 fps).
        seed: seeds the ``random.Random`` that draws the gaps.

    Returns:
        (T,) float32 ratio in [0, 1].
    """
    ratio = np.zeros(num_frames, np.float32)
    if num_frames <= 20:
        return ratio
    rng = random.Random(seed)
    frame = 0
    while frame in range(num_frames):
        start = rng.choice(range(min(10, num_frames), min(int(num_frames / 2), 70)))
        if frame + start + len(BLINK) <= num_frames - 1:
            ratio[frame + start: frame + start + len(BLINK)] = BLINK
            frame = frame + start + len(BLINK)
        else:
            break
    return ratio


def tile_to(values: np.ndarray, num_frames: int) -> np.ndarray:
    """A per-frame sequence repeated until it covers ``num_frames`` frames, then cut (how SadTalker
    reuses a shorter reference video for blinks and pose). (N, ...) → (num_frames, ...)."""
    values = np.asarray(values)
    if len(values) == 0:
        raise ValueError("an empty reference sequence cannot be tiled.")
    reps = -(-num_frames // len(values))
    return np.concatenate([values] * reps)[:num_frames]
