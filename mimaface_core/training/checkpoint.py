"""Training checkpoints in the released layout (docs/WEIGHTS.md §2, §16), so ``load_mimaface``,
the CLI and the nodes load them unchanged, including through the base-checkpoint merge.

``<out>/checkpoint-<step>/`` is a copy of the starting snapshot made of symlinks, where the trained
parts are replaced by safetensors files:

* image stage: ``checkpoints/image/pretrained_unet/`` (config.json + diffusion_pytorch_model.safetensors),
  ``checkpoints/image/mim.safetensors``, ``checkpoints/image/vision_encoder/`` (config.json + model.safetensors);
* video stage: ``checkpoints/video/3dunet.safetensors`` (the whole 3D UNet in the release's
  AnimateDiff key names: the motion modules and conv_in trained, the rest as started),
  ``checkpoints/video/mim.safetensors``, ``checkpoints/video/vision_encoder/``.

Beside them, ``trainer_state.pt`` (optimizer, step, identity-token bank, grad scaler; read back with
``torch.load(weights_only=True)``) and ``training.json`` (options and recent losses). A checkpoint is
written into a temporary folder and renamed when complete.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch

from ..media.outputs import atomic_output
from .models import TrainModels

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def _replaced(stage: str) -> list[str]:
    if stage == "image":
        return ["checkpoints/image/pretrained_unet", "checkpoints/image/mim.pth", "checkpoints/image/mim.safetensors",
                "checkpoints/image/vision_encoder"]
    return ["checkpoints/video/3dunet.pth", "checkpoints/video/3dunet.safetensors", "checkpoints/video/mim.pth",
            "checkpoints/video/mim.safetensors", "checkpoints/video/vision_encoder"]


def _link_snapshot(src: Path, dst: Path, skip: list[str]) -> None:
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src).as_posix()
        if any(rel == s or rel.startswith(s + "/") for s in skip) or rel.startswith(("trainer_state", "training.json")):
            continue
        if path.is_file():
            target = dst / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path.resolve(), target)


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in module.state_dict().items()}


def released_3dunet_state(models: TrainModels, original: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The trained 3D UNet in the release's ``3dunet.pth`` key names: every key of ``original`` (the
    file the stage started from), motion modules and conv_in from ``models.unet``, the rest kept."""
    from diffusers.loaders.single_file_utils import (
        convert_animatediff_checkpoint_to_diffusers,
    )

    ours = _state(models.unet)
    out = {}
    for key, value in original.items():
        name = key
        if "motion_modules." in key:
            converted = convert_animatediff_checkpoint_to_diffusers({key: value})
            name = next(iter(converted), None)
        if name is not None and name in ours and ("motion_modules." in key or key.startswith("conv_in.")):
            out[key] = ours[name]
        else:
            out[key] = value.detach().to(torch.float32).contiguous() if value.is_floating_point() else value.contiguous()
    return out


def write_checkpoint(models: TrainModels, snapshot: str | Path, out_dir: str | Path, step: int, trainer_state: dict,
                     info: dict, motion_file: str | Path | None = None) -> Path:
    """Write ``<out_dir>/checkpoint-<step>`` (module docstring); returns its path.

    Args:
        snapshot: the folder the run started from (its untouched files are linked).
        trainer_state: tensors and numbers only (saved with torch.save, read with weights_only=True).
        motion_file: video stage: the 3D UNet file the stage started from (default the snapshot's).
    """
    from safetensors.torch import save_file

    from ..weights.layout import ReleasedLayout
    from ..weights.safe_load import read_state_dict

    snapshot, out_dir = Path(snapshot), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"checkpoint-{step:06d}"
    with atomic_output(final) as tmp:  # a hidden .checkpoint-<step>.<id>.partial folder until complete
        _link_snapshot(snapshot, tmp, _replaced(models.stage))
        src = ReleasedLayout(snapshot)
        if models.stage == "image":
            unet_dir = tmp / "checkpoints/image/pretrained_unet"
            unet_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src.folder("pretrained_unet") / "config.json", unet_dir / "config.json")
            save_file(_state(models.unet), str(unet_dir / "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})
            part = "image"
        else:
            motion = Path(motion_file) if motion_file is not None else src.weight_file("unet3d")
            state = released_3dunet_state(models, read_state_dict(motion, "3dunet"))
            (tmp / "checkpoints/video").mkdir(parents=True, exist_ok=True)
            save_file(state, str(tmp / "checkpoints/video/3dunet.safetensors"), metadata={"format": "pt"})
            part = "video"
        save_file(_state(models.mim), str(tmp / f"checkpoints/{part}/mim.safetensors"), metadata={"format": "pt"})
        clip_dir = tmp / f"checkpoints/{part}/vision_encoder"
        clip_dir.mkdir(parents=True, exist_ok=True)
        start_clip = src.vision_encoder("image" if not (src.vision_encoder("video") / "config.json").is_file()
                                        or part == "image" else "video")
        shutil.copyfile(start_clip / "config.json", clip_dir / "config.json")
        save_file(_state(models.clip), str(clip_dir / "model.safetensors"), metadata={"format": "pt"})
        torch.save(trainer_state, tmp / "trainer_state.pt")
        (tmp / "training.json").write_text(json.dumps(info, indent=1))
    return final


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The checkpoint with the highest step in ``out_dir`` (None when there is none)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in out_dir.iterdir() if p.is_dir() and (m := CHECKPOINT.match(p.name))]
    return max(found)[1] if found else None


def read_trainer_state(checkpoint: str | Path) -> dict:
    """``trainer_state.pt`` of a checkpoint (``torch.load(weights_only=True)``)."""
    return torch.load(Path(checkpoint) / "trainer_state.pt", map_location="cpu", weights_only=True)
