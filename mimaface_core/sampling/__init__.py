"""Sampling: the ICA clip loop of video mode and the single-frame image mode (spec §1.3–1.4, §6)."""

from .clips import Clip, plan_clips

_LAZY = {"SamplingOptions": ".sampler", "denoise": ".sampler", "sample_image": ".sampler", "sample_video": ".sampler"}

__all__ = ["Clip", "SamplingOptions", "denoise", "plan_clips", "sample_image", "sample_video"]


def __getattr__(name):  # PEP 562: the heavy modules (diffusers, transformers) load on first use
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
