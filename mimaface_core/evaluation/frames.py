"""Clips to evaluate, from files: a video (any PyAV format, GIFs included), a folder of numbered
frames or a single image, read one frame at a time (memory does not grow with length)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class FramesOnDisk:
    """A clip on disk (a video, a frame folder or an image) to measure.

    Attributes:
        frames: returns a fresh iterator of (H, W, 3) uint8 RGB frames (upright).
        count: the number of frames after stride and limit, or None when the container does not say.
        kind: "video", "frames" (folder) or "image".
    """

    frames: Callable[[], Iterator[np.ndarray]]
    count: int | None
    kind: str


def frames_from_path(path: str | Path, what: str, stride: int = 1, limit: int | None = None) -> FramesOnDisk:
    """Open a clip and check it can be read (before any model loads).

    Args:
        what: the input's name in messages (e.g. "--generated").
        stride: keep every stride-th frame. limit: keep at most this many (None = all).

    Raises:
        MIMAFaceError: missing or unreadable (the message names ``what`` and the file).
        ValueError: stride or limit below 1.
    """
    from ..media.images import load_image, to_rgb_uint8
    from ..media.video_in import (
        check_driver,
        frame_files,
        iter_video_frames,
        video_info,
    )

    if stride < 1 or (limit is not None and limit < 1):
        raise ValueError(f"{what}: stride and limit must be ≥ 1, got stride={stride}, limit={limit}.")
    path = Path(path)
    kind = check_driver(path, what)
    if kind == "image":
        rgb = to_rgb_uint8(load_image(path, what), what)
        return FramesOnDisk(lambda: iter([rgb]), 1, kind)
    total = len(frame_files(path)) if kind == "frames" else video_info(path, what).frames
    count = None
    if total:
        count = (total + stride - 1) // stride
        count = min(count, limit) if limit is not None else count
    return FramesOnDisk(lambda: iter_video_frames(path, stride, limit, what), count, kind)
