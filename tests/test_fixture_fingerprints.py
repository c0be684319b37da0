"""The weight-recipe checks hold on any CPU and still catch a wrong regeneration.

A component with ``.pe`` positional tables is checked by ``sha256_drawn`` (the drawn entries alone)
and by each table against the float64 sinusoid within 1e-6; its all-entries ``sha256`` (which holds
the tables' bytes, so depends on the CPU's float32 ``sin``/``cos``) is not compared. A component
without tables is checked by ``sha256``. Each family is read from its environment variable's folder
(``MIMAFACE_FIXTURES_DIR``, ``MIMAFACE_TRAIN_FIXTURES_DIR``); the altered copies are made from it.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fixture_families import OFFICIAL_TINY, PE_ATOL, TRAIN_STEP, fingerprint, recipe_print

FAMILIES = {f.name: f for f in (OFFICIAL_TINY, TRAIN_STEP)}


def _components(family, with_pe: bool) -> list[str]:
    names = family.layout()["components"]
    return [n for n in names if any(k.endswith(".pe") for k, _, _ in family.component(n)["tensors"]) == with_pe]


def _pe_component(family) -> str:
    names = _components(family, with_pe=True)
    if not names:
        pytest.skip(f"{family.folder()} has no component with .pe tables")
    return min(names, key=lambda n: len(family.component(n)["tensors"]))


def _copy_with(family, monkeypatch, tmp_path: Path, name: str, **changes) -> dict:
    """A copy of the family's folder (symlinks) whose weights/<name>.json has ``changes``; the
    family's environment variable points at it. Returns the altered spec."""
    src = family.folder()
    for path in src.iterdir():
        if path.name != "weights":
            os.symlink(path.resolve(), tmp_path / path.name)
    (tmp_path / "weights").mkdir()
    for path in (src / "weights").iterdir():
        if path.name != f"{name}.json":
            os.symlink(path.resolve(), tmp_path / "weights" / path.name)
    spec = dict(family.component(name), **changes)
    (tmp_path / "weights" / f"{name}.json").write_text(json.dumps(spec))
    monkeypatch.setenv(family.env, str(tmp_path))
    assert family.component(name) == spec
    return spec


def _other_cpu_tables(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same component as another CPU computes it: every .pe table one float32 ulp off."""
    return {k: torch.nextafter(t, torch.full_like(t, math.inf)) if k.endswith(".pe") else t for k, t in state.items()}


@pytest.mark.parametrize("family_name", sorted(FAMILIES))
def test_another_cpus_sha256_passes_when_the_drawn_entries_match(family_name, monkeypatch, tmp_path):
    family = FAMILIES[family_name]
    name = _pe_component(family)
    state = family.regenerate(family.component(name))
    other = _other_cpu_tables(state)
    assert fingerprint(other) != fingerprint(state)
    _copy_with(family, monkeypatch, tmp_path, name, sha256=fingerprint(other))
    assert family.check_recipe(name, recipe_print(state)) == "sha256_drawn"
    assert family.check_recipe(name, recipe_print(other)) == "sha256_drawn"


@pytest.mark.parametrize("family_name", sorted(FAMILIES))
def test_a_wrong_sha256_drawn_fails(family_name, monkeypatch, tmp_path):
    family = FAMILIES[family_name]
    name = _pe_component(family)
    spec = family.component(name)
    state = family.regenerate(spec)
    wrong = format(int(spec["sha256_drawn"], 16) ^ 1, "064x")
    _copy_with(family, monkeypatch, tmp_path, name, sha256=fingerprint(state), sha256_drawn=wrong)
    with pytest.raises(AssertionError, match="sha256_drawn"):
        family.check_recipe(name, recipe_print(state))
    # a drawn tensor that is not the recipe's fails against the folder's own (right) sha256_drawn
    monkeypatch.delenv(family.env)
    drawn_key = next(k for k in state if not k.endswith(".pe") and state[k].is_floating_point())
    state[drawn_key] = state[drawn_key] * 1.5
    with pytest.raises(AssertionError, match="sha256_drawn"):
        family.check_recipe(name, recipe_print(state))


def test_a_pe_table_off_by_more_than_1e_6_fails():
    family = OFFICIAL_TINY
    name = _pe_component(family)
    state = family.regenerate(family.component(name))
    assert family.check_recipe(name, recipe_print(state)) == "sha256_drawn"
    key = next(k for k in state if k.endswith(".pe"))
    table = state[key].clone()
    table.view(-1)[table.numel() // 3] += 2 * PE_ATOL
    state[key] = table
    with pytest.raises(AssertionError, match=r"\.pe lies .* from the float64 sinusoid"):
        family.check_recipe(name, recipe_print(state))


def test_a_component_without_tables_is_checked_by_its_sha256(monkeypatch, tmp_path):
    family = OFFICIAL_TINY
    names = _components(family, with_pe=False)
    assert names, "every official_tiny component has .pe tables: nothing checks sha256"
    name = min(names, key=lambda n: sum(math.prod(s) for _, s, _ in family.component(n)["tensors"]))
    spec = family.component(name)
    state = family.regenerate(spec)
    assert family.check_recipe(name, recipe_print(state)) == "sha256"
    _copy_with(family, monkeypatch, tmp_path, name, sha256=format(int(spec["sha256"], 16) ^ 1, "064x"))
    with pytest.raises(AssertionError, match=r"\(sha256\)"):
        family.check_recipe(name, recipe_print(state))


_PRINT_IN_SUBPROCESS = """
import json, sys
sys.path.insert(0, sys.argv[1])
from fixture_families import OFFICIAL_TINY as F
name = sys.argv[2]
print(json.dumps(__import__("fixture_families").recipe_print(F.regenerate(F.component(name)))))
"""


def test_the_recipe_print_is_the_same_with_avx2_kernels():
    """torch's AVX2 kernels (ATEN_CPU_CAPABILITY=avx2, as on a machine without AVX-512) give the
    same drawn fingerprint and the same tables as this process's own kernels."""
    family = OFFICIAL_TINY
    name = _pe_component(family)
    here = recipe_print(family.regenerate(family.component(name)))
    env = dict(os.environ, ATEN_CPU_CAPABILITY="avx2")
    out = subprocess.run([sys.executable, "-c", _PRINT_IN_SUBPROCESS, str(Path(__file__).parent), name],
                         env=env, capture_output=True, text=True, check=True).stdout
    avx2 = json.loads(out.strip().splitlines()[-1])
    assert avx2 == here
    family.check_recipe(name, avx2)
