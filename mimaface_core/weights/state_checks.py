"""Strict key and shape checks with errors that say what went wrong and why.

Used by every loader: a state dict is compared with the network's own ``state_dict()`` before any
tensor is copied, and a mismatch raises :class:`WeightMismatchError` naming the file, the first
missing or unexpected keys, and the likely cause (wrong file or stage, truncated download, other
model size).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from ..errors import WeightMismatchError

#: Human names of the released components, used in error messages and by identify_state_dict.
SD15_LDM = "an SD1.5 checkpoint in the LDM/ComfyUI layout"
UNET3D = "the video-stage 3D UNet (checkpoints/video/3dunet.pth)"
MOTION_ONLY = "AnimateDiff motion modules only"
UNET2D = "the image-stage 2D UNet (checkpoints/image/pretrained_unet)"
MIM = "the MIM module (checkpoints/<stage>/mim.pth)"
CLIP = "a CLIP vision encoder (checkpoints/<stage>/vision_encoder)"
D3DFR = "the D3DFR regressor (models/D3DFR/netG_epoch_25.pth)"
IR101 = "the CurricularFace IR-101 (models/ArcFace/CurricularFace_Backbone.pth)"
VAE = "a VAE"
SADTALKER_EXP = ("SadTalker's Audio2Exp (audio2exp.* of SadTalker_V0.0.2_256.safetensors, or "
                 "auido2exp_00300-model.pth)")
SADTALKER_POSE = ("SadTalker's Audio2Pose (audio2pose.* of SadTalker_V0.0.2_256.safetensors, or "
                  "auido2pose_00140-model.pth)")

# (component name, predicate on the key set): first match wins. Keys are taken after stripping a
# leading "module." and "vision_model.".
_SIGNATURES: list[tuple[str, object]] = [
    (SD15_LDM, lambda ks: any(k.startswith(("model.diffusion_model.", "input_blocks.")) for k in ks)),
    (UNET3D, lambda ks: any("motion_modules." in k for k in ks) and any(k.startswith("conv_in.") for k in ks)),
    (MOTION_ONLY, lambda ks: any("motion_modules." in k for k in ks)),
    (UNET2D, lambda ks: "conv_in.weight" in ks and any(k.startswith("down_blocks.") for k in ks)),
    (MIM, lambda ks: "transform_dim_clip.weight" in ks),
    (CLIP, lambda ks: "embeddings.patch_embedding.weight" in ks),
    (D3DFR, lambda ks: any(k.startswith("fianl_layers.") for k in ks)),
    (IR101, lambda ks: "input_layer.0.weight" in ks),
    (VAE, lambda ks: "encoder.conv_in.weight" in ks or "first_stage_model.encoder.conv_in.weight" in ks),
    (SADTALKER_EXP, lambda ks: "mapping1.weight" in ks and any(k.startswith("audio_encoder.0.") for k in ks)),
    (SADTALKER_POSE, lambda ks: any(k.startswith("netG.decoder.") for k in ks)),
]


def identify_state_dict(keys: Iterable[str]) -> str | None:
    """Guess which released component a set of state-dict keys belongs to; ``None`` if unknown."""
    norm = set()
    for k in keys:
        for prefix in ("module.", "vision_model."):
            if k.startswith(prefix):
                k = k[len(prefix):]
        norm.add(k)
    for name, pred in _SIGNATURES:
        if pred(norm):
            return name
    return None


def _first(items: list[str], n: int = 5) -> str:
    shown = ", ".join(items[:n])
    return shown + (f", ... ({len(items)} in all)" if len(items) > n else "")


def check_state_dict(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Size | tuple[int, ...]],
    *,
    file: str | Path,
    component: str,
    allow_missing: Iterable[str] = (),
    allow_unexpected: bool = False,
    identify: bool = True,
) -> None:
    """Compare a state dict with the expected keys and shapes; raise on any difference.

    Args:
        state: the tensors read from ``file``.
        expected: key → shape of the network that will receive them.
        file: the file the tensors came from (named in the error).
        component: human name of what the file should be (named in the error).
        allow_missing: expected keys that may be absent (recomputed buffers).
        allow_unexpected: whether extra keys in ``state`` are ignored.
        identify: whether to guess which component the keys belong to (off for converted
            third-party checkpoints, whose names are ours after conversion).

    Raises:
        WeightMismatchError: with the first missing / unexpected keys, the first shape mismatch and
            the likely cause.
    """
    allowed = set(allow_missing)
    missing = [k for k in expected if k not in state and k not in allowed]
    unexpected = [] if allow_unexpected else [k for k in state if k not in expected]
    if missing or unexpected:
        guess = identify_state_dict(state.keys()) if identify else None
        parts = [f"{file} does not match {component}:"]
        if missing:
            parts.append(f"{len(missing)} expected tensors are missing (first: {_first(missing)}).")
        if unexpected:
            parts.append(f"{len(unexpected)} tensors are unexpected (first: {_first(unexpected)}).")
        if guess is not None and guess != component:
            parts.append(
                f"Likely cause: this file looks like {guess}; it was probably put in the wrong "
                "place or taken from the wrong stage (image vs video)."
            )
        elif missing and not unexpected:
            parts.append(
                "Likely cause: the file is incomplete (a truncated download or a partial save); "
                "download it again."
            )
        else:
            parts.append("Likely cause: a different model or version; use the released MIMAFace files.")
        raise WeightMismatchError(" ".join(parts))
    for key, shape in expected.items():
        if key in state and tuple(state[key].shape) != tuple(shape):
            raise WeightMismatchError(
                f"{file} does not match {component}: tensor '{key}' has shape "
                f"{tuple(state[key].shape)}, expected {tuple(shape)}. Likely cause: the file is for "
                "a different model size or variant (for example SD2/SDXL instead of SD1.5), or the "
                "config.json beside it does not belong to it."
            )


def expected_shapes(module: torch.nn.Module) -> dict[str, torch.Size]:
    """The ``state_dict()`` key → shape map of a module (works on the meta device)."""
    return {k: v.shape for k, v in module.state_dict().items()}


def load_checked(
    module: torch.nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    file: str | Path,
    component: str,
) -> torch.nn.Module:
    """Check ``state`` against ``module`` strictly, then load it (``assign`` for meta modules).

    Returns the module. Raises :class:`WeightMismatchError` as :func:`check_state_dict`.
    """
    check_state_dict(state, expected_shapes(module), file=file, component=component)
    on_meta = any(p.is_meta for p in module.parameters())
    module.load_state_dict(dict(state), strict=True, assign=on_meta)
    return module
