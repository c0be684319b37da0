"""The render of the blended face in the driver's 512 crop (docs/ALIGNMENT.md §9–§11), chunked over frames."""

from __future__ import annotations

import numpy as np
import torch

from .bfm import BFM09Model
from .rasterizer import composite_512, render_coefficients


def render_motion(bfm: BFM09Model, blended: torch.Tensor, m256_inv, chunk: int = 8,
                  out_device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Render blended coefficients in each driving frame's 512 crop.

    Each frame is rendered at 256 in the driver's 256 frame, warped back with the driver's
    ``M256⁻¹`` and composited onto −1 (docs/ALIGNMENT.md §11).

    Args:
        bfm: the BFM09 model; rendering runs on its device.
        blended: (N, ≥257) blended coefficients (see :func:`..retarget.retarget`).
        m256_inv: (N, 2, 3) the driver's 256 → 512 matrices (numpy or tensor).
        chunk: frames rendered at once (bounds memory).
        out_device: where the results go (default: the BFM's device).

    Returns:
        ``render512`` (N, 3, 512, 512) float32 in [−1, 1], exactly −1 on the background, and
        ``mask512`` (N, 1, 512, 512) float32 in [0, 1] (the warped coverage, the MASK of the face).

    Raises:
        ValueError: ``blended`` and ``m256_inv`` have different frame counts.
    """
    device = bfm.meanshape.device
    mats = torch.as_tensor(np.asarray(m256_inv) if not torch.is_tensor(m256_inv) else m256_inv, dtype=torch.float32)
    if len(mats) != len(blended):
        raise ValueError(f"render_motion: {len(blended)} coefficient rows but {len(mats)} matrices.")
    out_device = device if out_device is None else out_device
    renders, masks = [], []
    for start in range(0, len(blended), chunk):
        coeffs = blended[start:start + chunk].to(device, torch.float32)
        m = mats[start:start + chunk].to(device)
        render512, mask512 = composite_512(*render_coefficients(bfm, coeffs), m)
        renders.append(render512.to(out_device))
        masks.append(mask512.to(out_device))
    return torch.cat(renders), torch.cat(masks)


def render_to_image(render512: torch.Tensor) -> torch.Tensor:
    """A render as an IMAGE, the one form every path hands to the VAE (docs/NUMERICS.md §21).

    The nodes pass the render over ComfyUI's IMAGE wire, so the CLI and the Python API take the same
    [0, 1] form: ``(r + 1) / 2`` rounds the release's [−1, 1] render by at most 2⁻²⁴ (float32),
    and every path then encodes exactly the same pixels (:func:`..networks.vae.encode_render_images`).

    Args:
        render512: (N, 3, H, W) float in [−1, 1] (``render_motion``'s first output).

    Returns:
        (N, H, W, 3) float32 in [0, 1] on the CPU (ComfyUI's IMAGE layout); the background is 0.
    """
    return ((render512.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).contiguous().cpu()
