"""Where the MIMAFace weights live when ``--weights`` is not given, and where ``download`` puts them.

The places, in the order they are searched:

1. ``$MIMAFACE_WEIGHTS`` when set (a snapshot folder; the way to point everything elsewhere);
2. ``ComfyUI/models/mimaface/MIMAFace`` when this pack sits in a ComfyUI's ``custom_nodes`` folder
   (the folder the nodes read);
3. the user folder ``~/.cache/mimaface/MIMAFace`` (standalone use).

``download`` without a folder writes to the first of them; a command without ``--weights`` uses
the first that holds the files it needs, and says every place it looked when none does.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import MissingWeightFileError

ENV_VAR = "MIMAFACE_WEIGHTS"
SNAPSHOT_NAME = "MIMAFace"
#: The standalone default (``~`` is the user's home).
USER_FOLDER = Path("~/.cache/mimaface") / SNAPSHOT_NAME
PACK_ROOT = Path(__file__).resolve().parents[2]


def comfyui_folder(pack_root: Path = PACK_ROOT) -> Path | None:
    """``<ComfyUI>/models/mimaface/MIMAFace`` when ``pack_root`` is inside ``<ComfyUI>/custom_nodes``."""
    if pack_root.parent.name == "custom_nodes":
        return pack_root.parent.parent / "models" / "mimaface" / SNAPSHOT_NAME
    return None


def weight_places(pack_root: Path = PACK_ROOT) -> list[tuple[str, Path]]:
    """(why, folder) for every place searched, in order."""
    places = []
    if os.environ.get(ENV_VAR):
        places.append((f"${ENV_VAR}", Path(os.environ[ENV_VAR]).expanduser()))
    comfy = comfyui_folder(pack_root)
    if comfy is not None:
        places.append(("this ComfyUI's models folder", comfy))
    places.append(("the user folder", USER_FOLDER.expanduser()))
    return places


def default_download_folder(pack_root: Path = PACK_ROOT) -> Path:
    """Where ``download`` writes without a folder: the first of :func:`weight_places`."""
    return weight_places(pack_root)[0][1]


def find_weights(mode: str = "video", pack_root: Path = PACK_ROOT) -> Path:
    """The first place of :func:`weight_places` that holds every file of ``mode``.

    Raises:
        MissingWeightFileError: none does; the message names every place searched, what each
            lacks, and how to fill one.
    """
    from .layout import ReleasedLayout

    lines = []
    for why, folder in weight_places(pack_root):
        if not folder.is_dir():
            lines.append(f"{folder} ({why}): not found")
            continue
        missing = ReleasedLayout(folder).missing(mode)
        if not missing:
            return folder
        lines.append(f"{folder} ({why}): incomplete, missing {', '.join(missing[:3])}"
                     + (f" and {len(missing) - 3} more" if len(missing) > 3 else ""))
    raise MissingWeightFileError(
        f"no MIMAFace weights for {mode} mode (no --weights given); searched: " + "; ".join(lines)
        + f". Run python -m mimaface_core download (it fills {default_download_folder(pack_root)}), set "
        f"{ENV_VAR} to a snapshot folder, or give --weights FOLDER.")
