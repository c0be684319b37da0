"""Plausible ranges of the values a user gives, and the one check every entry point runs on them
(keyframe text, the Expression Controls node, the ``animate`` command's options, the options
dataclasses of the Python API). Beyond the release; the ranges and their reasons are in
docs/RANGES.md.

**The rule.** Every value has a *plausible range* ``low..high`` (in its own unit) and *limits*:

- a lower bound below zero is scaled by :data:`LIMIT_FACTOR` (4) about zero, a lower bound at or
  above zero is a limit itself (its meaning stops there: no negative window, no guidance below 1);
- likewise an upper bound above zero is scaled by 4, one at or below zero is a limit itself;
- a range may name its limits explicitly instead (structural bounds such as the clip length's 2..32,
  or an unbounded count: ``high=None``).

So ``mouth_open`` -1..1.5 has limits -4..6, ``pitch`` -45..45 degrees has -180..180 and
``guidance`` 1..10 has 1..40. A value outside the limits (or not a finite number) is refused with
one line naming it, its value, its range and where it came from (:class:`ValueRangeError`); a value
inside the limits but outside the plausible range passes with one logged warning.

Importing this module loads no torch (the CLI checks its options before anything heavy loads).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from .errors import MIMAFaceError

log = logging.getLogger(__name__)

#: How far beyond the plausible range (scaled about zero) a value is still accepted, with a warning.
LIMIT_FACTOR = 4.0


class ValueRangeError(MIMAFaceError, ValueError):
    """A value outside its limits (see the module doc); the message names the value, its range and
    where it came from."""


@dataclass(frozen=True)
class ValueRange:
    """The plausible range of one value and its limits.

    Attributes:
        low, high: the plausible range (``high`` None: no upper bound, e.g. a frame count).
        unit: the value's unit, for messages ("degrees", "frames", "x IOD"...).
        limits: explicit (lowest, highest) accepted values; default: ``low``/``high`` scaled by
            :data:`LIMIT_FACTOR` about zero where they lie beyond zero (the module doc).
        integer: the value must be a whole number.
    """

    low: float
    high: float | None
    unit: str = ""
    limits: tuple[float, float | None] | None = None
    integer: bool = False

    @property
    def hard(self) -> tuple[float, float | None]:
        """(lowest, highest) accepted value; highest None = no upper limit."""
        if self.limits is not None:
            return self.limits
        low = self.low * LIMIT_FACTOR if self.low < 0 else self.low
        high = None if self.high is None else (self.high * LIMIT_FACTOR if self.high > 0 else self.high)
        return low, high

    def text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        high = "" if self.high is None else f"{self.high:g}"
        return f"{self.low:g}..{high}{unit}"


_WARNED: set[tuple] = set()


def check_value(name: str, value, rng: ValueRange, where: str = "") -> float:
    """Refuse ``value`` outside ``rng``'s limits; warn (once per name, value and place) when it is
    outside the plausible range.

    Args:
        name: what the user typed ("mouth_open", "--yaw", "expression_scale").
        value: the number (int, float, or a 0-d tensor/array).
        rng: its :class:`ValueRange`.
        where: where it came from, prefixed to the message ("keyframes line 3 ('2: smile=9')").

    Returns:
        The value as a float.

    Raises:
        ValueRangeError: not a finite number, not whole where ``rng.integer``, or outside the limits.
    """
    at = f"{where}: " if where else ""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    lo, hi = rng.hard
    limits = f"{lo:g}..{'' if hi is None else f'{hi:g}'}"
    if not math.isfinite(v):
        raise ValueRangeError(f"{at}{name}={value!r} is not a finite number; its plausible range is {rng.text()}.")
    if rng.integer and v != int(v):
        raise ValueRangeError(f"{at}{name}={value!r} must be a whole number ({rng.text()}).")
    if v < lo or (hi is not None and v > hi):
        scaled = "" if rng.limits is not None else f" ({LIMIT_FACTOR:g}x its plausible range {rng.text()})"
        raise ValueRangeError(f"{at}{name}={v:g} is outside {limits}{scaled}; give a value in "
                              f"{rng.text() if rng.limits is None else limits}.")
    if v < rng.low or (rng.high is not None and v > rng.high):
        key = (name, v, where)
        if key not in _WARNED:
            if len(_WARNED) > 10000:
                _WARNED.clear()
            _WARNED.add(key)
            log.warning("%s%s=%g is beyond its plausible range %s (accepted up to %s); check it is meant.",
                        at, name, v, rng.text(), limits)
    return v


def check_values(values: dict, ranges: dict[str, ValueRange], where: str = "", names: dict[str, str] | None = None) -> None:
    """:func:`check_value` on every entry of ``values`` that has a range (None values skipped);
    ``names`` maps a key to the name shown (e.g. the CLI flag)."""
    for key, value in values.items():
        if value is None or key not in ranges:
            continue
        check_value((names or {}).get(key, key), value, ranges[key], where)


#: Head offsets (pitch, yaw, roll), degrees: a turn of ±45° keeps both eyes visible to the face
#: models; the limits ±180° are a full turn either way.
HEAD_RANGE = ValueRange(-45.0, 45.0, "degrees")

#: Numeric options of ``animate`` and of the options dataclasses (the attribute names of
#: ``pipeline.AnimateOptions``, ``sampling.SamplingOptions``, ``audio.motion.AudioMotionOptions``
#: and the command's arguments). Reasons: docs/RANGES.md.
OPTION_RANGES: dict[str, ValueRange] = {
    "steps": ValueRange(1, 100, "steps", integer=True),
    "guidance": ValueRange(1.0, 10.0, "(CFG scale)"),
    "clip_length": ValueRange(2, 32, "frames", limits=(2, 32), integer=True),
    "overlap": ValueRange(0, 31, "frames", limits=(0, 31), integer=True),
    "seed": ValueRange(0, 2 ** 64 - 1, "", limits=(0, 2 ** 64 - 1), integer=True),
    "expression_scale": ValueRange(0.0, 2.0, "x"),
    "smoothing": ValueRange(0, 75, "frames", integer=True),
    "pitch": HEAD_RANGE, "yaw": HEAD_RANGE, "roll": HEAD_RANGE,
    "stride": ValueRange(1, 10, "frames", integer=True),
    "limit": ValueRange(1, None, "frames", integer=True),
    "frames": ValueRange(1, None, "frames", integer=True),
    "max_frames": ValueRange(1, None, "frames", integer=True),
    "fps": ValueRange(1.0, 60.0, "fps"),
    "feather": ValueRange(0, 128, "crop pixels", integer=True),
    "pose_style": ValueRange(0, 45, "", limits=(0, 45), integer=True),
    "cache_interval": ValueRange(1, 5, "steps", limits=(1, 1000), integer=True),
    "cache_depth": ValueRange(1, 3, "blocks", limits=(1, 3), integer=True),
}


def check_options(values: dict, where: str = "", names: dict[str, str] | None = None) -> None:
    """:func:`check_values` against :data:`OPTION_RANGES`."""
    check_values(values, OPTION_RANGES, where, names)


__all__ = ["HEAD_RANGE", "LIMIT_FACTOR", "OPTION_RANGES", "ValueRange", "ValueRangeError", "check_options",
           "check_value", "check_values"]
