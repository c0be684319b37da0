"""3DMM: the D3DFR coefficient regressor, the BFM09 model and the coefficient layout (docs/ALIGNMENT.md §7–§11)."""

from .bfm import BFM09Model, load_bfm09
from .d3dfr import D3DFRRegressor

__all__ = ["BFM09Model", "D3DFRRegressor", "load_bfm09"]
