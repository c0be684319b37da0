"""Conversions between 8-bit RGB images and the [-1, 1] tensors of the release (spec conventions)."""

from __future__ import annotations

import numpy as np
import torch


def to_signed_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB → (1, 3, H, W) float32 in [-1, 1] (``x/127.5 − 1``, = ToTensor then (x−0.5)/0.5).

    Raises:
        ValueError: if the array is not (H, W, 3) uint8; convert grayscale or RGBA images to RGB first.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}; convert it to RGB.")
    x = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None].float() / 255
    return (x - 0.5) / 0.5


def to_rgb_uint8(image, what: str = "image") -> np.ndarray:
    """Any still image → (H, W, 3) uint8 RGB, the detector's input.

    Accepts a PIL image (any mode), a numpy array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), either
    uint8 0..255 or float in [0, 1] (ComfyUI IMAGE frames), or a torch tensor of the same layouts.
    Grayscale is replicated to three channels; an alpha channel is composited over white (a
    transparent background then reads as a plain backdrop instead of whatever colour the
    transparent pixels happen to hold).

    Raises:
        ValueError: naming ``what`` when the array has another shape, is empty or smaller than
            12x12 pixels (MTCNN's smallest window).
    """
    from PIL import Image

    if isinstance(image, Image.Image):
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            image = image.convert("RGBA")
        elif image.mode != "RGB":
            image = image.convert("RGB")
        image = np.asarray(image)
    elif isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or min(arr.shape[:2]) < 12:
        raise ValueError(f"{what}: expected an (H, W, 3) RGB image of at least 12x12 pixels, got shape {arr.shape}.")
    if arr.dtype != np.uint8:
        arr = (np.clip(arr.astype(np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:
        alpha = arr[:, :, 3:].astype(np.float32) / 255
        arr = (arr[:, :, :3] * alpha + 255 * (1 - alpha) + 0.5).astype(np.uint8)
    return np.ascontiguousarray(arr)


def squash_to_512(rgb: np.ndarray) -> np.ndarray:
    """Resize a driving frame to 512x512 with PIL bicubic, no aspect preservation (spec §1.3 step 3).

    (H, W, 3) uint8 → (512, 512, 3) uint8. A 512x512 input is returned unchanged.
    """
    from PIL import Image

    if rgb.shape[:2] == (512, 512):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((512, 512), Image.BICUBIC))
