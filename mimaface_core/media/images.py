"""Conversions between 8-bit RGB images and the [-1, 1] tensors of the release (docs/ALIGNMENT.md §1)."""

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
        image = _pil_to_8bit(image)
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


def _pil_to_8bit(image) -> np.ndarray:
    """A PIL image of any mode → uint8 (H, W, 3) or (H, W, 4) array, with the value range kept:
    16-bit ("I;16*") and 32-bit integer ("I") images are scaled from 0..65535 (a PNG's 16 bits),
    float ("F") images from [0, 1] or 0..255, CMYK and YCbCr through PIL's RGB conversion, palette
    images through their palette (with transparency as alpha), alpha kept for compositing."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(image).astype(np.float64)
        scale = 257.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 1.0
        gray = np.clip(arr / scale + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(image).astype(np.float64)
        arr = arr * 255 if arr.max(initial=0) <= 1.0 else arr
        return np.repeat(np.clip(arr + 0.5, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info):
        return np.asarray(image.convert("RGBA"))
    return np.asarray(image if mode == "RGB" else image.convert("RGB"))


def load_image(path, what: str = "image"):
    """Open an image file the way ComfyUI's Load Image does: fully decoded, EXIF orientation applied.

    Args:
        path: a still image file (jpg, png, webp, bmp, tif, ...).
        what: the input's name for messages (e.g. ``"--source"``).

    Returns:
        A loaded PIL image (any mode; :func:`to_rgb_uint8` makes it 8-bit RGB).

    Raises:
        MIMAFaceError: missing file, a folder, an empty, truncated or non-image file; the message
            names ``what`` and the file and says what to do.
    """
    from pathlib import Path

    from PIL import Image, ImageOps, UnidentifiedImageError

    from ..errors import MIMAFaceError

    path = Path(path)
    if path.is_dir():
        raise MIMAFaceError(f"{what}: {path} is a folder; give an image file (jpg, png, webp...).")
    if not path.is_file():
        raise MIMAFaceError(f"{what}: file not found: {path}")
    if path.stat().st_size == 0:
        raise MIMAFaceError(f"{what}: {path.name} is empty (0 bytes); give a photo.")
    try:
        with Image.open(path) as im:
            im.load()
            image = ImageOps.exif_transpose(im)
            if image is im:
                image = im.copy()
    except UnidentifiedImageError as exc:
        raise MIMAFaceError(f"{what}: {path.name} is not an image PIL can read (is it really a photo?); "
                            "save it again as jpg or png.") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise MIMAFaceError(f"{what}: {path.name} could not be decoded ({exc}); the file is probably truncated "
                            "or damaged: save or download it again.") from exc
    return image


def squash_to_512(rgb: np.ndarray) -> np.ndarray:
    """Resize a driving frame to 512x512 with PIL bicubic, no aspect preservation (docs/ALIGNMENT.md §6.2).

    (H, W, 3) uint8 → (512, 512, 3) uint8. A 512x512 input is returned unchanged.
    """
    from PIL import Image

    if rgb.shape[:2] == (512, 512):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((512, 512), Image.BICUBIC))
