"""Audio to 3DMM Motion: speech on a core AUDIO wire → motion of the source speaking it."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from mimaface_core.audio.audio2pose import NUM_POSE_STYLES
from mimaface_core.audio.coefficients import BLINK_MODES, POSE_MODES
from mimaface_core.audio.decode import FPS, speech_from_waveform

from . import _comfy
from .model_groups import NetworkHandle
from .types import CATEGORY, MOTION

log = logging.getLogger(__name__)
NO_WEIGHTS = "(no SadTalker file: put SadTalker_V0.0.2_256.safetensors in models/sadtalker)"
_CACHE: dict = {}


def _networks(choice: str) -> NetworkHandle:
    """SadTalker's audio networks of a combo entry as the "audio" group, loaded once and kept on
    the offload device (ComfyUI's model manager loads and offloads them)."""
    from mimaface_core.audio.weights import load_audio_networks

    path = _comfy.audio_weight_path(choice)
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = NetworkHandle("audio", load_audio_networks(path, device=_comfy.offload_device()))
    return _CACHE[key]


class AudioToMotion:
    """Speech → per-frame expression and head pose with SadTalker's audio networks, in the source's crop."""

    CATEGORY = CATEGORY
    RETURN_TYPES = (MOTION, "INT", "FLOAT")
    RETURN_NAMES = ("motion", "frame_count", "fps")
    OUTPUT_TOOLTIPS = ("The source speaking: its identity, colours, lighting and gaze with the audio's expression and "
                       "head pose, one frame per 40 ms, in the source's crop (use it as the driving motion).",
                       "Frames made: int(audio samples at 16 kHz / 640), or the frame limit.",
                       "25.0: the frame rate of the motion; give it to Create Video with the same AUDIO.")
    FUNCTION = "animate_audio"
    DESCRIPTION = ("Lip-sync from speech (paper Fig. 3: audio as a driving input). SadTalker's Audio2Exp predicts the "
                   "expression and its Audio2Pose CVAE the head motion from the mel spectrogram, numerically as "
                   "SadTalker's release; the source gives everything else. Silence gives a still talking head.")

    @classmethod
    def INPUT_TYPES(cls):
        files = _comfy.audio_weight_choices() or [NO_WEIGHTS]
        return {"required": {
            "source_motion": (MOTION, {"tooltip": "Extract 3DMM Motion run on the source photo: its coefficients are "
                              "the reference expression and pose, its crop is where the animation lives."}),
            "audio": ("AUDIO", {"tooltip": "The speech (core Load Audio or any AUDIO output). Channels are averaged "
                      "and resampled to 16 kHz."}),
            "audio_weights": (files, {"tooltip": "SadTalker's SadTalker_V0.0.2_256.safetensors (or the older "
                              "auido2exp/auido2pose .pth pair) from models/sadtalker or <MIMAFace folder>/sadtalker."}),
            "pose_mode": (list(POSE_MODES), {"default": "audio", "tooltip": "audio: head motion from the speech "
                          "(SadTalker). still: the source's head pose on every frame. reference: the audio's head "
                          "motion plus the reference motion's movement (SadTalker's ref_pose). reference_only: the "
                          "source's pose plus the reference's movement."}),
            "pose_style": ("INT", {"default": 0, "min": 0, "max": NUM_POSE_STYLES - 1, "tooltip": "One of SadTalker's "
                           "46 head-motion styles (audio and reference modes)."}),
            "blink": (list(BLINK_MODES), {"default": "random", "tooltip": "random: SadTalker's random blinks (from "
                      "the seed). none: the source's eyes. reference: the eyes (expression) of the reference motion."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFF, "control_after_generate": True,
                             "tooltip": "Seeds the blinks and the head motion: the same seed gives the same motion."}),
            "expression_scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 3.0, "step": 0.05, "tooltip": "How "
                                 "strongly the speech moves the face: 1 = as predicted, 0 = the source's expression."}),
            "frame_limit": ("INT", {"default": 0, "min": 0, "max": 1_000_000, "tooltip": "Make at most this many "
                            "frames (0 = the whole audio). Cut the AUDIO the same way for the video."}),
        }, "optional": {
            "reference_motion": (MOTION, {"tooltip": "A motion (e.g. Extract 3DMM Motion on a driving video) for the "
                                 "reference pose modes and reference blinks; resampled to 25 fps."}),
        }}

    def animate_audio(self, source_motion, audio, audio_weights, pose_mode, pose_style, blink, seed, expression_scale,
                      frame_limit, reference_motion=None):
        from mimaface_core.audio.motion import AudioMotionOptions, audio_motion

        options = AudioMotionOptions(pose_mode, pose_style, blink, seed, expression_scale, frame_limit or None)
        options.check(reference_motion is not None)
        # any mapping: VideoHelperSuite's Load Video gives a lazy Mapping that reads the sound on first use
        if not isinstance(audio, Mapping) or "waveform" not in audio or "sample_rate" not in audio:
            raise ValueError("audio: expected a core AUDIO ({'waveform': (B, C, S), 'sample_rate': int}); connect "
                             "Load Audio or another AUDIO output.")
        speech = speech_from_waveform(audio["waveform"], int(audio["sample_rate"]), "audio", frame_limit or None)
        bar: dict = {}

        def progress(done, total):
            bar.setdefault("bar", _comfy.Progress(total))(done, total)

        with _networks(audio_weights).use("audio") as loaded:
            motion = audio_motion(source_motion, speech, loaded.audio, options, reference_motion, progress=progress)
        log.info("[MIMAFace] audio: %.2f s → %d frames at %d fps (pose %s, blink %s).", speech.duration, len(motion),
                 FPS, pose_mode, blink)
        return (motion, len(motion), float(FPS))
