"""Compositing re-performed faces onto footage frames: a feathered mask of the rendered BFM region,
a per-frame colour match in CIE Lab, and the footage's decoded values exactly outside the mask.

1. Region mask (:func:`region_crop_masks`): every BFM vertex gets a weight, 1 on the whole face
   (``face``) or, for ``lower_face``, a ramp from 0 at the height of the nose's middle (landmark
   29 of the mean shape, head frame) to 1 at :data:`RAMP_IOD` × the mean face's outer-eye-corner
   distance below it; the mesh of the motion's coefficients is rendered with those weights as its
   colour (the pack's rasterizer, 256 render warped to the 512 crop with ``M256⁻¹``), and its
   border is feathered inwards over ``feather`` crop pixels (``2·blur(coverage) − 1``, a box blur
   applied twice), so the mask is exactly 0 outside the rendered face.
2. The crop and its mask are warped into the frame (``face.paste_back``'s matrices).
3. Colour match (:func:`match_colour`): inside the mask, the generated region's per-channel mean
   and standard deviation in CIE L*a*b* (D65, sRGB; weighted by the mask) are set to the footage
   frame's (the std ratio kept within [0.5, 2]), so the shot's lighting changes carry over.
   sRGB ↔ Lab is written here in torch (no colour library is a dependency of the pack).
4. ``out = where(mask > 0, footage·(1 − mask) + generated·mask, footage)``: outside the mask, and
   on frames marked to pass through (no tracked face), the footage's values are kept exactly.
"""

from __future__ import annotations

import numpy as np
import torch

from ..face.crops import invert_affine
from ..media.warp import warp_affine
from ..morphable.controls import reference_distance
from ..morphable.rasterizer import render_mesh
from ..morphable.reconstruction import reconstruct

#: Height of the lower-face ramp, in mean outer-eye-corner distances.
RAMP_IOD = 0.15
NOSE_MIDDLE = 29
STD_RATIO = (0.5, 2.0)


def region_vertex_weights(bfm, region: str) -> torch.Tensor:
    """(V,) float32 weight of each BFM vertex in ``region`` ("face" or "lower_face").

    Raises:
        ValueError: unknown region, or no 68 keypoints for ``lower_face``.
    """
    from .motion import REGIONS

    if region not in REGIONS:
        raise ValueError(f"region must be one of {REGIONS}, got {region!r}.")
    shape = bfm.meanshape.reshape(-1, 3).float().cpu()
    if region == "face":
        return torch.ones(len(shape))
    if bfm.keypoints.numel() != 68:
        raise ValueError("the lower_face region needs the BFM's 68 landmarks.")
    top = float(shape[bfm.keypoints.cpu()[NOSE_MIDDLE], 1])
    band = RAMP_IOD * reference_distance(bfm)
    return ((top - shape[:, 1]) / band).clamp(0, 1)


def _box_blur(x: torch.Tensor, radius: int) -> torch.Tensor:
    if radius < 1:
        return x
    k = 2 * radius + 1
    for _ in range(2):
        x = torch.nn.functional.avg_pool2d(x, k, stride=1, padding=radius, count_include_pad=True)
    return x


