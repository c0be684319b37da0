"""Paste-back: the generated 512 crops composited into the original frames they came from.

Each generated frame lives in its frame's 512 crop; ``MotionSequence.frame_to_crop`` gives the
matrix from original-frame pixels to that crop (the squash of the video recipe included,
docs/ALIGNMENT.md §6.2). The crop is warped back with its inverse (bilinear, ``warp.warp_affine``) and blended into
the frame through a feathered square mask warped the same way. Beyond the release (which stops at
the crops).
"""

from __future__ import annotations

import numpy as np
import torch

from ..media.warp import warp_affine
from .crops import invert_affine


def feathered_square(size: int, feather: int) -> torch.Tensor:
    """(1, 1, size, size) float32 mask: 1 inside, a linear ramp over ``feather`` pixels to 0 at the border."""
    d = torch.arange(size, dtype=torch.float32)
    edge = torch.minimum(d, size - 1 - d)
    ramp = (edge / max(feather, 1)).clamp(0, 1) if feather > 0 else torch.ones(size)
    return (ramp[:, None] * ramp[None, :])[None, None]


#: How :func:`paste_back`'s errors name its inputs (a host passes its own names).
INPUT_NAMES = {"frames": "frames", "generated": "generated crops", "matrices": "matrices"}


def check_paste_inputs(frames: torch.Tensor, generated: torch.Tensor, frame_to_crop, frame_size=None,
                       names: dict | None = None) -> torch.Tensor:
    """The checks of :func:`paste_back`; returns ``frames`` broadcast to the batch.

    Raises:
        ValueError: the batch sizes differ, or the frames are not ``frame_size`` (the message names
            the inputs with ``names``, keys as :data:`INPUT_NAMES`).
    """
    n = {**INPUT_NAMES, **(names or {})}
    b = len(generated)
    if len(frames) == 1 and b > 1:
        frames = frames.expand(b, -1, -1, -1)
    if len(frames) != b or len(frame_to_crop) != b:
        raise ValueError(f"paste-back needs as many {n['frames']} ({len(frames)}), {n['generated']} ({b}) and "
                         f"{n['matrices']} ({len(frame_to_crop)}).")
    h, w = frames.shape[1:3]
    if frame_size is not None and (w, h) != tuple(frame_size):
        raise ValueError(f"{n['frames']} are {w}x{h} but the {n['matrices']} were made for "
                         f"{frame_size[0]}x{frame_size[1]} frames.")
    return frames


def paste_back(frames: torch.Tensor, generated: torch.Tensor, frame_to_crop: np.ndarray,
               feather: int = 24, *, frame_size=None, progress=None,
               names: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite generated crops into their original frames.

    Args:
        frames: (B, H, W, C ≥ 3) float in [0, 1], the original frames (or one frame broadcast to B).
        generated: (B, S, S, 3) float in [0, 1], the generated crops (S = 512).
        frame_to_crop: (B, 2, 3) original pixels → crop pixels (``MotionSequence.frame_to_crop``).
        feather: width in crop pixels of the mask's soft edge (0 = hard edge).
        frame_size: (width, height) the matrices were made for (``MotionSequence.frame_size``);
            None: not checked.
        progress: None (one batch), or called as ``progress(done, total)`` after each frame,
            pasted one at a time; it may raise to cancel.
        names: how errors name the inputs (:data:`INPUT_NAMES` keys).

    Returns:
        (images (B, H, W, 3) float32 in [0, 1], masks (B, H, W) float32 in [0, 1]), on the CPU.

    Raises:
        ValueError: the batch sizes differ, or the frames are not ``frame_size``.
    """
    frames = check_paste_inputs(frames, generated, frame_to_crop, frame_size, names)
    if progress is None:
        return _paste(frames, generated, frame_to_crop, feather)
    b, out, masks = len(generated), [], []
    for i in range(b):
        image, mask = _paste(frames[i:i + 1], generated[i:i + 1], frame_to_crop[i:i + 1], feather)
        out.append(image)
        masks.append(mask)
        progress(i + 1, b)
    return torch.cat(out), torch.cat(masks)


def _paste(frames: torch.Tensor, generated: torch.Tensor, frame_to_crop, feather: int):
    b = len(generated)
    h, w = frames.shape[1:3]
    to_frame = torch.from_numpy(np.stack([invert_affine(m) for m in frame_to_crop])).float()
    crop = warp_affine(generated[..., :3].float().permute(0, 3, 1, 2), to_frame, (h, w))
    mask = warp_affine(feathered_square(generated.shape[1], feather).expand(b, 1, -1, -1), to_frame, (h, w)).clamp(0, 1)
    base = frames[..., :3].float().permute(0, 3, 1, 2)
    out = (base * (1 - mask) + crop * mask).permute(0, 2, 3, 1).clamp(0, 1)
    return out, mask[:, 0]
