"""The 256 warp and the released identity chain (official_tiny ``warp256`` and ``identity`` cases)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import official_tiny as ot
from mimaface_core.media.warp import warp_affine
from mimaface_core.networks.identity_encoder import identity_input
from mimaface_core.media.images import to_signed_tensor


@pytest.fixture(scope="module")
def src512():
    return to_signed_tensor(np.asarray(ot.source_image()))


def test_warp256(src512):
    m = ot.tensor(ot.cases()["warp256"]["inputs"]["M256"])
    size = tuple(ot.cases()["warp256"]["outputs"]["crop256"]["shape"][-2:])
    ot.check("warp256", "crop256", warp_affine(src512.expand(len(m), -1, -1, -1), m, size))


def test_identity_input112(src512):
    ot.check("identity", "input112", identity_input(src512, ot.tensor(ot.cases()["identity"]["inputs"]["M256"])))


@torch.no_grad()
def test_identity_chain_end_to_end(src512, video_model):
    x112 = identity_input(src512, ot.tensor(ot.cases()["identity"]["inputs"]["M256"]))
    ot.check("identity", "deep_features", video_model.identity_encoder.deep_features(x112))


def test_identity_warp_is_pixel_exact_for_integer_shifts():
    """Independent check: a pure translation by whole pixels moves pixels, zero-filling the rest."""
    img = torch.arange(2 * 5 * 6, dtype=torch.float32).reshape(1, 2, 5, 6)
    out = warp_affine(img, torch.tensor([[1.0, 0, 2], [0, 1, 1]]), (5, 6))
    # grid_sample takes float32 normalised coordinates: allow their rounding (~1e-7 of the range)
    torch.testing.assert_close(out[:, :, 1:, 2:], img[:, :, :4, :4], atol=1e-4, rtol=1e-6)
    assert out[:, :, 0].abs().max() < 1e-4 and out[:, :, :, :2].abs().max() < 1e-4


def test_to_signed_tensor_rejects_rgba():
    with pytest.raises(ValueError, match="RGB"):
        to_signed_tensor(np.zeros((4, 4, 4), np.uint8))
