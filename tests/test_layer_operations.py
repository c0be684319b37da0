"""Host layer operations (mimaface_core.networks.operations): networks built with weight-casting
layer classes, as ComfyUI's ``comfy.ops`` provides, give the same numbers as plain torch.

The stand-in namespace below casts the weights to the input's device and dtype on every call, as
``comfy.ops.manual_cast`` does (the path partial loading takes); on the CPU in float32 that cast is
the identity, so every output must be bit-identical to the plain build.
"""

from __future__ import annotations

import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import official_tiny as ot
from mimaface_core.networks.denoiser import predict_noise
from mimaface_core.networks.vae import decode_latents, encode_renders
from mimaface_core.networks.operations import (
    LAYER_NAMES,
    apply_operations,
    execution_device,
    loose_tensors,
    move_loose_tensors,
    parameterised_layers,
)


def _cast(layer: nn.Module, x: torch.Tensor):  # comfy.ops: cast_bias_weight
    weight = None if layer.weight is None else layer.weight.to(x.device, x.dtype)
    bias = None if layer.bias is None else layer.bias.to(x.device, x.dtype)
    return weight, bias


class _Linear(nn.Linear):
    def forward(self, input):  # noqa: A002 (diffusers passes input=)
        return F.linear(input, *_cast(self, input))


class _Conv2d(nn.Conv2d):
    def forward(self, input):  # noqa: A002 (diffusers passes input=)
        return self._conv_forward(input, *_cast(self, input))


class _Conv1d(nn.Conv1d):
    def forward(self, input):  # noqa: A002 (diffusers passes input=)
        return self._conv_forward(input, *_cast(self, input))


class _GroupNorm(nn.GroupNorm):
    def forward(self, input):  # noqa: A002 (diffusers passes input=)
        return F.group_norm(input, self.num_groups, *_cast(self, input), self.eps)


class _LayerNorm(nn.LayerNorm):
    def forward(self, input):  # noqa: A002 (diffusers passes input=)
        return F.layer_norm(input, self.normalized_shape, *_cast(self, input), self.eps)


class _Embedding(nn.Embedding):
    def forward(self, input):  # noqa: A002 (diffusers passes input=)
        return F.embedding(input, self.weight.to(input.device), self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)


#: Like comfy.ops.manual_cast: no Conv3d / BatchNorm2d / ConvTranspose2d (as ComfyUI 0.3.64 lacks BatchNorm2d).
CASTING_OPS = types.SimpleNamespace(Linear=_Linear, Conv1d=_Conv1d, Conv2d=_Conv2d, GroupNorm=_GroupNorm,
                                    LayerNorm=_LayerNorm, Embedding=_Embedding)
_OP_CLASSES = tuple(vars(CASTING_OPS).values())


@pytest.fixture(scope="module")
def cast_model(animate_root):
    from mimaface_core import load_mimaface

    return load_mimaface(animate_root, mode="video", operations=CASTING_OPS)


def _networks(model):
    return {"denoiser": model.denoiser, "mim": model.mim, "clip": model.appearance_encoder, "vae": model.vae}


def test_every_parameterised_torch_layer_is_converted(animate_model, cast_model):
    for name, plain in _networks(animate_model).items():
        cast = _networks(cast_model)[name]
        plain_layers, cast_layers = parameterised_layers(plain), parameterised_layers(cast)
        assert [n for n, _ in plain_layers] == [n for n, _ in cast_layers]
        convertible = [n for n, m in plain_layers if (type(m).__module__.startswith("torch") and type(m).__name__
                       in vars(CASTING_OPS)) or getattr(m, "operations_namesake", None) in vars(CASTING_OPS)]
        converted = [n for n, m in cast_layers if isinstance(m, _OP_CLASSES)]
        assert converted == convertible and len(converted) > 0, name
        # what is left over owns non-layer parameters (transformers' CLIP class_embedding) only
        left = {type(m).__name__ for n, m in cast_layers if n not in converted}
        assert left <= {"CLIPVisionEmbeddings"}, (name, left)
        for (_, a), (_, b) in zip(plain_layers, cast_layers):  # the very same weights, not copies of them
            assert all(torch.equal(p, q) for p, q in zip(a.parameters(recurse=False), b.parameters(recurse=False)))
    counts = {n: sum(isinstance(m, _OP_CLASSES) for m in net.modules()) for n, net in _networks(cast_model).items()}
    print("converted layers:", counts)
    # the motion modules' per-frame GroupNorm keeps its own forward with the casting one under it
    per_frame = [m for m in cast_model.denoiser.modules() if type(m).__name__ == "PerFrameGroupNorm"]
    assert per_frame and all(isinstance(m, _GroupNorm) for m in per_frame)


