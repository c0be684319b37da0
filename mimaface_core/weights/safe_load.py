"""Reading weight files without ever running code from them.

Only two readers are used: ``safetensors`` for ``.safetensors`` files and
``torch.load(weights_only=True)`` for PyTorch pickles (``.pth``, ``.pt``, ``.bin``, ``.ckpt``, both the
zip and the legacy format). A pickle that asks to build anything but tensors and plain containers is
refused with :class:`UnsafeWeightFileError`. docs/WEIGHTS.md §1–§2: every released file loads with
``torch.load(path, weights_only=True)``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import MissingWeightFileError, UnsafeWeightFileError, WeightFileError

PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")


def read_checkpoint(path: str | Path, what: str = "weight file"):
    """Read a weight file as stored, without running code: a safetensors file gives its flat
    ``{key: tensor}`` dict, a PyTorch pickle whatever ``torch.load(weights_only=True)`` rebuilds
    (tensors inside dicts, lists, numbers and strings; e.g. ``{"model": {...}, "epoch": 300}``).

    Args:
        path: a ``.safetensors`` file or a PyTorch pickle (``.pth``/``.pt``/``.bin``/``.ckpt``).
        what: what the file is, for error messages.

    Raises:
        MissingWeightFileError: the file does not exist.
        UnsafeWeightFileError: the pickle holds objects other than tensors (it would run code).
        WeightFileError: the file is truncated, corrupt or of an unknown type.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingWeightFileError(f"{what} not found: {path}. Check the folder layout in the README.")
    suffix = path.suffix.lower()
    if suffix == ".safetensors" or (suffix in PICKLE_SUFFIXES and _looks_like_safetensors(path)):
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightFileError(
                f"Could not read {what} {path}: {exc}. The file is probably truncated or corrupt: "
                "download it again."
            ) from exc
    if suffix in PICKLE_SUFFIXES:
        try:
            return torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            # weights_only refuses a pickle either because it names a global (a class or a function
            # it would call: unsafe) or because the bytes are no pickle at all (corrupt).
            if "global" not in str(exc).lower():
                raise WeightFileError(
                    f"Could not read {what} {path}: it is not a PyTorch checkpoint ({exc}). The file is "
                    "probably corrupt or of another format: download it again."
                ) from exc
            raise UnsafeWeightFileError(
                f"Refused to load {what} {path}: it is a pickle that holds objects other than tensors, "
                "and loading it would run code. Only plain tensor checkpoints are accepted; convert it "
                "to .safetensors in a trusted environment, or get the file from its official source."
            ) from exc
        except (EOFError, RuntimeError, OSError, ValueError) as exc:
            raise WeightFileError(
                f"Could not read {what} {path}: {exc}. The file is probably truncated or corrupt: "
                "download it again."
            ) from exc
    raise WeightFileError(
        f"{what} {path} has an unknown file type '{suffix}': expected .safetensors or one of "
        f"{', '.join(PICKLE_SUFFIXES)}."
    )


def flat_tensors(state, path: str | Path, what: str = "weight file") -> dict[str, torch.Tensor]:
    """Check that ``state`` is a non-empty flat ``{key: tensor}`` dict and return it.

    Raises:
        WeightFileError: naming ``what`` and ``path`` otherwise.
    """
    if not isinstance(state, dict) or not state:
        raise WeightFileError(f"{what} {path} holds no tensors.")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightFileError(
            f"{what} {path} is not a flat tensor dictionary (entry '{bad[0]}' is a "
            f"{type(state[bad[0]]).__name__})."
        )
    return state


def read_state_dict(path: str | Path, what: str = "weight file") -> dict[str, torch.Tensor]:
    """Read a flat ``{key: tensor}`` dict from a weight file, on the CPU, dtypes as stored.

    Args:
        path: a ``.safetensors`` file or a PyTorch pickle (``.pth``/``.pt``/``.bin``/``.ckpt``).
        what: what the file is, for error messages (e.g. ``"MIM weights (mim.pth)"``).

    Returns:
        The state dict. A pickle holding ``{"state_dict": {...}}`` is unwrapped.

    Raises:
        MissingWeightFileError: the file does not exist.
        UnsafeWeightFileError: the pickle holds objects other than tensors (it would run code).
        WeightFileError: the file is truncated, corrupt, of an unknown type, or holds no tensors.
    """
    state = read_checkpoint(path, what)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    return flat_tensors(state, path, what)


def _looks_like_safetensors(path: Path) -> bool:
    """Whether a file starts like safetensors (8-byte header length, then a JSON object)."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Remove ``prefix`` from every key that starts with it (e.g. DataParallel's ``module.``)."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}


def write_safetensors(state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Write a state dict as safetensors (contiguous copies, metadata ``{"format": "pt"}``), atomically
    and with the umask's mode (``media.outputs.atomic_output``)."""
    from ..media.outputs import atomic_output

    with atomic_output(path) as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata={"format": "pt"})
