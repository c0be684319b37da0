"""Live-preview pieces of the core (issue 27): the denoised estimate each step hands to a
previewer, and the grid a clip's frames are tiled into. The previews inside ComfyUI (one per step,
none with the preview method none) are checked in tests/comfy_inprocess.py."""

from __future__ import annotations

import pytest
import torch

from mimaface_core.sampling.preview import grid_shape, latent_grid
from mimaface_core.sampling.sampler import _sigma_at, denoised_estimate
from mimaface_core.sampling.schedulers import SCHEDULER_NAMES, make_scheduler


@pytest.mark.parametrize("name", ["euler", "ddim"])
def test_estimate_equals_the_schedulers_own_prediction(name):
    """diffusers' Euler and DDIM report pred_original_sample; the estimate is the same x0."""
    scheduler = make_scheduler(name)
    scheduler.set_timesteps(6)
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, 3, 8, 8, generator=g) * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(latents, t)
        eps = torch.randn(latents.shape, generator=g)
        ours = denoised_estimate(model_input, eps, _sigma_at(scheduler, t))
        out = scheduler.step(eps, t, latents)
        assert torch.allclose(ours, out.pred_original_sample, atol=1e-4), float((ours - out.pred_original_sample).abs().max())
        latents = out.prev_sample


@pytest.mark.parametrize("name", SCHEDULER_NAMES)
def test_estimate_inverts_the_forward_noising(name):
    """For every scheduler: x_t = √ᾱ·x0 + √(1−ᾱ)·ε at an integer timestep gives back x0."""
    scheduler = make_scheduler(name)
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(2, 1, 4, 8, 8, generator=g)
    for t in (999, 500, 20):
        alpha = scheduler.alphas_cumprod[t]
        xt = alpha.sqrt() * x0 + (1 - alpha).sqrt() * eps
        assert torch.allclose(denoised_estimate(xt, eps, _sigma_at(scheduler, torch.tensor(t))), x0, atol=1e-4)


def test_grid_layout():
    assert [grid_shape(f) for f in (1, 2, 3, 4, 5, 12, 16)] == [(1, 1), (1, 2), (2, 2), (2, 2), (2, 3), (3, 4), (4, 4)]
    clip = torch.arange(5.0).reshape(1, 1, 5, 1, 1).expand(1, 4, 5, 2, 3)
    grid = latent_grid(clip)
    assert grid.shape == (1, 4, 2 * 2, 3 * 3)
    cells = grid[0, 0, ::2, ::3]  # one value per cell, frames in reading order, the empty cell zero
    assert cells.tolist() == [[0, 1, 2], [3, 4, 0]]
    image = torch.randn(1, 4, 8, 8)
    assert latent_grid(image) is image
    with pytest.raises(ValueError, match="latent_grid expects"):
        latent_grid(torch.randn(2, 4, 3, 8, 8))
