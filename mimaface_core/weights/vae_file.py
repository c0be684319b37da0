"""Loading the SD1.x VAE (``stabilityai/sd-vae-ft-mse`` at inference) as diffusers ``AutoencoderKL``.

Accepted forms, all offline:

* a diffusers folder (``config.json`` + ``diffusion_pytorch_model.safetensors``);
* a single file as ComfyUI keeps them in ``models/vae`` (LDM key layout, with or without the
  ``first_stage_model.`` prefix, or already in diffusers naming), converted with diffusers'
  ``convert_ldm_vae_checkpoint`` and a local config whose sizes are read from the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

from ..errors import MissingWeightFileError, WeightFileError
from ..networks.vae import VAE_SCALING_FACTOR
from .safe_load import read_state_dict
from .state_checks import VAE as COMPONENT
from .state_checks import load_checked

_DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")


def vae_config_from_ldm(state: dict[str, torch.Tensor], norm_num_groups: int = 32) -> dict[str, Any]:
    """An ``AutoencoderKL`` config matching an LDM-layout VAE state dict (prefix already removed).

    Block count, widths, layers per block, latent and image channels are read from the tensor
    shapes; the rest are the SD1.x values (SiLU, 32 norm groups, scaling factor 0.18215).

    Raises:
        WeightFileError: if the state dict is not an LDM VAE.
    """
    try:
        n_blocks = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.down."))
        widths = [state[f"encoder.down.{i}.block.0.conv2.weight"].shape[0] for i in range(n_blocks)]
        layers = 1 + max(int(k.split(".")[4]) for k in state if k.startswith("encoder.down.0.block."))
        latent = state["encoder.conv_out.weight"].shape[0] // 2
        in_ch = state["encoder.conv_in.weight"].shape[1]
        out_ch = state["decoder.conv_out.weight"].shape[0]
    except (KeyError, ValueError) as exc:
        raise WeightFileError(f"not an SD VAE in the LDM layout (missing {exc}).") from exc
    return dict(
        in_channels=in_ch,
        out_channels=out_ch,
        down_block_types=["DownEncoderBlock2D"] * n_blocks,
        up_block_types=["UpDecoderBlock2D"] * n_blocks,
        block_out_channels=widths,
        layers_per_block=layers,
        act_fn="silu",
        latent_channels=latent,
        norm_num_groups=norm_num_groups,
        sample_size=512,
        scaling_factor=VAE_SCALING_FACTOR,
    )


def _strip_ldm_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in ("first_stage_model.", "vae."):
        if any(k.startswith(prefix) for k in state):
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def load_vae(
    path: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    norm_num_groups: int = 32,
) -> AutoencoderKL:
    """Load an SD1.x VAE from a diffusers folder or a single checkpoint file.

    Args:
        path: the folder or the file (``.safetensors`` preferred; ``.pt``/``.ckpt`` are read with
            ``torch.load(weights_only=True)``).
        device, dtype: where the returned model lives.
        norm_num_groups: GroupNorm groups of a single-file VAE (32 for every SD1.x VAE).

    Returns:
        ``AutoencoderKL`` in eval mode. Its ``config.scaling_factor`` is 0.18215 for SD1.x files.

    Raises:
        MissingWeightFileError: nothing at ``path``.
        WeightFileError / WeightMismatchError: unreadable file or not an SD1.x VAE.
    """
    path = Path(path)
    if path.is_dir():
        config_file = path / "config.json"
        weights = next((path / n for n in _DIFFUSERS_WEIGHTS if (path / n).is_file()), None)
        if not config_file.is_file() or weights is None:
            raise MissingWeightFileError(
                f"VAE folder {path} must hold config.json and diffusion_pytorch_model.safetensors "
                "(the layout of stabilityai/sd-vae-ft-mse)."
            )
        config = {k: v for k, v in json.loads(config_file.read_text()).items() if not k.startswith("_")}
        state = read_state_dict(weights, "VAE weights")
    elif path.is_file():
        weights = path
        state = _strip_ldm_prefix(read_state_dict(path, "VAE file"))
        if any(k.startswith("encoder.down.") for k in state):
            try:
                config = vae_config_from_ldm(state, norm_num_groups)
            except WeightFileError as exc:
                raise WeightFileError(f"VAE file {path}: {exc}") from exc
            state = convert_ldm_vae_checkpoint(state, config)
        elif any(k.startswith("encoder.down_blocks.") for k in state):
            raise WeightFileError(
                f"VAE file {path} is in diffusers naming without its config.json: put it in a folder "
                "with its config.json and select the folder."
            )
        else:
            raise WeightFileError(f"VAE file {path} does not look like an SD VAE (no encoder.down.* keys).")
    else:
        raise MissingWeightFileError(
            f"VAE not found: {path}. Download stabilityai/sd-vae-ft-mse (python -m mimaface_core download) "
            "or point to an SD1.5 VAE file."
        )
    with torch.device("meta"):
        vae = AutoencoderKL.from_config(config)
    load_checked(vae, state, file=weights, component=COMPONENT)
    return torch.nn.Module.to(vae, device=device, dtype=dtype).eval()
