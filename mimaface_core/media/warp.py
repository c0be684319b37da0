"""Affine warps of image tensors with the release's conventions (docs/ALIGNMENT.md §1, §5, §12).

``warp_affine`` reproduces ``kornia.geometry.transform.warp_affine`` (bilinear, zero padding,
``align_corners=True``), i.e. the OpenCV mapping ``output(x) = input(M⁻¹·x)`` with pixel centres at
integer coordinates, on float tensors, without kornia. OpenCV's own ``warpAffine`` quantises
sub-pixel positions to 1/32 px on float images and is therefore not used for tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def warp_affine(image: torch.Tensor, matrix: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Warp a batch of images with 2x3 matrices (source → destination pixels).

    Args:
        image: (B, C, H, W) float, any range (zero padding means 0 outside: mid-grey for [-1, 1]).
        matrix: (B, 2, 3) or (2, 3) matrices mapping input to output pixel coordinates.
        size: (height, width) of the output in pixels.

    Returns:
        (B, C, height, width) in the dtype of ``image``.
    """
    b, _, h_in, w_in = image.shape
    h_out, w_out = size
    m = torch.as_tensor(matrix, dtype=torch.float64, device=image.device).expand(b, 2, 3)
    lin, trans = m[:, :, :2], m[:, :, 2:]
    inv = torch.linalg.inv(lin)
    ys, xs = torch.meshgrid(
        torch.arange(h_out, dtype=torch.float64, device=image.device),
        torch.arange(w_out, dtype=torch.float64, device=image.device),
        indexing="ij",
    )
    dst = torch.stack([xs, ys], -1).reshape(1, -1, 2, 1)
    src = (inv[:, None] @ (dst - trans[:, None])).squeeze(-1)  # (B, HW, 2) source pixels
    gx = 2 * src[..., 0] / max(w_in - 1, 1) - 1
    gy = 2 * src[..., 1] / max(h_in - 1, 1) - 1
    grid = torch.stack([gx, gy], -1).reshape(b, h_out, w_out, 2).to(image.dtype)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
