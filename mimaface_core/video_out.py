"""Writing the animation as an H.264 mp4 with PyAV, with the driving clip's audio copied in."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import MIMAFaceError


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float, audio_from: str | Path | None = None,
                crf: int = 18) -> int:
    """Encode frames to H.264 (yuv420p) as they arrive, then copy the audio of ``audio_from``.

    Args:
        path: the output file (.mp4).
        frames: (H, W, 3) uint8 RGB frames, all the same size (even sizes for yuv420p).
        fps: output frame rate (the driver's rate divided by the frame stride).
        audio_from: a media file whose first audio stream is copied without re-encoding, cut at
            the video's duration; None or a file without audio gives a silent video.
        crf: x264 quality (lower is better; 18 is visually lossless).

    Returns:
        The number of frames written.

    Raises:
        MIMAFaceError: no frames, or frames of different sizes.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    source = av.open(str(audio_from)) if audio_from is not None else None
    try:
        audio_in = source.streams.audio[0] if source is not None and source.streams.audio else None
        count = 0
        with av.open(str(path), "w") as out:
            video = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(100000))
            video.pix_fmt = "yuv420p"
            video.options = {"crf": str(crf)}
            audio_out = out.add_stream_from_template(audio_in) if audio_in is not None else None
            for frame in frames:
                frame = np.ascontiguousarray(frame)
                if count == 0:
                    video.height, video.width = frame.shape[:2]
                elif frame.shape[:2] != (video.height, video.width):
                    raise MIMAFaceError(f"frame {count} is {frame.shape[1]}x{frame.shape[0]}, "
                                        f"the video is {video.width}x{video.height}.")
                out.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
                count += 1
            if count == 0:
                raise MIMAFaceError(f"no frames to write to {path.name}.")
            out.mux(video.encode())
            if audio_out is not None:
                duration = count / fps
                for packet in source.demux(audio_in):
                    if packet.dts is None:
                        continue
                    if packet.pts is not None and float(packet.pts * audio_in.time_base) >= duration:
                        break
                    packet.stream = audio_out
                    out.mux(packet)
        return count
    finally:
        if source is not None:
            source.close()
