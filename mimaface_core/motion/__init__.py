"""Motion from faces: per-frame 3DMM coefficients and crop matrices of a driving video or image,
their editing (retargeting, smoothing, gaze) and the render of the blended face (docs/ALIGNMENT.md §6, §11)."""

from .sequence import MotionSequence

__all__ = ["MotionSequence"]
