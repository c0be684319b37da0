"""Session fixtures: the official_tiny weights regenerated once in the released layout."""

from __future__ import annotations

import pytest
import torch

import official_tiny


@pytest.fixture(scope="session")
def released(tmp_path_factory):
    """(root, fingerprints) of the regenerated released snapshot (about 1 GB, written once)."""
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


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield
