"""The networks a training stage starts from and which of their parameters train (docs/SAMPLING.md §10,
docs/WEIGHTS.md §16; the release's ``train_image.py`` / ``train_video.py`` and their launch scripts).

* image stage: the 2D UNet of ``checkpoints/image/pretrained_unet`` (13-channel conv_in), the
  image-stage MIM (``checkpoints/image/mim.pth``) and CLIP (``checkpoints/image/vision_encoder``);
  every UNet, MIM and CLIP parameter trains except CLIP's ``post_layernorm``.
* video stage: a UNetMotionModel built from the same ``pretrained_unet`` (2D weights **and conv_in**)
  plus only the motion modules of a motion file (``checkpoints/video/3dunet.pth``, or AnimateDiff's
  ``v3_sd15_mm.ckpt``); the image-stage MIM and CLIP. Parameters whose name contains
  ``motion_modules.`` or ``conv_in.`` train, all of the MIM, and (only with ``train_clip_layers``)
  the last two CLIP encoder layers. In the release those two layers are marked trainable but never
  receive a gradient (reentrant gradient checkpointing cuts the graph; train_step fixture README).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..weights.layout import ReleasedLayout

STAGES = ("image", "video")


@dataclass
class TrainModels:
    """The three trained networks, float32, in train mode.

    Attributes:
        unet: ``UNet2DConditionModel`` (image stage) or ``UNetMotionModel`` (video stage).
        mim: the MIA module. clip: the CLIP vision tower (``CLIPVisionModel``).
        stage: "image" or "video".
    """

    unet: nn.Module
    mim: nn.Module
    clip: nn.Module
    stage: str

    def modules(self) -> dict[str, nn.Module]:
        """{"unet", "mim", "clip"}: the prefixes of :meth:`named_parameters` (the release's names)."""
        return {"unet": self.unet, "mim": self.mim, "clip": self.clip}

    def named_parameters(self):
        """(name, parameter) of all three, names prefixed ``unet.``, ``mim.``, ``clip.``; CLIP's
        names are the release's (``clip.vision_model.…``) whatever the transformers version."""
        for prefix, module in self.modules().items():
            for name, p in module.named_parameters():
                yield f"{prefix}.{clip_name(name) if prefix == 'clip' else name}", p

    def train(self) -> "TrainModels":
        for m in self.modules().values():
            m.train()
        return self


def motion_module_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The motion-module tensors of a released ``3dunet.pth`` or an AnimateDiff checkpoint, renamed
    for diffusers (keys containing ``motion_modules.`` only, as ``train_video.py`` loads them).

    Raises:
        WeightMismatchError: the file holds no motion modules.
    """
    from diffusers.loaders.single_file_utils import (
        convert_animatediff_checkpoint_to_diffusers,
    )

    from ..errors import WeightMismatchError
    from ..weights.safe_load import read_state_dict

    state = read_state_dict(path, "motion modules")
    motion = {k: v for k, v in state.items() if "motion_modules." in k}
    if not motion:
        raise WeightMismatchError(f"{path} holds no motion modules: the video stage needs 3dunet.pth or an "
                                  "AnimateDiff motion-module checkpoint (v3_sd15_mm.ckpt).")
    return convert_animatediff_checkpoint_to_diffusers(motion)


def load_training_models(root: str | Path, stage: str, motion_file: str | Path | None = None,
                         device: str | torch.device = "cpu", resume: bool = False) -> TrainModels:
    """The starting networks of a stage from a MIMAFace snapshot, as the release's launch scripts load them.

    Args:
        root: the snapshot folder (released layout). stage: "image" or "video".
        motion_file: video stage: the motion modules (default ``checkpoints/video/3dunet.pth``).
        resume: video stage: continue a video-stage run (a checkpoint written by the train
            command): conv_in from ``3dunet``, MIM and CLIP from ``checkpoints/video``.

    Raises:
        ValueError: unknown stage. MissingWeightFileError / WeightMismatchError: files absent or wrong.
    """
    from ..networks.denoiser import build_unet2d, build_unet3d, positional_tables
    from ..weights.components import load_appearance_encoder, load_mim
    from ..weights.state_checks import check_state_dict, expected_shapes
    from ..weights.unet import read_pretrained_unet

    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}.")
    layout = ReleasedLayout(Path(root))
    config, state2d, file2d = read_pretrained_unet(layout.folder("pretrained_unet"))
    if stage == "image":
        unet = build_unet2d(config, device="meta")
        check_state_dict(state2d, expected_shapes(unet), file=file2d, component="the image-stage UNet")
        unet.load_state_dict(state2d, strict=True, assign=True)
    else:
        unet = build_unet3d(config, device="meta")
        motion_path = Path(motion_file) if motion_file is not None else layout.weight_file("unet3d")
        if resume:
            from ..weights.safe_load import read_state_dict
            from ..weights.unet import official_motion_state

            motion = official_motion_state(read_state_dict(motion_path, "3dunet"), motion_path)
        else:
            motion = motion_module_state(motion_path)
        tables = positional_tables(unet)
        expected = expected_shapes(unet)
        check_state_dict({**state2d, **motion}, expected, file=motion_path, component="the video-stage UNet",
                         allow_missing=tables)
        unet.load_state_dict({**state2d, **motion, **tables}, strict=True, assign=True)
    unet = nn.Module.to(unet, device=device, dtype=torch.float32)
    part = "video" if (resume and stage == "video") else "image"
    mim = load_mim(layout.mim(part), device)
    clip = load_appearance_encoder(layout.vision_encoder(part), device).clip
    return TrainModels(unet, mim, clip, stage).train()


def clip_name(name: str) -> str:
    """A CLIPVisionModel parameter name in the release's form (transformers 5 drops ``vision_model.``)."""
    return name if name.startswith("vision_model.") else f"vision_model.{name}"


def last_clip_layers(clip: nn.Module, count: int = 2) -> list[str]:
    """Name prefixes (release form) of the last ``count`` CLIP encoder layers (``vision_model.encoder.layers.N.``)."""
    n = len(getattr(clip, "vision_model", clip).encoder.layers)
    return [f"vision_model.encoder.layers.{i}." for i in range(max(0, n - count), n)]


def set_trainable(models: TrainModels, train_clip_layers: bool = False) -> list[tuple[str, nn.Parameter]]:
    """Mark what trains in ``models.stage`` (module docstring) and return those (name, parameter).

    Args:
        train_clip_layers: video stage: really train the last two CLIP layers (the release marks
            them trainable but they never receive a gradient). Ignored in the image stage.
    """
    for p in models.unet.parameters():
        p.requires_grad_(models.stage == "image")
    if models.stage == "video":
        for name, p in models.unet.named_parameters():
            p.requires_grad_("motion_modules." in name or "conv_in." in name)
    for p in models.mim.parameters():
        p.requires_grad_(True)
    last = last_clip_layers(models.clip)
    for raw, p in models.clip.named_parameters():
        name = clip_name(raw)
        if models.stage == "image":
            p.requires_grad_(not name.startswith("vision_model.post_layernorm."))
        else:
            p.requires_grad_(train_clip_layers and any(name.startswith(prefix) for prefix in last))
    return [(n, p) for n, p in models.named_parameters() if p.requires_grad]
