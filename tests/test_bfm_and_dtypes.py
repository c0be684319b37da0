"""BFM09 reading and the model's device/dtype placement."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.io import loadmat, savemat

import official_tiny as ot
from mimaface_core import MissingWeightFileError, WeightFileError, load_mimaface
from mimaface_core.morphable.bfm import load_bfm09

BFM_FILE = ot.bfm_file()


def test_bfm09_fields_and_index_conventions():
    raw = loadmat(str(BFM_FILE))
    bfm = load_bfm09(BFM_FILE)
    v = raw["meanshape"].size // 3
    assert bfm.num_vertices == v
    assert bfm.id_base.shape == raw["idBase"].shape and bfm.exp_base.dtype == torch.float32
    np.testing.assert_array_equal(bfm.tri.numpy(), raw["tri"].astype(np.int64) - 1)
    assert int(bfm.tri.min()) == 0 and int(bfm.tri.max()) == v - 1
    assert int(bfm.point_buf.min()) == -1  # 0 padding of the file becomes -1
    np.testing.assert_array_equal(bfm.keypoints.numpy(), raw["keypoints"].reshape(-1).astype(np.int64) - 1)


def test_bfm09_errors(tmp_path):
    with pytest.raises(MissingWeightFileError, match="BFM09_model_info.mat"):
        load_bfm09(tmp_path / "absent.mat")
    raw = {k: v for k, v in loadmat(str(BFM_FILE)).items() if not k.startswith("__") and k != "texBase"}
    savemat(str(tmp_path / "partial.mat"), raw)
    with pytest.raises(WeightFileError, match="texBase"):
        load_bfm09(tmp_path / "partial.mat")


def test_dtype_applies_to_diffusion_parts_only(released_root):
    model = load_mimaface(released_root, "image", dtype=torch.bfloat16)
    for part in (model.denoiser, model.appearance_encoder, model.mim):
        assert {p.dtype for p in part.parameters()} == {torch.bfloat16}
    for part in (model.d3dfr, model.identity_encoder):
        assert {p.dtype for p in part.parameters()} == {torch.float32}
    assert model.vae is None
    with pytest.raises(MissingWeightFileError, match="sd-vae-ft-mse"):
        model.require_vae()


def test_unknown_mode(released_root):
    with pytest.raises(ValueError, match="image"):
        load_mimaface(released_root, "audio")