@torch.no_grad()
def test_denoiser_bit_identical(animate_model, cast_model):
    case = "unet3d"
    context = ot.inp(case, "context_cond")
    context = torch.cat([torch.zeros_like(context), context])
    args = (ot.inp(case, "sample"), ot.inp(case, "timestep"), context)
    assert torch.equal(predict_noise(cast_model.denoiser, *args), predict_noise(animate_model.denoiser, *args))


@torch.no_grad()
def test_mia_bit_identical(animate_model, cast_model):
    case = "mim"
    frames = ot.cases()[case]["params"]["frames"]
    coeffs = {n: ot.inp(case, n) for n in ("gaze", "exp", "tex", "gamma", "angles", "translation")}
    tokens, identity = ot.inp(case, "clip_tokens").repeat(frames, 1, 1), ot.inp(case, "identity").repeat(frames, 1)
    assert torch.equal(cast_model.mim(tokens, identity, **coeffs), animate_model.mim(tokens, identity, **coeffs))


@torch.no_grad()
def test_clip_bit_identical(animate_model, cast_model):
    pixels = ot.inp("clip", "pixel_values")
    assert torch.equal(cast_model.appearance_encoder(pixels), animate_model.appearance_encoder(pixels))


def test_vae_bit_identical(animate_model, cast_model):
    renders = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    latents = encode_renders(animate_model.vae, renders)
    assert torch.equal(encode_renders(cast_model.vae, renders), latents)
    assert torch.equal(decode_latents(cast_model.vae, latents), decode_latents(animate_model.vae, latents))


def test_no_operations_is_plain_torch(animate_model):
    assert apply_operations(animate_model.mim, None) == 0
    assert all(type(m).__module__.startswith(("torch", "mimaface_core")) for m in animate_model.mim.modules())


def test_only_exact_torch_layers_are_replaced():
    class Custom(nn.Linear):  # a library's own subclass keeps its forward
        pass

    from mimaface_core.networks.denoiser import PerFrameGroupNorm

    net = nn.Sequential(nn.Linear(2, 2), Custom(2, 2), nn.BatchNorm2d(2), nn.Conv3d(1, 1, 1), PerFrameGroupNorm(1, 2))
    x = torch.randn(1, 2, 3, 4, 4)
    expected = net[4](x)
    assert apply_operations(net, CASTING_OPS) == 2
    assert [type(m) for m in net[:4]] == [_Linear, Custom, nn.BatchNorm2d, nn.Conv3d]
    assert type(net[4]).__mro__[1:3] == (PerFrameGroupNorm, _GroupNorm) and torch.equal(net[4](x), expected)
    assert set(LAYER_NAMES) >= {"Linear", "Conv2d", "GroupNorm", "LayerNorm", "Embedding", "BatchNorm2d"}


def test_loose_tensors_of_clip(cast_model):
    """What ComfyUI's non-dynamic partial load does not move: the CLIP's class embedding (owned by a
    module with sub-layers) and the position_ids buffer; everything else is a casting layer."""
    loose = {(type(owner).__name__, name) for owner, name, _ in loose_tensors(cast_model.appearance_encoder, CASTING_OPS)}
    assert ("CLIPVisionEmbeddings", "class_embedding") in loose
    assert all(owner in ("CLIPVisionEmbeddings",) for owner, _ in loose), loose
    assert move_loose_tensors(cast_model.appearance_encoder, CASTING_OPS, "cpu") == 0  # already there
    assert execution_device(cast_model.appearance_encoder) == torch.device("cpu")
    # the motion modules' positional tables are buffers: loose too
    assert any(not is_param for _, _, is_param in loose_tensors(cast_model.denoiser, CASTING_OPS))
