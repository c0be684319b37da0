"""MIMAFace core: face animation via motion-identity modulated appearance feature learning.

A standalone library (no ComfyUI import anywhere) implementing MIMAFace (arXiv 2409.15179) with
weight compatibility with the released checkpoints. Entry point: :func:`load_mimaface`.
"""

from .errors import MIMAFaceError, MissingWeightFileError, UnsafeWeightFileError, WeightFileError, WeightMismatchError

_LAZY = {"BaseCheckpoint": ".weights.base_merge", "MIMAFaceModel": ".weights.loader", "load_mimaface": ".weights.loader"}

__all__ = [
    "BaseCheckpoint",
    "MIMAFaceError",
    "MIMAFaceModel",
    "MissingWeightFileError",
    "UnsafeWeightFileError",
    "WeightFileError",
    "WeightMismatchError",
    "load_mimaface",
]


def __getattr__(name):  # PEP 562: the heavy modules (diffusers, transformers) load on first use
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
