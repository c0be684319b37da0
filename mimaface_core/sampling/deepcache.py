"""DeepCache for the denoiser (Ma et al. 2023, "DeepCache: Accelerating Diffusion Models for Free"):
on all but every N-th step, the deep part of the UNet is not evaluated; its features from the last
full step are reused and only the shallow branch is recomputed (docs/SAMPLING.md §11).

The shallow branch of depth d is ``conv_in``, the outer d down blocks and the outer d up blocks
(each with its ResNets, spatial transformers, whose cross-attention reads the MIA context, and motion
modules), and the output layers. Everything deeper (down blocks d.., the mid block, up blocks
..−d−1, and the downsampler that leaves down block d−1) is skipped: the input of up block −d is the
cached output of up block −d−1 of the last full step, and the skip connections of the outer blocks
are fresh. The condition channels (render and ICA latents) enter through ``conv_in`` and so reach
every step.

How: the UNet's own ``forward`` (diffusers ``UNetMotionModel`` or ``UNet2DConditionModel``) runs as
it is; on a shallow step the skipped blocks' ``forward`` are replaced, for that call only, by stubs
that return shape-only (``meta``) tensors, and the last skipped up block returns the cache. Nothing
of diffusers' forward is copied. Works for the video and the 2D UNet.

A :class:`DeepCache` belongs to one clip (one ``denoise`` call) and keeps one cache per CFG branch
("uncond", "cond"): a new clip starts with no cache, and one branch never reads the other's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager

import torch
from torch import nn

#: The branches of classifier-free guidance, in the order of the batched pair (docs/SAMPLING.md §7).
BRANCHES = ("uncond", "cond")


def _blocks(unet: nn.Module) -> tuple[Sequence[nn.Module], nn.Module | None, Sequence[nn.Module]]:
    return unet.down_blocks, getattr(unet, "mid_block", None), unet.up_blocks


def max_depth(unet: nn.Module) -> int:
    """The largest cache depth of ``unet``: one less than its number of up blocks (3 for SD1.5)."""
    return len(unet.up_blocks) - 1


def check_depth(unet: nn.Module, depth: int) -> None:
    """Raise ValueError unless ``1 ≤ depth ≤ max_depth(unet)`` (the message names cache_depth)."""
    if not 1 <= depth <= max_depth(unet):
        raise ValueError(f"cache_depth must be 1..{max_depth(unet)} for this UNet ({len(unet.up_blocks)} up blocks), "
                         f"got {depth}.")


def _meta_like(value):
    """Shape-only stand-ins (device 'meta') of a block's output: a tensor or a tuple of tensors."""
    if torch.is_tensor(value):
        return torch.empty(value.shape, dtype=value.dtype, device="meta")
    if isinstance(value, tuple):
        return tuple(_meta_like(v) for v in value)
    return value


@contextmanager
def _replaced(modules_and_stubs: Sequence[tuple[nn.Module, Callable]]):
    """Replace each module's ``forward`` by its stub for the duration (any instance-level forward,
    e.g. an offloading hook, is put back afterwards)."""
    saved = [(m, m.__dict__.get("forward")) for m, _ in modules_and_stubs]
    try:
        for module, stub in modules_and_stubs:
            module.forward = stub
        yield
    finally:
        for module, previous in saved:
            if previous is None:
                del module.forward
            else:
                module.forward = previous


class _Recorder:
    """Forward hooks of one full step: the outputs' shapes of every skipped module and the cache."""

    def __init__(self, skipped: Sequence[nn.Module], cached: nn.Module):
        self.shapes: dict[int, object] = {}
        self.cache: torch.Tensor | None = None
        self._handles = [m.register_forward_hook(self._shape_hook(i)) for i, m in enumerate(skipped)]
        self._handles.append(cached.register_forward_hook(self._cache_hook))

    def _shape_hook(self, i):
        def hook(_module, _args, output):
            self.shapes[i] = _meta_like(output)
        return hook

    def _cache_hook(self, _module, _args, output):
        self.cache = output

    def remove(self):
        for h in self._handles:
            h.remove()


