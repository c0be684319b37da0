"""Decoding driving videos with PyAV (spec §1.3; alignment fixture README, "Frame decoding").

Frames come in decode order, every decoded frame once (``container.decode(video=0)``,
``frame.to_ndarray(format="rgb24")``), which is what the alignment fixture records.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import MIMAFaceError


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds: ``fps`` (frames per second, float), ``width``/``height`` in pixels,
    ``frames`` (the container's count, 0 when unknown) and ``has_audio``."""

    fps: float
    width: int
    height: int
    frames: int
    has_audio: bool


def _open(path: str | Path):
    import av

    path = Path(path)
    if not path.is_file():
        raise MIMAFaceError(f"driving video: file not found: {path}")
    try:
        container = av.open(str(path))
    except Exception as exc:  # av raises several error types for unreadable files
        raise MIMAFaceError(f"driving video: cannot open {path.name} as a video ({exc}).") from exc
    if not container.streams.video:
        container.close()
        raise MIMAFaceError(f"driving video: {path.name} has no video stream.")
    return container


def video_info(path: str | Path) -> VideoInfo:
    """Frame rate, size, frame count and whether there is an audio stream.

    Raises:
        MIMAFaceError: the file is missing, unreadable or has no video stream.
    """
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.base_rate or 25
        return VideoInfo(float(rate), stream.codec_context.width, stream.codec_context.height,
                         int(stream.frames or 0), bool(container.streams.audio))


def iter_video_frames(path: str | Path, stride: int = 1, limit: int | None = None) -> Iterator[np.ndarray]:
    """Decoded frames as (H, W, 3) uint8 RGB, one at a time (memory does not grow with length).

    Args:
        stride: keep every ``stride``-th decoded frame (the release keeps every 2nd).
        limit: stop after this many kept frames (the release stops at 42); None = all.

    Raises:
        MIMAFaceError: the file is missing, unreadable or has no video stream; ValueError for
            ``stride < 1`` or ``limit < 1``.
    """
    if stride < 1 or (limit is not None and limit < 1):
        raise ValueError(f"stride and limit must be ≥ 1, got stride={stride}, limit={limit}.")
    kept = 0
    with _open(path) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % stride:
                continue
            yield frame.to_ndarray(format="rgb24")
            kept += 1
            if limit is not None and kept >= limit:
                return
