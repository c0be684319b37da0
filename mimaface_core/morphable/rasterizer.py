"""Hard z-buffer mesh renderer in pure torch, standing in for the release's pytorch3d render (docs/ALIGNMENT.md §9–§11).

Equivalent to pytorch3d's ``MeshRasterizer`` with blur_radius 0, faces_per_pixel 1, no backface
culling and perspective-correct barycentrics, followed by an ambient-only ``SoftPhongShader`` with a
black background: every pixel centre takes the perspective-correct interpolation of the vertex
colours of its nearest covering triangle. Vectorised over frames, triangles and pixels; the
(triangle, candidate pixel) pairs are processed in chunks of ``CHUNK``, so memory stays bounded
(about 0.1 GB plus a few float64 buffers of the output's size). Geometry is evaluated in float64,
outputs are float32.
"""

from __future__ import annotations

import torch

from ..media.warp import warp_affine
from .bfm import BFM09Model
from .coefficients import NUM_RENDER_COEFFS
from .reconstruction import CAMERA_DISTANCE, FOCAL, RENDER_SIZE, project, reconstruct

#: Most (triangle, candidate pixel) pairs evaluated at once (about 0.2 KB of temporaries each).
CHUNK = 1 << 19


def _edge(a: torch.Tensor, d: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Twice the signed area of (a, a + d, p), i.e. d × (p − a); (..., 2) points → (...)."""
    return d[..., 0] * (p[..., 1] - a[..., 1]) - d[..., 1] * (p[..., 0] - a[..., 0])


def rasterize(pixels: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, colors: torch.Tensor,
              size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Z-buffer rasterisation with perspective-correct colour interpolation (docs/ALIGNMENT.md §10).

    Pixel (row r, column c) is sampled at its centre (u, v) = (c + 0.5, r + 0.5). A centre is
    covered by a triangle when its three barycentrics are >= 0 (edges and vertices inclusive;
    pytorch3d's test is strict, which differs only for centres exactly on an edge). Shared edges
    are evaluated identically from both sides, so a closed mesh has no cracks.
    The covering triangle with the smallest depth at the centre (``1 / Σ bᵢ/zᵢ``) wins; equal
    depths go to the smallest triangle index. Zero-area triangles, triangles with a vertex at
    depth <= 0 and triangles with non-finite coordinates cover nothing. Colours are interpolated
    as ``Σ bᵢ cᵢ/zᵢ / Σ bᵢ/zᵢ``.

    Args:
        pixels: (B, V, 2) float continuous pixel coordinates (u, v) of the vertices, origin at
            the top-left corner of the top-left pixel (as ``reconstruction.project``).
        depth: (B, V) float camera depth of the vertices (``10 − Z`` in BFM units), > 0 in front.
        faces: (T, 3) int64 zero-based vertex indices.
        colors: (B, V, C) float vertex attributes, any range and unit.
        size: output height and width in pixels.

    Returns:
        ``image`` (B, C, size, size) float32, 0 where uncovered, and ``mask`` (B, 1, size, size)
        float32, 1 where covered else 0; both on the device of ``pixels``.

    Raises:
        ValueError: on inconsistent shapes or out-of-range face indices.
    """
    if pixels.ndim != 3 or pixels.shape[-1] != 2:
        raise ValueError(f"rasterize expects pixels of shape (B, V, 2), got {tuple(pixels.shape)}.")
    b, v = pixels.shape[:2]
    if depth.shape != (b, v) or colors.ndim != 3 or colors.shape[:2] != (b, v):
        raise ValueError(f"rasterize expects depth (B, V) and colors (B, V, C) for pixels {tuple(pixels.shape)}, "
                         f"got {tuple(depth.shape)} and {tuple(colors.shape)}.")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"rasterize expects faces of shape (T, 3), got {tuple(faces.shape)}.")
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= v):
        raise ValueError(f"face indices must lie in [0, {v}), got [{int(faces.min())}, {int(faces.max())}].")
    dev, n_tri, n_pix = pixels.device, faces.shape[0], size * size
    faces = faces.to(dev, torch.long)
    xy = pixels.to(torch.float64)[:, faces].reshape(-1, 3, 2)  # (B·T, 3, 2), triangle id = frame·T + t
    z = depth.to(dev, torch.float64)[:, faces].reshape(-1, 3)
    ok = torch.isfinite(xy).flatten(1).all(1) & torch.isfinite(z).all(1) & (z > 0).all(1)
    area = _edge(xy[:, 1], xy[:, 2] - xy[:, 1], xy[:, 0])
    # Columns/rows whose pixel centres lie in the bounding box: c + 0.5 ∈ [min, max].
    lo = (xy.amin(1).nan_to_num(0.0).clamp(-1, size) - 0.5).ceil().long().clamp(min=0)
    hi = (xy.amax(1).nan_to_num(0.0).clamp(-1, size) - 0.5).floor().long().clamp(max=size - 1)
    extent = (hi - lo + 1).clamp(min=0)
    count = torch.where(ok & (area != 0), extent[:, 0] * extent[:, 1], 0)
    tris = count.nonzero().squeeze(1)  # the triangles that may cover a pixel centre, in index order
    xy, z, area, count = xy[tris], z[tris], area[tris], count[tris]
    boxes = torch.cat([lo[tris], extent[tris]], 1)  # (N, 4) first column, first row, columns, rows
    # Edge i (opposite vertex i) is evaluated from its lexicographically smaller end, so that a
    # shared edge gives exactly opposite values in both triangles: no cracks, no double misses.
    e0, e1 = xy[:, [1, 2, 0]], xy[:, [2, 0, 1]]
    swap = (e0[..., 0] > e1[..., 0]) | ((e0[..., 0] == e1[..., 0]) & (e0[..., 1] > e1[..., 1]))
    e0, e1 = torch.where(swap[..., None], e1, e0), torch.where(swap[..., None], e0, e1)
    scale = torch.where(swap, -1.0, 1.0) / area[:, None]  # edge value → screen barycentric
    table = torch.cat([e0.flatten(1), (e1 - e0).flatten(1), scale, 1 / z], 1)  # (N, 18) float64
    last = count.cumsum(0)  # (triangle, pixel) pairs enumerated triangle by triangle
    first = last - count
    total = int(last[-1]) if len(tris) else 0

    zbuf = torch.full((b * n_pix,), torch.inf, dtype=torch.float64, device=dev)
    winner = torch.full((b * n_pix,), -1, dtype=torch.long, device=dev)
    flat = colors.to(dev, torch.float64).reshape(b * v, -1)
    image = torch.zeros(b * n_pix, flat.shape[1], dtype=torch.float64, device=dev)
    for start in range(0, total, CHUNK):  # a big triangle may span several chunks
        pair = torch.arange(start, min(start + CHUNK, total), device=dev)
        k = torch.searchsorted(last, pair, right=True)
        box, local = boxes[k], pair - first[k]
        col, row = box[:, 0] + local % box[:, 2], box[:, 1] + local // box[:, 2]
        p = torch.stack([col, row], -1)[:, None].to(torch.float64) + 0.5
        g = table[k]
        w = _edge(g[:, :6].view(-1, 3, 2), g[:, 6:12].view(-1, 3, 2), p) * g[:, 12:15]  # barycentrics
        inside = (w >= 0).all(1)
        k, wz = k[inside], w[inside] * g[inside, 15:]
        t = tris[k]
        pix = (t // n_tri) * n_pix + row[inside] * size + col[inside]
        inv = wz.sum(1)
        d = 1 / inv  # depth at the pixel centre
        before = zbuf[pix]
        zbuf.scatter_reduce_(0, pix, d, "amin")
        new = (d == zbuf[pix]) & (d < before)  # earlier chunks hold smaller indices: they keep ties
        pix, t, wz, inv = pix[new], t[new], wz[new], inv[new]
        winner.index_fill_(0, pix, n_tri * b)
        winner.scatter_reduce_(0, pix, t, "amin")
        keep = t == winner[pix]
        pix, t, wz = pix[keep], t[keep], wz[keep] / inv[keep, None]
        verts = (t // n_tri)[:, None] * v + faces[t % n_tri]  # rows of the flattened colours
        image[pix] = (wz[..., None] * flat[verts]).sum(1)

    image = image.reshape(b, size, size, -1).permute(0, 3, 1, 2).to(torch.float32).contiguous()
    covered = winner >= 0
    return image, covered.reshape(b, 1, size, size).to(torch.float32)


def render_mesh(vertices: torch.Tensor, colors: torch.Tensor, faces: torch.Tensor, size: int = RENDER_SIZE,
                focal: float = FOCAL) -> tuple[torch.Tensor, torch.Tensor]:
    """Render a coloured mesh with the release's camera (docs/ALIGNMENT.md §9–§10).

    Args:
        vertices: (B, V, 3) float camera-space vertices (BFM units; camera at z = 10 looking at −z).
        colors: (B, V, 3) float vertex colours on a 0..255 scale (may leave it; clamped after
            interpolation).
        faces: (T, 3) int64 zero-based triangles.
        size: output size in pixels; the field of view is that of the 256 render (the focal is
            scaled by size/256, principal point at size/2).
        focal: focal length in pixels of the 256 render.

    Returns:
        ``img`` (B, 3, size, size) float32 in [−1, 1] (``clamp(RGB, 0, 255)/255·2 − 1``, −1 on the
        background) and ``mask`` (B, 1, size, size) float32 in {0, 1}.
    """
    if vertices.ndim != 3 or vertices.shape[-1] != 3 or colors.shape != vertices.shape:
        raise ValueError(f"render_mesh expects vertices and colors of shape (B, V, 3), got "
                         f"{tuple(vertices.shape)} and {tuple(colors.shape)}.")
    pixels = project(vertices, focal * size / RENDER_SIZE, size)
    rgb, mask = rasterize(pixels, CAMERA_DISTANCE - vertices[..., 2], faces, colors, size)
    return rgb.clamp(0, 255) / 255 * 2 - 1, mask


def render_coefficients(bfm: BFM09Model, coeffs: torch.Tensor, size: int = RENDER_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """``img256`` and ``mask256`` of (B, ≥257) D3DFR coefficients (docs/ALIGNMENT.md §8–§10).

    Returns:
        (B, 3, size, size) float32 in [−1, 1] and (B, 1, size, size) float32 in {0, 1}, on the
        BFM's device.
    """
    if coeffs.ndim != 2 or coeffs.shape[1] < NUM_RENDER_COEFFS:
        raise ValueError(f"render_coefficients expects (B, >={NUM_RENDER_COEFFS}) coefficients, got {tuple(coeffs.shape)}.")
    mesh = reconstruct(bfm, coeffs)
    return render_mesh(mesh.vertices, mesh.colors, bfm.tri, size)


def composite_512(img256: torch.Tensor, mask256: torch.Tensor, m256_inv: torch.Tensor,
                  size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp the render back to the 512 crop and composite on −1 (docs/ALIGNMENT.md §11).

    Args:
        img256: (B, 3, H, W) float in [−1, 1]. mask256: (B, 1, H, W) float in {0, 1}.
        m256_inv: (B, 2, 3) or (2, 3) the driver's inverse 256 crop matrices (256 → 512 pixels,
            kornia convention).
        size: output size in pixels.

    Returns:
        ``render512`` (B, 3, size, size) ``img512·m512 − (1 − m512)`` clamped to [−1, 1] (float
        rounding can undershoot −1 where the mask is fractional); exactly −1 where m512 = 0.
        ``m512`` (B, 1, size, size) the warped mask in [0, 1] (the face's MASK).
    """
    if img256.ndim != 4 or img256.shape[1] != 3 or mask256.shape != (img256.shape[0], 1, *img256.shape[2:]):
        raise ValueError(f"composite_512 expects img (B, 3, H, W) and mask (B, 1, H, W), got "
                         f"{tuple(img256.shape)} and {tuple(mask256.shape)}.")
    if tuple(m256_inv.shape[-2:]) != (2, 3) or m256_inv.ndim not in (2, 3):
        raise ValueError(f"composite_512 expects (B, 2, 3) or (2, 3) matrices, got {tuple(m256_inv.shape)}.")
    img512 = warp_affine(img256, m256_inv, (size, size))
    m512 = warp_affine(mask256, m256_inv, (size, size)).clamp(0, 1)
    return (img512 * m512 - (1 - m512)).clamp(-1, 1), m512
