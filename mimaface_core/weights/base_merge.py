"""Custom SD1.5 base checkpoints for the MIMAFace denoiser.

Artists swap in their own SD1.5 checkpoints. The released MIMAFace UNet (``pretrained_unet``) is a
fine-tune of SD1.5 with a 13-channel ``conv_in`` and cross-attention that reads appearance tokens
instead of text, so a base checkpoint cannot simply replace it. Two documented modes:

* ``add_difference``: every 2D UNet weight becomes ``base + strength · (mimaface − reference)``,
  where ``reference`` is the SD1.5 checkpoint MIMAFace was trained from. The base's style is kept
  and MIMAFace's change is added on top. ``conv_in`` input channels 4..12 (render latents, ICA
  latents, mask) have no SD1.5 counterpart and stay MIMAFace's.
* ``swap``: the base's weights everywhere except ``conv_in`` and the cross-attention layers
  (``attn2``), which read the appearance tokens and stay MIMAFace's.

Motion modules (video mode) always come from ``3dunet.pth``; in video mode ``conv_in`` does too.

Checkpoints are single files in the LDM/ComfyUI layout (``model.diffusion_model.*`` keys, or the
same keys without the prefix), converted with diffusers' ``convert_ldm_unet_checkpoint``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers.loaders.single_file_utils import (
    LDM_UNET_KEY,
    convert_ldm_unet_checkpoint,
)

from ..errors import WeightFileError, WeightMismatchError
from .safe_load import read_state_dict
from .state_checks import check_state_dict, identify_state_dict

MERGE_MODES = ("add_difference", "swap")
SD15_COMPONENT = "an SD1.5 UNet checkpoint"


@dataclass(frozen=True)
class BaseCheckpoint:
    """A custom base checkpoint and how to merge it.

    Attributes:
        path: SD1.5 single-file checkpoint (.safetensors preferred), or an SD1.5 UNet state dict
            in the LDM layout (e.g. a ComfyUI MODEL wire with its LoRA patches applied).
        merge: "add_difference" or "swap".
        reference: the SD1.5 reference checkpoint (v1-5) as a file or state dict, required by
            "add_difference".
        strength: multiplier of the MIMAFace difference in "add_difference" (1.0 = full).
        name / reference_name: how a state dict is named in messages (files are named by path).
    """

    path: Path | Mapping[str, torch.Tensor]
    merge: str = "add_difference"
    reference: Path | Mapping[str, torch.Tensor] | None = None
    strength: float = 1.0
    name: str = "base model"
    reference_name: str = "reference model"

    def __post_init__(self):
        if self.merge not in MERGE_MODES:
            raise ValueError(f"merge must be one of {MERGE_MODES}, got {self.merge!r}.")
        if self.merge == "add_difference" and self.reference is None:
            raise ValueError(
                "add_difference needs the SD1.5 reference checkpoint (v1-5-pruned-emaonly.safetensors) "
                "that MIMAFace was trained from; set `reference`, or use merge='swap'."
            )


def read_sd15_unet(path: str | Path | Mapping[str, torch.Tensor], config: dict[str, Any],
                   name: str = "base model") -> dict[str, torch.Tensor]:
    """Read the UNet of an SD1.5 single-file checkpoint (or state dict), in diffusers names, as float32.

    Args:
        path: LDM-layout checkpoint or state dict; UNet keys with or without ``model.diffusion_model.``.
        config: the MIMAFace 2D UNet config (block layout used by the converter).
        name: what a state dict is called in messages.

    Raises:
        WeightFileError: no SD1.5 UNet in the file.
        WeightMismatchError: UNet keys the converter does not know (not SD1.5: SD2, SDXL, …).
    """
    if isinstance(path, Mapping):
        state = dict(path)
        path = name
    else:
        state = read_state_dict(path, "base checkpoint")
    if not any(k.startswith(LDM_UNET_KEY) for k in state):
        if any(k.startswith("input_blocks.") for k in state):
            state = {LDM_UNET_KEY + k: v for k, v in state.items()}
        else:
            guess = identify_state_dict(state.keys()) or "an unknown model"
            raise WeightFileError(
                f"{path} holds no SD1.5 UNet in the LDM/ComfyUI layout (no model.diffusion_model.* or "
                f"input_blocks.* keys); it looks like {guess}. Choose an SD1.5 checkpoint from "
                "models/checkpoints."
            )
    unet_keys = {k: v for k, v in state.items() if k.startswith(LDM_UNET_KEY)}
    converted = convert_ldm_unet_checkpoint(state, dict(config))
    used = {v.data_ptr() for v in converted.values()}
    unknown = [k[len(LDM_UNET_KEY):] for k, v in unet_keys.items() if v.data_ptr() not in used]
    if unknown:
        raise WeightMismatchError(
            f"{path}: {len(unknown)} UNet tensors are not part of an SD1.5 UNet (first: "
            f"{', '.join(unknown[:5])}). This is probably an SD2, SDXL or otherwise modified model; "
            "MIMAFace needs an SD1.5 checkpoint."
        )
    return {k: v.float() for k, v in converted.items()}


def _expected_sd15(mimaface: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    """Shapes an SD1.5 UNet must have: MIMAFace's, with a 4-channel conv_in."""
    shapes = {k: tuple(v.shape) for k, v in mimaface.items()}
    out, _, kh, kw = shapes["conv_in.weight"]
    shapes["conv_in.weight"] = (out, 4, kh, kw)
    return shapes


