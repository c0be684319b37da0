"""Access to the audio2coeff golden fixture (SadTalker's audio-to-coefficient outputs).

The folder is ``$MIMAFACE_AUDIO_FIXTURES_DIR`` when set, else ``tests/fixtures/audio2coeff`` (a copy
of the project's shared fixture). Every shape, length, seed and parameter is read from the folder;
see its README.md. The weights are regenerated from the recipe and written in both official forms.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from functools import lru_cache
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

DEFAULT_DIR = Path(__file__).parent / "fixtures" / "audio2coeff"


def fixture_dir() -> Path:
    return Path(os.environ.get("MIMAFACE_AUDIO_FIXTURES_DIR", DEFAULT_DIR))


@lru_cache(maxsize=None)
def _cases_json(folder: str) -> dict:
    return json.loads((Path(folder) / "cases.json").read_text())


def cases() -> dict:
    return _cases_json(str(fixture_dir()))["cases"]


def case(name: str) -> dict:
    return cases()[name]


@lru_cache(maxsize=None)
def _file(folder: str, name: str) -> dict[str, torch.Tensor]:
    return load_file(str(Path(folder) / name))


def resolve(entry: dict) -> dict:
    """Follow ``{"ref": "case.inputs|outputs.name"}`` links to the entry holding the tensor."""
    while "ref" in entry:
        c, kind, name = entry["ref"].split(".")
        found = cases()[c][kind].get(name)
        if found is None:  # the fixture points some inputs at "outputs" (e.g. audio2exp's ref_coeff)
            other = "inputs" if kind == "outputs" else "outputs"
            found = cases()[c][other][name]
        entry = found
    return entry


def tensor(entry: dict) -> torch.Tensor:
    entry = resolve(entry)
    return _file(str(fixture_dir()), entry["file"])[entry["tensor"]]


def inp(case_name: str, name: str) -> torch.Tensor:
    return tensor(case(case_name)["inputs"][name])


def out(case_name: str, name: str) -> torch.Tensor:
    return tensor(case(case_name)["outputs"][name])


def check(case_name: str, output: str, got) -> float:
    """Assert ``got`` matches a case output within its tolerance; return max |got − ref|."""
    ref = out(case_name, output)
    got = torch.as_tensor(got)
    assert tuple(got.shape) == tuple(ref.shape), f"{case_name}.{output}: shape {tuple(got.shape)} != {tuple(ref.shape)}"
    tol = case(case_name)["tolerance"][output]
    got = got.detach().to(ref.dtype).cpu()
    torch.testing.assert_close(got, ref, atol=tol["atol"], rtol=tol["rtol"], msg=lambda m: f"{case_name}.{output}: {m}")
    return float((got.double() - ref.double()).abs().max()) if ref.numel() else 0.0


def data_file(case_name: str, name: str = "wav_file") -> Path:
    return fixture_dir() / case(case_name)["inputs"][name]["file"]


def component(name: str) -> dict:
    return json.loads((fixture_dir() / "weights" / f"{name}.json").read_text())


def layout() -> dict:
    return json.loads((fixture_dir() / "weights" / "layout.json").read_text())


def regenerate(spec: dict) -> dict[str, torch.Tensor]:
    """The recipe of the fixture README, exactly: tensors drawn in the listed order."""
    g = torch.Generator("cpu").manual_seed(spec["seed"])
    gain = spec.get("gain", 1.0)
    state = {}
    for key, shape, dtype in spec["tensors"]:
        shape = tuple(shape)
        if dtype == "int64":
            t = torch.zeros(shape, dtype=torch.int64)
        elif key.endswith("classbias"):
            t = torch.randn(shape, generator=g)
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
        state[key] = t
    return state


def fingerprint(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key, t in state.items():
        h.update(key.encode() + b"\0" + t.contiguous().numpy().tobytes())
    return h.hexdigest()


def write_official_layout(root: Path) -> dict[str, Path]:
    """Regenerate the components and write every file of ``weights/layout.json`` under ``root``.
    Returns {file path in layout.json: written path}; fingerprints are checked on the way."""
    states = {}
    for f in layout()["files"]:
        for name in f.get("components", [f.get("component")]):
            if name not in states:
                spec = component(name)
                states[name] = regenerate(spec)
                assert fingerprint(states[name]) == spec["sha256"], f"recipe fingerprint of {name} differs"
    written = {}
    for f in layout()["files"]:
        dest = root / f["path"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        if f["format"] == "safetensors_prefixed":
            merged = {}
            for name in f["components"]:
                prefix = component(name)["prefix"]
                merged.update({f"{prefix}.{k}": v for k, v in states[name].items()})
            save_file(merged, str(dest), metadata={"format": "pt"})
        elif f["format"] == "torch_cpk":
            torch.save({"model": states[f["component"]], "epoch": f["epoch"]}, dest)
        else:
            raise ValueError(f"unknown format {f['format']}")
        written[f["path"]] = dest
    return written


def files_of(written: dict[str, Path], fmt: str) -> list[Path]:
    """The written files of one format, in layout order."""
    return [written[f["path"]] for f in layout()["files"] if f["format"] == fmt]
