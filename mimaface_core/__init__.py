"""MIMAFace core: face animation via motion-identity modulated appearance feature learning.

A standalone library (no ComfyUI import anywhere) implementing MIMAFace (arXiv 2409.15179) with
weight compatibility with the released checkpoints. Entry point: :func:`load_mimaface`.
"""

from ._lazy import lazy_getattr
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

__getattr__ = lazy_getattr(__name__, _LAZY)  # PEP 562: heavy modules load on first use
