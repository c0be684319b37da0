"""Expression keyframes: named controls (``morphable.controls``) animated over time (beyond the
release).

Text format, one keyframe per line::

    # comments start with '#'
    absolute: yaw              # optional: these controls take absolute values (default: offsets)
    0: smile=0, blink=0
    1.5s smooth: smile=1       # a time in seconds (rounded to the nearest frame), or a frame number
    40 step: blink=1           # 'step': the value jumps at this key
    42: blink=0
    3s: smile=hold             # 'hold': the previous key's value again (flat until here)
    100: smile=0

``<frame or time> [step|linear|smooth]: <control>=<value or hold>, ...``. The interpolation named
on a key is how each of its controls travels from its previous key to this one: ``linear`` (the
default), ``smooth`` (smoothstep 3t²−2t³, eases in and out), ``step`` (keeps the previous value up
to the frame before, then jumps). Each control is animated on its own keys; before its first key it
holds that key's value, after its last key the last value. Frames count from 0; a frame past the
end is an error. A value beyond 4x its control's plausible range (``CONTROL_RANGES``, docs/RANGES.md)
is an error naming the line; beyond the range itself, a logged warning.

The same as JSON: ``{"absolute": ["yaw"], "keys": [{"frame": 0, "values": {"smile": 0}},
{"time": 1.5, "interpolation": "smooth", "values": {"smile": 1}}, {"frame": 75, "values":
{"smile": "hold"}}]}`` (or a bare list of keys).

Offsets (the default) add the animated value to the motion's own coefficients, so a speaking
motion keeps its mouth motion with a smile added; ``absolute`` controls replace the motion's
reading of the control (``ExpressionControls.read``). Applied after any smoothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import MIMAFaceError
from ..morphable.controls import ALL_CONTROLS, ExpressionControls, check_control_value
from ..ranges import ValueRangeError
from .sequence import MotionSequence

INTERPOLATIONS = ("linear", "smooth", "step")
HOLD = "hold"
DEFAULT_FPS = 25.0
SYNTAX = ("<frame or time>[ step|linear|smooth]: <control>=<value or hold>, ...   (e.g. '0: smile=0', "
          "'1.5s smooth: smile=1, blink=0.5'; '#' starts a comment; 'absolute: yaw, smile' makes those controls "
          "absolute)")


class KeyframeError(MIMAFaceError, ValueError):
    """A keyframe text or file cannot be used; the message names the line and what is allowed."""


@dataclass
class Key:
    """One keyframe as written: a frame or a time in seconds, the interpolation into it, the values
    (a float or ``"hold"``) and the line it came from (1-based; the key's index for JSON)."""

    frame: int | None
    seconds: float | None
    interpolation: str
    values: dict[str, float | str]
    line: int
    where: str = "line"

    def frame_at(self, fps: float) -> int:
        return self.frame if self.frame is not None else int(round(self.seconds * fps))


@dataclass
class Keyframes:
    """A parsed keyframe track: keys in the order written and the controls set to absolute."""

    keys: list[Key]
    absolute: frozenset[str] = field(default_factory=frozenset)

    @property
    def controls(self) -> list[str]:
        seen = []
        for k in self.keys:
            seen += [c for c in k.values if c not in seen]
        return seen

    def last_frame(self, fps: float) -> int:
        return max((k.frame_at(fps) for k in self.keys), default=0)

    def check(self, frames: int | None, fps: float, allowed=ALL_CONTROLS) -> None:
        """Every control allowed, every key inside ``frames`` (when known), no control keyed twice
        at one frame, no ``hold`` before a control's first value.

        Raises:
            KeyframeError: naming the line and what is allowed.
        """
        allowed = tuple(allowed)
        for name in self.absolute:
            if name not in allowed:
                raise KeyframeError(f"keyframes: unknown control {name!r} in 'absolute'; allowed: {', '.join(allowed)}.")
        seen: dict[tuple[str, int], Key] = {}
        started: set[str] = set()
        for key in sorted(self.keys, key=lambda k: k.frame_at(fps)):
            f = key.frame_at(fps)
            at = f"keyframes {key.where} {key.line}"
            if frames is not None and f >= frames:
                raise KeyframeError(f"{at}: frame {f} is past the end; the motion has {frames} frames "
                                    f"(0..{frames - 1}; at {fps:g} fps the last time is {(frames - 1) / fps:.2f}s).")
            for name, value in key.values.items():
                if name not in allowed:
                    raise KeyframeError(f"{at}: unknown control {name!r}; allowed: {', '.join(allowed)}.")
                if (name, f) in seen:
                    raise KeyframeError(f"{at}: {name} is keyed twice at frame {f} (also on {seen[name, f].where} "
                                        f"{seen[name, f].line}); one value per control and frame.")
                seen[name, f] = key
                if value == HOLD and name not in started:
                    raise KeyframeError(f"{at}: {name}=hold needs an earlier key of {name} to hold.")
                started.add(name)

    def curves(self, frames: int, fps: float) -> dict[str, np.ndarray]:
        """Per control, its value at each of ``frames`` frames (float64). Call :meth:`check` first."""
        out = {}
        for name in self.controls:
            pts: list[tuple[int, float, str]] = []
            for key in sorted((k for k in self.keys if name in k.values), key=lambda k: k.frame_at(fps)):
                v = key.values[name]
                pts.append((key.frame_at(fps), pts[-1][1] if v == HOLD else float(v), key.interpolation))
            curve = np.empty(frames)
            curve[:pts[0][0] + 1] = pts[0][1]
            for (f0, v0, _), (f1, v1, how) in zip(pts, pts[1:]):
                t = (np.arange(f0, f1 + 1) - f0) / max(f1 - f0, 1)
                if how == "step":
                    w = (t >= 1).astype(float)
                elif how == "smooth":
                    w = t * t * (3 - 2 * t)
                else:
                    w = t
                curve[f0:f1 + 1] = v0 + (v1 - v0) * w
            curve[pts[-1][0]:] = pts[-1][1]
            out[name] = curve
        return out


_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s?)\s*(?:\s(\w+))?\s*$")
_NAME = re.compile(r"^[a-z_]+$")


