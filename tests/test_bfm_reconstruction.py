"""BFM geometry, shading, projection and the coefficient blend (official_tiny ``bfm`` and ``blend`` cases)."""

from __future__ import annotations

import pytest
import torch

import official_tiny as ot
from mimaface_core.morphable.coefficients import EXP, ID, blend
from mimaface_core.morphable.reconstruction import centred_shape, project, reconstruct


def test_bfm_case(bfm):
    coeffs = ot.tensor(ot.cases()["bfm"]["inputs"]["coeffs"])
    mesh = reconstruct(bfm, coeffs)
    ot.check("bfm", "vertices_centred", centred_shape(bfm, coeffs[:, ID], coeffs[:, EXP]))
    ot.check("bfm", "rotation_rowvec", mesh.rotation.transpose(1, 2))
    ot.check("bfm", "vertices", mesh.vertices)
    ot.check("bfm", "albedo", mesh.albedo)
    ot.check("bfm", "normals", mesh.normals)
    ot.check("bfm", "normals_rotated", mesh.normals_rotated)
    ot.check("bfm", "colors", mesh.colors)
    ot.check("bfm", "lms_proj", project(mesh.vertices[:, bfm.keypoints]))


def test_batch_of_three_uses_the_xyz_axis(bfm):
    """The released cross product would pick the batch axis for B == 3; ours must not."""
    coeffs = ot.tensor(ot.cases()["bfm"]["inputs"]["coeffs"])
    three = reconstruct(bfm, coeffs[:3]).normals
    torch.testing.assert_close(three, reconstruct(bfm, coeffs).normals[:3])


def test_blend_case():
    case = ot.cases()["blend"]["inputs"]
    ot.check("blend", "blend", blend(ot.tensor(case["blend_src"]), ot.tensor(case["blend_drv"])))


def test_blend_rejects_wrong_width():
    with pytest.raises(ValueError, match="261"):
        blend(torch.zeros(1, 257), torch.zeros(2, 261))
