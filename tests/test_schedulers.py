"""The released Euler configuration and the optional schedulers (docs/SAMPLING.md §6)."""

from __future__ import annotations

import pytest
import torch

import official_tiny as ot
from mimaface_core.sampling.schedulers import SCHEDULER_NAMES, make_scheduler


@pytest.mark.parametrize("case", ["sampling_image", "sampling_video"])
def test_euler_matches_released_schedule(case):
    params = ot.cases()[case]["params"]
    steps = params.get("num_inference_steps", len(params["timesteps"]))
    sched = make_scheduler("euler")
    sched.set_timesteps(steps)
    torch.testing.assert_close(sched.timesteps.double(), torch.tensor(params["timesteps"], dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(sched.sigmas.double(), torch.tensor(params["sigmas"], dtype=torch.float64), atol=1e-5, rtol=1e-6)
    assert float(sched.init_noise_sigma) == pytest.approx(params["init_noise_sigma"], rel=1e-6)


def test_all_schedulers_share_the_sd15_betas():
    ref = make_scheduler("euler").betas
    for name in SCHEDULER_NAMES:
        sched = make_scheduler(name)
        torch.testing.assert_close(sched.betas, ref, msg=name)
        sched.set_timesteps(10)
        assert len(sched.timesteps) == 10
    assert make_scheduler("dpmpp_2m_karras").config.use_karras_sigmas


def test_unknown_scheduler():
    with pytest.raises(ValueError, match="euler, ddim"):
        make_scheduler("heun")