def parse_keyframes(text: str) -> Keyframes:
    """Parse the text format, or JSON when the text starts with ``{`` or ``[``.

    Raises:
        KeyframeError: a malformed line (its number, the syntax and what is allowed).
    """
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        return _parse_json(stripped)
    keys, absolute = [], set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        at = f"keyframes line {number} ({raw.strip()!r})"
        head, sep, body = line.partition(":")
        if not sep:
            raise KeyframeError(f"{at}: no ':' after the frame; write {SYNTAX}.")
        if head.strip().lower() in ("absolute", "offset"):
            names = [n.strip() for n in body.split(",") if n.strip()]
            for n in names:
                if n not in ALL_CONTROLS:
                    raise KeyframeError(f"{at}: unknown control {n!r}; allowed: {', '.join(ALL_CONTROLS)}.")
            absolute = absolute | set(names) if head.strip().lower() == "absolute" else absolute - set(names)
            continue
        m = _TIME.match(head)
        if not m:
            raise KeyframeError(f"{at}: {head.strip()!r} is not a frame number (0, 12...) or a time (1.5s), optionally "
                                f"followed by one of {', '.join(INTERPOLATIONS)}; write {SYNTAX}.")
        number_text, seconds, how = m.group(1), m.group(2), (m.group(3) or "linear").lower()
        if how not in INTERPOLATIONS:
            raise KeyframeError(f"{at}: interpolation {m.group(3)!r} is not one of {', '.join(INTERPOLATIONS)}.")
        if not seconds and "." in number_text:
            raise KeyframeError(f"{at}: frame {number_text} is not a whole number; write a frame (0, 12...) or a "
                                "time with 's' (1.5s).")
        values: dict[str, float | str] = {}
        for item in body.split(","):
            name, eq, value = item.partition("=")
            name, value = name.strip(), value.strip()
            if not item.strip():
                continue
            if not eq or not _NAME.match(name):
                raise KeyframeError(f"{at}: {item.strip()!r} is not <control>=<value>; write {SYNTAX}.")
            if name not in ALL_CONTROLS:
                raise KeyframeError(f"{at}: unknown control {name!r}; allowed: {', '.join(ALL_CONTROLS)}.")
            values[name] = _value(value, at, name)
        if not values:
            raise KeyframeError(f"{at}: no <control>=<value> after ':'; write {SYNTAX}.")
        keys.append(Key(None if seconds else int(number_text), float(number_text) if seconds else None, how, values,
                        number))
    if not keys:
        raise KeyframeError(f"keyframes: no keyframe found; write one per line: {SYNTAX}.")
    return Keyframes(keys, frozenset(absolute))


def _value(value, at: str, name: str) -> float | str:
    if isinstance(value, str) and value.lower() == HOLD:
        return HOLD
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not np.isfinite(v):
        raise KeyframeError(f"{at}: {name}={value!r}: the value must be a finite number or 'hold'.")
    try:  # refused beyond 4x the control's plausible range, warned beyond it (docs/RANGES.md)
        return check_control_value(name, v, at)
    except ValueRangeError as exc:
        raise KeyframeError(str(exc)) from exc


