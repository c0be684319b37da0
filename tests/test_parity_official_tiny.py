"""Numerical parity with the released implementation on the official_tiny fixture.

Weights are regenerated from the fixture recipe, written in the released formats and loaded
through ``load_mimaface`` (see conftest). Every tolerance comes from cases.json.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import official_tiny as ot
from mimaface_core.networks.appearance_encoder import clip_preprocess
from mimaface_core.networks.denoiser import predict_noise


def test_weight_recipe_fingerprints(released):
    """Every regenerated component matches its recipe on any CPU: ``sha256_drawn`` and the ``.pe``
    tables where it has them, the all-entries ``sha256`` elsewhere (fixture_families.check_recipe_print)."""
    _, prints = released
    assert set(prints) == set(ot.layout()["components"])
    for name, found in prints.items():
        ot.FAMILY.check_recipe(name, found)


def _cfg_context(c: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.zeros_like(c), c])


@torch.no_grad()
def test_unet3d(video_model):
    case = "unet3d"
    out = predict_noise(video_model.denoiser, ot.inp(case, "sample"), ot.inp(case, "timestep"), _cfg_context(ot.inp(case, "context_cond")))
    ot.check(case, "noise_pred", out)


@torch.no_grad()
def test_motion_module(video_model):
    case = "motion_module"
    module = video_model.denoiser.get_submodule(ot.cases()[case]["params"]["module"])
    x = ot.inp(case, "x")
    b, c, f, h, w = x.shape
    y = module(x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w), num_frames=f)
    ot.check(case, "y", y.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4))


@torch.no_grad()
def test_unet2d(image_model):
    case = "unet2d"
    out = predict_noise(image_model.denoiser, ot.inp(case, "sample"), ot.inp(case, "timestep"), _cfg_context(ot.inp(case, "context_cond")))
    ot.check(case, "noise_pred", out)


def test_clip_preprocess():
    ot.check("clip_preprocess", "pixel_values", clip_preprocess(ot.source_image()))


def test_clip_preprocess_accepts_uint8_array_and_rejects_other_input():
    arr = np.asarray(ot.source_image())
    torch.testing.assert_close(clip_preprocess(arr), clip_preprocess(ot.source_image()), atol=0, rtol=0)
    with pytest.raises(ValueError, match="RGB"):
        clip_preprocess(arr[..., 0].copy())


@torch.no_grad()
def test_clip(video_model, image_model):
    pixels = ot.inp("clip", "pixel_values")
    ot.check("clip", "last_hidden_state_video", video_model.appearance_encoder(pixels))
    ot.check("clip", "last_hidden_state_image", image_model.appearance_encoder(pixels))


@torch.no_grad()
def test_mim(video_model, image_model):
    case = "mim"
    frames = ot.cases()[case]["params"]["frames"]
    coeffs = {n: ot.inp(case, n) for n in ("gaze", "exp", "tex", "gamma", "angles", "translation")}
    clip_tokens = ot.inp(case, "clip_tokens").repeat(frames, 1, 1)
    identity = ot.inp(case, "identity").repeat(frames, 1)
    per_frame = video_model.mim(clip_tokens, identity, **coeffs)
    ot.check(case, "out_video_per_frame", per_frame)
    from mimaface_core.networks.mia import clip_context

    ot.check(case, "out_video_mean", clip_context(per_frame))
    first = {n: v[:1] for n, v in coeffs.items()}
    ot.check(case, "out_image_frame0", image_model.mim(clip_tokens[:1], identity[:1], **first))


@torch.no_grad()
def test_d3dfr(video_model):
    ot.check("d3dfr", "coeffs", video_model.d3dfr(ot.inp("d3dfr", "crop256")))


@torch.no_grad()
def test_identity_deep_features(video_model):
    case = "identity"
    x112 = ot.tensor(ot.cases()[case]["outputs"]["input112"])
    ot.check(case, "deep_features", video_model.identity_encoder.deep_features(x112))
