"""MIMAFace core: face animation via motion-identity modulated appearance feature learning.

A standalone library (no ComfyUI import anywhere) implementing MIMAFace (arXiv 2409.15179) with
weight compatibility with the released checkpoints. Entry point: :func:`load_mimaface`.
"""

from ._lazy import lazy_getattr
from .errors import (
    MIMAFaceError,
    MissingWeightFileError,
    UnsafeWeightFileError,
    WeightFileError,
    WeightMismatchError,
)

#: The public API (README): name -> module holding it, imported on first use.
_LAZY = {
    "load_mimaface": ".weights.loader", "find_weights": ".weights.location", "MIMAFaceModel": ".networks.bundle", "BaseCheckpoint": ".weights.base_merge",
    "AnimateOptions": ".pipeline", "animate": ".pipeline", "iter_animate": ".pipeline",
    "FaceMap": ".group", "plan_faces": ".group", "iter_animate_faces": ".group",
    "TrackingOptions": ".face.tracks", "track_faces": ".face.tracks",
    "SamplingOptions": ".sampling.sampler",
    "load_image": ".media.images", "iter_video_frames": ".media.video_in", "video_info": ".media.video_in",
    "make_detector": ".face.detectors", "paste_back": ".face.paste_back",
    "encode_source": ".motion.extract", "extract_motion": ".motion.extract", "retarget": ".motion.retarget",
    "edit_motion": ".motion.edit", "extract_crops_motion": ".motion.extract", "gaze_by_method": ".motion.gaze",
    "MotionSequence": ".motion.sequence", "render_motion": ".morphable.render",
    "solve_controls": ".morphable.controls", "controls_for": ".morphable.controls",
    "parse_keyframes": ".motion.keyframes", "load_keyframes": ".motion.keyframes",
    "apply_keyframes": ".motion.keyframes", "keyframe_motion": ".motion.keyframes", "still_motion": ".motion.keyframes",
    "AudioMotionOptions": ".audio.motion", "audio_motion": ".audio.motion", "load_audio": ".audio.decode",
    "load_audio_networks": ".audio.weights",
    "EvaluationOptions": ".evaluation.evaluate", "evaluate_frames": ".evaluation.evaluate",
}

__all__ = sorted([*_LAZY, "MIMAFaceError", "MissingWeightFileError", "UnsafeWeightFileError", "WeightFileError",
                  "WeightMismatchError"])

__getattr__ = lazy_getattr(__name__, _LAZY)  # PEP 562: heavy modules load on first use