def add_difference(
    mimaface: dict[str, torch.Tensor],
    base: dict[str, torch.Tensor],
    reference: dict[str, torch.Tensor],
    strength: float = 1.0,
) -> dict[str, torch.Tensor]:
    """``base + strength · (mimaface − reference)`` for every 2D UNet weight (diffusers names).

    ``conv_in.weight`` channels 0..3 follow the formula; channels 4..12 are MIMAFace's as is.
    All three dicts must hold the same keys (checked by the caller).
    """
    merged = {}
    for key, m in mimaface.items():
        b, r = base[key].to(m.dtype), reference[key].to(m.dtype)
        if key == "conv_in.weight":
            w = m.clone()
            ch = b.shape[1]
            w[:, :ch] = b + strength * (m[:, :ch] - r)
            merged[key] = w
        else:
            merged[key] = b + strength * (m - r)
    return merged


def keeps_mimaface_in_swap(key: str) -> bool:
    """Whether ``swap`` keeps MIMAFace's tensor for ``key``: conv_in and cross-attention (attn2)."""
    return key.startswith("conv_in.") or ".attn2." in key


def swap(mimaface: dict[str, torch.Tensor], base: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The base's weights, except conv_in and every ``attn2`` tensor, which stay MIMAFace's."""
    return {k: (m if keeps_mimaface_in_swap(k) else base[k].to(m.dtype)) for k, m in mimaface.items()}


def merge_base_checkpoint(
    mimaface: dict[str, torch.Tensor], config: dict[str, Any], base: BaseCheckpoint
) -> dict[str, torch.Tensor]:
    """Apply ``base`` to the MIMAFace 2D UNet state dict (a ``StateTransform`` for the loader).

    Raises:
        WeightFileError / WeightMismatchError: a checkpoint is unreadable, not SD1.5, or of
            another size; the message names the file.
    """
    expected = _expected_sd15(mimaface)
    base_name = base.name if isinstance(base.path, Mapping) else base.path
    base_state = read_sd15_unet(base.path, config, base.name)
    check_state_dict(base_state, expected, file=base_name, component=SD15_COMPONENT, identify=False)
    if base.merge == "swap":
        return swap(mimaface, base_state)
    ref_name = base.reference_name if isinstance(base.reference, Mapping) else base.reference
    reference = read_sd15_unet(base.reference, config, base.reference_name)
    check_state_dict(reference, expected, file=ref_name, component=SD15_COMPONENT, identify=False)
    return add_difference(mimaface, base_state, reference, base.strength)
