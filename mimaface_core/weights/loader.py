"""The one entry point that assembles a MIMAFace model from a released snapshot folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL

from ..appearance import AppearanceEncoder
from ..errors import MissingWeightFileError
from ..identity import IR101
from ..mia import MIMModule
from ..morphable.bfm import BFM09Model, load_bfm09
from ..morphable.d3dfr import D3DFRRegressor
from ..vae import load_vae
from .base_merge import BaseCheckpoint, merge_base_checkpoint
from .components import load_appearance_encoder, load_d3dfr, load_identity_encoder, load_mim
from .layout import STAGES, ReleasedLayout
from .operations import apply_operations
from .unet import load_denoiser


@dataclass
class MIMAFaceModel:
    """Every network of one MIMAFace mode, loaded and ready.

    Attributes:
        mode: "video" (UNetMotionModel, video-stage MIM and CLIP) or "image" (2D UNet, image-stage
            MIM and CLIP). Never mixed (spec §0).
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


def load_mimaface(
    root: str | Path,
    mode: str = "video",
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    vae: str | Path | None = None,
    base: BaseCheckpoint | None = None,
    operations=None,
) -> MIMAFaceModel:
    """Load a released MIMAFace snapshot folder (spec §0).

    Args:
        root: snapshot folder (``checkpoints/`` and ``models/`` inside; ``.pth`` files may be
            replaced by ``.safetensors`` written by ``python -m mimaface_core convert``).
        mode: "video" (default) or "image".
        device, dtype: for the UNet, CLIP, MIM and VAE (float16/bfloat16 on GPUs); the D3DFR,
            CurricularFace and BFM stay float32.
        vae: a VAE folder or single file; ``None`` uses ``<root>/sd-vae-ft-mse`` when present,
            else ``model.vae`` is ``None``.
        base: optional custom SD1.5 base checkpoint and merge mode.
        operations: a host's layer namespace (ComfyUI: ``comfy.ops.disable_weight_init``) for the
            UNet, CLIP, MIM and VAE, applied after loading with
            :func:`~mimaface_core.weights.operations.apply_operations` so that the host can load
            them partially or page them; the D3DFR, CurricularFace and BFM stay plain torch.
            None (default): plain torch layers everywhere.

    Raises:
        ValueError: unknown mode.
        MissingWeightFileError: the folder or a file is absent; the message lists every missing file.
        UnsafeWeightFileError: a pickle that would run code.
        WeightFileError / WeightMismatchError: unreadable or mismatching files, named.
    """
    if mode not in STAGES:
        raise ValueError(f"mode must be one of {STAGES}, got {mode!r}.")
    device = torch.device(device)
    layout = ReleasedLayout(Path(root))
    missing = layout.missing(mode)
    if missing:
        raise MissingWeightFileError(
            f"The MIMAFace folder {layout.root} is incomplete for {mode} mode; missing: {', '.join(missing)}. "
            "Download the released snapshot again (python -m mimaface_core download DEST)."
        )
    transform = None
    if base is not None:
        transform = lambda state, config: merge_base_checkpoint(state, config, base)  # noqa: E731
    denoiser = load_denoiser(layout, mode, device, dtype, transform_2d=transform)
    vae_path = Path(vae) if vae is not None else (layout.vae if layout.vae.exists() else None)
    appearance_encoder = load_appearance_encoder(layout.vision_encoder(mode), device, dtype)
    mim = load_mim(layout.mim(mode), device, dtype)
    vae_model = load_vae(vae_path, device, dtype) if vae_path is not None else None
    for network in (denoiser, appearance_encoder, mim, vae_model):
        if network is not None:
            apply_operations(network, operations)
    return MIMAFaceModel(
        mode=mode,
        denoiser=denoiser,
        appearance_encoder=appearance_encoder,
        mim=mim,
        d3dfr=load_d3dfr(layout.weight_file("d3dfr"), device),
        identity_encoder=load_identity_encoder(layout.weight_file("curricularface"), device),
        bfm=load_bfm09(layout.bfm).to(device),
        vae=vae_model,
        device=device,
        dtype=dtype,
        root=layout.root,
    )
