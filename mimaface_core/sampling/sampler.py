"""The denoising loop with classifier-free guidance and the ICA clip loop (docs/SAMPLING.md §4–§9).

Latents live in the SD latent space scaled by 0.18215 (docs/SAMPLING.md §9) and stay float32 in the scheduler;
the UNet runs in its own dtype. UNet input channels: 0..3 the noisy latents (scaled by the
scheduler), 4..7 the render latents, 8..11 the ICA latents, 12 the ICA mask (docs/WEIGHTS.md §6, docs/SAMPLING.md §5).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from ..errors import SamplingCancelled
from ..networks.denoiser import LATENT_CHANNELS, is_video_unet, predict_noise
from ..networks.operations import execution_device
from .ica import CLIP_LENGTH, OVERLAP, Clip, clip_condition, plan_clips
from .cost import SamplingStats, shallow_share
from .deepcache import BRANCHES, DeepCache
from .guidance import check_interval, guided_flags
from .presets import EXACT, preset_values
from .schedulers import SCHEDULER_NAMES, make_scheduler

log = logging.getLogger(__name__)
NOISE_MODES = ("same", "fresh")
#: Makes a float32 copy of the UNet for the NaN fallback (the caller's model is never changed).
Float32Copy = Callable[[], torch.nn.Module]


def float32_copy(module: torch.nn.Module) -> Float32Copy:
    """A maker of float32 copies of ``module`` (the fp16/bf16 NaN fallback never changes the model)."""
    import copy

    return lambda: copy.deepcopy(module).float()


#: Called after every denoising step as ``on_step(done, total)`` across all clips.
StepCallback = Callable[[int, int], None]
#: Called after every denoising step with the current clip's denoised estimate x0 (the
#: prediction of the clean latents from that step's noise prediction): (1, 4, [F,] h, w) float32,
#: × 0.18215 like every latent here, on the UNet's device. Before the step's ``on_step``.
DenoisedCallback = Callable[[torch.Tensor], None]


@dataclass(frozen=True)
class SamplingOptions:
    """Sampler settings; the defaults are the release's (docs/SAMPLING.md §6–§8, §10–§12).

    Fields a preset sets (``steps``, ``scheduler``, ``guidance_interval``, ``cache_interval``,
    ``cache_depth``) default to None, "not given": ``__post_init__`` fills them from ``preset``
    (``sampling.presets``), so after construction they always hold values, and ``given`` names the
    ones the caller set (those override the preset). ``dataclasses.replace`` passes every field
    again, so all become given; to change the preset use :meth:`with_preset`.

    Attributes:
        steps: denoising steps per clip (25).
        guidance: CFG scale (5.0); 1.0 skips the unconditional branch.
        scheduler: one of ``schedulers.SCHEDULER_NAMES`` ("euler" released).
        seed: noise seed (0 released).
        noise: "same" (released: every clip starts from the noise drawn from ``seed``) or
            "fresh" (one generator seeded once, new noise for every clip).
        clip_length: F, frames per clip (12; at most 32).
        overlap: frames carried from the previous clip by ICA (3).
        skip_unused_clips: drop a trailing clip that contributes no new frame (the release samples
            it anyway; the output is the same, one clip of compute less).
        compile: ``torch.compile`` the UNet in place before sampling (``sampling.compile``; the
            first call of each clip shape pays the compilation). False: the release.
        channels_last: store the UNet's convolution weights NHWC (``sampling.compile``). False:
            the release.
        preset: "exact" (the release), "balanced", "fast" or "draft" (``presets.PRESETS``).
        guidance_interval: (LOW, HIGH) fractions of the schedule in (0, 1]: CFG only on the steps
            inside (``sampling.guidance``); None: every step (released).
        cache_interval: DeepCache's N: a full UNet pass every N steps, shallow passes between
            (``sampling.deepcache``); 1: off (released).
        cache_depth: outer down/up blocks the shallow pass recomputes (1..3 for SD1.5).

    Raises:
        ValueError: a value out of range (the message names the field).
    """

    steps: int | None = None
    guidance: float = 5.0
    scheduler: str | None = None
    seed: int = 0
    noise: str = "same"
    clip_length: int = CLIP_LENGTH
    overlap: int = OVERLAP
    skip_unused_clips: bool = True
    preset: str = "exact"
    guidance_interval: tuple[float, float] | None = None
    cache_interval: int | None = None
    cache_depth: int | None = None
    compile: bool = False
    channels_last: bool = False
    given: frozenset = field(default=frozenset(), init=False, compare=False, repr=False)

    def __post_init__(self):
        """Raises ``ranges.ValueRangeError`` (a ValueError) for steps, guidance, seed, clip length or
        overlap outside ``ranges.OPTION_RANGES``' limits (a warning beyond the plausible range),
        ValueError for an unknown scheduler or noise mode."""
        from ..ranges import check_options

        values = preset_values(self.preset)
        given = frozenset(name for name in values if getattr(self, name) is not None)
        object.__setattr__(self, "given", given)
        for name, value in values.items():
            if name not in given:
                object.__setattr__(self, name, value)
        if self.guidance_interval is not None:
            object.__setattr__(self, "guidance_interval", tuple(float(v) for v in self.guidance_interval))
        check_options({"steps": self.steps, "guidance": self.guidance, "seed": self.seed,
                       "clip_length": self.clip_length, "overlap": self.overlap,
                       "cache_interval": self.cache_interval, "cache_depth": self.cache_depth}, "sampling options")
        if self.scheduler not in SCHEDULER_NAMES:
            raise ValueError(f"scheduler must be one of {SCHEDULER_NAMES}, got {self.scheduler!r}.")
        if self.noise not in NOISE_MODES:
            raise ValueError(f"noise must be one of {NOISE_MODES}, got {self.noise!r}.")
        check_interval(self.guidance_interval)
        if self.cache_interval < 1:
            raise ValueError(f"cache_interval must be ≥ 1 (1 = no DeepCache), got {self.cache_interval}.")
        if self.cache_depth < 1:
            raise ValueError(f"cache_depth must be ≥ 1, got {self.cache_depth}.")

    def with_preset(self, preset: str) -> "SamplingOptions":
        """The same options under another preset, keeping only the explicitly given preset fields."""
        import dataclasses

        kept = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.init and (f.name in self.given or f.name not in EXACT)}
        return SamplingOptions(**{**kept, "preset": preset})


class _Steps:
    """Counts steps across clips, reports progress and checks for cancellation at every step."""

    def __init__(self, total: int, on_step: StepCallback | None, cancel: Callable[[], bool] | None,
                 on_denoised: DenoisedCallback | None = None):
        self.done, self.total, self.on_step, self.cancel = 0, total, on_step, cancel
        self.on_denoised = on_denoised

    def check(self):
        if self.cancel is not None and self.cancel():
            raise SamplingCancelled(f"sampling cancelled after {self.done} of {self.total} steps.")

    def step(self):
        self.done += 1
        if self.on_step is not None:
            self.on_step(self.done, self.total)

    def add(self, steps: int):
        """More steps than planned (a clip sampled again by the float32 fallback)."""
        self.total += steps


def _sigma_at(scheduler, t: torch.Tensor) -> float:
    """σ(t) = √((1 − ᾱ_t) / ᾱ_t) of the SD1.5 training schedule, linearly interpolated between
    integer timesteps (as diffusers' Euler does for its fractional "linspace" timesteps)."""
    alphas = scheduler.alphas_cumprod.double()
    sigmas = ((1 - alphas) / alphas).sqrt()
    t = float(t)
    lo = min(int(t), len(sigmas) - 1)
    hi = min(lo + 1, len(sigmas) - 1)
    return float(sigmas[lo] + (t - lo) * (sigmas[hi] - sigmas[lo]))


def denoised_estimate(model_input: torch.Tensor, eps: torch.Tensor, sigma: float) -> torch.Tensor:
    """The clean-latent prediction x0 of an ε-prediction model (docs/SAMPLING.md §6).

    ``model_input`` is what the UNet saw (``scheduler.scale_model_input``), which is the
    variance-preserving x_t = √ᾱ·x0 + √(1−ᾱ)·ε for every scheduler offered; with σ = √((1−ᾱ)/ᾱ):
    x0 = x_t·√(1+σ²) − σ·ε (for Euler the same as its ``pred_original_sample``).

    Args:
        model_input: (1, 4, [F,] h, w) float32, the scaled noisy latents of this step.
        eps: same shape, the guided noise prediction.
        sigma: σ of this step's timestep.

    Returns:
        x0, same shape, float32 (× 0.18215 latent space).
    """
    return model_input * (1 + sigma * sigma) ** 0.5 - sigma * eps


def _finite(*tensors: torch.Tensor) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def _fallback_unet(unet: torch.nn.Module, fp32_unet: Float32Copy | None, what: str) -> torch.nn.Module | None:
    """The float32 UNet to sample ``what`` again with, or None when there is nothing to fall back to."""
    dtype = next(unet.parameters()).dtype
    if dtype == torch.float32 or fp32_unet is None:
        return None
    log.warning("MIMAFace: %s gave NaN/inf values in %s; sampling it again in float32 on a temporary copy of the "
                "UNet (the loaded model stays %s).", what, str(dtype).replace("torch.", ""),
                str(dtype).replace("torch.", ""))
    return fp32_unet()


def _again_in_float32(unet: torch.nn.Module, fp32_unet: Float32Copy | None, what: str,
                      sample: Callable[[torch.nn.Module], torch.Tensor]) -> torch.Tensor | None:
    """``sample(unet32)`` on a temporary float32 copy of ``unet``, or None without a fallback.

    The copy lives only inside this call: on success, and on any exception, Cancel included
    (ComfyUI 0.33's interrupt derives from BaseException, so this catches BaseException), it is
    dropped here, and the finished frames below this one are cleared so that an exception kept by
    the host does not keep the copy alive through its traceback.
    """
    unet32 = _fallback_unet(unet, fp32_unet, what)
    if unet32 is None:
        return None
    try:
        return sample(unet32)
    except BaseException as exc:
        traceback.clear_frames(exc.__traceback__)
        raise
    finally:
        del unet32


def denoise(unet: torch.nn.Module, noise: torch.Tensor, condition: torch.Tensor, context: torch.Tensor,
            options: SamplingOptions, steps: _Steps | None = None, stats: SamplingStats | None = None) -> torch.Tensor:
    """Sample one clip (or one image) from unit noise.

    Every step concatenates the same ``condition`` (render latents, ICA latents, mask) to the
    scaled noisy latents, so the ICA condition works at any step count and with any scheduler.
    Guidance runs on the steps inside ``options.guidance_interval`` (``sampling.guidance``), the
    other steps make one conditional pass; with ``options.cache_interval`` > 1 a DeepCache owned by
    this call (this clip) replaces the deep UNet blocks on the steps between full ones
    (``sampling.deepcache``). With the defaults this is the released loop, number for number.

    Args:
        unet: the 2D or video UNet (13 input channels).
        noise: (1, 4, [F,] h, w) unit Gaussian noise (multiplied here by ``init_noise_sigma``).
        condition: (1, 9, [F,] h, w) render latents, ICA latents and mask (channels 4..12).
        context: (1, 264, 768) appearance context; the unconditional branch uses zeros (docs/SAMPLING.md §7).
        options: steps, guidance (scale and interval), scheduler and DeepCache.
        stats: work counted here in full-UNet-pass units (``sampling.cost``).

    Returns:
        (1, 4, [F,] h, w) float32 final latents.

    Raises:
        SamplingCancelled: when the cancel check fires (checked before every step).
        ValueError: a cache depth this UNet does not have.
    """
    device, dtype = execution_device(unet), next(unet.parameters()).dtype  # device: see execution_device
    scheduler = make_scheduler(options.scheduler)
    scheduler.set_timesteps(options.steps, device=device)
    latents = noise.to(device, torch.float32) * scheduler.init_noise_sigma
    condition = condition.to(device, dtype)
    context = context.to(device, dtype)
    guided = guided_flags(scheduler.timesteps, options.guidance, options.guidance_interval)
    pair = torch.cat([torch.zeros_like(context), context]) if any(guided) else None
    cache = DeepCache(unet, options.cache_interval, options.cache_depth) if options.cache_interval > 1 else None
    frames = noise.shape[2] if noise.dim() == 5 else 1
    for i, t in enumerate(scheduler.timesteps):
        if steps is not None:
            steps.check()
        model_input = scheduler.scale_model_input(latents, t)
        x = torch.cat([model_input.to(dtype), condition], dim=1)
        g = guided[i]

        def run(x=x, t=t, g=g):
            return predict_noise(unet, torch.cat([x, x]) if g else x, t, pair if g else context)

        with torch.inference_mode():
            eps, full = (run(), True) if cache is None else cache(run, i, BRANCHES if g else BRANCHES[1:])
            eps = eps.float()
        if g:
            uncond, cond = eps.chunk(2)
            eps = uncond + options.guidance * (cond - uncond)
        if steps is not None and steps.on_denoised is not None:  # previews only: nothing computed otherwise
            steps.on_denoised(denoised_estimate(model_input.float(), eps, _sigma_at(scheduler, t)))
        latents = scheduler.step(eps, t, latents, return_dict=False)[0]
        if stats is not None:
            _count(stats, unet, options, frames, latents.shape[-2:], g, full)
        if steps is not None:
            steps.step()
    return latents


def _count(stats: SamplingStats, unet, options: SamplingOptions, frames: int, size, guided: bool, full: bool) -> None:
    """Add one step's work to ``stats`` (docs/SAMPLING.md §12)."""
    share = 1.0
    if not full:
        share = shallow_share(unet, frames, size[0], size[1], options.cache_depth)
        stats.shallow_share = share
    stats.unet_passes += (2 if guided else 1) * frames * share
    stats.full_passes += int(full)
    stats.shallow_passes += int(not full)
    stats.steps += 1
    stats.guided_steps += int(guided)


def _noise(shape: tuple[int, ...], options: SamplingOptions, generator: torch.Generator | None) -> torch.Tensor:
    """Released: a fresh CPU generator seeded with ``seed`` for every clip (docs/SAMPLING.md §8)."""
    if options.noise == "same" or generator is None:
        generator = torch.Generator("cpu").manual_seed(options.seed)
    return torch.randn(shape, generator=generator)


def sample_image(unet: torch.nn.Module, render_latents: torch.Tensor, context: torch.Tensor,
                 options: SamplingOptions = SamplingOptions(), on_step: StepCallback | None = None,
                 cancel: Callable[[], bool] | None = None, noise: torch.Tensor | None = None,
                 fp32_unet: Float32Copy | None = None, steps: "_Steps | None" = None,
                 stats: SamplingStats | None = None,
                 on_denoised: DenoisedCallback | None = None) -> torch.Tensor:
    """Image mode (docs/SAMPLING.md §1): the 2D UNet, channels 8..12 zero.

    Args:
        render_latents: (1, 4, h, w) render latents (×0.18215).
        context: (1, 264, 768) MIM output of the single frame.
        noise: optional (1, 4, h, w) unit noise (default: drawn from ``options.seed``).
        fp32_unet: makes a float32 copy of the UNet; with a float16/bfloat16 UNet, a result with
            NaN/inf values is sampled again on that copy (logged).
        steps: a shared step counter (several images in one progress bar); it carries its own
            ``on_denoised``.
        stats: the work is counted here (``sampling.cost``).
        on_denoised: the denoised estimate (1, 4, h, w) after every step (previews), when
            ``steps`` is not given.

    Returns:
        (1, 4, h, w) float32 final latents.
    """
    h, w = render_latents.shape[-2:]
    if noise is None:
        noise = _noise((1, LATENT_CHANNELS, h, w), options, None)
    condition = torch.cat([render_latents.float(), torch.zeros(1, LATENT_CHANNELS + 1, h, w)], dim=1)
    steps = steps or _Steps(options.steps, on_step, cancel, on_denoised)
    latents = denoise(unet, noise, condition, context, options, steps, stats)
    if not _finite(latents):
        def again(unet32):
            steps.add(options.steps)
            return denoise(unet32, noise, condition, context.float(), options, steps, stats)

        redone = _again_in_float32(unet, fp32_unet, "the image", again)
        if redone is not None:
            latents = redone
    if stats is not None:
        stats.output_frames += 1
    return latents


ClipInputs = Callable[[Clip], "tuple[torch.Tensor, torch.Tensor]"]


def sample_video(unet: torch.nn.Module, num_frames: int, clip_inputs: ClipInputs,
                 options: SamplingOptions = SamplingOptions(), on_step: StepCallback | None = None,
                 cancel: Callable[[], bool] | None = None,
                 noise: torch.Tensor | None = None, fp32_unet: Float32Copy | None = None,
                 fp32_inputs: ClipInputs | None = None,
                 stats: SamplingStats | None = None,
                 on_denoised: DenoisedCallback | None = None) -> Iterator[tuple[Clip, torch.Tensor]]:
    """The ICA clip loop (docs/SAMPLING.md §5), one clip at a time.

    Args:
        unet: the video UNet (``is_video_unet``).
        num_frames: L, the number of driving frames.
        clip_inputs: called once per clip with its :class:`Clip`; returns the clip's render
            latents (F, 4, h, w) (×0.18215) and its context (1, 264, 768). Only the current clip's
            tensors exist at any time.
        options: sampler settings (clip length, overlap, steps, guidance, scheduler, seed, noise).
        on_step: progress across all clips, ``on_step(done, total)``.
        cancel: returns True to stop; checked before every step (stops within one step).
        noise: optional (1, 4, F, h, w) unit noise used for every clip instead of drawing it.
        fp32_unet: makes a float32 copy of the UNet; with a float16/bfloat16 UNet, a clip whose
            latents hold NaN/inf is sampled again on that copy (logged; only that clip).
        fp32_inputs: the clip's inputs computed in float32, used by that fallback when the
            clip's own render latents or context are not finite.
        stats: the work and the output frames (``clip.keep``) are counted here (``sampling.cost``).
        on_denoised: after every step, the current clip's denoised estimate (1, 4, F, h, w)
            float32 (previews; not computed when None).

    Yields:
        (clip, latents) with latents (F, 4, h, w) float32 on the UNet's device; the frames to
        output are ``latents[list(clip.keep)]``.

    Raises:
        SamplingCancelled: when ``cancel`` fires. ValueError: bad clip settings or a 2D UNet.
    """
    if not is_video_unet(unet):
        raise ValueError("sample_video needs the video UNet: load the model with mode='video'.")
    clips = plan_clips(num_frames, options.clip_length, options.overlap, options.skip_unused_clips)
    steps = _Steps(len(clips) * options.steps, on_step, cancel, on_denoised)
    generator = torch.Generator("cpu").manual_seed(options.seed) if options.noise == "fresh" else None
    previous = None

    def condition_of(render_latents):
        return clip_condition(render_latents, previous, options.overlap)

    for clip in clips:
        render_latents, context = clip_inputs(clip)
        f, _, h, w = render_latents.shape
        condition = condition_of(render_latents)
        start_noise = noise if noise is not None else _noise((1, LATENT_CHANNELS, f, h, w), options, generator)
        latents = denoise(unet, start_noise, condition, context, options, steps, stats)[0].transpose(0, 1)
        if not _finite(latents):
            def again(unet32, clip=clip, render_latents=render_latents, context=context, condition=condition):
                if fp32_inputs is not None and not _finite(render_latents, context):
                    render_latents, context = fp32_inputs(clip)
                    condition = condition_of(render_latents)
                steps.add(options.steps)
                return denoise(unet32, start_noise, condition, context.float(), options, steps, stats)[0].transpose(0, 1)

            redone = _again_in_float32(unet, fp32_unet, f"clip {clip.index}", again)
            if redone is not None:
                latents = redone
        previous = latents
        if stats is not None:
            stats.output_frames += len(clip.keep)
        yield clip, latents
