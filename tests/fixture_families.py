"""One loader for the golden fixture families the tests read.

A family is a folder of the project's shared fixtures, copied under ``tests/fixtures/<name>``; an
environment variable points a run at another folder of the same layout:

=================  ================================  =========================================
family             environment variable              what it holds
=================  ================================  =========================================
``official_tiny``  ``MIMAFACE_FIXTURES_DIR``         network, BFM and sampling cases of the release
``audio2coeff``    ``MIMAFACE_AUDIO_FIXTURES_DIR``   SadTalker's audio-to-coefficient cases
``train_step``     ``MIMAFACE_TRAIN_FIXTURES_DIR``   one optimizer step of the training scripts
``alignment``      ``MIMAFACE_ALIGNMENT_DIR``        the released MTCNN + crop pipeline on real media
=================  ================================  =========================================

Every family gets the same :class:`Family` API: its folder, files and JSON files in it, side files
that may be absent; and where the folder has a ``cases.json`` (all but ``alignment``), its cases,
the tensors their entries name (``{"file", "tensor"}``, or ``{"ref": "case.inputs|outputs.name"}``),
tolerance checks, and the weight recipe of ``weights/`` regenerated and written in the released file
formats. Every shape, size and parameter is read from the folder; see its README.md. The per-family
modules (``official_tiny``, ``audio_fixture``, ``train_fixture``, ``alignment_fixture``) bind one
family and add only what is particular to it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

FIXTURES = Path(__file__).parent / "fixtures"


# --- the weight recipe (the README of official_tiny and of audio2coeff, "Weights: the recipe") ---


def sinusoid64(shape) -> torch.Tensor:
    """The (1, L, D) positional table of a ``.pe`` key computed in float64 (the README's ``sinusoid``
    formula with every step in float64): the reference each regenerated table is checked against."""
    _, length, dim = shape
    position = torch.arange(length, dtype=torch.float64).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    pe = torch.zeros(1, length, dim, dtype=torch.float64)
    pe[0, :, 0::2] = torch.sin(position * div_term)
    pe[0, :, 1::2] = torch.cos(position * div_term)
    return pe


def _sinusoid(shape) -> torch.Tensor:
    """A ``.pe`` table as float32: the float64 sinusoid rounded once.

    The README's formula in float32 differs between CPUs in the last bit of ``sin``/``cos``
    (AVX-512 vs AVX2) and, through the float32 ``exp`` of the frequencies, lies up to 1.6e-6 from
    the exact sinusoid at D=128, more than the README's 1e-6 check allows. Rounding the float64
    table instead gives the same bytes on every CPU and lies within half a float32 ulp (<= 6e-8)
    of the sinusoid. Nothing loads these tables: the loader rebuilds them (diffusers'
    ``SinusoidalPositionalEmbedding``), so the golden outputs do not depend on them."""
    return sinusoid64(shape).float()


#: The one rule by which the recipes of the families differ, tried right after the int64 rule:
#: official_tiny (and train_step, which uses its recipe) keeps the ``.pe`` positional tables at
#: their sinusoid (no draw); audio2coeff draws ``classbias`` with std 1 (the official init).
RECIPES = {
    "official_tiny": lambda key, shape, g: _sinusoid(shape) if key.endswith(".pe") else None,
    "audio2coeff": lambda key, shape, g: torch.randn(shape, generator=g) if key.endswith("classbias") else None,
}


def regenerate(spec: dict, recipe: str = "official_tiny") -> dict[str, torch.Tensor]:
    """A component's tensors by the fixture README's recipe, exactly: drawn in the listed order."""
    special = RECIPES[recipe]
    g = torch.Generator("cpu").manual_seed(spec["seed"])
    gain = spec.get("gain", 1.0)
    out = {}
    for key, shape, dtype in spec["tensors"]:
        shape = tuple(shape)
        if dtype == "int64":
            t = torch.zeros(shape, dtype=torch.int64)
        elif (t := special(key, shape, g)) is not None:
            pass
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


def fingerprint(state: dict[str, torch.Tensor], drawn_only: bool = False) -> str:
    """sha256 over the entries in order of ``key + b"\\0" + contiguous bytes`` (the READMEs' ``sha256``);
    with ``drawn_only``, over the drawn entries alone, every ``.pe`` entry left out (``sha256_drawn``)."""
    h = hashlib.sha256()
    for key, t in state.items():
        if drawn_only and key.endswith(".pe"):
            continue
        h.update(key.encode() + b"\0" + t.contiguous().numpy().tobytes())
    return h.hexdigest()


#: How far a regenerated ``.pe`` table may lie from :func:`sinusoid64` (official_tiny README,
#: "Computed tables differ between CPUs").
PE_ATOL = 1e-6


def recipe_print(state: dict[str, torch.Tensor]) -> dict:
    """What the checks of a regenerated component compare: ``sha256`` (all entries), ``sha256_drawn``
    (drawn entries only) and ``pe_error`` ({``.pe`` key: max |table - float64 sinusoid|})."""
    return {
        "sha256": fingerprint(state),
        "sha256_drawn": fingerprint(state, drawn_only=True),
        "pe_error": {k: float((t.double() - sinusoid64(tuple(t.shape))).abs().max())
                     for k, t in state.items() if k.endswith(".pe")},
    }


def check_recipe_print(spec: dict, found: dict) -> str:
    """Assert a regenerated component (its :func:`recipe_print`) matches its ``weights/<name>.json``.

    Where the component has ``.pe`` tables, their bytes depend on the CPU, so ``sha256_drawn`` is
    compared and each table is checked against the float64 sinusoid within :data:`PE_ATOL`; the
    all-entries ``sha256`` is compared only where there is no ``.pe`` table. Returns the name of the
    fingerprint compared. Raises AssertionError naming the component."""
    name = spec["component"]
    pe_keys = [key for key, _, _ in spec["tensors"] if key.endswith(".pe")]
    if not pe_keys:
        assert found["sha256"] == spec["sha256"], f"regenerated {name} differs from the recipe (sha256)"
        return "sha256"
    assert "sha256_drawn" in spec, (
        f"{name} has .pe tables but its weights/{name}.json has no sha256_drawn (an old copy of the "
        "fixture: its sha256 depends on the CPU); update the folder from the project's shared fixtures")
    assert found["sha256_drawn"] == spec["sha256_drawn"], f"regenerated {name} differs from the recipe (sha256_drawn)"
    assert sorted(found["pe_error"]) == sorted(pe_keys), f"{name}: the .pe tables regenerated are not the recipe's"
    for key, err in found["pe_error"].items():
        assert err <= PE_ATOL, f"{name}: {key} lies {err:.2e} from the float64 sinusoid (more than {PE_ATOL:g})"
    return "sha256_drawn"


def write_component(spec: dict, state: dict[str, torch.Tensor], root: Path) -> None:
    """Write one component in its released file format (official_tiny README "Writing the released layout")."""
    from safetensors.torch import save_file

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


def clone_layout(src: Path, dst: Path) -> Path:
    """A copy of a written layout made of symlinks (cheap); replace files by unlinking first."""
    for path in src.rglob("*"):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, target)
    return dst


# --- the loader ---


@lru_cache(maxsize=None)
def _json_cached(path: str) -> dict:
    return json.loads(Path(path).read_text())


@lru_cache(maxsize=None)
def _tensor_file(path: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path)


@dataclass(frozen=True)
class Family:
    """A fixture folder: ``$<env>`` when set, else ``tests/fixtures/<name>``."""

    name: str
    env: str
    #: the weight recipe of its README (a key of :data:`RECIPES`)
    recipe: str = "official_tiny"
    #: keep each tensor file in memory once read (False: read the one tensor asked for, fresh)
    cache_tensors: bool = True

    # files

    def folder(self) -> Path:
        return Path(os.environ.get(self.env, FIXTURES / self.name))

    def path(self, relative: str) -> Path:
        return self.folder() / relative

    def json(self, relative: str) -> dict:
        """A JSON file of the folder, read afresh."""
        return json.loads(self.path(relative).read_text())

    def side_file(self, relative: str | None) -> Path | None:
        """A file of the folder that may be absent: its path, or None."""
        if not relative:
            return None
        path = self.path(relative)
        return path if path.is_file() else None

    # cases.json

    def cases_json(self) -> dict:
        """The whole ``cases.json`` (read once per folder)."""
        return _json_cached(str(self.path("cases.json")))

    def cases(self) -> dict:
        return self.cases_json()["cases"]

    def case(self, name: str) -> dict:
        return self.cases()[name]

    def resolve(self, entry: dict) -> dict:
        """Follow ``{"ref": "case.inputs|outputs.name"}`` links to the entry holding the tensor."""
        while "ref" in entry:
            c, kind, name = entry["ref"].split(".")
            found = self.case(c)[kind].get(name)
            if found is None:  # audio2coeff points some inputs at "outputs" (e.g. audio2exp's ref_coeff)
                other = "inputs" if kind == "outputs" else "outputs"
                found = self.case(c)[other][name]
            entry = found
        return entry

    def tensor(self, entry: dict) -> torch.Tensor:
        """The tensor an entry (``{"file", "tensor"}`` or a ``ref``) points to."""
        entry = self.resolve(entry)
        path = str(self.path(entry["file"]))
        if self.cache_tensors:
            return _tensor_file(path)[entry["tensor"]]
        from safetensors import safe_open

        with safe_open(path, "pt") as f:
            return f.get_tensor(entry["tensor"])

    def case_tensor(self, case: str, section: str, name: str) -> torch.Tensor:
        """The tensor of entry ``name`` in section ``section`` (inputs, outputs, tensors) of a case."""
        return self.tensor(self.case(case)[section][name])

    def inp(self, case: str, name: str) -> torch.Tensor:
        return self.case_tensor(case, "inputs", name)

    def out(self, case: str, name: str) -> torch.Tensor:
        return self.case_tensor(case, "outputs", name)

    def data_file(self, case: str, name: str) -> Path:
        """The file an input entry of a case names (audio, images: not a tensor)."""
        return self.path(self.case(case)["inputs"][name]["file"])

    def tolerance(self, case: str, output: str) -> dict:
        tol = self.case(case)["tolerance"][output]
        return dict(atol=tol["atol"], rtol=tol["rtol"])

    def check(self, case: str, output: str, got) -> float:
        """Assert ``got`` matches a case output within its tolerance; return max |got − ref|."""
        ref = self.out(case, output)
        got = torch.as_tensor(got)
        assert tuple(got.shape) == tuple(ref.shape), f"{case}.{output}: shape {tuple(got.shape)} != {tuple(ref.shape)}"
        got = got.detach().to(ref.dtype).cpu()
        torch.testing.assert_close(got, ref, **self.tolerance(case, output), msg=lambda m: f"{case}.{output}: {m}")
        return float((got.double() - ref.double()).abs().max()) if ref.numel() else 0.0

    # weights/: the recipe and the released layout

    def layout(self) -> dict:
        return self.json("weights/layout.json")

    def component(self, name: str) -> dict:
        return self.json(f"weights/{name}.json")

    def regenerate(self, spec: dict) -> dict[str, torch.Tensor]:
        return regenerate(spec, self.recipe)

    def check_recipe(self, name: str, found: dict) -> str:
        """:func:`check_recipe_print` against this folder's ``weights/<name>.json``."""
        return check_recipe_print(self.component(name), found)

    def write_released_layout(self, root: Path) -> dict[str, dict]:
        """A ``layout.json`` with ``components`` (one released file or folder each) and ``data_files``:
        regenerate every component into ``root``, copy the data files; return each component's
        :func:`recipe_print` (check them with :meth:`check_recipe`)."""
        prints = {}
        spec_layout = self.layout()
        for name in spec_layout["components"]:
            spec = self.component(name)
            state = self.regenerate(spec)
            prints[name] = recipe_print(state)
            write_component(spec, state, root)
            del state
        for src, dst in spec_layout.get("data_files", {}).items():
            (root / dst).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.path(src), root / dst)
        return prints

    def write_layout_files(self, root: Path) -> dict[str, Path]:
        """A ``layout.json`` with ``files`` (each holding one or more components): write every file
        under ``root``; return {path in layout.json: written path}. Fingerprints are checked on the way."""
        from safetensors.torch import save_file

        files = self.layout()["files"]
        states = {}
        for f in files:
            for name in f.get("components", [f.get("component")]):
                if name not in states:
                    spec = self.component(name)
                    states[name] = self.regenerate(spec)
                    check_recipe_print(spec, recipe_print(states[name]))
        written = {}
        for f in files:
            dest = root / f["path"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            if f["format"] == "safetensors_prefixed":
                merged = {}
                for name in f["components"]:
                    prefix = self.component(name)["prefix"]
                    merged.update({f"{prefix}.{k}": v for k, v in states[name].items()})
                save_file(merged, str(dest), metadata={"format": "pt"})
            elif f["format"] == "torch_cpk":
                torch.save({"model": states[f["component"]], "epoch": f["epoch"]}, dest)
            else:
                raise ValueError(f"unknown format {f['format']}")
            written[f["path"]] = dest
        return written

    def files_of(self, written: dict[str, Path], fmt: str) -> list[Path]:
        """The files :meth:`write_layout_files` wrote in one format, in layout order."""
        return [written[f["path"]] for f in self.layout()["files"] if f["format"] == fmt]


OFFICIAL_TINY = Family("official_tiny", "MIMAFACE_FIXTURES_DIR")
AUDIO2COEFF = Family("audio2coeff", "MIMAFACE_AUDIO_FIXTURES_DIR", recipe="audio2coeff")
#: its weights follow official_tiny's recipe (its README); its tensors are read one at a time
TRAIN_STEP = Family("train_step", "MIMAFACE_TRAIN_FIXTURES_DIR", cache_tensors=False)
ALIGNMENT = Family("alignment", "MIMAFACE_ALIGNMENT_DIR")

FAMILIES = {f.name: f for f in (OFFICIAL_TINY, AUDIO2COEFF, TRAIN_STEP, ALIGNMENT)}
