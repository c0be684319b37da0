"""Loading SadTalker's audio-to-coefficient networks from its official checkpoint files, strictly.

Two official forms (SadTalker ``src/test_audio2coeff.py``, ``src/utils/safetensor_helper.py``,
``scripts/download_models.sh``; fixture ``audio2coeff`` README, "Writing the official layout"):

* ``SadTalker_V0.0.2_256.safetensors`` (or ``_512``): every SadTalker model in one file, keys
  prefixed ``audio2exp.`` / ``audio2pose.``; the other prefixes (``face_3drecon.``,
  ``kp_extractor.``, ``generator.``, ...) belong to other models and are ignored BY PREFIX. Each
  audio part must then match its network exactly (no missing, unexpected or mis-shaped key).
* the older pair ``auido2exp_00300-model.pth`` / ``auido2pose_00140-model.pth`` (the official
  spelling), each ``{"model": state_dict, "epoch": N}``, read with
  ``torch.load(weights_only=True)`` only (a pickle that would run code is refused).

Both give the same networks (the official files hold the same tensors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import MissingWeightFileError, WeightFileError
from ..weights.layout import SADTALKER_FILE as COMBINED_FILE
from ..weights.layout import SADTALKER_FOLDER as SNAPSHOT_SUBFOLDER  # noqa: F401 (where download puts it)
from ..weights.safe_load import flat_tensors, read_checkpoint
from ..weights.state_checks import (
    SADTALKER_EXP,
    SADTALKER_POSE,
    check_state_dict,
    expected_shapes,
)
from .audio2exp import Audio2ExpNet
from .audio2pose import Audio2PoseNet

EXP_FILE = "auido2exp_00300-model.pth"
POSE_FILE = "auido2pose_00140-model.pth"
EXP_PREFIX = "audio2exp."
POSE_PREFIX = "audio2pose."
AUDIO2EXP = SADTALKER_EXP
AUDIO2POSE = SADTALKER_POSE


@dataclass
class AudioNetworks:
    """SadTalker's audio networks, loaded and in eval mode (float32).

    Attributes:
        audio2exp: expression network. audio2pose: pose CVAE (inference parts only).
        files: the weight files they came from.
    """

    audio2exp: Audio2ExpNet
    audio2pose: Audio2PoseNet
    files: tuple[Path, ...] = field(default_factory=tuple)

    @property
    def device(self) -> torch.device:
        return next(self.audio2exp.parameters()).device

    def to(self, device) -> "AudioNetworks":
        """Move both networks (in place); returns self."""
        self.audio2exp.to(device)
        self.audio2pose.to(device)
        return self


def find_audio_weights(path: str | Path) -> tuple[Path, ...]:
    """The file(s) to load for ``path``.

    Args:
        path: the combined ``.safetensors`` file; or one of the two ``.pth`` files (its partner is
            looked for beside it); or a folder holding either form (the combined file wins).

    Returns:
        ``(combined,)`` or ``(audio2exp .pth, audio2pose .pth)``.

    Raises:
        MissingWeightFileError: nothing usable at ``path``; the message lists what was looked for.
    """
    path = Path(path)
    if path.is_dir():
        combined = sorted(path.glob("SadTalker_V0.0.2_*.safetensors"))
        if (path / COMBINED_FILE).is_file():
            return (path / COMBINED_FILE,)
        if combined:
            return (combined[0],)
        exp, pose = _pair_in(path)
        if exp and pose:
            return (exp, pose)
        raise MissingWeightFileError(
            f"SadTalker audio weights not found in {path}: expected {COMBINED_FILE}, or {EXP_FILE} with "
            f"{POSE_FILE}. Download {COMBINED_FILE} from https://github.com/OpenTalker/SadTalker/releases "
            "(v0.0.2-rc) into that folder.")
    if not path.is_file():
        raise MissingWeightFileError(
            f"SadTalker audio weights not found: {path}. Download {COMBINED_FILE} from "
            "https://github.com/OpenTalker/SadTalker/releases (v0.0.2-rc), or run "
            "python -m mimaface_core download <weights folder>.")
    name = path.name.lower()
    if name.startswith(("auido2exp", "audio2exp", "auido2pose", "audio2pose")) and path.suffix.lower() != ".safetensors":
        exp, pose = _pair_in(path.parent)
        mine = "exp" if "2exp" in name else "pose"
        exp, pose = (path, pose) if mine == "exp" else (exp, path)
        if exp is None or pose is None:
            missing = "auido2pose_*.pth" if pose is None else "auido2exp_*.pth"
            raise MissingWeightFileError(f"{path.name} is half of SadTalker's older audio checkpoint pair; its partner "
                                         f"({missing}) is not beside it in {path.parent}.")
        return (exp, pose)
    return (path,)


def _pair_in(folder: Path) -> tuple[Path | None, Path | None]:
    def first(patterns):
        for pattern in patterns:
            hits = sorted(p for p in folder.glob(pattern) if p.suffix.lower() in (".pth", ".pt", ".tar") or
                          p.name.endswith(".pth.tar"))
            if hits:
                return hits[0]
        return None

    return first(("auido2exp*", "audio2exp*")), first(("auido2pose*", "audio2pose*"))


def _cpk_model(path: Path, component: str) -> dict[str, torch.Tensor]:
    obj = read_checkpoint(path, component)
    if not isinstance(obj, dict) or "model" not in obj:
        keys = ", ".join(list(obj)[:5]) if isinstance(obj, dict) else type(obj).__name__
        raise WeightFileError(f"{path} is not a SadTalker checkpoint: expected {{'model': state_dict, 'epoch': N}}, "
                              f"found {keys}. Use {EXP_FILE} / {POSE_FILE} or {COMBINED_FILE}.")
    return flat_tensors(obj["model"], path, component)


def _by_prefix(state: dict[str, torch.Tensor], prefix: str, path: Path, component: str) -> dict[str, torch.Tensor]:
    part = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not part:
        found = sorted({k.split(".", 1)[0] for k in state})[:6]
        raise WeightFileError(f"{path} holds no '{prefix}*' tensors, so it does not contain {component}. Its keys "
                              f"start with {', '.join(found)}. Use SadTalker's {COMBINED_FILE}.")
    return part


def _load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, component: str) -> None:
    check_state_dict(state, expected_shapes(module), file=path, component=component)
    module.load_state_dict(state, strict=True)


def load_audio_networks(path: str | Path, device: str | torch.device = "cpu") -> AudioNetworks:
    """Load SadTalker's Audio2Exp and Audio2Pose from either official form (see module docstring).

    Args:
        path: a file or folder, see :func:`find_audio_weights`.
        device: where the networks go (float32; they are small, about 57 MB).

    Returns:
        :class:`AudioNetworks` in eval mode, training-only parts dropped after the strict check.

    Raises:
        MissingWeightFileError, UnsafeWeightFileError, WeightFileError, WeightMismatchError: each
            naming the file and what is wrong (missing / unexpected / mis-shaped keys, a refused
            pickle, a file that is not SadTalker's).
    """
    files = find_audio_weights(path)
    exp_net, pose_net = Audio2ExpNet(), Audio2PoseNet()
    if len(files) == 1:
        state = read_checkpoint(files[0], "SadTalker weights")
        if not isinstance(state, dict):
            raise WeightFileError(f"{files[0]} is not a SadTalker weight file.")
        if "model" in state and not isinstance(state["model"], torch.Tensor):
            raise WeightFileError(f"{files[0]} is one of SadTalker's separate .pth checkpoints; name the pair "
                                  f"({EXP_FILE} and {POSE_FILE}) or their folder.")
        state = flat_tensors(state, files[0], "SadTalker weights")
        exp_state = _by_prefix(state, EXP_PREFIX, files[0], AUDIO2EXP)
        pose_state = _by_prefix(state, POSE_PREFIX, files[0], AUDIO2POSE)
        _load_into(exp_net, exp_state, files[0], AUDIO2EXP)
        _load_into(pose_net, pose_state, files[0], AUDIO2POSE)
    else:
        _load_into(exp_net, _cpk_model(files[0], AUDIO2EXP), files[0], AUDIO2EXP)
        _load_into(pose_net, _cpk_model(files[1], AUDIO2POSE), files[1], AUDIO2POSE)
    pose_net.drop_training_parts()
    nets = AudioNetworks(exp_net.eval().requires_grad_(False), pose_net.eval().requires_grad_(False), files)
    return nets.to(device)
