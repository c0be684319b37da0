"""Expression Keyframes and Expression Controls: named facial controls (solved from the loaded BFM)
on a motion, animated over time or set once (mimaface_core.morphable.controls, motion.keyframes)."""

from __future__ import annotations

from mimaface_core.morphable.controls import (
    CONTROL_RANGES,
    EXPRESSION_CONTROLS,
    GAZE_CONTROLS,
    HEAD_CONTROLS,
    UNITS_TEXT,
    check_control_values,
    controls_for,
)
from mimaface_core.motion.keyframes import DEFAULT_FPS, keyframe_motion, parse_keyframes, still_motion

from .types import CATEGORY, MODEL, MOTION

KEYFRAME_HELP = (
    "One keyframe per line: <frame or time>[ step|linear|smooth]: <control>=<value or hold>, ...\n"
    "  0: smile=0, blink=0\n  1.5s smooth: smile=1      (a time in seconds, or a frame number from 0)\n"
    "  40 step: blink=1          (step jumps; linear is the default; smooth eases)\n  42: blink=0\n"
    "  3s: smile=hold            (the previous key's value again)\n"
    "'#' starts a comment. Values are offsets on the motion; a line 'absolute: yaw, smile' makes those "
    "controls absolute. Before a control's first key it holds that key's value. JSON works too.\n"
    "Controls: " + ", ".join(f"{n} ({UNITS_TEXT[n]})" for n in EXPRESSION_CONTROLS + HEAD_CONTROLS +
                             tuple(GAZE_CONTROLS)))
EXAMPLE = "# a smile and two blinks\n0: smile=0, blink=0\n1s smooth: smile=0.8\n1.2s step: blink=1\n1.32s: blink=0\n" \
          "2s step: blink=1\n2.12s: blink=0\n"


class ExpressionKeyframes:
    """Animates named controls over a motion with a keyframe text."""

    CATEGORY = CATEGORY
    RETURN_TYPES = (MOTION, "INT", "FLOAT")
    RETURN_NAMES = ("motion", "frame_count", "fps")
    OUTPUT_TOOLTIPS = ("The motion with the keyframed controls applied (same crop matrices).",
                       "Frames in the motion.", "Its frame rate (for Create Video).")
    FUNCTION = "animate"
    DESCRIPTION = ("Named facial controls (smile, mouth_open, blink, brows, pucker, jaw, head yaw/pitch/roll, gaze), "
                   "solved from the BFM of the loaded model, animated by keyframes on any motion (video, audio, "
                   "edited) or on a still photo's one-frame motion (then frames and fps give the length).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (MODEL, {"tooltip": "From Load MIMAFace Model (its BFM defines the controls)."}),
            "motion": (MOTION, {"tooltip": "The motion to animate: a driving motion (Extract 3DMM Motion, Audio to "
                                "3DMM Motion, Load Motion, Edit Motion), or the source photo's one-frame motion, "
                                "held still for 'frames' frames at 'fps'."}),
            "keyframes": ("STRING", {"multiline": True, "default": EXAMPLE, "tooltip": KEYFRAME_HELP}),
            "frames": ("INT", {"default": 75, "min": 1, "max": 100000, "tooltip": "Length when the motion has one "
                               "frame (a still photo); ignored otherwise."}),
            "fps": ("FLOAT", {"default": DEFAULT_FPS, "min": 1.0, "max": 240.0, "step": 0.5, "tooltip": "Frame rate "
                              "for keys in seconds when the motion has none, and of a still's motion."}),
        }}

    def animate(self, model, motion, keyframes, frames, fps):
        track = parse_keyframes(keyframes)  # malformed text fails here, before the model is touched
        if len(motion) == 1:
            motion = still_motion(motion, frames, fps)
        rate = float(motion.fps or fps)
        track.check(len(motion), rate)
        with model.use("bfm") as m:
            controls = controls_for(m.bfm)
        keyed = keyframe_motion(motion, track, controls, rate)
        return (keyed, len(keyed), rate)


class ExpressionControls:
    """Sets named controls once on every frame of a motion (a single image's expression)."""

    CATEGORY = CATEGORY
    RETURN_TYPES = (MOTION,)
    RETURN_NAMES = ("motion",)
    OUTPUT_TOOLTIPS = ("The motion with the controls added (preview it with Render Coeff Image).",)
    FUNCTION = "apply"
    DESCRIPTION = ("One slider per named control (units in each tooltip), solved from the BFM of the loaded model, "
                   "added to every frame of the motion: set the expression of a single image.")

    @classmethod
    def INPUT_TYPES(cls):
        required = {
            "model": (MODEL, {"tooltip": "From Load MIMAFace Model (its BFM defines the controls)."}),
            "motion": (MOTION, {"tooltip": "A motion (a photo's one-frame motion, or any driving motion)."}),
        }
        def slider(name, step, tooltip):  # the limits of the core's range; beyond the plausible range: a warning
            low, high = CONTROL_RANGES[name].hard
            return ("FLOAT", {"default": 0.0, "min": low, "max": high, "step": step,
                              "tooltip": f"{tooltip} Plausible: {CONTROL_RANGES[name].text()}."})

        for name in EXPRESSION_CONTROLS:
            required[name] = slider(name, 0.05, f"{name}: 1 = {UNITS_TEXT[name]} (see the README).")
        for name in HEAD_CONTROLS:
            required[name] = slider(name, 0.5, f"{name}, degrees added to the head rotation.")
        for name in GAZE_CONTROLS:
            required[name] = slider(name, 0.01, f"{name}, in the gaze coefficients' units.")
        return {"required": required}

    def apply(self, model, motion, mouth_open, smile, blink, blink_left, blink_right, brow_raise, brow_frown, pucker,
              jaw_left, jaw_right, pitch, yaw, roll, gaze_left, gaze_right, gaze_up, gaze_down):
        given = dict(locals())
        values = {k: float(given[k]) for k in EXPRESSION_CONTROLS + HEAD_CONTROLS + tuple(GAZE_CONTROLS) if given[k]}
        check_control_values(values, "Expression Controls")  # before the model is touched
        if not values:
            return (motion,)
        with model.use("bfm") as m:
            controls = controls_for(m.bfm)
        missing = [k for k in values if k not in controls.names]
        if missing:
            raise ValueError(f"Expression Controls: this BFM's expression basis does not carry {missing}; "
                             f"available: {', '.join(controls.names)}.")
        return (motion.with_coeffs(controls.apply(motion.coeffs, values)),)
