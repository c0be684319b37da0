"""Appearance encoder: the CLIP ViT-L/14 vision tower and its preprocessing. docs/SAMPLING.md §2,
docs/WEIGHTS.md §7.

The tokens MIMAFace uses are ``last_hidden_state`` (1, 257, 1024) of a transformers
``CLIPVisionModel``: the CLS token and 16x16 patch tokens after the last encoder layer, without
``post_layernorm``. The preprocessing reproduces ``CLIPImageProcessor()`` with its defaults (the
PIL-based processor) in plain PIL/numpy, so that it does not depend on torchvision or on the
transformers version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel

from .operations import execution_device

#: CLIPImageProcessor defaults (docs/SAMPLING.md §2).
CLIP_SIZE = 224
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_FILE_PREFIX = "vision_model."


def clip_preprocess(image: Image.Image | np.ndarray) -> torch.Tensor:
    """CLIP input of one RGB image, exactly as ``CLIPImageProcessor()`` (PIL backend) computes it.

    Steps: bicubic PIL resize of the shortest side to 224 on uint8 (the long side to
    ``int(224·long/short)``), centre crop 224 (top/left offsets rounded down), ×1/255, normalise
    with the CLIP mean and std.

    Args:
        image: a PIL RGB image or a uint8 array (H, W, 3), RGB, values 0..255.

    Returns:
        (1, 3, 224, 224) float32 ``pixel_values``, roughly in [-1.8, 2.2].

    Raises:
        ValueError: if the image is not 3-channel RGB uint8.
    """
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"clip_preprocess expects an RGB uint8 array (H, W, 3); got {image.dtype} {image.shape}."
            )
        image = Image.fromarray(image)
    if image.mode != "RGB":
        raise ValueError(f"clip_preprocess expects an RGB image; got mode {image.mode}. Convert it to RGB first.")
    w, h = image.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(CLIP_SIZE * long / short)
    new_w, new_h = (CLIP_SIZE, new_long) if w <= h else (new_long, CLIP_SIZE)
    resized = np.asarray(image.resize((new_w, new_h), resample=Image.BICUBIC))
    top, left = (new_h - CLIP_SIZE) // 2, (new_w - CLIP_SIZE) // 2
    crop = resized[top:top + CLIP_SIZE, left:left + CLIP_SIZE]
    x = crop.astype(np.float32) * np.float32(1 / 255)
    x = (x - np.asarray(CLIP_MEAN, np.float32)) / np.asarray(CLIP_STD, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def build_clip_vision(config: Mapping[str, Any], device: str | torch.device = "cpu") -> CLIPVisionModel:
    """A ``CLIPVisionModel`` from a ``vision_encoder/config.json`` dict (``device="meta"``: shapes only)."""
    cfg = CLIPVisionConfig(**{k: v for k, v in config.items() if k not in ("architectures", "model_type")})
    with torch.device(device):
        model = CLIPVisionModel(cfg)
    return model.eval()


def normalise_clip_keys(state: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Match the released ``vision_model.*`` key names to the installed transformers' naming.

    transformers 4 keeps the ``vision_model.`` prefix in ``state_dict()``; transformers 5 drops it.
    """
    model_prefixed = any(k.startswith(_FILE_PREFIX) for k in model.state_dict())
    out = {}
    for k, v in state.items():
        bare = k[len(_FILE_PREFIX):] if k.startswith(_FILE_PREFIX) else k
        out[_FILE_PREFIX + bare if model_prefixed else bare] = v
    return out


class AppearanceEncoder(nn.Module):
    """CLIP vision tower returning the MIMAFace appearance tokens.

    forward: (B, 3, 224, 224) ``pixel_values`` from :func:`clip_preprocess` → (B, 257, 1024)
    ``last_hidden_state`` (no post-LayerNorm), in the model's dtype.
    """

    def __init__(self, clip: CLIPVisionModel):
        super().__init__()
        self.clip = clip

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        out = self.clip(pixel_values=pixel_values.to(execution_device(self.clip), next(self.clip.parameters()).dtype))
        return out.last_hidden_state



def appearance_tokens(encoder: AppearanceEncoder, crop512: np.ndarray) -> torch.Tensor:
    """CLIP tokens of the source's (512, 512, 3) uint8 crop, computed once per source (docs/SAMPLING.md §2).

    Returns:
        (1, 257, 1024) in the encoder's dtype, on its device.
    """
    with torch.inference_mode():
        return encoder(clip_preprocess(crop512))
