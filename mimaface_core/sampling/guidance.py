"""Classifier-free guidance in a limited interval (Kynkäänniemi et al. 2024, "Applying guidance in
a limited interval improves sample and distribution quality in diffusion models";
docs/SAMPLING.md §7, §10).

The interval is given as fractions of the diffusion schedule, (LOW, HIGH] ⊂ (0, 1]: a step with
timestep t (0..999 on the SD1.5 schedule, fractional for the released Euler) has the fraction
``(t + 1) / 1000`` (1 = the noisiest step of the released schedule, 0.001 = the last). A step is
guided when LOW ≤ fraction ≤ HIGH. Fractions, not sigmas, are accepted; the σ of a fraction is
``sigma_of_fraction`` (e.g. 0.5 → σ ≈ 1.9, 0.2 → σ ≈ 0.5, 1.0 → σ = 14.6). Outside the interval one
conditional pass replaces the batched [unconditional, conditional] pair.
"""

from __future__ import annotations

from collections.abc import Sequence

#: SD1.5 training timesteps (the fraction's denominator).
NUM_TRAIN_TIMESTEPS = 1000


def check_interval(interval: Sequence[float] | None, name: str = "guidance_interval") -> None:
    """Raise ValueError unless ``interval`` is None or (LOW, HIGH) with 0 < LOW ≤ HIGH ≤ 1."""
    if interval is None:
        return
    if len(interval) != 2:
        raise ValueError(f"{name} takes two fractions LOW HIGH, got {list(interval)}.")
    low, high = (float(v) for v in interval)
    if not (0 < low <= 1 and 0 < high <= 1):
        raise ValueError(f"{name} {low:g} {high:g}: both ends must be fractions of the schedule in (0, 1] "
                         "(1 = the noisiest step).")
    if low > high:
        raise ValueError(f"{name} {low:g} {high:g}: LOW must not be above HIGH.")


def fraction(timestep) -> float:
    """The schedule fraction ``(t + 1) / 1000`` of a timestep t in 0..999 (float or 0-dim tensor)."""
    return (float(timestep) + 1.0) / NUM_TRAIN_TIMESTEPS


def sigma_of_fraction(value: float) -> float:
    """σ of the SD1.5 schedule at the fraction ``value`` (t = 1000·value − 1, linear in t between
    training steps), for documentation and help texts."""
    import numpy as np

    betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, NUM_TRAIN_TIMESTEPS) ** 2
    alphas = np.cumprod(1.0 - betas)
    sigmas = ((1 - alphas) / alphas) ** 0.5
    return float(np.interp(value * NUM_TRAIN_TIMESTEPS - 1, np.arange(NUM_TRAIN_TIMESTEPS), sigmas))


def guided_flags(timesteps, guidance: float, interval: Sequence[float] | None) -> list[bool]:
    """Per step of ``timesteps``: whether it runs the CFG pair.

    Args:
        timesteps: the scheduler's timesteps (1-D, in order). guidance: the CFG scale (1.0: no
            step is guided). interval: (LOW, HIGH) fractions or None (every step).
    """
    if guidance == 1.0:
        return [False] * len(timesteps)
    if interval is None:
        return [True] * len(timesteps)
    low, high = interval
    return [low <= fraction(t) <= high for t in timesteps]
