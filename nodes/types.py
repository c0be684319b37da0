"""The pack's wire types: ComfyUI type names and the plain dataclasses the custom wires carry.

``MIMAFACE_MODEL`` carries :class:`nodes.model_groups.ModelHandle`; ``MIMAFACE_MOTION`` carries
``mimaface_core.motion.MotionSequence`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MODEL = "MIMAFACE_MODEL"
MOTION = "MIMAFACE_MOTION"
GAZE = "MIMAFACE_GAZE"
APPEARANCE = "MIMAFACE_APPEARANCE"
CATEGORY = "MIMAFace"


@dataclass
class GazeSequence:
    """What ``MIMAFACE_GAZE`` wires carry: per-frame gaze (N, 4) float32, the D3DFR eye outputs
    (coefficients 257:261) after the Gaze Embed node's method, strength and smoothing
    (``mimaface_core.motion.gaze.gaze_by_method``)."""

    gaze: torch.Tensor
    method: str


@dataclass
class Appearance:
    """What ``MIMAFACE_APPEARANCE`` wires carry: the source's appearance and the motion it is
    modulated with (paper §3.2, MIA). The MIA module itself runs per clip in the sampler.

    Attributes:
        tokens: (1, 257, 1024) CLIP tokens of the source's 512 crop.
        identity: (1, 25088) CurricularFace deep features of the source.
        blended: (N, 261) float32 blended coefficients per output frame (gaze applied).
    """

    tokens: torch.Tensor
    identity: torch.Tensor
    blended: torch.Tensor
