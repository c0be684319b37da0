"""Weights: the released layout, safe loading and state checks, key conversion, the host's layer
operations, base-checkpoint merge, and the convert/download commands' work."""

from .._lazy import lazy_getattr
from .layout import ReleasedLayout

_LAZY = {"BaseCheckpoint": ".base_merge", "load_mimaface": ".loader"}

__all__ = ["BaseCheckpoint", "ReleasedLayout", "load_mimaface"]

__getattr__ = lazy_getattr(__name__, _LAZY)  # PEP 562: heavy modules load on first use
