"""Sampling: the ICA clip loop of video mode and the single-frame image mode (docs/SAMPLING.md §1, §4–§9)."""

from .._lazy import lazy_getattr
from .ica import Clip, plan_clips

_LAZY = {"SamplingOptions": ".sampler", "SamplingStats": ".cost", "denoise": ".sampler", "sample_image": ".sampler", "sample_video": ".sampler"}

__all__ = ["Clip", "SamplingOptions", "SamplingStats", "denoise", "plan_clips", "sample_image", "sample_video"]

__getattr__ = lazy_getattr(__name__, _LAZY)  # PEP 562: heavy modules load on first use
