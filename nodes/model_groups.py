"""The pack's networks under ComfyUI's model manager: groups, one table, and their handles.

Every network group is defined once, in :data:`GROUPS`: its ``nn.ModuleDict`` class (the name
ComfyUI's log and memory list show), the networks it holds, the nodes that load it, and whether
it is built with ComfyUI's casting layers. A group is wrapped once in a ComfyUI ``ModelPatcher``
and loaded with ``comfy.model_management.load_models_gpu`` by the node that needs it, right before
use: ComfyUI counts its memory, frees other models for it, and unloads it under memory pressure or
on "Unload models" (POST /free). Standalone, a group moves to the compute device for the node and
back to the offload device after it. Nodes never change a group's dtype or weights.

Hosts: :class:`ModelHandle` (the ``MIMAFACE_MODEL`` wire: the MIMAFace networks of one mode),
:class:`NetworkHandle` (networks a node loads from its own file: SadTalker's audio networks, the
LPIPS/FID networks of Evaluate Animation).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:  # the loader imports diffusers: not at ComfyUI start-up
    from mimaface_core.networks.bundle import MIMAFaceModel

from . import _comfy


class MIMAFaceFace(nn.ModuleDict):
    """Face detector networks (MTCNN), D3DFR and CurricularFace."""


class MIMAFaceCLIP(nn.ModuleDict):
    """The CLIP appearance encoder."""


class MIMAFaceMIM(nn.ModuleDict):
    """The MIA module."""


class MIMAFaceDenoiser(nn.ModuleDict):
    """The UNet with its motion modules."""


class MIMAFaceVAE(nn.ModuleDict):
    """Our VAE for the renders when no core VAE is wired."""


class MIMAFaceBFM(nn.ModuleDict):
    """The BFM09 face model (buffers only)."""


class MIMAFaceAudio(nn.ModuleDict):
    """SadTalker's Audio2Exp and Audio2Pose networks."""


class MIMAFaceMetrics(nn.ModuleDict):
    """The LPIPS (AlexNet) and FID (Inception-v3) networks."""


def _modules(*names: str) -> Callable:
    """Group parts that are attributes of the host's model, under their own names."""
    return lambda host: {n: getattr(host.model, n) for n in names}


def _face_parts(host) -> dict:
    parts = {"d3dfr": host.model.d3dfr, "identity_encoder": host.model.identity_encoder}
    networks = getattr(host.face_detector(), "networks", None)
    if networks is not None:
        parts.update({f"detector_{k}": v for k, v in networks().items()})
    return parts


@dataclass(frozen=True)
class Group:
    """One row of :data:`GROUPS`.

    Attributes:
        cls: the ``nn.ModuleDict`` subclass the group is wrapped in (its name is what ComfyUI shows).
        networks: what :class:`Loaded` carries for it, by attribute name.
        nodes: the node ids that load it.
        castable: built with ComfyUI's casting layers (``load_mimaface(operations=...)``), so ComfyUI
            may load it partially or page it; otherwise plain torch, loaded whole (MTCNN, D3DFR and
            CurricularFace have BatchNorm2d/PReLU layers that ComfyUI cannot cast; the BFM holds
            buffers only; SadTalker's and the metrics' networks are built by their own libraries).
        parts: host → the modules the group holds (name → module).
        view: (host, group module) → the :class:`Loaded` attributes (default: ``networks`` taken
            from the group by name).
    """

    cls: type
    networks: tuple[str, ...]
    nodes: tuple[str, ...]
    castable: bool
    parts: Callable
    view: Callable | None = None

    def attributes(self, host, module: nn.ModuleDict) -> dict:
        if self.view is not None:
            return self.view(host, module)
        return {n: module[n] for n in self.networks}


_FACE_NODES = ("MIMAFaceExtractMotion", "MIMAFaceGazeEmbed", "MIMAFaceMIAAppearanceEncode", "MIMAFaceEvaluateAnimation",
               "MIMAFaceFootageMotion")

