"""The SD1.x VAE (``stabilityai/sd-vae-ft-mse`` at inference, docs/WEIGHTS.md §13) as diffusers
``AutoencoderKL``: render latents in, frames out. Loading its files: :mod:`mimaface_core.weights.vae_file`.
"""

from __future__ import annotations

import torch

from .operations import execution_device

#: SD1.x latent scaling factor (docs/SAMPLING.md §9).
VAE_SCALING_FACTOR = 0.18215


def encode_renders(vae, render512: torch.Tensor) -> torch.Tensor:
    """Render latents with our VAE: posterior MEAN × 0.18215 (docs/NUMERICS.md §5; the release samples, the
    posterior std is negligible and the mean keeps runs deterministic; ComfyUI's VAE Encode takes
    the mean too).

    Args:
        vae: a diffusers ``AutoencoderKL``.
        render512: (F, 3, 512, 512) renders in [−1, 1].

    Returns:
        (F, 4, 64, 64) float32 on the VAE's device.
    """
    device, dtype = execution_device(vae), next(vae.parameters()).dtype
    with torch.inference_mode():
        return vae.encode(render512.to(device, dtype)).latent_dist.mean.float() * VAE_SCALING_FACTOR


def encode_render_images(vae, images: torch.Tensor) -> torch.Tensor:
    """Render latents from renders as IMAGE pixels, one frame at a time (docs/NUMERICS.md §21).

    The CLI, the Python API and the ICA Clip Sampler node all encode renders here, so the render
    latents are bit-identical whichever path made them: the pixels go ``× 2 − 1`` as ComfyUI's VAE
    Encode does, and each frame is encoded alone, so the result never depends on how many frames a
    caller hands over (batched convolutions can differ in the last bit).

    Args:
        vae: a diffusers ``AutoencoderKL``.
        images: (F, H, W, C ≥ 3) float in [0, 1] (:func:`..morphable.render.render_to_image`);
            channels beyond the third are ignored.

    Returns:
        (F, 4, H/8, W/8) float32 × 0.18215 on the CPU.

    Raises:
        ValueError: not an (F, H, W, C) batch with at least 3 channels.
    """
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[-1] < 3:
        raise ValueError(f"encode_render_images expects renders as an (F, H, W, 3) IMAGE batch, got "
                         f"{tuple(getattr(images, 'shape', ())) or type(images).__name__}.")
    # contiguous NCHW whatever the IMAGE's strides: a channels-last input takes other convolution
    # kernels, whose last bits differ (amplified up to 1e-3 in the latents by a VAE's group norms)
    signed = images[..., :3].float().permute(0, 3, 1, 2).contiguous() * 2 - 1
    return torch.cat([encode_renders(vae, signed[i:i + 1]).cpu() for i in range(len(signed))])


def decode_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """Frames from latents (docs/SAMPLING.md §9): ``VAE.decode(latents / 0.18215)`` clamped.

    Args:
        vae: a diffusers ``AutoencoderKL``. latents: (F, 4, h, w) scaled latents (× 0.18215).

    Returns:
        (F, 8h, 8w, 3) float32 in [0, 1] on the CPU (ComfyUI's IMAGE layout).
    """
    device, dtype = execution_device(vae), next(vae.parameters()).dtype
    with torch.inference_mode():
        x = vae.decode(latents.to(device, dtype) / VAE_SCALING_FACTOR).sample.float().clamp(-1, 1)
    return ((x + 1) / 2).permute(0, 2, 3, 1).cpu()
