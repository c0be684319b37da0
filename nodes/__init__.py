"""ComfyUI nodes of the pack (thin wrappers over mimaface_core).

The node classes arrive with the node-pack work; the mappings are empty until then, so the pack
imports cleanly in ComfyUI.
"""

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