#: Every group, defined once: name → :class:`Group`.
GROUPS: dict[str, Group] = {
    "face": Group(MIMAFaceFace, ("detector", "d3dfr", "identity_encoder"), _FACE_NODES, False, _face_parts,
                  lambda h, g: {"detector": h.face_detector(), "d3dfr": g["d3dfr"],
                                "identity_encoder": g["identity_encoder"]}),
    "clip": Group(MIMAFaceCLIP, ("appearance_encoder",), ("MIMAFaceMIAAppearanceEncode",), True,
                  _modules("appearance_encoder")),
    "mim": Group(MIMAFaceMIM, ("mim",), ("MIMAFaceICAClipSampler",), True, _modules("mim")),
    "denoiser": Group(MIMAFaceDenoiser, ("denoiser",), ("MIMAFaceICAClipSampler",), True, _modules("denoiser")),
    "vae": Group(MIMAFaceVAE, ("vae",), ("MIMAFaceICAClipSampler",), True,  # only when no core VAE is wired
                 lambda h: {"vae": h.model.require_vae()}),
    "bfm": Group(MIMAFaceBFM, ("bfm",), ("MIMAFaceRenderCoeffImage", "MIMAFaceFootageMotion"), False,
                 lambda h: {"bfm": h.model.bfm.as_module()}, lambda h, g: {"bfm": g["bfm"].model()}),
    "audio": Group(MIMAFaceAudio, ("audio",), ("MIMAFaceAudioToMotion", "MIMAFaceFootageMotion"), False,
                   lambda h: {"audio2exp": h.networks.audio2exp, "audio2pose": h.networks.audio2pose},
                   lambda h, g: {"audio": h.networks}),
    "metrics": Group(MIMAFaceMetrics, ("metrics",), ("MIMAFaceEvaluateAnimation",), False,
                     lambda h: dict(h.networks), lambda h, g: {"metrics": dict(g.items())}),
}
#: The groups built with ComfyUI's casting layers.
CASTABLE = tuple(name for name, group in GROUPS.items() if group.castable)


class Loaded:
    """What a handle's ``use`` yields: the networks of the loaded groups, where they are now
    (attributes: the ``networks`` of each group's :data:`GROUPS` row), and ``mode`` (the
    MIMAFace model's, when the host has one)."""

    def __init__(self, host, groups: tuple[str, ...]):
        model = getattr(host, "model", None)
        self.mode = getattr(model, "mode", None)
        for name in groups:
            for key, value in GROUPS[name].attributes(host, host._group(name)).items():
                setattr(self, key, value)


class _GroupHost:
    """Groups, their patchers and their loading, for a dataclass with ``compute``, ``offload``,
    ``operations``, ``_groups``, ``_patchers`` and the :data:`GROUPS` names it may hold (``hosts``)."""

    hosts: tuple[str, ...] = ()

    def _group(self, name: str) -> nn.ModuleDict:
        if name not in self._groups:
            if name not in self.hosts:
                raise KeyError(f"unknown MIMAFace model group {name!r} here; one of {list(self.hosts)}.")
            group = GROUPS[name]
            self._groups[name] = group.cls(group.parts(self))
        return self._groups[name]

    def patcher(self, name: str):
        """The ComfyUI ModelPatcher of a group (None standalone)."""
        if name not in self._patchers:
            self._patchers[name] = _comfy.model_patcher(self._group(name), self.compute, self.offload,
                                                        castable=self._castable(name))
        return self._patchers[name]

    def _castable(self, name: str) -> bool:
        return self.operations is not None and GROUPS[name].castable

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
        if not any(self._castable(g) for g in groups):
            return
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


@dataclass(eq=False)
class ModelHandle(_GroupHost):
    """What ``MIMAFACE_MODEL`` wires carry: the MIMAFace networks of one mode, in the groups
    face, clip, mim, denoiser, vae and bfm of :data:`GROUPS`.

    Attributes:
        model: every MIMAFace network of one mode (video or image), waiting on ``offload``.
        detector: face detector backend, "mtcnn" (released) or "mediapipe".
        compute: the device nodes run on. offload: where the model waits between nodes.
        operations: the layer namespace the :data:`CASTABLE` networks were built with
            (``comfy.ops.disable_weight_init`` in ComfyUI; None: plain torch, every group whole).
    """

    hosts = ("face", "clip", "mim", "denoiser", "vae", "bfm")

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


@dataclass(eq=False)
class NetworkHandle(_GroupHost):
    """Networks a node loads from its own files, as one :data:`GROUPS` group ("audio": a
    ``mimaface_core.audio.weights.AudioNetworks``; "metrics": name → metric module from
    ``mimaface_core.evaluation.evaluate.metric_networks``). Kept by the node between runs, so
    ComfyUI manages one patcher per loaded file.
    """

    group: str
    networks: object
    compute: torch.device = field(default_factory=_comfy.torch_device)
    offload: torch.device = field(default_factory=_comfy.offload_device)
    operations: object = field(default=None, repr=False)
    _groups: dict = field(default_factory=dict, repr=False)
    _patchers: dict = field(default_factory=dict, repr=False)

    @property
    def hosts(self) -> tuple[str, ...]:
        return (self.group,)
