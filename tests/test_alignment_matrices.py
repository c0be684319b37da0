"""The released crop matrices (official_tiny ``alignment`` case: M256, its inverse, box corners, M512)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import official_tiny as ot
from mimaface_core.face.crops import box_crop_matrix, five_point_matrix, invert_affine, square_box_corners


def _items():
    entry = ot.cases()["alignment"]["inputs"]["items"]
    return json.loads((ot.fixture_dir() / entry["file"]).read_text())["items"]


def _tol(name):
    return ot.tolerance("alignment", name)


@pytest.mark.parametrize("item", _items(), ids=lambda it: it["name"])
def test_alignment_item(item):
    m256 = five_point_matrix(item["pts5"])
    np.testing.assert_allclose(m256, item["M256"], **_tol("M256"))
    np.testing.assert_allclose(invert_affine(m256), item["M256_inverse"], **_tol("M256_inverse"))
    if "box_xyxy" in item:
        np.testing.assert_allclose(square_box_corners(item["box_xyxy"]), item["box_pts4"], **_tol("box_pts4"))
        np.testing.assert_allclose(box_crop_matrix(item["box_xyxy"]), item["M512"], **_tol("M512"))


def test_square_box_has_the_closed_form():
    m = box_crop_matrix([100.0, 50.0, 300.0, 250.0])
    k = 352 / 200
    np.testing.assert_allclose(m, [[k, 0, 256 - k * 200], [0, k, 256 - k * 150]], atol=1e-9)