class CacheSchedule:
    """Which steps of one clip are full passes: steps 0, N, 2N… (a new period: every cache is
    dropped), and any step whose batch holds a branch without a cache from the current period
    (e.g. guidance switching on mid-period). Steps are visited in order from 0."""

    def __init__(self, interval: int):
        self.interval, self.period, self.branches = interval, -1, set()

    def full(self, step: int, branches: Sequence[str]) -> bool:
        """Whether ``step`` (evaluating ``branches``) is a full pass; records the branches it caches."""
        if step % self.interval == 0:
            self.period, self.branches = step, set()
        full = step == self.period or any(b not in self.branches for b in branches)
        if full:
            self.branches |= set(branches)
        return full


class DeepCache:
    """The feature cache of one clip: which steps are full, and the cached deep features per branch.

    Args:
        unet: the denoiser (``UNetMotionModel`` or ``UNet2DConditionModel``).
        interval: N; steps 0, N, 2N… of the clip are full passes, the others shallow (N = 1: every
            step full, the same numbers as no cache).
        depth: d, how many outer down and up blocks the shallow branch recomputes (1..max_depth).

    Raises:
        ValueError: interval < 1 or a depth this UNet does not have.
    """

    def __init__(self, unet: nn.Module, interval: int, depth: int = 1):
        if interval < 1:
            raise ValueError(f"cache_interval must be ≥ 1, got {interval}.")
        check_depth(unet, depth)
        self.unet, self.interval, self.depth = unet, interval, depth
        down, mid, up = _blocks(unet)
        downsamplers = getattr(down[depth - 1], "downsamplers", None) or []
        #: Modules not evaluated on a shallow step (their outputs are stubbed), in order.
        self.skipped: list[nn.Module] = [*downsamplers, *down[depth:], *([mid] if mid is not None else []),
                                         *up[:-depth]]
        self.cached_block = up[-depth - 1]
        #: branch → (rows, C, h, w) output of up block −depth−1 at the branch's last full step.
        self.caches: dict[str, torch.Tensor] = {}
        self._shapes: dict[int, object] = {}
        self.schedule = CacheSchedule(interval)

    def __call__(self, run: Callable[[], torch.Tensor], step: int, branches: Sequence[str]) -> tuple[torch.Tensor, bool]:
        """Evaluate ``run()`` (one UNet call on the batch of ``branches``, in that order) fully or
        shallowly. Returns (its output, whether the pass was full)."""
        if self.schedule.full(step, branches):
            if step == self.schedule.period:
                self.caches = {}
            recorder = _Recorder(self.skipped, self.cached_block)
            try:
                out = run()
            finally:
                recorder.remove()
            self._shapes = {i: (s, len(branches)) for i, s in recorder.shapes.items()}
            for b, rows in zip(branches, recorder.cache.chunk(len(branches))):
                self.caches[b] = rows
            return out, True
        cache = torch.cat([self.caches[b] for b in branches]) if len(branches) > 1 else self.caches[branches[0]]
        stubs = [(m, self._stub(i, len(branches))) for i, m in enumerate(self.skipped)]
        stubs[-1] = (self.cached_block, lambda *a, **k: cache)
        with _replaced(stubs):
            return run(), False

    def _stub(self, i: int, batch: int):
        shape, recorded_batch = self._shapes[i]

        def rows(value):
            if torch.is_tensor(value):
                return torch.empty((value.shape[0] // recorded_batch * batch, *value.shape[1:]), dtype=value.dtype,
                                   device="meta")
            return tuple(rows(v) for v in value) if isinstance(value, tuple) else value

        out = rows(shape)
        return lambda *a, **k: out

    def nbytes(self) -> int:
        """Bytes held by the caches now."""
        return sum(t.numel() * t.element_size() for t in self.caches.values())
