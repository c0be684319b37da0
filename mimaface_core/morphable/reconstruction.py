"""BFM09 reconstruction, SH lighting and projection of the release (docs/ALIGNMENT.md §8–§9).

Everything is batched over frames and runs on the BFM's device. Units: BFM units (decimetre-like,
camera at z = +10), angles in radians, albedo and colours on a 0..255 scale, pixels of the 256
render.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .bfm import BFM09Model
from .coefficients import ANGLES, EXP, GAMMA, ID, TEX, TRANSLATION

#: Camera of the 256 render (docs/ALIGNMENT.md §9).
RENDER_SIZE = 256
FOCAL = 1015.0 * 256 / 224
CAMERA_DISTANCE = 10.0
#: Spherical-harmonics constants (docs/ALIGNMENT.md §8).
SH_A = (math.pi, 2 * math.pi / math.sqrt(3.0), 2 * math.pi / math.sqrt(8.0))
SH_C = (1 / math.sqrt(4 * math.pi), math.sqrt(3.0) / math.sqrt(4 * math.pi), 3 * math.sqrt(5.0) / math.sqrt(12 * math.pi))
SH_D0 = 0.5 / math.sqrt(3.0)
SH_DC_OFFSET = 0.8


def centred_shape(bfm: BFM09Model, id_coeffs: torch.Tensor, exp_coeffs: torch.Tensor) -> torch.Tensor:
    """``meanshape + idBase·id + exBase·exp`` minus the centroid of the MEAN shape. (B,80),(B,64) → (B,V,3)."""
    shape = bfm.meanshape + id_coeffs @ bfm.id_base.T + exp_coeffs @ bfm.exp_base.T
    centroid = bfm.meanshape.reshape(-1, 3).mean(0)
    return shape.reshape(len(id_coeffs), -1, 3) - centroid


def albedo(bfm: BFM09Model, tex_coeffs: torch.Tensor) -> torch.Tensor:
    """``meantex + texBase·tex``, 0..255 scale (never divided by 255). (B,80) → (B,V,3)."""
    return (bfm.meantex + tex_coeffs @ bfm.tex_base.T).reshape(len(tex_coeffs), -1, 3)


def rotation_matrix(angles: torch.Tensor) -> torch.Tensor:
    """``R = Rz·Ry·Rx`` for column vectors from Euler angles (x, y, z) in radians. (B,3) → (B,3,3)."""
    a, b, c = angles.unbind(-1)
    one, zero = torch.ones_like(a), torch.zeros_like(a)
    rx = torch.stack([one, zero, zero, zero, a.cos(), -a.sin(), zero, a.sin(), a.cos()], -1).reshape(-1, 3, 3)
    ry = torch.stack([b.cos(), zero, b.sin(), zero, one, zero, -b.sin(), zero, b.cos()], -1).reshape(-1, 3, 3)
    rz = torch.stack([c.cos(), -c.sin(), zero, c.sin(), c.cos(), zero, zero, zero, one], -1).reshape(-1, 3, 3)
    return rz @ ry @ rx


def vertex_normals(bfm: BFM09Model, vertices: torch.Tensor) -> torch.Tensor:
    """Unit vertex normals: area-weighted face normals ``(v_a−v_b)×(v_b−v_c)`` summed over ``point_buf``.

    (B,V,3) → (B,V,3). The cross product is taken over the xyz axis explicitly.
    """
    va, vb, vc = (vertices[:, bfm.tri[:, i]] for i in range(3))
    face = torch.linalg.cross(va - vb, vb - vc, dim=-1)
    face = torch.cat([face, torch.zeros_like(face[:, :1])], dim=1)  # index -1 → the zero normal
    normals = face[:, bfm.point_buf].sum(dim=2)
    return torch.nn.functional.normalize(normals, dim=-1)


def sh_basis(normals: torch.Tensor) -> torch.Tensor:
    """The 9 SH basis values of the release per normal. (B,V,3) → (B,V,9)."""
    x, y, z = normals.unbind(-1)
    a0, a1, a2 = SH_A
    c0, c1, c2 = SH_C
    return torch.stack([
        a0 * c0 * torch.ones_like(x),
        -a1 * c1 * y,
        a1 * c1 * z,
        -a1 * c1 * x,
        a2 * c2 * x * y,
        -a2 * c2 * y * z,
        a2 * c2 * SH_D0 * (3 * z * z - 1),
        -a2 * c2 * x * z,
        a2 * c2 * 0.5 * (x * x - y * y),
    ], dim=-1)


def shade(albedo_rgb: torch.Tensor, normals_rotated: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """SH-lit vertex colours ``albedo · Σ_k Y_k(n') γ_c[k]`` with +0.8 on each DC term.

    Args:
        albedo_rgb: (B,V,3) 0..255. normals_rotated: (B,V,3) unit. gamma: (B,27) = 3 colours x 9.

    Returns:
        (B,V,3) colours on a 0..255 scale (may exceed 255).
    """
    g = gamma.reshape(-1, 3, 9).clone()
    g[:, :, 0] += SH_DC_OFFSET
    irradiance = sh_basis(normals_rotated) @ g.transpose(1, 2)
    return albedo_rgb * irradiance


def project(vertices: torch.Tensor, focal: float = FOCAL, size: int = RENDER_SIZE) -> torch.Tensor:
    """Perspective projection to continuous pixel coordinates of the render (docs/ALIGNMENT.md §9).

    ``u = size/2 + f·X/(10 − Z)``, ``v = size/2 − f·Y/(10 − Z)``; origin at the top-left corner of
    the top-left pixel. (B,N,3) → (B,N,2) as (u, v).
    """
    depth = CAMERA_DISTANCE - vertices[..., 2]
    u = size / 2 + focal * vertices[..., 0] / depth
    v = size / 2 - focal * vertices[..., 1] / depth
    return torch.stack([u, v], dim=-1)


@dataclass
class FaceMesh:
    """A posed, lit BFM mesh per frame (all (B,V,·) float32).

    Attributes:
        vertices: camera-space vertices ``R·v + t``.
        colors: SH-lit vertex colours, 0..255 scale.
        normals: unit normals of the centred, unrotated shape.
        normals_rotated: ``R·n``.
        albedo: 0..255 albedo.
        rotation: (B,3,3) R for column vectors.
    """

    vertices: torch.Tensor
    colors: torch.Tensor
    normals: torch.Tensor
    normals_rotated: torch.Tensor
    albedo: torch.Tensor
    rotation: torch.Tensor


def reconstruct(bfm: BFM09Model, coeffs: torch.Tensor) -> FaceMesh:
    """The released ``BFM09ReconModel`` geometry and shading from (B, ≥257) coefficients (docs/ALIGNMENT.md §8)."""
    coeffs = coeffs.to(bfm.meanshape.device, torch.float32)
    shape = centred_shape(bfm, coeffs[:, ID], coeffs[:, EXP])
    rot = rotation_matrix(coeffs[:, ANGLES])
    vertices = shape @ rot.transpose(1, 2) + coeffs[:, None, TRANSLATION]
    normals = vertex_normals(bfm, shape)
    normals_rot = normals @ rot.transpose(1, 2)
    alb = albedo(bfm, coeffs[:, TEX])
    return FaceMesh(vertices, shade(alb, normals_rot, coeffs[:, GAMMA]), normals, normals_rot, alb, rot)
