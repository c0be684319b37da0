"""Paths of the released MIMAFace snapshot layout (docs/WEIGHTS.md §2).

```
<root>/checkpoints/image/pretrained_unet/{config.json, diffusion_pytorch_model.safetensors}
<root>/checkpoints/image/{mim.pth, vision_encoder/}
<root>/checkpoints/video/{3dunet.pth, mim.pth, vision_encoder/}
<root>/models/D3DFR/{netG_epoch_25.pth, BFM09_model_info.mat}
<root>/models/ArcFace/CurricularFace_Backbone.pth
<root>/sd-vae-ft-mse/            (optional: where `python -m mimaface_core download` puts the VAE)
<root>/sadtalker/SadTalker_V0.0.2_256.safetensors   (optional: SadTalker's audio networks)
```

Every ``.pth`` may be replaced by a ``.safetensors`` file of the same stem (what
``python -m mimaface_core convert`` writes); the ``.safetensors`` file wins when both exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MissingWeightFileError

STAGES = ("image", "video")

#: Released files as (description, path relative to the root, stem-based = may be .safetensors).
RELEASED_PTH = {
    "unet3d": "checkpoints/video/3dunet.pth",
    "image_mim": "checkpoints/image/mim.pth",
    "video_mim": "checkpoints/video/mim.pth",
    "d3dfr": "models/D3DFR/netG_epoch_25.pth",
    "curricularface": "models/ArcFace/CurricularFace_Backbone.pth",
}
RELEASED_FOLDERS = {
    "pretrained_unet": "checkpoints/image/pretrained_unet",
    "image_vision_encoder": "checkpoints/image/vision_encoder",
    "video_vision_encoder": "checkpoints/video/vision_encoder",
}
BFM_PATH = "models/D3DFR/BFM09_model_info.mat"
#: SadTalker's combined weight file and the snapshot sub-folder the audio CLI and download use.
SADTALKER_FILE = "SadTalker_V0.0.2_256.safetensors"
SADTALKER_FOLDER = "sadtalker"
VAE_FOLDER = "sd-vae-ft-mse"
SCHEDULER_CONFIG = "scheduler/scheduler_config.json"


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON config, with a clear error when it is absent."""
    if not path.is_file():
        raise MissingWeightFileError(f"{path} not found: the folder {path.parent} needs its config.json.")
    return json.loads(path.read_text())


@dataclass(frozen=True)
class ReleasedLayout:
    """The files of one MIMAFace snapshot folder.

    Raises (from the accessors): MissingWeightFileError naming the expected path when asked to
    ``require`` something absent.
    """

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))
        if not self.root.is_dir():
            raise MissingWeightFileError(
                f"MIMAFace weights folder not found: {self.root}. Download the released snapshot "
                "(python -m mimaface_core download DEST) and point to it."
            )

    def weight_file(self, name: str) -> Path:
        """Path of a released ``.pth`` (or its ``.safetensors`` replacement), e.g. ``"video_mim"``."""
        pth = self.root / RELEASED_PTH[name]
        converted = pth.with_suffix(".safetensors")
        return converted if converted.is_file() else pth

    def folder(self, name: str) -> Path:
        """Path of a released folder, e.g. ``"pretrained_unet"`` or ``"video_vision_encoder"``."""
        return self.root / RELEASED_FOLDERS[name]

    def mim(self, stage: str) -> Path:
        return self.weight_file(f"{stage}_mim")

    def vision_encoder(self, stage: str) -> Path:
        return self.folder(f"{stage}_vision_encoder")

    @property
    def bfm(self) -> Path:
        return self.root / BFM_PATH

    @property
    def vae(self) -> Path:
        return self.root / VAE_FOLDER

    def missing(self, mode: str) -> list[str]:
        """Relative paths of the files that ``mode`` ("image" or "video") needs and that are absent."""
        needed = [self.folder("pretrained_unet") / "config.json", self.mim(mode), self.vision_encoder(mode) / "config.json",
                  self.weight_file("d3dfr"), self.weight_file("curricularface"), self.bfm]
        if mode == "video":
            needed.append(self.weight_file("unet3d"))
        return [str(p.relative_to(self.root)) for p in needed if not p.is_file()]
