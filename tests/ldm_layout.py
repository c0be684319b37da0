"""Test helper: write diffusers UNet/VAE state dicts in the LDM (original SD / ComfyUI) key layout.

The package converts LDM → diffusers with diffusers' single-file converters; this is the inverse,
written independently from the LDM naming, so that tests can make tiny LDM-layout checkpoints
(:func:`sd15_like_unet` + :func:`write_ldm_unet`: a tiny SD1.5 single file).
"""

from __future__ import annotations

import re

import torch

_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
           "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}


def _resnet(rest: str) -> str:
    name, _, tail = rest.partition(".")
    return f"{_RESNET[name]}.{tail}"


def unet_to_ldm(state: dict[str, torch.Tensor], layers_per_block: int = 2, prefix: str = "model.diffusion_model.") -> dict[str, torch.Tensor]:
    """diffusers UNet2DConditionModel (SD1.x) keys → LDM keys (``prefix`` + input_blocks…)."""
    n = layers_per_block + 1
    up_has_attn = {int(m.group(1)) for k in state if (m := re.match(r"up_blocks\.(\d+)\.attentions\.", k))}
    out = {}
    for key, value in state.items():
        if m := re.match(r"time_embedding\.linear_(\d)\.(.*)", key):
            new = f"time_embed.{0 if m.group(1) == '1' else 2}.{m.group(2)}"
        elif key.startswith("conv_in."):
            new = "input_blocks.0.0." + key[len("conv_in."):]
        elif key.startswith("conv_norm_out."):
            new = "out.0." + key[len("conv_norm_out."):]
        elif key.startswith("conv_out."):
            new = "out.2." + key[len("conv_out."):]
        elif m := re.match(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
            new = f"input_blocks.{int(m.group(1)) * n + int(m.group(2)) + 1}.0.{_resnet(m.group(3))}"
        elif m := re.match(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.*)", key):
            new = f"input_blocks.{int(m.group(1)) * n + int(m.group(2)) + 1}.1.{m.group(3)}"
        elif m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
            new = f"input_blocks.{(int(m.group(1)) + 1) * n}.0.op.{m.group(2)}"
        elif m := re.match(r"mid_block\.resnets\.(\d+)\.(.*)", key):
            new = f"middle_block.{2 * int(m.group(1))}.{_resnet(m.group(2))}"
        elif m := re.match(r"mid_block\.attentions\.0\.(.*)", key):
            new = f"middle_block.1.{m.group(1)}"
        elif m := re.match(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
            new = f"output_blocks.{int(m.group(1)) * n + int(m.group(2))}.0.{_resnet(m.group(3))}"
        elif m := re.match(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.*)", key):
            new = f"output_blocks.{int(m.group(1)) * n + int(m.group(2))}.1.{m.group(3)}"
        elif m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
            i = int(m.group(1))
            new = f"output_blocks.{i * n + n - 1}.{2 if i in up_has_attn else 1}.conv.{m.group(2)}"
        else:
            raise KeyError(f"no LDM name for {key}")
        out[prefix + new] = value
    return out


_VAE_RESNET = {"conv_shortcut": "nin_shortcut"}
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def vae_to_ldm(state: dict[str, torch.Tensor], num_blocks: int, prefix: str = "") -> dict[str, torch.Tensor]:
    """diffusers AutoencoderKL keys → LDM keys (attention projections become 1x1 convs)."""
    out = {}
    for key, value in state.items():
        new = key.replace("conv_norm_out", "norm_out")
        if m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)\.(weight|bias)", new):
            new = f"{m.group(1)}.mid.attn_1.{_VAE_ATTN[m.group(2)]}.{m.group(3)}"
            if m.group(2) != "group_norm" and m.group(3) == "weight":
                value = value[:, :, None, None]
        elif m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d)\.(.*)", new):
            new = f"{m.group(1)}.mid.block_{int(m.group(2)) + 1}.{m.group(3)}"
        elif m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", new):
            new = f"encoder.down.{m.group(1)}.block.{m.group(2)}.{m.group(3)}"
        elif m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", new):
            new = f"encoder.down.{m.group(1)}.downsample.conv.{m.group(2)}"
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", new):
            new = f"decoder.up.{num_blocks - 1 - int(m.group(1))}.block.{m.group(2)}.{m.group(3)}"
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", new):
            new = f"decoder.up.{num_blocks - 1 - int(m.group(1))}.upsample.conv.{m.group(2)}"
        for old, rep in _VAE_RESNET.items():
            new = new.replace(old, rep)
        out[prefix + new] = value
    return out


def sd15_like_unet(config: dict, seed: int, **overrides) -> dict[str, torch.Tensor]:
    """A random SD1.5-layout UNet (4 input channels) of a ``pretrained_unet`` config's size, diffusers names."""
    from mimaface_core.networks.denoiser import build_unet2d

    torch.manual_seed(seed)
    unet = build_unet2d({**config, "in_channels": 4, **overrides})
    return {k: v + 0.01 * torch.randn_like(v) for k, v in unet.state_dict().items()}


def write_ldm_unet(state, path, prefix="model.diffusion_model.", layers_per_block=2, extra=None):
    """Write a diffusers UNet state dict as an LDM-layout single file (plus ``extra`` keys); return ``path``."""
    from safetensors.torch import save_file

    ldm = unet_to_ldm(state, layers_per_block, prefix=prefix)
    ldm.update(extra or {})
    save_file({k: v.contiguous() for k, v in ldm.items()}, str(path))
    return path
