"""The pack's custom wire types (plain dataclasses) and their ComfyUI type names.

``MIMAFACE_MOTION`` carries ``mimaface_core.motion.MotionSequence`` itself.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:  # the loader imports diffusers: not at ComfyUI start-up
    from mimaface_core.networks.bundle import MIMAFaceModel

from . import _comfy

MODEL = "MIMAFACE_MODEL"
MOTION = "MIMAFACE_MOTION"
GAZE = "MIMAFACE_GAZE"
APPEARANCE = "MIMAFACE_APPEARANCE"
CATEGORY = "MIMAFace"


class MIMAFaceFace(nn.ModuleDict):
    """Face detector networks (MTCNN), D3DFR and CurricularFace: Extract 3DMM Motion, Gaze Embed
    and MIA Appearance Encode load this group."""


class MIMAFaceCLIP(nn.ModuleDict):
    """The CLIP appearance encoder (MIA Appearance Encode)."""


class MIMAFaceMIM(nn.ModuleDict):
    """The MIA module (ICA Clip Sampler)."""


class MIMAFaceDenoiser(nn.ModuleDict):
    """The UNet with its motion modules (ICA Clip Sampler)."""


class MIMAFaceVAE(nn.ModuleDict):
    """Our VAE for the renders when no core VAE is wired (ICA Clip Sampler)."""


class MIMAFaceBFM(nn.ModuleDict):
    """The BFM09 face model (Render Coeff Image)."""


GROUPS = {"face": MIMAFaceFace, "clip": MIMAFaceCLIP, "mim": MIMAFaceMIM, "denoiser": MIMAFaceDenoiser,
          "vae": MIMAFaceVAE, "bfm": MIMAFaceBFM}

#: Groups built with ComfyUI's casting layers (``load_mimaface(operations=...)``), which ComfyUI may
#: load partially or page. "face" and "bfm" stay plain torch, loaded whole: MTCNN, D3DFR and
#: CurricularFace are float32 networks with BatchNorm2d/PReLU layers (ComfyUI 0.3.64 has no casting
#: BatchNorm2d, no version a PReLU) that only the face nodes load; the BFM holds buffers only.
CASTABLE = ("clip", "mim", "denoiser", "vae")


class Loaded:
    """What :meth:`ModelHandle.use` yields: the networks of the loaded groups, where they are now.

    Attributes (those of the groups asked for): detector, d3dfr, identity_encoder (face);
    appearance_encoder (clip); mim; denoiser; vae; bfm (a BFM09Model view of the buffers); mode.
    """

    def __init__(self, handle: "ModelHandle", groups: tuple[str, ...]):
        m = handle.model
        self.mode = m.mode
        if "face" in groups:
            self.detector, self.d3dfr, self.identity_encoder = handle.face_detector(), m.d3dfr, m.identity_encoder
        if "clip" in groups:
            self.appearance_encoder = m.appearance_encoder
        if "mim" in groups:
            self.mim = m.mim
        if "denoiser" in groups:
            self.denoiser = m.denoiser
        if "vae" in groups:
            self.vae = m.require_vae()
        if "bfm" in groups:
            self.bfm = handle._group("bfm")["bfm"].model()


@dataclass(eq=False)
class ModelHandle:
    """What ``MIMAFACE_MODEL`` wires carry.

    The networks are split into groups (:data:`GROUPS`), each wrapped once in a ComfyUI
    ``ModelPatcher`` and loaded with ``comfy.model_management.load_models_gpu`` by the node that
    needs it, right before use: ComfyUI counts their memory, frees other models for them, and
    unloads them under memory pressure or on "Unload models" (POST /free). Standalone, a group is
    moved to the compute device for the node and back to the offload device after it. Nodes never
    change a group's dtype or weights.

    Attributes:
        model: every MIMAFace network of one mode (video or image), waiting on ``offload``.
        detector: face detector backend, "mtcnn" (released) or "mediapipe".
        compute: the device nodes run on. offload: where the model waits between nodes.
        operations: the layer namespace the :data:`CASTABLE` networks were built with
            (``comfy.ops.disable_weight_init`` in ComfyUI; None: plain torch, every group whole).
    """

    model: MIMAFaceModel
    detector: str
    compute: torch.device
    offload: torch.device
    operations: object = field(default=None, repr=False)
    _groups: dict = field(default_factory=dict, repr=False)
    _patchers: dict = field(default_factory=dict, repr=False)
    _detector: object = field(default=None, repr=False)

    def face_detector(self):
        """The face detector, made once (MTCNN's networks belong to the "face" group)."""
        if self._detector is None:
            from mimaface_core.face.detectors import make_detector

            self._detector = make_detector(self.detector, device=self.offload, models_dir=_comfy.mediapipe_dir())
        return self._detector

    def _group(self, name: str) -> nn.ModuleDict:
        if name not in self._groups:
            m = self.model
            if name == "face":
                parts = {"d3dfr": m.d3dfr, "identity_encoder": m.identity_encoder}
                networks = getattr(self.face_detector(), "networks", None)
                if networks is not None:
                    parts.update({f"detector_{k}": v for k, v in networks().items()})
            elif name == "clip":
                parts = {"appearance_encoder": m.appearance_encoder}
            elif name == "mim":
                parts = {"mim": m.mim}
            elif name == "denoiser":
                parts = {"denoiser": m.denoiser}
            elif name == "vae":
                parts = {"vae": m.require_vae()}
            elif name == "bfm":
                parts = {"bfm": m.bfm.as_module()}
            else:
                raise KeyError(f"unknown MIMAFace model group {name!r}; one of {list(GROUPS)}.")
            self._groups[name] = GROUPS[name](parts)
        return self._groups[name]

    def patcher(self, name: str):
        """The ComfyUI ModelPatcher of a group (None standalone)."""
        if name not in self._patchers:
            self._patchers[name] = _comfy.model_patcher(self._group(name), self.compute, self.offload,
                                                        castable=self._castable(name))
        return self._patchers[name]

    def _castable(self, name: str) -> bool:
        return self.operations is not None and name in CASTABLE

    def _load(self, groups: tuple[str, ...], patchers: list) -> None:
        """ComfyUI's load of a node's groups, partial when they are all castable, then the loose
        tensors of partially loaded castable groups onto the compute device.

        ComfyUI's non-dynamic partial load (ModelPatcher.load, 0.3.64 and 0.33) moves whole layers
        it can cast, and parameter-owning leaf modules while its budget lasts; it never moves a
        parameter owned by a module that also has sub-layers (transformers' CLIP
        ``class_embedding``), nor buffers of layers it leaves offloaded (``position_ids``, the motion
        modules' ``pe`` tables), nor plain leaf modules past the budget. Those few small tensors
        (:func:`~mimaface_core.networks.operations.loose_tensors`, well under 1% of a group) are moved
        here; ComfyUI's full unload (``model.to(offload)``) takes them back. Dynamic VRAM (0.33's
        ModelPatcherDynamic) loads them itself (non-cast parameters and every buffer), so it is
        left alone.
        """
        _comfy.load_models(patchers, partial=all(self._castable(g) for g in groups))
        from mimaface_core.networks.operations import move_loose_tensors

        for g, patcher in zip(groups, patchers):
            if self._castable(g) and not _comfy.is_dynamic(patcher):
                move_loose_tensors(self._group(g), self.operations, self.compute)

    @contextmanager
    def use(self, *groups: str):
        """Load the named groups on the compute device for the duration of a node.

        In ComfyUI they stay loaded afterwards (ComfyUI decides when to offload); standalone
        they go back to the offload device.
        """
        modules = [self._group(g) for g in groups]
        patchers = [self.patcher(g) for g in groups]
        hosted = all(p is not None for p in patchers)
        if hosted:
            self._load(groups, patchers)
        else:
            for module in modules:
                module.to(self.compute)
        try:
            yield Loaded(self, groups)
        finally:
            if not hosted and self.offload != self.compute:
                for module in modules:
                    module.to(self.offload)
                _comfy.free_memory()


@dataclass
class GazeSequence:
    """What ``MIMAFACE_GAZE`` wires carry: per-frame gaze (N, 4) float32, the D3DFR eye outputs
    (coefficients 257:261) after the Gaze Embed node's method, strength and smoothing."""

    gaze: torch.Tensor
    method: str


@dataclass
class Appearance:
    """What ``MIMAFACE_APPEARANCE`` wires carry: the source's appearance and the motion it is
    modulated with (docs/SAMPLING.md §2–§3). The MIA module itself runs per clip in the sampler.

    Attributes:
        tokens: (1, 257, 1024) CLIP tokens of the source's 512 crop.
        identity: (1, 25088) CurricularFace deep features of the source.
        blended: (N, 261) float32 blended coefficients per output frame (gaze applied).
    """

    tokens: torch.Tensor
    identity: torch.Tensor
    blended: torch.Tensor
