"""``python -m mimaface_core convert SRC DST``: rewrite a released snapshot without pickles.

Every ``.pth``/``.bin``/``.ckpt`` of the layout is read with ``torch.load(weights_only=True)`` and
written as ``.safetensors`` with the same stem in the same place (``module.`` prefixes kept, so the
converted files are exact copies of the tensors); every other file (configs, ``.safetensors``,
``BFM09_model_info.mat``) is copied as is. The result loads through :func:`load_mimaface`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from ..errors import MissingWeightFileError
from .safe_load import PICKLE_SUFFIXES, read_state_dict, write_safetensors

_ANY_DIFFUSERS_NAME = {"diffusion_pytorch_model.bin": "diffusion_pytorch_model.safetensors", "pytorch_model.bin": "model.safetensors"}


def convert_snapshot(src: str | Path, dst: str | Path, log: Callable[[str], None] = print) -> list[Path]:
    """Convert the snapshot at ``src`` into ``dst`` (created; existing files overwritten).

    Returns the list of files written. Raises MissingWeightFileError if ``src`` is not a folder,
    and the errors of :func:`read_state_dict` for unreadable or unsafe pickles.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise MissingWeightFileError(f"convert: source folder {src} not found.")
    if dst.resolve() == src.resolve():
        raise ValueError("convert: DST must differ from SRC.")
    written = []
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src)
        if rel.parts and rel.parts[0] in (".git", ".cache"):
            continue
        if path.suffix.lower() in PICKLE_SUFFIXES:
            name = _ANY_DIFFUSERS_NAME.get(path.name, path.with_suffix(".safetensors").name)
            out = dst / rel.parent / name
            write_safetensors(read_state_dict(path, str(rel)), out)
            log(f"converted {rel} -> {out.relative_to(dst)}")
        else:
            out = dst / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out)
        written.append(out)
    return written
