"""The animation loop that the CLI, the Python API and the ICA Clip Sampler node all run: per
clip (video mode) or per frame (image mode), condition → denoise → (decode), with one progress
count over every unit of work and a cancel check before each (docs/SAMPLING.md §1, §4–§9).

Units of work: every denoising step, every frame conditioned (render, VAE encode, MIA) and every
frame decoded. ``on_progress(done, total)`` is called after each unit and ``cancel()`` before
each, so a request to stop is honoured within one step or one frame. ``on_step(done, total)``
still counts denoising steps alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from ..errors import SamplingCancelled
from .conditioning import ClipConditioner
from .cost import SamplingStats
from .ica import plan_clips
from .sampler import (
    DenoisedCallback,
    Float32Copy,
    SamplingOptions,
    StepCallback,
    _Steps,
    sample_image,
    sample_video,
)

#: ``decode(latents)`` → (k, 512, 512, 3) float32 frames in [0, 1]; called one frame at a time.
Decoder = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class WorkProgress:
    """Counts units of work, reports them and checks for cancellation.

    Attributes:
        total: units planned. on_progress: ``on_progress(done, total)`` after each unit (it may
            raise to cancel, as ComfyUI's interrupt does). cancel: returns True to stop.
    """

    total: int
    on_progress: Callable[[int, int], None] | None = None
    cancel: Callable[[], bool] | None = None
    done: int = field(default=0)

    def check(self) -> None:
        """Raise :class:`SamplingCancelled` when ``cancel`` says so."""
        if self.cancel is not None and self.cancel():
            raise SamplingCancelled(f"cancelled after {self.done} of {self.total} units of work.")

    def tick(self, units: int = 1) -> None:
        """Count finished work, report it, then check for cancellation."""
        self.done += units
        if self.on_progress is not None:
            self.on_progress(self.done, max(self.total, self.done))
        self.check()


def animate_latents(unet: torch.nn.Module, conditioner: ClipConditioner, options: SamplingOptions, *,
                    video: bool, decode: Decoder | None = None, on_step: StepCallback | None = None,
                    on_progress: Callable[[int, int], None] | None = None, cancel: Callable[[], bool] | None = None,
                    fp32_unet: Float32Copy | None = None,
                    fp32_conditioner: Callable[[], ClipConditioner] | None = None,
                    stats: SamplingStats | None = None,
                    on_denoised: DenoisedCallback | None = None) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor | None]]:
    """Sample every frame of ``conditioner``, in order, a clip (or a frame) at a time.

    Args:
        unet: the video UNet (``video=True``) or the 2D UNet.
        conditioner: render latents and MIA context per clip, for N frames.
        options: sampler settings; video mode uses clip length and overlap (ICA).
        decode: when given, the new frames are decoded too, one at a time.
        on_step: denoising progress, ``on_step(done, total)``.
        on_progress: progress over all units of work (see the module docstring).
        cancel: returns True to stop (``SamplingCancelled`` within one step or one frame).
        fp32_unet: float32 UNet copy for the NaN fallback (fp16/bf16 models; only the affected
            clip or frame is sampled again, the caller's model is untouched).
        fp32_conditioner: float32 conditioning for that fallback when the clip's own is not finite.
        stats: filled with the work done, in full-UNet-pass units, and the output frames
            (``sampling.cost.SamplingStats``; ``stats.line()`` is the CLI's last line).
        on_denoised: after every denoising step, before its progress tick, the current clip's (or
            frame's) denoised estimate, (1, 4, F, h, w) or (1, 4, h, w) float32 × 0.18215 on the
            UNet's device (live previews; not computed when None).

    Yields:
        (frame indices, their latents (k, 4, h, w) float32 on the CPU, × 0.18215, their decoded
        frames (k, H, W, 3) or None), one per clip (video) or per frame (image), in frame order.

    Raises:
        SamplingCancelled: ``cancel`` fired. ValueError: bad clip settings, or a 2D UNet with
        ``video=True``.
    """
    n = len(conditioner)
    if options.compile or options.channels_last:
        from .compile import prepare_unet

        unet = prepare_unet(unet, options.compile, options.channels_last)
    if video:
        clips = plan_clips(n, options.clip_length, options.overlap, options.skip_unused_clips)
        conditioned = conditioner.frames_to_condition(clips, options.overlap)
        steps_total = len(clips) * options.steps
    else:
        clips, conditioned, steps_total = None, n, n * options.steps
    work = WorkProgress(steps_total + conditioned + (n if decode is not None else 0), on_progress, cancel)
    work.check()
    previous_tick = conditioner.tick
    conditioner.tick = work.tick

    def step(done, total):
        if on_step is not None:
            on_step(done, total)
        work.tick()

    def decoded(latents):
        if decode is None:
            return None
        out = []
        for k in range(len(latents)):
            out.append(decode(latents[k:k + 1]))
            work.tick()
        return torch.cat(out)

    try:
        if video:
            fp32_inputs = None
            if fp32_conditioner is not None:
                def fp32_inputs(clip):
                    return fp32_conditioner()(clip)

            def clip_inputs(clip):
                return conditioner(clip, keep_for_next=options.overlap)

            for clip, latents in sample_video(unet, n, clip_inputs, options, on_step=step, cancel=work.cancel,
                                              fp32_unet=fp32_unet, fp32_inputs=fp32_inputs, stats=stats,
                                              on_denoised=on_denoised):
                if not clip.keep:
                    continue
                kept = latents[list(clip.keep)].float().cpu()
                yield [clip.frames[j] for j in clip.keep], kept, decoded(kept)
        else:
            steps = _Steps(steps_total, step, work.cancel, on_denoised)
            for i in range(n):
                render_latents, context = conditioner([i])
                latents = sample_image(unet, render_latents, context, options, fp32_unet=fp32_unet,
                                       steps=steps, stats=stats).float().cpu()
                yield [i], latents, decoded(latents)
    finally:
        conditioner.tick = previous_tick
