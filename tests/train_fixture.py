"""The train_step fixture: one optimizer step of the released training scripts (inputs, draws,
intermediates, loss, gradients, parameters after AdamW; ``fixture_families``). Read from
MIMAFACE_TRAIN_FIXTURES_DIR when set, else tests/fixtures/train_step (a copy of the project's shared
fixture). Its weights follow official_tiny's recipe."""

from __future__ import annotations

from pathlib import Path

import torch

from fixture_families import TRAIN_STEP as FAMILY

fixture_dir = FAMILY.folder
cases = FAMILY.cases


def tensor(case: str, name: str) -> torch.Tensor:
    """An entry of the case's ``tensors`` (inputs, draws, intermediates, gradients, parameters)."""
    return FAMILY.case_tensor(case, "tensors", name)


def parameter_table(case: str) -> dict[str, dict]:
    table = FAMILY.json(FAMILY.case(case)["parameter_table"])["parameters"]
    return {row["name"]: row for row in table}


def write_weights(root: Path) -> Path:
    """Regenerate the fixture's weight recipe (its weights/ folder) into ``root`` in the released layout
    (each component checked by ``fixture_families.check_recipe_print``: ``sha256_drawn`` and the
    ``.pe`` tables where it has them, else ``sha256``)."""
    for name, found in FAMILY.write_released_layout(root).items():
        FAMILY.check_recipe(name, found)
    return root


def our_name(name: str) -> str:
    """A fixture parameter name (the release's: ``unet.``, ``mim.``, ``clip.`` prefixes, AnimateDiff
    motion-module names) → the name in :class:`TrainModels` (diffusers motion-module names)."""
    if name.startswith("unet.") and "motion_modules." in name:
        from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers

        (converted,) = convert_animatediff_checkpoint_to_diffusers({name[len("unet."):]: torch.zeros(1)})
        return "unet." + converted
    return name


def allclose(got: torch.Tensor, ref: torch.Tensor, tol: dict, what: str, floor: float = 0.0) -> None:
    """Assert closeness with a cases.json tolerance entry (atol/rtol, or atol_times_max_abs_ref),
    with an optional absolute floor on atol."""
    got = got.detach().to(ref.dtype).cpu()
    assert tuple(got.shape) == tuple(ref.shape), f"{what}: shape {tuple(got.shape)} != {tuple(ref.shape)}"
    atol = tol.get("atol", 0.0)
    if "atol_times_max_abs_ref" in tol:
        atol = tol["atol_times_max_abs_ref"] * float(ref.abs().max())
    atol = max(atol, floor)
    if ref.dtype in (torch.int64, torch.int32, torch.bool) or (atol == 0 and tol.get("rtol", 0) == 0):
        assert torch.equal(got, ref), f"{what}: not equal"
        return
    torch.testing.assert_close(got, ref, atol=atol, rtol=tol.get("rtol", 0.0), msg=lambda m: f"{what}: {m}")
