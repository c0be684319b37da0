"""ComfyUI-MIMAFace: ComfyUI entry point.

ComfyUI imports this folder by path. The core library ``mimaface_core`` lives next to this file
and is imported by its absolute name, so this folder is appended to ``sys.path`` (last, so it
never shadows ComfyUI's own modules such as ``nodes``). Nothing heavy happens at import time (no
model loading, no downloads).
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.append(_HERE)

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: E402

#: Served by ComfyUI as /extensions/<pack folder>/: docs/<node id>.md are the nodes' help pages.
WEB_DIRECTORY = "web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
