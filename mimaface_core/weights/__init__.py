"""Released weight layout, safe loading, key conversion, base-checkpoint merge, convert/download."""

from .._lazy import lazy_getattr
from .layout import ReleasedLayout

_LAZY = {"BaseCheckpoint": ".base_merge", "MIMAFaceModel": ".loader", "load_mimaface": ".loader"}

__all__ = ["BaseCheckpoint", "MIMAFaceModel", "ReleasedLayout", "load_mimaface"]

__getattr__ = lazy_getattr(__name__, _LAZY)  # PEP 562: heavy modules load on first use
