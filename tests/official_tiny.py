"""Access to the official_tiny golden fixture: cases, tensors, and the weight recipe.

The folder is ``$MIMAFACE_FIXTURES_DIR`` when set, else ``tests/fixtures/official_tiny`` (a copy of
the shared fixture). Every shape, size and parameter is read from the folder; see its README.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from functools import lru_cache
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

DEFAULT_DIR = Path(__file__).parent / "fixtures" / "official_tiny"


def fixture_dir() -> Path:
    return Path(os.environ.get("MIMAFACE_FIXTURES_DIR", DEFAULT_DIR))


@lru_cache(maxsize=None)
def _cases_json() -> dict:
    return json.loads((fixture_dir() / "cases.json").read_text())


def cases() -> dict:
    return _cases_json()["cases"]


def source_image():
    """The fixture's 512 source crop as a PIL RGB image (file named by cases.json ``source_image``)."""
    from PIL import Image

    return Image.open(fixture_dir() / _cases_json()["source_image"]["file"]).convert("RGB")


@lru_cache(maxsize=None)
def _case_file(name: str) -> dict[str, torch.Tensor]:
    return load_file(str(fixture_dir() / name))


def tensor(entry: dict) -> torch.Tensor:
    """The tensor a cases.json input/output entry points to."""
    return _case_file(entry["file"])[entry["tensor"]]


def tolerance(case: str, output: str) -> dict:
    tol = cases()[case]["tolerance"][output]
    return dict(atol=tol["atol"], rtol=tol["rtol"])


def inp(case: str, name: str) -> torch.Tensor:
    """An input tensor of a case."""
    return tensor(cases()[case]["inputs"][name])


def check(case: str, output: str, got: torch.Tensor) -> float:
    """Assert ``got`` matches a case output within its tolerance; return max |got − ref|."""
    ref = tensor(cases()[case]["outputs"][output])
    assert tuple(got.shape) == tuple(ref.shape), f"{case}.{output}: shape {tuple(got.shape)} != {tuple(ref.shape)}"
    got = got.detach().to(ref.dtype).cpu()
    torch.testing.assert_close(got, ref, **tolerance(case, output), msg=lambda m: f"{case}.{output}: {m}")
    return float((got - ref).abs().max())


def component(name: str) -> dict:
    return json.loads((fixture_dir() / "weights" / f"{name}.json").read_text())


def layout() -> dict:
    return json.loads((fixture_dir() / "weights" / "layout.json").read_text())


def _sinusoid(shape):
    _, length, dim = shape
    position = torch.arange(length).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
    pe = torch.zeros(1, length, dim)
    pe[0, :, 0::2] = torch.sin(position * div_term)
    pe[0, :, 1::2] = torch.cos(position * div_term)
    return pe


def regenerate(spec: dict) -> dict[str, torch.Tensor]:
    """The recipe of the fixture README, exactly: tensors drawn in the listed order."""
    g = torch.Generator("cpu").manual_seed(spec["seed"])
    gain = spec.get("gain", 1.0)
    out = {}
    for key, shape, dtype in spec["tensors"]:
        shape = tuple(shape)
        if dtype == "int64":
            t = torch.zeros(shape, dtype=torch.int64)
        elif key.endswith(".pe"):
            t = _sinusoid(shape)
        elif key.endswith("running_mean"):
            t = 0.1 * torch.randn(shape, generator=g)
        elif key.endswith("running_var"):
            t = 1.0 + 0.1 * torch.randn(shape, generator=g).abs()
        elif len(shape) == 1 and key.endswith(".weight"):
            t = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif len(shape) <= 1:
            t = 0.1 * torch.randn(shape, generator=g)
        else:
            t = torch.randn(shape, generator=g) * (gain / math.sqrt(math.prod(shape[1:])))
        out[key] = t
    return out


def fingerprint(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key, t in state.items():
        h.update(key.encode() + b"\0" + t.contiguous().numpy().tobytes())
    return h.hexdigest()


def write_component(spec: dict, state: dict[str, torch.Tensor], root: Path) -> None:
    """Write one component in its released file format (README "Writing the released layout")."""
    dest = root / spec["released_path"]
    fmt = spec["format"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("diffusers_folder", "transformers_folder"):
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "config.json").write_text(json.dumps(spec["config_json"], indent=1))
        name = "diffusion_pytorch_model.safetensors" if fmt == "diffusers_folder" else "model.safetensors"
        save_file(state, str(dest / name), metadata={"format": "pt"})
    elif fmt == "torch_legacy":
        torch.save(state, dest, _use_new_zipfile_serialization=False)
    elif fmt == "torch_zip_module_prefix":
        torch.save({"module." + k: v for k, v in state.items()}, dest)
    else:
        raise ValueError(f"unknown format {fmt}")


def write_released_layout(root: Path) -> dict[str, str]:
    """Regenerate every component into ``root`` in the released layout; return their fingerprints."""
    prints = {}
    spec_layout = layout()
    for name in spec_layout["components"]:
        spec = component(name)
        state = regenerate(spec)
        prints[name] = fingerprint(state)
        write_component(spec, state, root)
        del state
    for src, dst in spec_layout["data_files"].items():
        (root / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fixture_dir() / src, root / dst)
    return prints


def clone_layout(src: Path, dst: Path) -> Path:
    """A copy of the released layout made of symlinks (cheap); replace files by unlinking first."""
    for path in src.rglob("*"):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, target)
    return dst
