"""Schedulers on the SD1.5 noise schedule (docs/SAMPLING.md §6), all from diffusers.

``euler`` is the released sampler, with its effective configuration written out: the SD1.5
``scheduler_config.json`` has no ``timestep_spacing``, so Euler's default "linspace" applies, giving
fractional timesteps (999, 957.375, …, 0) and ``init_noise_sigma = σ_max = 14.6146``. The others are
offered as options on the same betas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from diffusers.schedulers.scheduling_utils import SchedulerMixin

#: The SD1.5 training noise schedule (β = linspace(√0.00085, √0.012, 1000)²).
SD15_BETAS = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")

#: Released Euler configuration (docs/SAMPLING.md §6).
EULER_RELEASED = dict(
    SD15_BETAS,
    prediction_type="epsilon",
    timestep_spacing="linspace",
    interpolation_type="linear",
    use_karras_sigmas=False,
    timestep_type="discrete",
    final_sigmas_type="zero",
    steps_offset=1,
)

def _diffusers():
    import diffusers

    return diffusers


_FACTORIES = {
    "euler": lambda: _diffusers().EulerDiscreteScheduler(**EULER_RELEASED),
    "ddim": lambda: _diffusers().DDIMScheduler(
        **SD15_BETAS, clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon"
    ),
    "dpmpp_2m_karras": lambda: _diffusers().DPMSolverMultistepScheduler(
        **SD15_BETAS, algorithm_type="dpmsolver++", solver_order=2, use_karras_sigmas=True, steps_offset=1,
        prediction_type="epsilon",
    ),
    "unipc": lambda: _diffusers().UniPCMultistepScheduler(**SD15_BETAS, steps_offset=1, prediction_type="epsilon"),
}

#: Scheduler names accepted by :func:`make_scheduler`; the first is the released default.
SCHEDULER_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def make_scheduler(name: str = "euler") -> SchedulerMixin:
    """A fresh diffusers scheduler.

    Args:
        name: "euler" (released: Euler, linspace spacing), "ddim", "dpmpp_2m_karras" (DPM-Solver++
            2M with Karras sigmas) or "unipc".

    Raises:
        ValueError: for an unknown name (the message lists the valid ones).
    """
    try:
        return _FACTORIES[name]()
    except KeyError:
        raise ValueError(f"Unknown scheduler '{name}': choose one of {', '.join(SCHEDULER_NAMES)}.") from None
