"""Sampling: the ICA clip loop of video mode and the single-frame image mode (spec §1.3–1.4, §6)."""

from .clips import Clip, plan_clips
from .sampler import SamplingOptions, denoise, sample_image, sample_video

__all__ = ["Clip", "SamplingOptions", "denoise", "plan_clips", "sample_image", "sample_video"]
