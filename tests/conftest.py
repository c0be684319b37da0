"""Session fixtures shared by the test modules: the official_tiny weights regenerated once in the
released layout (and the layouts built on it), SadTalker's audio weights, the train_step weights,
the fixture's BFM, MTCNN and the evaluation's face estimators."""

from __future__ import annotations

import os

import pytest
import torch

import audio_fixture
import official_tiny


@pytest.fixture(scope="session")
def released(tmp_path_factory):
    """(root, {component: fixture_families.recipe_print}) of the regenerated released snapshot (about 1 GB,
    written once; test_weight_recipe_fingerprints checks the prints)."""
    root = tmp_path_factory.mktemp("released")
    prints = official_tiny.write_released_layout(root)
    return root, prints


@pytest.fixture(scope="session")
def released_root(released):
    return released[0]


@pytest.fixture(scope="session")
def video_model(released_root):
    from mimaface_core import load_mimaface

    return load_mimaface(released_root, mode="video")


@pytest.fixture(scope="session")
def image_model(released_root):
    from mimaface_core import load_mimaface

    return load_mimaface(released_root, mode="image")


@pytest.fixture(scope="session")
def bfm():
    """The BFM09 model of the official_tiny ``bfm`` case."""
    from mimaface_core.morphable.bfm import load_bfm09

    return load_bfm09(official_tiny.bfm_file())


@pytest.fixture(scope="session")
def mtcnn():
    from mimaface_core.face.mtcnn import MTCNNDetector

    return MTCNNDetector()


@pytest.fixture(scope="session")
def estimators(released_root):
    """The evaluation's face estimators (D3DFR, identity encoder) of the regenerated released snapshot."""
    from mimaface_core.evaluation import face_measures

    return face_measures.load_estimators(released_root)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


#: A tiny SD-style VAE that downsamples by 32 (six blocks), so that 512 renders give 16x16
#: latents, the size the tiny UNet of official_tiny was made for; random weights.
TINY_VAE_32X = dict(block_out_channels=(8,) * 6, layers_per_block=1, latent_channels=4, norm_num_groups=4,
                    down_block_types=("DownEncoderBlock2D",) * 6, up_block_types=("UpDecoderBlock2D",) * 6,
                    scaling_factor=0.18215)


@pytest.fixture(scope="session")
def animate_root(released_root, tmp_path_factory):
    """The regenerated released layout plus a tiny VAE in ``sd-vae-ft-mse`` (symlinked copy)."""
    from diffusers import AutoencoderKL

    root = official_tiny.clone_layout(released_root, tmp_path_factory.mktemp("animate"))
    torch.manual_seed(5)
    AutoencoderKL(**TINY_VAE_32X).save_pretrained(root / "sd-vae-ft-mse")
    return root


@pytest.fixture(scope="session")
def animate_model(animate_root):
    from mimaface_core import load_mimaface

    return load_mimaface(animate_root, mode="video")


@pytest.fixture(scope="session")
def train_root(tmp_path_factory):
    """The train_step fixture's weight recipe regenerated in the released layout (the four
    components the training stages start from)."""
    import train_fixture

    return train_fixture.write_weights(tmp_path_factory.mktemp("train_weights"))


@pytest.fixture(scope="session")
def sadtalker_files(tmp_path_factory):
    """SadTalker's audio weights in both official forms (the combined safetensors with decoy keys,
    and the older .pth pair), regenerated from the audio2coeff recipe (fingerprints checked):
    {path in the fixture's layout.json: written file}."""
    return audio_fixture.write_official_layout(tmp_path_factory.mktemp("sadtalker"))


@pytest.fixture(scope="session")
def sadtalker_combined(sadtalker_files):
    """The combined ``SadTalker_V0.0.2_256.safetensors``-form file."""
    return audio_fixture.files_of(sadtalker_files, "safetensors_prefixed")[0]


@pytest.fixture(scope="session")
def audio_nets(sadtalker_combined):
    from mimaface_core.audio import load_audio_networks

    return load_audio_networks(sadtalker_combined)


@pytest.fixture(scope="session")
def audio_root(animate_root, sadtalker_combined, tmp_path_factory):
    """The animate layout plus ``sadtalker/SadTalker_V0.0.2_256.safetensors`` (the CLI's default)."""
    from mimaface_core.audio.weights import COMBINED_FILE, SNAPSHOT_SUBFOLDER

    root = official_tiny.clone_layout(animate_root, tmp_path_factory.mktemp("audio_root"))
    (root / SNAPSHOT_SUBFOLDER).mkdir()
    os.symlink(sadtalker_combined, root / SNAPSHOT_SUBFOLDER / COMBINED_FILE)
    return root
