"""Loaders of the small released networks: MIM, CLIP vision encoder, D3DFR, CurricularFace.

Each builds the network on the meta device, checks the file strictly (keys and shapes) and loads it
with ``assign``; errors name the file and the likely cause. docs/WEIGHTS.md §1, §7–§10.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import MissingWeightFileError
from ..morphable.d3dfr import D3DFRRegressor
from ..networks.appearance_encoder import (
    AppearanceEncoder,
    build_clip_vision,
    normalise_clip_keys,
)
from ..networks.identity_encoder import IR101
from ..networks.mia import MIMModule
from . import state_checks as checks
from .layout import read_json
from .safe_load import read_state_dict, strip_prefix
from .state_checks import load_checked

_CLIP_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def _strip_module(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove DataParallel's ``module.`` prefix (the released loader strips ``key[7:]``)."""
    return strip_prefix(state, "module.")


def load_mim(path: str | Path, device="cpu", dtype=torch.float32, **sizes) -> MIMModule:
    """Load ``mim.pth`` (or its .safetensors) strictly into :class:`MIMModule` (docs/WEIGHTS.md §8).

    ``sizes`` are :class:`MIMModule` constructor arguments (defaults: the released sizes).
    """
    with torch.device("meta"):
        module = MIMModule(**sizes)
    load_checked(module, read_state_dict(path, "MIM weights"), file=path, component=checks.MIM)
    return module.to(device=device, dtype=dtype).eval()


def load_appearance_encoder(folder: str | Path, device="cpu", dtype=torch.float32) -> AppearanceEncoder:
    """Load a ``vision_encoder/`` folder (config.json + model.safetensors) strictly. docs/WEIGHTS.md §7."""
    folder = Path(folder)
    config = read_json(folder / "config.json")
    weights = next((folder / n for n in _CLIP_WEIGHTS if (folder / n).is_file()), None)
    if weights is None:
        raise MissingWeightFileError(f"{folder} holds no model.safetensors: the CLIP vision encoder is incomplete.")
    clip = build_clip_vision(config, device="meta")
    state = normalise_clip_keys(read_state_dict(weights, "CLIP vision encoder weights"), clip)
    load_checked(clip, state, file=weights, component=checks.CLIP)
    _restore_position_ids(clip)
    return AppearanceEncoder(clip.to(device=device, dtype=dtype)).eval()


def _restore_position_ids(clip: torch.nn.Module) -> None:
    """Recreate the non-persistent ``position_ids`` buffer left on the meta device by a meta build."""
    for name, module in clip.named_modules():
        buf = module._buffers.get("position_ids")
        if buf is not None and buf.is_meta:
            module.register_buffer("position_ids", torch.arange(buf.shape[-1]).expand(buf.shape).clone(), persistent=False)


def load_d3dfr(path: str | Path, device="cpu", dtype=torch.float32) -> D3DFRRegressor:
    """Load ``netG_epoch_25.pth`` (``module.`` prefixes stripped, strict). docs/WEIGHTS.md §9."""
    with torch.device("meta"):
        net = D3DFRRegressor()
    load_checked(net, _strip_module(read_state_dict(path, "D3DFR weights")), file=path, component=checks.D3DFR)
    return net.to(device=device, dtype=dtype).eval()


def load_identity_encoder(path: str | Path, device="cpu", dtype=torch.float32) -> IR101:
    """Load ``CurricularFace_Backbone.pth`` (``module.`` prefixes stripped, strict). docs/WEIGHTS.md §10."""
    with torch.device("meta"):
        net = IR101()
    load_checked(net, _strip_module(read_state_dict(path, "CurricularFace weights")), file=path, component=checks.IR101)
    return net.to(device=device, dtype=dtype).eval()
