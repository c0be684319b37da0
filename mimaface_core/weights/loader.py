"""The one entry point that assembles a MIMAFace model (:class:`~mimaface_core.networks.bundle.MIMAFaceModel`)
from a released snapshot folder."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import MissingWeightFileError
from ..morphable.bfm import load_bfm09
from ..networks.bundle import MIMAFaceModel
from ..networks.devices import resolve_device
from ..networks.operations import apply_operations
from .base_merge import BaseCheckpoint, merge_base_checkpoint
from .components import (
    load_appearance_encoder,
    load_d3dfr,
    load_identity_encoder,
    load_mim,
)
from .layout import STAGES, ReleasedLayout
from .unet import load_denoiser
from .vae_file import load_vae


def load_mimaface(
    root: str | Path,
    mode: str = "video",
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    vae: str | Path | None = None,
    base: BaseCheckpoint | None = None,
    operations=None,
) -> MIMAFaceModel:
    """Load a released MIMAFace snapshot folder (docs/WEIGHTS.md §2).

    Args:
        root: snapshot folder (``checkpoints/`` and ``models/`` inside; ``.pth`` files may be
            replaced by ``.safetensors`` written by ``python -m mimaface_core convert``).
        mode: "video" (default) or "image".
        device, dtype: for the UNet, CLIP, MIM and VAE; the D3DFR, CurricularFace and BFM stay
            float32. None (default): the best available, as the command line chooses (CUDA in
            float16, else the CPU in float32; :func:`mimaface_core.networks.devices.resolve_device`).
        vae: a VAE folder or single file; ``None`` uses ``<root>/sd-vae-ft-mse`` when present,
            else ``model.vae`` is ``None``.
        base: optional custom SD1.5 base checkpoint and merge mode.
        operations: a host's layer namespace (ComfyUI: ``comfy.ops.disable_weight_init``) for the
            UNet, CLIP, MIM and VAE, applied after loading with
            :func:`~mimaface_core.networks.operations.apply_operations` so that the host can load
            them partially or page them; the D3DFR, CurricularFace and BFM stay plain torch.
            None (default): plain torch layers everywhere.

    Raises:
        ValueError: unknown mode.
        MIMAFaceError: a device or dtype this machine cannot provide (the message names ``device=``
            or ``dtype=``).
        MissingWeightFileError: the folder or a file is absent; the message lists every missing file.
        UnsafeWeightFileError: a pickle that would run code.
        WeightFileError / WeightMismatchError: unreadable or mismatching files, named.
    """
    if mode not in STAGES:
        raise ValueError(f"mode must be one of {STAGES}, got {mode!r}.")
    device, dtype = resolve_device(device, dtype, cpu_float16=True)  # a host may stage fp16 weights on the CPU
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
