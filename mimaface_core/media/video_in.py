"""Driving media: video files (PyAV), GIFs and folders of numbered frames (docs/NUMERICS.md §11; alignment
fixture README, "Frame decoding").

Video frames come in decode order, every decoded frame once (``container.decode(video=0)``,
``frame.to_ndarray(format="rgb24")``), which is what the alignment fixture records, turned upright
when the stream carries a display rotation (phone videos): the frame is rotated counterclockwise
by the display matrix's angle (FFmpeg's ``av_display_rotation_get``, as ffmpeg's autorotate does).
A folder of numbered frames (png/jpg/webp/bmp, sorted by the numbers in their names, as the
release's frame folders) plays at ``FRAME_FOLDER_FPS`` unless told otherwise.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MIMAFaceError

log = logging.getLogger(__name__)
#: Frame rate given to a folder of frames (it has none of its own).
FRAME_FOLDER_FPS = 25.0
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
#: Video containers looked for when a folder holds clips (training data, the evaluation protocol).
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")


@dataclass(frozen=True)
class VideoInfo:
    """What a driving video holds: ``fps`` (frames per second, float), ``width``/``height`` in
    pixels as displayed (after the display rotation), ``frames`` (the container's count, 0 when
    unknown), ``has_audio`` and ``rotation`` (degrees counterclockwise applied to decoded frames)."""

    fps: float
    width: int
    height: int
    frames: int
    has_audio: bool
    rotation: int = 0


def frame_files(folder: str | Path) -> list[Path]:
    """The image files of a frame folder in frame order (numbers in the names compared as numbers)."""
    def key(p: Path):
        return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]

    return sorted((p for p in Path(folder).iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.is_file()), key=key)


def _open(path: str | Path, what: str = "driving video"):
    import av

    path = Path(path)
    if not path.is_file():
        raise MIMAFaceError(f"{what}: file not found: {path}")
    if path.stat().st_size == 0:
        raise MIMAFaceError(f"{what}: {path.name} is empty (0 bytes).")
    try:
        container = av.open(str(path))
    except Exception as exc:  # av raises several error types for unreadable files
        raise MIMAFaceError(f"{what}: cannot open {path.name} as a video ({exc}). The file is damaged or not a "
                            "video: re-encode it (e.g. to H.264 mp4).") from exc
    if not container.streams.video:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "nothing"
        container.close()
        raise MIMAFaceError(f"{what}: {path.name} has no video stream (it holds {kinds}).")
    return container


def _rotation(frame) -> int:
    angle = getattr(frame, "rotation", 0) or 0
    return int(round(angle / 90.0)) * 90 % 360


def video_info(path: str | Path, what: str = "driving video") -> VideoInfo:
    """Frame rate, displayed size, frame count, audio and rotation of a video, GIF or frame folder.

    Raises:
        MIMAFaceError: the file is missing, empty, unreadable, has no video stream or no frame;
            a folder holds no frame images.
    """
    import av

    path = Path(path)
    if path.is_dir():
        files = frame_files(path)
        if not files:
            raise MIMAFaceError(f"{what}: the folder {path} holds no frame images ({', '.join(FRAME_SUFFIXES)}).")
        from .images import load_image

        w, h = load_image(files[0], f"{what} frame {files[0].name}").size
        return VideoInfo(FRAME_FOLDER_FPS, w, h, len(files), False, 0)
    with _open(path, what) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.base_rate or 25
        try:
            first = next(container.decode(stream), None)
        except av.error.FFmpegError as exc:
            raise MIMAFaceError(f"{what}: {path.name} could not be decoded ({exc}): re-encode it (e.g. to H.264 mp4).") from exc
        if first is None:
            raise MIMAFaceError(f"{what}: {path.name} has a video stream but no frame (a header only, or cut before "
                                "its first frame): use the complete file.")
        rotation = _rotation(first)
        w, h = first.width, first.height
        if rotation in (90, 270):
            w, h = h, w
        return VideoInfo(float(rate), w, h, int(stream.frames or 0), bool(container.streams.audio), rotation)


def iter_video_frames(path: str | Path, stride: int = 1, limit: int | None = None,
                      what: str = "driving video") -> Iterator[np.ndarray]:
    """Decoded frames as (H, W, 3) uint8 RGB, upright, one at a time (memory does not grow with length).

    Args:
        path: a video file, a GIF, or a folder of numbered frames.
        stride: keep every ``stride``-th decoded frame (the release keeps every 2nd).
        limit: stop after this many kept frames (the release stops at 42); None = all.
        what: the input's name for messages.

    Raises:
        MIMAFaceError: the file is missing, unreadable or has no video stream; a decode error in
            the middle (the message names the file and the frame and says to re-encode it).
        ValueError: ``stride < 1`` or ``limit < 1``.
    """
    import av

    if stride < 1 or (limit is not None and limit < 1):
        raise ValueError(f"stride and limit must be ≥ 1, got stride={stride}, limit={limit}.")
    path = Path(path)
    kept = 0
    if path.is_dir():
        from .images import load_image, to_rgb_uint8

        for i, f in enumerate(frame_files(path)):
            if i % stride:
                continue
            yield to_rgb_uint8(load_image(f, f"{what} frame {f.name}"), f"{what} frame {f.name}")
            kept += 1
            if limit is not None and kept >= limit:
                return
        return
    with _open(path, what) as container:
        i = -1
        try:
            for i, frame in enumerate(container.decode(video=0)):
                if i % stride:
                    continue
                rgb = frame.to_ndarray(format="rgb24")
                k = _rotation(frame) // 90
                yield np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb
                kept += 1
                if limit is not None and kept >= limit:
                    return
        except av.error.FFmpegError as exc:
            raise MIMAFaceError(f"{what}: {path.name} could not be decoded at frame {i + 1} ({exc}). The file is "
                                "damaged: re-encode it (e.g. ffmpeg -i in.mp4 -c:v libx264 out.mp4) or cut the "
                                "damaged part.") from exc


#: File suffixes read as a still image (anything else is opened as a video).
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def check_driver(path: Path, what: str = "--driving") -> str:
    """Open a driver once and say what it is: "image", "video" (also GIF) or "frames" (a folder).

    Raises:
        MIMAFaceError: missing, unreadable, or no video stream (the message names ``what``)."""
    from .images import load_image

    path = Path(path)
    if path.is_dir():
        video_info(path, what)
        return "frames"
    if not path.exists():
        raise MIMAFaceError(f"{what}: file not found: {path}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        load_image(path, what)
        return "image"
    video_info(path, what)
    return "video"
