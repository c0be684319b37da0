"""The MIMAFace denoiser: SD1.5 UNet with a 13-channel conv_in, with or without motion modules.

* Image mode: diffusers ``UNet2DConditionModel`` built from ``checkpoints/image/pretrained_unet``
  (docs/WEIGHTS.md §4, §6).
* Video mode: diffusers ``UNetMotionModel`` = that 2D UNet + an AnimateDiff v3 ``MotionAdapter``
  (docs/WEIGHTS.md §5, docs/SAMPLING.md §4), with two fixes that the released model needs and diffusers does not do:
  the motion modules' GroupNorm is evaluated per frame (:class:`PerFrameGroupNorm`), and the
  context is repeated per frame with ``repeat_interleave`` (:func:`predict_noise`).

Input channels of ``sample`` (docs/WEIGHTS.md §6): [0:4] scheduler-scaled noisy latents, [4:8] render
latents, [8:12] ICA latents of the previous clip, [12] ICA mask.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel
from torch import nn

#: AnimateDiff v3 motion-module settings of the release (docs/WEIGHTS.md §5).
MOTION_NUM_ATTENTION_HEADS = 8
MOTION_MAX_SEQ_LENGTH = 32
#: Channels of the UNet input (docs/WEIGHTS.md §6).
IN_CHANNELS = 13
LATENT_CHANNELS = 4


class PerFrameGroupNorm(nn.GroupNorm):
    """GroupNorm of a motion module, with statistics taken over each frame separately.

    Takes (B, C, F, H, W) as diffusers' ``AnimateDiffTransformer3D`` passes it and normalises every
    frame on its own, as the released 3D UNet does (docs/SAMPLING.md §4, docs/NUMERICS.md §2). A 4-D
    input is normalised as a plain GroupNorm. Same parameters (``weight``, ``bias``) as nn.GroupNorm.
    The normalisation itself is the parent's ``forward`` (so a host's casting GroupNorm can be put
    under it, see :func:`mimaface_core.networks.operations.apply_operations`).
    """

    #: The torch layer this one extends: a host's ``operations.GroupNorm`` is mixed in under it.
    operations_namesake = "GroupNorm"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            return super().forward(x)
        b, c, f, h, w = x.shape
        out = super().forward(x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w))
        return out.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)


def motion_modules(unet: UNetMotionModel) -> Iterator[tuple[str, nn.Module]]:
    """Yield ``(prefix, module)`` for every motion module of a ``UNetMotionModel``."""
    for kind in ("down_blocks", "up_blocks"):
        for i, block in enumerate(getattr(unet, kind)):
            for j, module in enumerate(getattr(block, "motion_modules", None) or []):
                yield f"{kind}.{i}.motion_modules.{j}", module
    mid = getattr(unet.mid_block, "motion_modules", None)
    for j, module in enumerate(mid or []):
        yield f"mid_block.motion_modules.{j}", module


def use_per_frame_group_norm(unet: UNetMotionModel) -> int:
    """Switch the GroupNorm of every motion module to :class:`PerFrameGroupNorm`, in place.

    Parameters, device and dtype are kept (only the class changes). Returns the number of motion
    modules (20 for the released UNet).
    """
    count = 0
    for _, module in motion_modules(unet):
        if type(module.norm) is nn.GroupNorm:
            module.norm.__class__ = PerFrameGroupNorm
        count += 1
    return count


def unet2d_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``UNet2DConditionModel`` config of a ``pretrained_unet/config.json`` (private keys dropped)."""
    return {k: v for k, v in config.items() if not k.startswith("_")}


def motion_adapter_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The AnimateDiff v3 ``MotionAdapter`` config matching a 2D UNet config (docs/WEIGHTS.md §5)."""
    return dict(
        block_out_channels=tuple(config["block_out_channels"]),
        motion_layers_per_block=config["layers_per_block"],
        motion_num_attention_heads=MOTION_NUM_ATTENTION_HEADS,
        motion_norm_num_groups=config.get("norm_num_groups", 32),
        motion_max_seq_length=MOTION_MAX_SEQ_LENGTH,
        use_motion_mid_block=False,
        conv_in_channels=None,
    )


def build_unet2d(config: Mapping[str, Any], device: str | torch.device = "cpu") -> UNet2DConditionModel:
    """A ``UNet2DConditionModel`` from a config, weights uninitialised-random (``device="meta"`` for none)."""
    with torch.device(device):
        return UNet2DConditionModel.from_config(unet2d_config(config))


def build_unet3d(config: Mapping[str, Any], device: str | torch.device = "cpu") -> UNetMotionModel:
    """The video-mode ``UNetMotionModel`` for a 2D UNet config, with per-frame motion GroupNorm.

    Built as diffusers' ``UNetMotionModel.from_unet2d(unet2d, MotionAdapter(v3))`` without copying
    weights; ``in_channels`` stays that of the 2D config (13). ``device="meta"`` builds shapes only.
    """
    with torch.device("meta"):
        template = UNet2DConditionModel.from_config(unet2d_config(config))
        adapter = MotionAdapter(**motion_adapter_config(config))
    with torch.device(device):
        unet = UNetMotionModel.from_unet2d(template, adapter, load_weights=False)
    use_per_frame_group_norm(unet)
    return unet


def positional_tables(unet: UNetMotionModel) -> dict[str, torch.Tensor]:
    """The fixed sinusoidal ``pos_embed.pe`` buffers of every motion module, keyed as in the state dict.

    The released files store them as ``pos_encoder.pe`` (two identical copies per block) and
    diffusers' converter drops them; they are recomputed here with diffusers' own table.
    """
    from diffusers.models.embeddings import SinusoidalPositionalEmbedding

    tables = {}
    for key, value in unet.state_dict().items():
        if key.endswith("pos_embed.pe"):
            _, length, dim = value.shape
            tables[key] = SinusoidalPositionalEmbedding(dim, max_seq_length=length).pe
    return tables


def is_video_unet(unet: nn.Module) -> bool:
    """Whether ``unet`` is the video-mode (motion) UNet."""
    return isinstance(unet, UNetMotionModel)


def predict_noise(unet: nn.Module, sample: torch.Tensor, timestep: torch.Tensor | float, context: torch.Tensor) -> torch.Tensor:
    """One UNet evaluation, 2D or 3D, with the released context handling.

    Args:
        unet: ``UNet2DConditionModel`` (image mode) or ``UNetMotionModel`` (video mode).
        sample: (B, 13, H, W) for 2D or (B, 13, F, H, W) for 3D, latent space (×0.18215).
        timestep: scalar (0-dim tensor or float, may be fractional, e.g. 957.375), broadcast to B.
        context: (B, 264, 768) appearance context, one per batch row, shared by all frames.

    Returns:
        ε̂ with 4 channels: (B, 4, H, W) or (B, 4, F, H, W), dtype of the UNet.
    """
    if not torch.is_tensor(timestep):
        timestep = torch.tensor(timestep, dtype=torch.float32)
    timestep = timestep.to(sample.device)
    if is_video_unet(unet):
        frames = sample.shape[2]
        context = context.repeat_interleave(frames, dim=0)
    return unet(sample, timestep, encoder_hidden_states=context, return_dict=False)[0]
