"""Loading the MIMAFace denoiser from the released files (docs/WEIGHTS.md §4–§5).

* image mode: ``checkpoints/image/pretrained_unet`` as a 2D UNet;
* video mode: the 2D weights from ``pretrained_unet`` plus ONLY the ``motion_modules.*`` and
  ``conv_in.*`` tensors of ``checkpoints/video/3dunet.pth`` (renamed with diffusers' AnimateDiff
  converter); every other tensor of 3dunet.pth is ignored, as in the release.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from diffusers.loaders.single_file_utils import (
    convert_animatediff_checkpoint_to_diffusers,
)

from ..errors import MissingWeightFileError, WeightMismatchError
from ..networks.denoiser import build_unet2d, build_unet3d, positional_tables
from .layout import ReleasedLayout, read_json
from .safe_load import read_state_dict
from .state_checks import UNET2D as UNET2D_COMPONENT
from .state_checks import UNET3D as UNET3D_COMPONENT
from .state_checks import check_state_dict, expected_shapes, identify_state_dict

_UNET_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")

#: A function that rewrites the 2D UNet state dict (diffusers names) before it is loaded, e.g. a
#: custom base-checkpoint merge (``weights.base_merge``).
StateTransform = Callable[[dict[str, torch.Tensor], dict[str, Any]], dict[str, torch.Tensor]]


def read_pretrained_unet(folder: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], Path]:
    """Read ``pretrained_unet/``: its config, its state dict and the weight file path.

    Raises:
        MissingWeightFileError: config.json or the weights are absent.
        WeightFileError: unreadable weights.
    """
    folder = Path(folder)
    config = read_json(folder / "config.json")
    weights = next((folder / n for n in _UNET_WEIGHTS if (folder / n).is_file()), None)
    if weights is None:
        raise MissingWeightFileError(
            f"{folder} holds no diffusion_pytorch_model.safetensors: the image-stage UNet is incomplete."
        )
    return config, read_state_dict(weights, "image-stage UNet weights"), weights


def official_motion_state(state: dict[str, torch.Tensor], file: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of ``3dunet.pth`` that video inference uses, renamed for diffusers.

    Keeps keys containing ``motion_modules.`` or ``conv_in.`` (docs/WEIGHTS.md §5), renames them with
    ``convert_animatediff_checkpoint_to_diffusers`` (which drops the ``pos_encoder.pe`` buffers).

    Raises:
        WeightMismatchError: the file holds no motion modules (wrong file or wrong stage).
    """
    used = {k: v for k, v in state.items() if "motion_modules." in k or k.startswith("conv_in.")}
    if not any("motion_modules." in k for k in used):
        guess = identify_state_dict(state.keys()) or "an unknown model"
        raise WeightMismatchError(
            f"{file} holds no motion modules, so it is not {UNET3D_COMPONENT}. It looks like {guess}: "
            "it was probably taken from the image stage or put in the wrong place."
        )
    return convert_animatediff_checkpoint_to_diffusers(used)


def load_denoiser(
    layout: ReleasedLayout,
    mode: str,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    transform_2d: StateTransform | None = None,
) -> torch.nn.Module:
    """Build and load the denoiser of ``mode`` ("image" → 2D UNet, "video" → UNetMotionModel).

    Args:
        layout: the released snapshot.
        mode: "image" or "video".
        device, dtype: of the returned model (weights are read as float32 on the CPU first).
        transform_2d: optional rewrite of the 2D state dict (custom base checkpoint).

    Returns:
        ``UNet2DConditionModel`` or ``UNetMotionModel`` (per-frame motion GroupNorm) in eval mode.

    Raises:
        MissingWeightFileError, WeightFileError, WeightMismatchError: with the file at fault named.
    """
    folder = layout.folder("pretrained_unet")
    config, state2d, file2d = read_pretrained_unet(folder)
    if transform_2d is not None:
        state2d = transform_2d(state2d, config)
    if mode == "image":
        unet = build_unet2d(config, device="meta")
        check_state_dict(state2d, expected_shapes(unet), file=file2d, component=UNET2D_COMPONENT)
        unet.load_state_dict(state2d, strict=True, assign=True)
    elif mode == "video":
        unet = build_unet3d(config, device="meta")
        expected = expected_shapes(unet)
        motion_keys = {k for k in expected if "motion_modules." in k}
        check_state_dict(
            state2d, {k: s for k, s in expected.items() if k not in motion_keys}, file=file2d, component=UNET2D_COMPONENT
        )
        file3d = layout.weight_file("unet3d")
        motion = official_motion_state(read_state_dict(file3d, "video-stage 3D UNet (3dunet.pth)"), file3d)
        tables = positional_tables(unet)
        check_state_dict(
            motion,
            {k: s for k, s in expected.items() if k in motion_keys or k.startswith("conv_in.")},
            file=file3d,
            component=UNET3D_COMPONENT,
            allow_missing=tables,
        )
        unet.load_state_dict({**state2d, **motion, **tables}, strict=True, assign=True)
    else:
        raise ValueError(f"mode must be 'image' or 'video', got {mode!r}.")
    # nn.Module.to: diffusers' own .to() warns about fp32 modules that these UNets do not have.
    return torch.nn.Module.to(unet, device=device, dtype=dtype).eval()

