"""Released weight layout, safe loading, key conversion, base-checkpoint merge, convert/download."""

from .base_merge import BaseCheckpoint
from .layout import ReleasedLayout
from .loader import MIMAFaceModel, load_mimaface

__all__ = ["BaseCheckpoint", "MIMAFaceModel", "ReleasedLayout", "load_mimaface"]
