"""The pack's custom wire types (plain dataclasses) and their ComfyUI type names.

``MIMAFACE_MOTION`` carries ``mimaface_core.motion.MotionSequence`` itself.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from mimaface_core.weights.loader import MIMAFaceModel

from . import _comfy

MODEL = "MIMAFACE_MODEL"
MOTION = "MIMAFACE_MOTION"
GAZE = "MIMAFACE_GAZE"
APPEARANCE = "MIMAFACE_APPEARANCE"
CATEGORY = "MIMAFace"


@dataclass
class ModelHandle:
    """What ``MIMAFACE_MODEL`` wires carry.

    Attributes:
        model: every MIMAFace network of one mode (video or image), waiting on ``offload``.
        detector: face detector backend, "mtcnn" (released) or "mediapipe".
        compute: the device nodes run on. offload: where the model waits between nodes.
    """

    model: MIMAFaceModel
    detector: str
    compute: torch.device
    offload: torch.device

    @contextmanager
    def on_device(self):
        """Move the model to the compute device for the duration of a node, then offload it."""
        self.model.to(self.compute)
        try:
            yield self.model
        finally:
            if self.offload != self.compute:
                self.model.to(self.offload)
                _comfy.free_memory()

    def make_detector(self):
        """A fresh detector on the compute device (mediapipe models in ``models/mediapipe``)."""
        from mimaface_core.face.detectors import make_detector

        return make_detector(self.detector, device=self.model.device, models_dir=_comfy.mediapipe_dir())


@dataclass
class GazeSequence:
    """What ``MIMAFACE_GAZE`` wires carry: per-frame gaze (N, 4) float32, the D3DFR eye outputs
    (coefficients 257:261) after the Gaze Embed node's method, strength and smoothing."""

    gaze: torch.Tensor
    method: str


@dataclass
class Appearance:
    """What ``MIMAFACE_APPEARANCE`` wires carry: the source's appearance and the motion it is
    modulated with (spec §4). The MIA module itself runs per clip in the sampler.

    Attributes:
        tokens: (1, 257, 1024) CLIP tokens of the source's 512 crop.
        identity: (1, 25088) CurricularFace deep features of the source.
        blended: (N, 261) float32 blended coefficients per output frame (gaze applied).
    """

    tokens: torch.Tensor
    identity: torch.Tensor
    blended: torch.Tensor
