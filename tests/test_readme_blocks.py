"""Every ```python block of README.md runs as written: each in a fresh interpreter, on tiny weights,
with the device left to its default (the best available: the CPU here), with the environment the
README tells users to set (``MIMAFACE_WEIGHTS``: the default weights place, see its Quick start)
and in the folder it names (the pack's folder, where ``example_media/`` is).

The pack's folder is reproduced as ComfyUI users have it (``ComfyUI/custom_nodes/ComfyUI-MIMAFace``,
every entry a link to the pack's own) in a temporary tree, so that what a block writes stays out of
the repository and the files the README expects the user to have in ComfyUI's models folder (a
custom SD1.5 checkpoint and the SD1.5 reference) can be put there: tiny SD1.5-layout checkpoints
of the tiny UNet's size. The weights are ``audio_root`` (conftest): the tiny released layout, a
tiny VAE and SadTalker's weights from the fixture recipes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACK_NAME = "ComfyUI-MIMAFace"
#: the user's own files the README's custom-base example reads from ComfyUI/models/checkpoints
USER_CHECKPOINTS = ("myModel.safetensors", "v1-5-pruned-emaonly.safetensors")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number of the opening fence, code) of every ```python block."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start, i = i + 1, i + 1
            while lines[i].strip() != "```":
                i += 1
            blocks.append((start, "\n".join(lines[start:i]) + "\n"))
        i += 1
    return blocks


BLOCKS = python_blocks((ROOT / "README.md").read_text(encoding="utf-8"))


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 4, [line for line, _ in BLOCKS]
    assert all("```" not in code for _, code in BLOCKS)


@pytest.fixture(scope="module")
def pack_folder(released_root, tmp_path_factory):
    """``<tmp>/ComfyUI/custom_nodes/ComfyUI-MIMAFace`` holding links to the pack's entries, with the
    user's checkpoints in ``<tmp>/ComfyUI/models/checkpoints``."""
    from ldm_layout import sd15_like_unet, write_ldm_unet
    from mimaface_core.weights.unet import read_pretrained_unet

    comfy = tmp_path_factory.mktemp("readme") / "ComfyUI"
    pack = comfy / "custom_nodes" / PACK_NAME
    pack.mkdir(parents=True)
    for entry in ROOT.iterdir():
        if entry.name not in (".git", ".pytest_cache", ".ruff_cache", "__pycache__"):
            os.symlink(entry, pack / entry.name)
    checkpoints = comfy / "models" / "checkpoints"
    checkpoints.mkdir(parents=True)
    config, _, _ = read_pretrained_unet(released_root / "checkpoints/image/pretrained_unet")
    for seed, name in enumerate(USER_CHECKPOINTS, 1):
        write_ldm_unet(sd15_like_unet(config, seed), checkpoints / name, layers_per_block=config["layers_per_block"])
    return pack


@pytest.mark.parametrize("line, code", BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_readme_python_block_runs(line, code, pack_folder, audio_root):
    env = {k: v for k, v in os.environ.items() if k not in ("MIMAFACE_WEIGHTS", "PYTHONPATH")}
    env["MIMAFACE_WEIGHTS"] = str(audio_root)  # the README: the first place searched for the weights
    env["HF_HUB_OFFLINE"] = "1"  # a block that tried to download would fail here instead of hanging
    # `python -c` puts the current folder (the pack's) first on sys.path, as `pip install -e .` would
    run = subprocess.run([sys.executable, "-c", code], cwd=pack_folder, env=env, capture_output=True, text=True,
                         timeout=900, check=False)
    assert run.returncode == 0, f"README.md block at line {line} failed:\n{run.stdout[-2000:]}\n{run.stderr[-6000:]}"
    assert not re.search(r"^Traceback", run.stderr, re.M), run.stderr[-4000:]