def _parse_json(text: str) -> Keyframes:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeyframeError(f"keyframes JSON line {exc.lineno}: {exc.msg}. Expected {{\"absolute\": [...], "
                            "\"keys\": [{\"frame\": 0, \"interpolation\": \"linear\", \"values\": {\"smile\": 1}}]}.") from exc
    if isinstance(data, list):
        data = {"keys": data}
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise KeyframeError("keyframes JSON: expected an object with a list 'keys' (or a list of keys).")
    extra = set(data) - {"keys", "absolute"}
    if extra:
        raise KeyframeError(f"keyframes JSON: unknown field(s) {sorted(extra)}; allowed: keys, absolute.")
    absolute = data.get("absolute", [])
    if not isinstance(absolute, list) or any(n not in ALL_CONTROLS for n in absolute):
        raise KeyframeError(f"keyframes JSON 'absolute': a list of controls among {', '.join(ALL_CONTROLS)}.")
    keys = []
    for i, k in enumerate(data["keys"]):
        at = f"keyframes JSON key {i}"
        if not isinstance(k, dict) or set(k) - {"frame", "time", "interpolation", "values"} or \
                ("frame" in k) == ("time" in k) or not isinstance(k.get("values"), dict) or not k["values"]:
            raise KeyframeError(f"{at}: expected {{\"frame\": <int> or \"time\": <seconds>, \"interpolation\": "
                                f"one of {', '.join(INTERPOLATIONS)} (optional), \"values\": {{<control>: <number or "
                                "'hold'>}}}.")
        frame, seconds = k.get("frame"), k.get("time")
        if frame is not None and (not isinstance(frame, int) or isinstance(frame, bool) or frame < 0):
            raise KeyframeError(f"{at}: frame {frame!r} must be a whole number ≥ 0.")
        if seconds is not None and (not isinstance(seconds, (int, float)) or seconds < 0):
            raise KeyframeError(f"{at}: time {seconds!r} must be a number of seconds ≥ 0.")
        how = k.get("interpolation", "linear")
        if how not in INTERPOLATIONS:
            raise KeyframeError(f"{at}: interpolation {how!r} is not one of {', '.join(INTERPOLATIONS)}.")
        values = {}
        for name, v in k["values"].items():
            if name not in ALL_CONTROLS:
                raise KeyframeError(f"{at}: unknown control {name!r}; allowed: {', '.join(ALL_CONTROLS)}.")
            values[name] = _value(v, at, name)
        keys.append(Key(frame, None if seconds is None else float(seconds), how, values, i, "JSON key"))
    if not keys:
        raise KeyframeError("keyframes JSON: 'keys' is empty.")
    return Keyframes(keys, frozenset(absolute))


def load_keyframes(path) -> Keyframes:
    """Read and parse a keyframe file (text, or JSON for ``.json``).

    Raises:
        KeyframeError: unreadable or malformed (the message names the file and the line).
    """
    from pathlib import Path

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyframeError(f"--keyframes: cannot read {path}: {exc}.") from exc
    try:
        return parse_keyframes(text)
    except KeyframeError as exc:
        raise KeyframeError(f"{path.name}: {exc}") from exc


def still_motion(motion: MotionSequence, frames: int, fps: float = DEFAULT_FPS) -> MotionSequence:
    """A motion of ``frames`` frames at ``fps`` holding the first frame of ``motion`` (a source
    photo's one-frame motion): the base a keyframe track animates when there is no driver."""
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}.")
    rep = [0] * frames
    return MotionSequence(motion.coeffs[rep].clone(), motion.m512[rep], motion.m256[rep], motion.m256_inv[rep],
                          motion.scores[rep], motion.missing[rep], motion.frame_size, float(fps),
                          {**motion.info, "keyframes": "still"}, motion.m512_frame)


def apply_keyframes(motion: MotionSequence, keyframes: Keyframes, controls: ExpressionControls,
                    fps: float | None = None) -> MotionSequence:
    """``motion`` with the keyframed controls applied (offsets, or absolute for the track's
    ``absolute`` controls). ``fps``: for keys given in seconds (default: the motion's, else 25).

    Raises:
        KeyframeError: a control the BFM does not carry, or a key past the motion's end.
    """
    fps = float(fps or motion.fps or DEFAULT_FPS)
    keyframes.check(len(motion), fps, controls.names)
    curves = {n: torch.from_numpy(c).float() for n, c in keyframes.curves(len(motion), fps).items()}
    coeffs = controls.apply(motion.coeffs, curves, absolute=set(keyframes.absolute) & set(curves))
    out = motion.with_coeffs(coeffs)
    out.info["keyframes"] = {"controls": list(curves), "absolute": sorted(keyframes.absolute & set(curves))}
    return out


def keyframe_motion(motion: MotionSequence, keyframes: Keyframes, controls: ExpressionControls,
                    fps: float | None = None, smoothing: int = 0) -> MotionSequence:
    """The driver's smoothing, then the keyframes: ``motion`` with its expression, angles,
    translation and gaze smoothed as ``retarget`` would (Savitzky–Golay, ``smoothing`` frames;
    0/1 = off) and :func:`apply_keyframes` on top, so keyed values are exact in the result. Give the
    retarget step ``smoothing=0`` afterwards."""
    if smoothing and smoothing > 1:
        from ..morphable.coefficients import ANGLES, EXP, GAZE, TRANSLATION
        from .smoothing import smooth

        coeffs = motion.coeffs.float().clone()
        for part in (EXP, ANGLES, TRANSLATION, GAZE):
            coeffs[:, part] = torch.from_numpy(smooth(coeffs[:, part].numpy(), smoothing)).float()
        motion = motion.with_coeffs(coeffs)
    return apply_keyframes(motion, keyframes, controls, fps)
