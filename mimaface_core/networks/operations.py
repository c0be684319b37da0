"""Host layer ``operations``: build the networks with a host's weight-casting layer classes.

ComfyUI's own models take an ``operations`` namespace (``comfy.ops.disable_weight_init``,
``comfy.ops.manual_cast``...) whose ``Linear``, ``Conv2d``, ``GroupNorm``... subclass the torch
layers and can cast (and fetch) their weights to the input's device and dtype at every call. Only
such layers can be loaded partially ("lowvram") or paged ("dynamic VRAM") by ComfyUI's
ModelPatcher. diffusers and transformers construct ``nn.Linear`` etc. themselves, so this module
converts a built network: the class of each layer whose exact type is a torch layer is replaced by
its namesake subclass in ``operations`` (``module.__class__ = ops.Linear``): parameters, buffers and
hooks are kept, no tensor is copied. This module imports no host: ``operations`` is any object with
such attributes (standalone: ``None``, plain torch).

Tensors that a host cannot cast per layer ("loose" tensors) are listed by :func:`loose_tensors`:
parameters owned by a module that is not an operations layer (transformers'
``CLIPVisionEmbeddings.class_embedding``, a ``BatchNorm2d`` when the namespace has none) and every
buffer (``position_ids``, the motion modules' ``pos_encoder.pe``). A host that loads the other
weights partially must put these on the compute device itself (:func:`move_loose_tensors`).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

#: The torch layers a host namespace may replace, by attribute name (ComfyUI's names).
LAYER_NAMES: tuple[str, ...] = ("Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
                                "GroupNorm", "LayerNorm", "Embedding", "BatchNorm2d")


_MIXED: dict[tuple[type, type], type] = {}


def _replacement(layer: nn.Module, operations) -> type | None:
    """The ``operations`` class replacing ``layer``: its namesake, when the layer is exactly that
    torch class and the namesake subclasses it; for our own layers that name the torch layer they
    extend (``operations_namesake``, e.g. the motion modules' PerFrameGroupNorm), a class with the
    namesake mixed in under ours; else None."""
    cls = type(layer)
    namesake = cls.__dict__.get("operations_namesake")
    if namesake is None and (cls.__module__.split(".")[0] != "torch" or cls.__name__ not in LAYER_NAMES):
        return None
    base = cls.__mro__[1] if namesake is not None else cls
    ops_cls = getattr(operations, namesake or cls.__name__, None)
    if ops_cls is None or ops_cls is base or not (isinstance(ops_cls, type) and issubclass(ops_cls, base)):
        return None
    if namesake is None:
        return ops_cls
    if (cls, ops_cls) not in _MIXED:  # one class per pair: ours first, its forward's super() casts
        _MIXED[cls, ops_cls] = type(cls.__name__, (cls, ops_cls), {"__module__": cls.__module__})
    return _MIXED[cls, ops_cls]


def apply_operations(module: nn.Module, operations=None) -> int:
    """Convert the torch layers of a built network to a host's ``operations`` layers, in place.

    Every sub-module whose exact type is one of :data:`LAYER_NAMES` (``torch.nn.Linear``...) gets
    the class ``getattr(operations, name)`` when that exists and subclasses the torch layer; a
    layer of ours that extends a torch layer and says so (class attribute ``operations_namesake``,
    its parent being that torch layer) gets a class deriving from both, ours first. Other
    layers (subclasses defined by diffusers/transformers, layers the namespace lacks, e.g.
    ``BatchNorm2d`` on ComfyUI 0.3.64) are left as they are. Weights (any dtype, any device,
    shapes unchanged), buffers and the module tree are untouched (a layer without a ``bias``
    attribute, ``nn.Embedding``, gets ``bias = None`` as ComfyUI's Embedding sets it); outputs are
    identical as long as
    the host layer computes the torch function (ComfyUI's ops do, casting the weights to the
    input's device and dtype first).

    Args:
        module: a built (and usually loaded) network; converted in place.
        operations: a namespace with layer classes (ComfyUI: ``comfy.ops.disable_weight_init`` or
            ``comfy.ops.manual_cast``); None leaves plain torch layers (the standalone default).

    Returns:
        The number of layers converted (0 with ``operations=None``).

    Source: the ``operations=`` convention of ComfyUI's model classes (comfy/ldm/*, comfy/ops.py).
    """
    if operations is None:
        return 0
    converted = 0
    for sub in module.modules():
        ops_cls = _replacement(sub, operations)
        if ops_cls is not None:
            sub.__class__ = ops_cls
            if not hasattr(sub, "bias"):  # nn.Embedding: hosts read ``layer.bias`` of every layer they cast
                sub.bias = None
            converted += 1
    return converted


def parameterised_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, layer) of every sub-module that owns parameters directly, in ``named_modules`` order:
    what a host loads or casts one by one."""
    return [(n, m) for n, m in module.named_modules() if next(m.parameters(recurse=False), None) is not None]


def loose_tensors(module: nn.Module, operations) -> Iterator[tuple[nn.Module, str, bool]]:
    """The tensors a host's per-layer casting cannot reach: (owner module, attribute name, is a
    parameter) for each parameter owned by a module that is not an instance of an ``operations``
    class, and for every buffer.

    Args:
        module: a network converted with :func:`apply_operations`.
        operations: the same namespace (None: every tensor is loose).
    """
    op_classes = tuple(c for c in (getattr(operations, n, None) for n in LAYER_NAMES) if isinstance(c, type))
    for sub in module.modules():
        if not (op_classes and isinstance(sub, op_classes)):
            for name, p in sub._parameters.items():
                if p is not None:
                    yield sub, name, True
        for name, b in sub._buffers.items():
            if b is not None:
                yield sub, name, False


def move_loose_tensors(module: nn.Module, operations, device: str | torch.device) -> int:
    """Put the :func:`loose_tensors` of ``module`` on ``device`` (in place; parameters keep their
    identity, their ``.data`` moves). For a host that loaded the other weights partially: its
    partial load moves only whole layers it knows, so these few small tensors stay on the offload
    device otherwise and the forward fails with a device mismatch.

    Returns:
        The bytes moved (0 when all were already there).
    """
    device = torch.device(device)
    moved = 0
    for owner, name, is_param in loose_tensors(module, operations):
        t = (owner._parameters if is_param else owner._buffers)[name]
        if t.device == device or t.is_meta:
            continue
        if is_param:
            t.data = t.data.to(device)
        else:
            owner._buffers[name] = t.to(device)
        moved += t.numel() * t.element_size()
    return moved


def execution_device(module: nn.Module) -> torch.device:
    """The device ``module`` computes on: the first accelerator device among its parameters and
    buffers, else the device of its first parameter (CPU).

    A partially loaded network keeps part of its weights on the CPU (its layers cast them to the
    input's device at every call), so the first parameter's device is not the compute device; the
    accelerator is wherever some tensor is loaded. Fully loaded networks: their one device.
    """
    first = None
    for t in _tensors(module):
        if t.device.type not in ("cpu", "meta"):
            return t.device
        first = first or t.device
    return first or torch.device("cpu")


def _tensors(module: nn.Module) -> Iterator[torch.Tensor]:
    yield from module.parameters()
    yield from module.buffers()
