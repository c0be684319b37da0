"""Released weight layout, safe loading, key conversion, base-checkpoint merge, convert/download."""

from .layout import ReleasedLayout

_LAZY = {"BaseCheckpoint": ".base_merge", "MIMAFaceModel": ".loader", "load_mimaface": ".loader"}

__all__ = ["BaseCheckpoint", "MIMAFaceModel", "ReleasedLayout", "load_mimaface"]


def __getattr__(name):  # PEP 562: the heavy modules (diffusers, transformers) load on first use
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
