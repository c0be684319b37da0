"""ComfyUI-MIMAFace: ComfyUI entry point.

ComfyUI imports this folder by path, so only relative imports are used here, and nothing heavy
happens at import time (no model loading, no downloads).
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
