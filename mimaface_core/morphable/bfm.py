"""The BFM09 face model read from ``BFM09_model_info.mat``. docs/WEIGHTS.md §11.

Only the fields the pipeline uses are kept, as tensors: float fields as float32, index fields as
int64 converted to 0-based (``point_buf`` padding 0 becomes -1). The file is read with
``scipy.io.loadmat``, which does not execute code.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from ..errors import MissingWeightFileError, WeightFileError

_REQUIRED = ("meanshape", "idBase", "exBase", "meantex", "texBase", "tri", "point_buf")


@dataclass
class BFM09Model:
    """BFM09 front-face model tensors (V vertices, T triangles).

    Attributes:
        meanshape: (3V,) float32 mean shape, xyz interleaved per vertex.
        id_base: (3V, 80) float32 identity basis.
        exp_base: (3V, 64) float32 expression basis.
        meantex: (3V,) float32 mean albedo, rgb interleaved, 0..255 scale.
        tex_base: (3V, 80) float32 albedo basis, 0..255 scale.
        tri: (T, 3) int64 0-based vertex indices of each triangle.
        point_buf: (V, P) int64 0-based adjacent triangles of each vertex, -1 = none.
        keypoints: (68,) int64 0-based landmark vertices (empty if the file has none).
    """

    meanshape: torch.Tensor
    id_base: torch.Tensor
    exp_base: torch.Tensor
    meantex: torch.Tensor
    tex_base: torch.Tensor
    tri: torch.Tensor
    point_buf: torch.Tensor
    keypoints: torch.Tensor

    @property
    def num_vertices(self) -> int:
        return self.meanshape.numel() // 3

    def to(self, device: str | torch.device) -> "BFM09Model":
        """A copy with every tensor on ``device``."""
        return BFM09Model(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def as_module(self) -> "BFM09Buffers":
        """The tensors as buffers of a module (for hosts that move modules between devices)."""
        return BFM09Buffers(self)


class BFM09Buffers(torch.nn.Module):
    """A :class:`BFM09Model` held as module buffers; :meth:`model` gives the dataclass view of
    wherever the buffers are now (no copy)."""

    def __init__(self, bfm: BFM09Model):
        super().__init__()
        for f in fields(bfm):
            self.register_buffer(f.name, getattr(bfm, f.name))

    def model(self) -> BFM09Model:
        return BFM09Model(**{f.name: getattr(self, f.name) for f in fields(BFM09Model)})


def load_bfm09(path: str | Path) -> BFM09Model:
    """Load ``BFM09_model_info.mat``.

    Raises:
        MissingWeightFileError: the file does not exist.
        WeightFileError: unreadable, a required field is missing, or the shapes disagree.
    """
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise MissingWeightFileError(
            f"BFM09 model not found: {path}. It belongs at models/D3DFR/BFM09_model_info.mat in the "
            "MIMAFace folder."
        )
    try:
        mat = loadmat(str(path))
    except Exception as exc:  # scipy raises several unrelated types for bad files
        raise WeightFileError(f"Could not read the BFM09 model {path}: {exc}. Download it again.") from exc
    missing = [k for k in _REQUIRED if k not in mat]
    if missing:
        raise WeightFileError(f"{path} is not a BFM09_model_info.mat: fields {missing} are missing.")

    def f32(name):
        return torch.from_numpy(np.asarray(mat[name], dtype=np.float32))

    def idx(name):
        return torch.from_numpy(np.asarray(mat[name]).astype(np.int64) - 1)

    model = BFM09Model(
        meanshape=f32("meanshape").reshape(-1),
        id_base=f32("idBase"),
        exp_base=f32("exBase"),
        meantex=f32("meantex").reshape(-1),
        tex_base=f32("texBase"),
        tri=idx("tri"),
        point_buf=idx("point_buf"),
        keypoints=idx("keypoints").reshape(-1) if "keypoints" in mat else torch.zeros(0, dtype=torch.int64),
    )
    n3 = model.meanshape.numel()
    bad = [
        name for name, t in (("idBase", model.id_base), ("exBase", model.exp_base), ("texBase", model.tex_base))
        if t.shape[0] != n3
    ]
    if bad or model.meantex.numel() != n3 or model.point_buf.shape[0] * 3 != n3 or model.tri.shape[1] != 3:
        raise WeightFileError(f"{path}: the BFM09 fields have inconsistent shapes ({bad or 'meantex/point_buf/tri'}).")
    return model
