"""ICA (the paper's inter-clip affinity): the released clip plan of video mode and the condition
that carries the previous clip's last frames into the next (docs/SAMPLING.md §5).

The UNet's 13 input channels are the 4 noisy latent channels followed by the 9 condition channels
built here: the clip's render latents (4), the previous clip's last ``overlap`` latents placed on
the first ``overlap`` frames (4), and a mask that is 1 on those frames (1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where it is used: the CLI's --help reads the constants here
    import torch

#: SD1.5 latent channels (the render latents and the previous clip's latents each have as many).
LATENT_CHANNELS = 4

#: Released defaults: clip length F and the overlap ("prev") carried by ICA; the motion modules'
#: positional table limits F to 32.
CLIP_LENGTH = 12
OVERLAP = 3
MAX_CLIP_LENGTH = 32


@dataclass(frozen=True)
class Clip:
    """One clip of the loop.

    Attributes:
        index: clip number (0-based).
        start: global index of the clip's first frame.
        frames: the F global driving-frame indices, clamped to L − 1 (the last clip repeats the
            last frame as padding).
        keep: clip-local indices of the frames this clip contributes to the output (all of clip
            0; frames ``overlap``..F−1 of later clips; never padding).
    """

    index: int
    start: int
    frames: tuple[int, ...]
    keep: tuple[int, ...]


def plan_clips(num_frames: int, clip_length: int = CLIP_LENGTH, overlap: int = OVERLAP,
               skip_unused: bool = False) -> list[Clip]:
    """Clips of ``clip_length`` frames advancing by ``clip_length − overlap`` while the start is
    before the last frame (docs/SAMPLING.md §5).

    The released loop can end with a clip that contributes no frame (e.g. 21 frames, F = 12,
    overlap 3: the clip at 18 only repeats frames 18..20, already kept from the clip at 9).
    ``skip_unused=True`` drops such trailing clips; the output frames are the same.

    Raises:
        ValueError: ``num_frames < 1``, ``clip_length`` outside 1..32 or ``overlap`` outside
            0..clip_length−1.
    """
    if num_frames < 1:
        raise ValueError("no driving frames: need at least one frame to animate.")
    if not 1 <= clip_length <= MAX_CLIP_LENGTH:
        raise ValueError(f"clip length must be 1..{MAX_CLIP_LENGTH} (the motion modules' positional table), got {clip_length}.")
    if not 0 <= overlap < clip_length:
        raise ValueError(f"overlap must be 0..{clip_length - 1} for clip length {clip_length}, got {overlap}.")
    clips, start = [], 0
    while start < num_frames:
        frames = tuple(min(start + j, num_frames - 1) for j in range(clip_length))
        keep = tuple(j for j in range(clip_length) if start + j < num_frames and (start + j < overlap or j >= overlap))
        clips.append(Clip(len(clips), start, frames, keep))
        start += clip_length - overlap
    while skip_unused and len(clips) > 1 and not clips[-1].keep:
        clips.pop()
    return clips


def clip_condition(render_latents: torch.Tensor, previous: torch.Tensor | None, overlap: int) -> torch.Tensor:
    """The 9 condition channels of one clip: render latents, the previous clip's last frames, mask.

    Args:
        render_latents: (F, 4, h, w) VAE latents of the clip's renders (× 0.18215), any dtype/device.
        previous: (F', 4, h, w) final latents of the previous clip, or None for the first clip.
        overlap: frames carried from the previous clip (0 = none).

    Returns:
        (1, 9, F, h, w) float32 on the CPU: channels 0–3 the render latents; channels 4–7 the
        previous clip's last ``overlap`` latents on frames 0..overlap−1 (zero elsewhere); channel 8
        one on those frames (zero elsewhere, and everywhere for the first clip).
    """
    import torch

    f, _, h, w = render_latents.shape
    condition = torch.zeros(1, 2 * LATENT_CHANNELS + 1, f, h, w)
    condition[0, :LATENT_CHANNELS] = render_latents.float().cpu().transpose(0, 1)
    if previous is not None and overlap:
        condition[0, LATENT_CHANNELS:2 * LATENT_CHANNELS, :overlap] = previous[-overlap:].float().cpu().transpose(0, 1)
        condition[0, 2 * LATENT_CHANNELS, :overlap] = 1
    return condition
