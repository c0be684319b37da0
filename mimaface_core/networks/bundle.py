"""The bundle of one mode's networks: :class:`MIMAFaceModel` (built by
:func:`mimaface_core.weights.loader.load_mimaface`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL

from ..errors import MissingWeightFileError
from ..morphable.bfm import BFM09Model
from ..morphable.d3dfr import D3DFRRegressor
from .appearance_encoder import AppearanceEncoder
from .identity_encoder import IR101
from .mia import MIMModule


@dataclass
class MIMAFaceModel:
    """Every network of one MIMAFace mode, loaded and ready.

    Attributes:
        mode: "video" (UNetMotionModel, video-stage MIM and CLIP) or "image" (2D UNet, image-stage
            MIM and CLIP). Never mixed (docs/WEIGHTS.md §2).
        denoiser: the UNet (13 input channels, 264-token context), ``dtype`` on ``device``.
        appearance_encoder: CLIP vision tower → (B, 257, 1024) tokens, ``dtype``.
        mim: the MIA module → (F, 264, 768) context, ``dtype``.
        d3dfr: 3DMM coefficient regressor, float32.
        identity_encoder: CurricularFace IR-101, float32.
        bfm: BFM09 tensors, float32 / int64.
        vae: SD1.x VAE (``dtype``), or ``None`` when no VAE was found (see :meth:`require_vae`).
        device, dtype: where the diffusion parts live; the 3DMM and identity parts stay float32.
        root: the snapshot folder.
    """

    mode: str
    denoiser: torch.nn.Module
    appearance_encoder: AppearanceEncoder
    mim: MIMModule
    d3dfr: D3DFRRegressor
    identity_encoder: IR101
    bfm: BFM09Model
    vae: AutoencoderKL | None
    device: torch.device
    dtype: torch.dtype
    root: Path

    def require_vae(self) -> AutoencoderKL:
        """The VAE, or a clear error saying where to put one."""
        if self.vae is None:
            raise MissingWeightFileError(
                f"No VAE loaded: put stabilityai/sd-vae-ft-mse in {self.root / 'sd-vae-ft-mse'} "
                "(python -m mimaface_core download does) or pass a VAE file."
            )
        return self.vae

    def to(self, device: str | torch.device, dtype: torch.dtype | None = None) -> "MIMAFaceModel":
        """Move every part to ``device`` in place (for offloading between uses); with ``dtype``,
        also cast the diffusion parts (UNet, CLIP, MIM, VAE; e.g. the fp32 fallback). Returns self."""
        device = torch.device(device)
        dtype = dtype or self.dtype
        for part in (self.denoiser, self.appearance_encoder, self.mim, self.vae):
            if part is not None:
                part.to(device)
                if dtype != self.dtype:
                    part.to(dtype=dtype)
        self.d3dfr.to(device)
        self.identity_encoder.to(device)
        self.bfm = self.bfm.to(device)
        self.device, self.dtype = device, dtype
        return self
