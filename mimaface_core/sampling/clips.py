"""The released clip plan of video mode (spec §1.3 step 4–5, §6.4)."""

from __future__ import annotations

from dataclasses import dataclass

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
    before the last frame (spec §1.3 step 4).

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
