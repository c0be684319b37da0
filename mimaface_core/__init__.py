"""MIMAFace core: face animation via motion-identity modulated appearance feature learning.

A standalone library (no ComfyUI import anywhere) implementing MIMAFace (arXiv 2409.15179) with
weight compatibility with the released checkpoints. Entry point: :func:`load_mimaface`.
"""

from .errors import MIMAFaceError, MissingWeightFileError, UnsafeWeightFileError, WeightFileError, WeightMismatchError
from .weights import BaseCheckpoint, MIMAFaceModel, load_mimaface

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
