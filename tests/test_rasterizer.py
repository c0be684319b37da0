"""The z-buffer renderer (docs/ALIGNMENT.md §9–§11) against independent per-pixel geometry.

Expected values come from direct formulas (2x2 solves for barycentrics, point–segment distances,
ray–plane intersections), never from the renderer's own edge functions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import official_tiny as ot
from mimaface_core.media.warp import warp_affine
from mimaface_core.morphable import rasterizer
from mimaface_core.morphable.rasterizer import composite_512, rasterize, render_coefficients, render_mesh
from mimaface_core.morphable.reconstruction import project, reconstruct


def _bary(p, tri):
    """Screen barycentrics of point p (2,) in triangle tri (3,2) by solving p = t0 + s·(t1−t0) + t·(t2−t0)."""
    s, t = np.linalg.solve(np.stack([tri[1] - tri[0], tri[2] - tri[0]], 1), p - tri[0])
    return np.array([1 - s - t, s, t])


def _segment_distance(p, a, b):
    h = np.clip(np.dot(p - a, b - a) / np.dot(b - a, b - a), 0, 1)
    return float(np.linalg.norm(p - a - h * (b - a)))


def _centre(r, c):
    return np.array([c + 0.5, r + 0.5])


def _raster(pixels, depth, faces, colors, size):
    """``rasterize`` of one frame given as numpy arrays (float64 geometry)."""
    return rasterize(torch.tensor(pixels)[None], torch.tensor(depth)[None], torch.tensor(faces),
                     torch.tensor(colors, dtype=torch.float64)[None], size)


@pytest.fixture(scope="module")
def coeffs():
    return ot.tensor(ot.cases()["bfm"]["inputs"]["coeffs"])


@pytest.mark.parametrize("chunk", [rasterizer.CHUNK, 7])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coverage_is_the_union_of_triangles(seed, chunk, monkeypatch):
    monkeypatch.setattr(rasterizer, "CHUNK", chunk)
    rng = np.random.default_rng(seed)
    size = 24
    pixels = rng.uniform(-4, size + 4, (10, 2))
    pixels[9] = (pixels[0] + pixels[1]) / 2  # triangle (0, 1, 9) is degenerate
    depth = rng.uniform(1, 5, 10)
    depth[8] = -1.0  # triangles using vertex 8 are behind the camera
    faces = np.array([rng.choice(8, 3, replace=False) for _ in range(6)] + [[0, 1, 9], [2, 3, 8]])
    _, mask = _raster(pixels, depth, faces, np.ones((10, 1)), size)
    visible = [pixels[f] for f in faces[:6]]
    for r in range(size):
        for c in range(size):
            p = _centre(r, c)
            if any(_segment_distance(p, t[i], t[(i + 1) % 3]) < 1e-6 for t in visible for i in range(3)):
                continue
            inside = any((_bary(p, t) >= 0).all() for t in visible)
            assert mask[0, 0, r, c] == float(inside), (seed, r, c)


def test_vertex_pixels_take_the_vertex_colour_and_grid_has_no_cracks():
    rng = np.random.default_rng(3)
    cols, rows = 3 + 4 * np.arange(4), 2 + 5 * np.arange(4)
    grid = np.array([[c + 0.5, r + 0.5] for r in rows for c in cols])
    colors = rng.uniform(0, 255, (16, 3))
    depth = rng.uniform(2, 8, 16)
    idx = np.arange(16).reshape(4, 4)
    faces = np.concatenate([np.stack([idx[:-1, :-1], idx[1:, :-1], idx[:-1, 1:]], -1).reshape(-1, 3),
                            np.stack([idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]], -1).reshape(-1, 3)])
    image, mask = _raster(grid, depth, faces, colors, 20)
    for k, (r, c) in enumerate((r, c) for r in rows for c in cols):
        np.testing.assert_allclose(image[0, :, r, c].numpy(), colors[k], rtol=0, atol=1e-4)
    expected = np.zeros((20, 20))
    expected[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = 1  # every centre of the closed rectangle
    np.testing.assert_array_equal(mask[0, 0].numpy(), expected)


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_nearer_triangle_wins_whatever_the_order(order):
    pixels = np.array([[2.0, 3.0], [20.0, 5.0], [6.0, 19.0], [4.0, 2.0], [21.0, 15.0], [12.0, 21.0]])
    depth = np.array([3.0, 3.0, 3.0, 2.0, 2.5, 2.2])  # the second triangle is nearer everywhere
    colors = np.array([[255.0, 0, 0]] * 3 + [[0, 255.0, 0]] * 3)
    tris = [np.array([0, 1, 2]), np.array([3, 4, 5])]
    faces = np.stack([tris[i] for i in order])
    image, mask = _raster(pixels, depth, faces, colors, 24)
    seen = {"both": 0, "far only": 0}
    for r in range(24):
        for c in range(24):
            p = _centre(r, c)
            far, near = (_bary(p, pixels[t]).min() for t in tris)
            if min(abs(far), abs(near)) < 1e-6:
                continue
            far, near = far > 0, near > 0
            if near:
                assert image[0, 1, r, c] == 255 and image[0, 0, r, c] == 0
                seen["both"] += far
            elif far:
                assert image[0, 0, r, c] == 255 and image[0, 1, r, c] == 0
                seen["far only"] += 1
    assert min(seen.values()) > 10


@pytest.mark.parametrize("chunk", [rasterizer.CHUNK, 7])  # both triangles in one chunk, or apart
@pytest.mark.parametrize("first", [0, 1])
def test_equal_depth_goes_to_the_smallest_triangle_index(first, chunk, monkeypatch):
    monkeypatch.setattr(rasterizer, "CHUNK", chunk)
    pixels = np.tile(np.array([[2.0, 2.0], [14.0, 3.0], [5.0, 13.0]]), (2, 1))
    colors = np.array([[10.0]] * 3 + [[20.0]] * 3)
    faces = np.array([[0, 1, 2], [3, 4, 5]])[[first, 1 - first]]
    image, mask = _raster(pixels, np.full(6, 4.0), faces, colors, 16)
    assert mask.sum() > 20
    assert (image[mask.bool()] == (10.0, 20.0)[first]).all()


def test_interpolation_is_perspective_correct():
    size, focal = 64, 1015.0 * 256 / 224 * 64 / 256
    corners = np.array([[-0.6, -0.6], [0.6, -0.6], [0.6, 0.6], [-0.6, 0.6]])
    verts = np.concatenate([corners, 3 * corners[:, :1]], 1)  # plane Z = 3X: depth 8.2 … 11.8
    colors = np.stack([255 * (verts[:, 0] + 0.6) / 1.2, 255 * (verts[:, 1] + 0.6) / 1.2, np.full(4, 128.0)], 1)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    img, mask = render_mesh(torch.tensor(verts)[None], torch.tensor(colors)[None], torch.tensor(faces), size)
    rgb = (img[0].double().numpy() + 1) / 2 * 255
    screen = np.stack([size / 2 + focal * verts[:, 0] / (10 - verts[:, 2]),
                       size / 2 - focal * verts[:, 1] / (10 - verts[:, 2])], 1)
    worst_true, worst_affine = 0.0, 0.0
    for r in range(size):
        for c in range(size):
            a, b = (c + 0.5 - size / 2) / focal, -(r + 0.5 - size / 2) / focal  # ray (a·t, b·t, 10 − t)
            t = 10 / (1 + 3 * a)
            x, y = a * t, b * t
            if max(abs(x), abs(y)) > 0.58:
                continue
            assert mask[0, 0, r, c] == 1
            true = np.array([255 * (x + 0.6) / 1.2, 255 * (y + 0.6) / 1.2, 128.0])
            worst_true = max(worst_true, np.abs(rgb[:, r, c] - true).max())
            bary = [_bary(_centre(r, c), screen[f]) for f in faces]
            f = int(np.argmax([w.min() for w in bary]))
            worst_affine = max(worst_affine, np.abs(rgb[:, r, c] - bary[f] @ colors[faces[f]]).max())
    assert worst_true < 1e-2
    assert worst_affine > 3.0


def test_render_and_composite(bfm, coeffs):
    img, mask = render_coefficients(bfm, coeffs)
    n = len(coeffs)  # the fixture's coefficient count
    assert img.shape == (n, 3, 256, 256) and mask.shape == (n, 1, 256, 256)
    assert img.dtype == mask.dtype == torch.float32
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert img.min() >= -1 and img.max() <= 1
    assert (img[mask.expand_as(img) == 0] == -1).all()
    assert (img[mask.expand_as(img) == 1] > -1).any()
    # the 512 render has the same field of view: its mask, pooled 2x2, matches the 256 mask
    _, mask512 = render_coefficients(bfm, coeffs[:1], size=512)
    assert (torch.nn.functional.avg_pool2d(mask512, 2).round() != mask[:1]).float().mean() < 0.01

    angle = 0.1
    m = torch.tensor([[2 * np.cos(angle), -2 * np.sin(angle), 30.0], [2 * np.sin(angle), 2 * np.cos(angle), -20.0]])
    for m_inv in (m, m.expand(n, 2, 3)):
        out, mask_out = composite_512(img, mask, m_inv)
        assert out.shape == (n, 3, 512, 512)
        assert out.min() >= -1 and out.max() <= 1
        m512 = warp_affine(mask, m, (512, 512))
        torch.testing.assert_close(mask_out, m512.clamp(0, 1))
        assert (out[(m512 == 0).expand_as(out)] == -1).all() and (m512 == 0).float().mean() > 0.3
        inner = (m512 == 1).expand_as(out)
        torch.testing.assert_close(out[inner], warp_affine(img, m, (512, 512))[inner])


def test_batch_equals_frames_and_chunking_is_invisible(bfm, coeffs, monkeypatch):
    mesh = reconstruct(bfm, coeffs)
    pixels, depth = project(mesh.vertices), 10 - mesh.vertices[..., 2]
    image, mask = rasterize(pixels, depth, bfm.tri, mesh.colors, 256)
    for f in range(len(coeffs)):
        one = rasterize(pixels[f:f + 1], depth[f:f + 1], bfm.tri, mesh.colors[f:f + 1], 256)
        assert torch.equal(one[0], image[f:f + 1]) and torch.equal(one[1], mask[f:f + 1])
    monkeypatch.setattr(rasterizer, "CHUNK", 5000)
    small = rasterize(pixels[:2], depth[:2], bfm.tri, mesh.colors[:2], 256)
    assert torch.equal(small[0], image[:2]) and torch.equal(small[1], mask[:2])


def test_shape_errors():
    with pytest.raises(ValueError, match="pixels"):
        rasterize(torch.zeros(1, 3), torch.ones(1, 3), torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3, 1), 8)
    with pytest.raises(ValueError, match="depth"):
        rasterize(torch.zeros(1, 3, 2), torch.ones(3), torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3, 1), 8)
    with pytest.raises(ValueError, match="face indices"):
        rasterize(torch.zeros(1, 3, 2), torch.ones(1, 3), torch.tensor([[0, 1, 3]]), torch.zeros(1, 3, 1), 8)
    with pytest.raises(ValueError, match="257"):
        render_coefficients(None, torch.zeros(2, 100))
    with pytest.raises(ValueError, match="matrices"):
        composite_512(torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 8), torch.zeros(1, 3, 3))
