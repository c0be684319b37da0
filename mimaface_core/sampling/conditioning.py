"""Per-clip conditioning of the sampler: render latents and the MIA context of each clip's frames
(docs/SAMPLING.md §1, §3; docs/WEIGHTS.md §6), computed frame by frame with a progress tick and a cancel check
after every frame.

Beyond the release, with the same numbers: the source's CLIP and identity projections of the MIA
module are computed once per source (they do not depend on the frame), and the ``overlap`` frames
a clip shares with the previous one reuse the render latents and per-frame MIA outputs already
computed, so every driving frame is rendered, encoded and modulated once. Only the current clip's
frames (and the overlap carried to the next) are held.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..morphable.coefficients import ANGLES, EXP, GAMMA, GAZE, TEX, TRANSLATION
from ..networks.mia import MIMModule, clip_context
from ..networks.operations import execution_device
from .ica import Clip

#: ``renders(frame_indices)`` → (k, 3, 512, 512) renders in [−1, 1].
RenderSource = Callable[[Sequence[int]], torch.Tensor]
#: ``encode(renders)`` → (k, 4, 64, 64) float32 render latents (× 0.18215).
Encoder = Callable[[torch.Tensor], torch.Tensor]
#: ``render_latents(frame_indices)`` → (k, 4, 64, 64) float32 render latents (× 0.18215).
LatentSource = Callable[[Sequence[int]], torch.Tensor]


def encoded_renders(renders: RenderSource, encode: Encoder) -> LatentSource:
    """Render latents drawn and encoded when asked (the CLI and the Python API)."""
    return lambda index: encode(renders(index))


@dataclass
class SourceAppearance:
    """The source's appearance, computed once per source photo (docs/SAMPLING.md §2, docs/ALIGNMENT.md §5).

    Attributes:
        tokens: (1, 257, 1024) CLIP ``last_hidden_state`` of the source's 512 crop.
        identity: (1, 25088) float32 CurricularFace deep features of the source.
    """

    tokens: torch.Tensor
    identity: torch.Tensor


def mia_frames(mim: MIMModule, source: tuple[torch.Tensor, torch.Tensor], blended: torch.Tensor) -> torch.Tensor:
    """MIA per frame (docs/SAMPLING.md §3) from the projected source (``MIMModule.project_source``).

    Args:
        blended: (F, 261) blended coefficients of the frames.

    Returns:
        (F, 264, 768) in the module's dtype, on its device.
    """
    b = blended.to(execution_device(mim), next(mim.parameters()).dtype)
    with torch.inference_mode():
        return mim.forward_projected(source, b[:, GAZE], b[:, EXP], b[:, TEX], b[:, GAMMA], b[:, ANGLES],
                                     b[:, TRANSLATION])


class ClipConditioner:
    """Render latents and context of each clip, one frame at a time, overlap frames reused.

    Args:
        mim: the MIA module (video or image stage).
        source: the source's :class:`SourceAppearance`.
        blended: (N, 261) blended coefficients per output frame (gaze applied).
        render_latents: gives the render latents of frames (renders drawn and encoded now, see
            :func:`encoded_renders`, or latents encoded beforehand).
        video: True: the context is the clip's frame mean (video mode); False: per frame.
        tick: called after every frame's conditioning (progress; it may raise to cancel).
    """

    def __init__(self, mim: MIMModule, source: SourceAppearance, blended: torch.Tensor, render_latents: LatentSource,
                 video: bool = True, tick: Callable[[], None] | None = None):
        self.mim, self.source, self.blended = mim, source, blended.float()
        self.render_latents, self.video, self.tick = render_latents, video, tick
        self._projected = None
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.blended)

    def _project(self):
        if self._projected is None:
            device, dtype = execution_device(self.mim), next(self.mim.parameters()).dtype
            with torch.inference_mode():
                self._projected = self.mim.project_source(self.source.tokens.to(device, dtype),
                                                          self.source.identity.to(device, dtype))
        return self._projected

    def frame(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame i's render latent (1, 4, h, w) float32 and MIA output (1, 264, 768)."""
        if i not in self._cache:
            latent = self.render_latents([i]).float()
            self._cache[i] = (latent, mia_frames(self.mim, self._project(), self.blended[i:i + 1]))
            if self.tick is not None:
                self.tick()
        return self._cache[i]

    def __call__(self, clip: Clip | Sequence[int], keep_for_next: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Render latents (F, 4, h, w) float32 and context (1, 264, 768) of a clip's frames
        (``clip.frames`` or a list of indices); the last ``keep_for_next`` frames stay cached for
        the next clip, everything else is dropped."""
        frames = list(clip.frames if isinstance(clip, Clip) else clip)
        parts = [self.frame(i) for i in frames]
        latents = torch.cat([p[0] for p in parts])
        per_frame = torch.cat([p[1] for p in parts])
        keep = set(frames[len(frames) - keep_for_next:]) if keep_for_next else set()
        self._cache = {i: v for i, v in self._cache.items() if i in keep}
        return latents, (clip_context(per_frame) if self.video else per_frame)

    def frames_to_condition(self, clips: Sequence[Clip], overlap: int) -> int:
        """How many frames :meth:`__call__` will condition (progress total) for these clips."""
        cached: set[int] = set()
        count = 0
        for clip in clips:
            frames = list(clip.frames)
            for i in frames:
                if i not in cached:
                    cached.add(i)
                    count += 1
            cached = set(frames[len(frames) - overlap:]) if overlap else set()
        return count

    def in_float32(self, render_latents: LatentSource | None = None) -> "ClipConditioner":
        """A conditioner on a float32 COPY of the MIA module (the fp16/bf16 NaN fallback; the
        model the caller holds is left as it is), with ``render_latents`` (default: this one's)."""
        return ClipConditioner(copy.deepcopy(self.mim).float(), SourceAppearance(self.source.tokens.float(),
                               self.source.identity.float()), self.blended, render_latents or self.render_latents,
                               self.video, self.tick)