def region_crop_masks(bfm, coeffs: torch.Tensor, m256_inv, region: str, feather: int = 24,
                      chunk: int = 8) -> torch.Tensor:
    """(N, 512, 512) float32 masks in [0, 1] of the region of each frame's rendered face, in the
    frame's 512 crop.

    Args:
        coeffs: (N, ≥257) coefficients (the motion's). m256_inv: (N, 2, 3) 256 → 512 matrices.
        region: "face" or "lower_face". feather: inward soft edge in crop pixels (0 = hard).
    """
    weights = region_vertex_weights(bfm, region).to(bfm.meanshape.device)
    mats = torch.as_tensor(np.asarray(m256_inv), dtype=torch.float32)
    out = []
    for s in range(0, len(coeffs), chunk):
        c = coeffs[s:s + chunk].to(bfm.meanshape.device, torch.float32)
        mesh = reconstruct(bfm, c)
        colour = (weights * 255)[None, :, None].expand(len(c), -1, 3)
        img, cover = render_mesh(mesh.vertices, colour.contiguous(), bfm.tri, 256)
        m = mats[s:s + chunk].to(img.device)
        region512 = warp_affine(((img[:, :1] + 1) / 2) * cover, m, (512, 512)).clamp(0, 1)
        cover512 = warp_affine(cover, m, (512, 512)).clamp(0, 1)
        inward = (2 * _box_blur(cover512, feather // 2) - 1).clamp(0, 1) if feather > 0 else (cover512 >= 0.5).float()
        out.append((region512 * inward)[:, 0].cpu())
    return torch.cat(out) if out else torch.zeros(0, 512, 512)


def srgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3) sRGB in [0, 1] → CIE L*a*b* (D65): L in [0, 100]."""
    rgb = rgb.double().clamp(0, 1)
    lin = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = torch.tensor([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                      [0.0193339, 0.1191920, 0.9503041]], dtype=torch.float64)
    xyz = lin @ m.T / torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
    d = 6 / 29
    f = torch.where(xyz > d ** 3, xyz.clamp(min=1e-12) ** (1 / 3), xyz / (3 * d * d) + 4 / 29)
    return torch.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def lab_to_srgb(lab: torch.Tensor) -> torch.Tensor:
    """(..., 3) CIE L*a*b* (D65) → sRGB in [0, 1] (clamped)."""
    lab = lab.double()
    fy = (lab[..., 0] + 16) / 116
    f = torch.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)
    d = 6 / 29
    xyz = torch.where(f > d, f ** 3, 3 * d * d * (f - 4 / 29)) * torch.tensor([0.95047, 1.0, 1.08883],
                                                                              dtype=torch.float64)
    m = torch.tensor([[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560],
                      [0.0556434, -0.2040259, 1.0572252]], dtype=torch.float64)
    lin = (xyz @ m.T).clamp(0, 1)
    return torch.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055).clamp(0, 1)


def match_colour(generated: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``generated`` (B, H, W, 3) in [0, 1] with its Lab mean/std inside ``mask`` (B, H, W) set to
    ``target``'s there (std ratio within :data:`STD_RATIO`); frames with an empty mask unchanged.
    Returns float32 (B, H, W, 3)."""
    out = generated.float().clone()
    for i in range(len(generated)):
        w = mask[i].double()
        total = float(w.sum())
        if total <= 1e-6:
            continue
        sel = w > 0
        g, t, wk = srgb_to_lab(generated[i][sel]), srgb_to_lab(target[i][sel]), w[sel][:, None]
        mg, mt = (g * wk).sum(0) / total, (t * wk).sum(0) / total
        sg = (((g - mg) ** 2 * wk).sum(0) / total).sqrt()
        st = (((t - mt) ** 2 * wk).sum(0) / total).sqrt()
        ratio = (st / sg.clamp(min=1e-6)).clamp(*STD_RATIO)
        out[i][sel] = lab_to_srgb((g - mg) * ratio + mt).float()
    return out


def composite_region(frames: torch.Tensor, generated: torch.Tensor, frame_to_crop: np.ndarray,
                     crop_masks: torch.Tensor, *, colour_match: bool = True,
                     passthrough: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite generated crops into footage frames through region masks (module doc, 2–4).

    Args:
        frames: (B, H, W, C ≥ 3) float in [0, 1], the footage frames.
        generated: (B, S, S, 3) float in [0, 1], the generated crops.
        frame_to_crop: (B, 2, 3) frame pixels → crop pixels (``MotionSequence.frame_to_crop``).
        crop_masks: (B, S, S) float in [0, 1], the region masks in the crops.
        colour_match: match the Lab mean/std inside the mask to the frame's.
        passthrough: (B,) bool, frames left as they are (no tracked face); None = none.

    Returns:
        (images (B, H, W, 3) float32, masks (B, H, W) float32 in the frames; 0 on passed frames).
        Where the mask is 0 the image is ``frames`` exactly.

    Raises:
        ValueError: the batch sizes differ.
    """
    b = len(generated)
    if len(frames) != b or len(frame_to_crop) != b or len(crop_masks) != b:
        raise ValueError(f"composite needs as many frames ({len(frames)}), generated crops ({b}), matrices "
                         f"({len(frame_to_crop)}) and masks ({len(crop_masks)}).")
    h, w = frames.shape[1:3]
    base = frames[..., :3].float()
    to_frame = torch.from_numpy(np.stack([invert_affine(m) for m in frame_to_crop])).float()
    crop = warp_affine(generated[..., :3].float().permute(0, 3, 1, 2), to_frame, (h, w)).permute(0, 2, 3, 1).clamp(0, 1)
    mask = warp_affine(crop_masks.float()[:, None], to_frame, (h, w))[:, 0].clamp(0, 1)
    if passthrough is not None:
        mask[torch.from_numpy(np.asarray(passthrough, bool))] = 0
    if colour_match:
        crop = match_colour(crop, base, mask)
    m = mask[..., None]
    out = torch.where(m > 0, base * (1 - m) + crop * m, base)
    return out, mask


def composite_uint8(frames: np.ndarray, generated: torch.Tensor, frame_to_crop: np.ndarray, crop_masks: torch.Tensor,
                    *, colour_match: bool = True, passthrough: np.ndarray | None = None) -> tuple[np.ndarray, torch.Tensor]:
    """:func:`composite_region` on decoded (B, H, W, 3) uint8 frames, returning uint8 frames
    (rounded inside the mask) whose pixels outside the mask are the input's, bit for bit."""
    base = torch.from_numpy(np.ascontiguousarray(frames))
    out, mask = composite_region(base.float() / 255, generated, frame_to_crop, crop_masks, colour_match=colour_match,
                                 passthrough=passthrough)
    u8 = (out * 255).round().clamp(0, 255).to(torch.uint8)
    u8 = torch.where(mask[..., None] > 0, u8, base[..., :3])
    return u8.numpy(), mask
