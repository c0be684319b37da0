"""The sampler's work in full-UNet-pass units, counted while sampling and planned beforehand
(docs/SAMPLING.md §12).

Unit: one full UNet evaluation of one frame. A step of a clip of F frames costs F units without
CFG and 2F with the batched CFG pair; a shallow DeepCache pass costs its FLOP share of a full pass.
The released sampler on a long video: 25 steps × 2 × 12 frames per 9 new frames = 66.7 units per
output frame.

The FLOP share is measured once per architecture, latent size, clip length and cache depth with
``torch.utils.flop_counter.FlopCounterMode`` on a shape-only (``meta``) copy of the UNet, so it
costs no memory and no real computation, and is cached for the process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch

_SHARES: dict[tuple, float] = {}


@dataclass
class SamplingStats:
    """What the sampler did, filled while it runs (``iter_animate(..., stats=...)``,
    ``animate_latents``, ``sample_video``).

    Attributes:
        unet_passes: work in full-UNet-pass units of one frame (see the module docstring); float.
        full_passes / shallow_passes: UNet calls (a batched CFG pair is one call).
        steps: denoising steps run (all clips). guided_steps: steps that ran the CFG pair.
        output_frames: frames returned to the caller (overlap recomputations excluded).
        shallow_share: the FLOP share of a shallow pass used (None without DeepCache).
    """

    unet_passes: float = 0.0
    full_passes: int = 0
    shallow_passes: int = 0
    steps: int = 0
    guided_steps: int = 0
    output_frames: int = 0
    shallow_share: float | None = field(default=None)

    @property
    def passes_per_output_frame(self) -> float:
        """Full-UNet-pass units per output frame (66.7 for the released sampler on a long video)."""
        return self.unet_passes / self.output_frames if self.output_frames else 0.0

    def line(self) -> str:
        """The line the CLI prints at the end of a run: ``UNet passes per output frame: 66.7``."""
        return f"UNet passes per output frame: {self.passes_per_output_frame:.1f}"


def _config_key(unet: torch.nn.Module) -> str:
    return type(unet).__name__ + json.dumps(dict(unet.config), sort_keys=True, default=str)


def shallow_share(unet: torch.nn.Module, frames: int, height: int, width: int, depth: int) -> float:
    """FLOPs of a shallow DeepCache pass over FLOPs of a full pass, in (0, 1).

    Args:
        unet: the denoiser (only its class and config are used: a ``meta`` copy is measured).
        frames: F (1 for the 2D UNet); height, width: latent size (64 at 512 px); depth: cache depth.

    Returns:
        the share, measured with ``torch.utils.flop_counter.FlopCounterMode`` once per
        (architecture, frames, size, depth) and cached.
    """
    key = (_config_key(unet), frames, height, width, depth)
    if key not in _SHARES:
        _SHARES[key] = _measure_share(unet, frames, height, width, depth)
    return _SHARES[key]


def _meta_copy(unet: torch.nn.Module) -> torch.nn.Module:
    with torch.device("meta"):
        return type(unet).from_config(unet.config)


def _measure_share(unet, frames, height, width, depth) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    from ..networks.denoiser import is_video_unet, predict_noise
    from .deepcache import DeepCache

    meta = _meta_copy(unet)
    video = is_video_unet(meta)
    shape = (1, meta.config.in_channels, frames, height, width) if video else (1, meta.config.in_channels, height, width)
    sample = torch.empty(shape, device="meta")
    context = torch.empty(1, 8, meta.config.cross_attention_dim, device="meta")
    t = torch.tensor(500.0, device="meta")
    cache = DeepCache(meta, interval=2, depth=depth)
    flops = []
    for step in (0, 1):
        with FlopCounterMode(display=False) as counter:
            cache(lambda: predict_noise(meta, sample, t, context), step, ("cond",))
        flops.append(counter.get_total_flops())
    return flops[1] / flops[0]


def cache_bytes(unet: torch.nn.Module, frames: int, height: int, width: int, depth: int = 1,
                dtype: torch.dtype = torch.float16, branches: int = 2) -> int:
    """Bytes of one clip's DeepCache cache: the output of up block −depth−1 for every frame of
    every CFG branch (measured on a ``meta`` copy; e.g. SD1.5 + AnimateDiff at 512 px, 12 frames,
    fp16, depth 1, two branches: 12 × 640 × 64 × 64 × 2 B × 2 = 125,829,120 B = 120 MiB)."""
    from ..networks.denoiser import is_video_unet, predict_noise
    from .deepcache import DeepCache

    meta = _meta_copy(unet).to(dtype)
    video = is_video_unet(meta)
    shape = (1, meta.config.in_channels, frames, height, width) if video else (1, meta.config.in_channels, height, width)
    cache = DeepCache(meta, interval=2, depth=depth)
    cache(lambda: predict_noise(meta, torch.empty(shape, device="meta", dtype=dtype), torch.tensor(500.0),
                                torch.empty(1, 8, meta.config.cross_attention_dim, device="meta", dtype=dtype)),
          0, ("cond",))
    return cache.nbytes() * branches


def planned_passes(num_frames: int, options, share: float | None = None) -> float:
    """Full-UNet-pass units per output frame that ``sample_video`` will count for ``options``,
    computed without running the UNet (the step schedule, the guidance interval and the DeepCache
    schedule are those the sampler uses).

    Args:
        num_frames: L driving frames. options: a ``SamplingOptions``.
        share: the FLOP share of a shallow pass (``shallow_share``); needed when DeepCache is on.

    Raises:
        ValueError: DeepCache on without a share.
    """
    from .deepcache import BRANCHES, CacheSchedule
    from .guidance import guided_flags
    from .ica import plan_clips
    from .schedulers import make_scheduler

    clips = plan_clips(num_frames, options.clip_length, options.overlap, options.skip_unused_clips)
    scheduler = make_scheduler(options.scheduler)
    scheduler.set_timesteps(options.steps)
    guided = guided_flags(scheduler.timesteps, options.guidance, options.guidance_interval)
    cached = options.cache_interval > 1
    if cached and share is None:
        raise ValueError("planned_passes: DeepCache is on (cache_interval > 1): give the shallow pass's FLOP share.")
    schedule = CacheSchedule(options.cache_interval)
    per_clip = 0.0
    for i, g in enumerate(guided):
        branches = BRANCHES if g else BRANCHES[1:]
        full = not cached or schedule.full(i, branches)
        per_clip += len(branches) * (1.0 if full else share)
    frames = sum(len(c.frames) for c in clips)
    kept = sum(len(c.keep) for c in clips)
    return per_clip * frames / kept
