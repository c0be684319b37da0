"""Writing the animation as an H.264 mp4 with PyAV, with the sound of a driving clip or an audio file."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import MIMAFaceError

#: Audio codecs copied into the mp4 as they are; anything else (PCM wav, flac, vorbis, opus...) is
#: re-encoded to AAC.
COPY_AUDIO_CODECS = ("aac", "mp3")


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float, audio_from: str | Path | None = None,
                crf: int = 18) -> int:
    """Encode frames to H.264 (yuv420p) as they arrive, then add the audio of ``audio_from``.

    Args:
        path: the output file (.mp4).
        frames: (H, W, 3) uint8 RGB frames, all the same size (even sizes for yuv420p).
        fps: output frame rate (the driver's rate divided by the frame stride; 25 for audio).
        audio_from: a media file whose first audio stream is added, cut at the video's duration:
            AAC and MP3 are copied without re-encoding, other codecs (PCM wav, flac, vorbis, opus)
            are decoded and encoded to AAC at their own rate and channels. None or a file without
            audio gives a silent video.
        crf: x264 quality (lower is better; 18 is visually lossless).

    Returns:
        The number of frames written.

    The file is written under a temporary name beside ``path`` and renamed on success
    (``outputs.atomic_output``): a failed or interrupted run leaves nothing under ``path``.

    Raises:
        MIMAFaceError: no frames, or frames of different sizes.
    """
    from .outputs import atomic_output

    with atomic_output(path) as tmp:
        return _write(tmp, Path(path).name, frames, fps, audio_from, crf)


def _write(path: Path, name: str, frames, fps, audio_from, crf) -> int:
    import av

    source = av.open(str(audio_from)) if audio_from is not None else None
    try:
        audio_in = source.streams.audio[0] if source is not None and source.streams.audio else None
        if audio_in is not None and audio_in.codec_context is None:
            audio_in = None
        count = 0
        with av.open(str(path), "w") as out:
            video = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(100000))
            video.pix_fmt = "yuv420p"
            video.options = {"crf": str(crf)}
            copy = audio_in is not None and audio_in.codec_context.name in COPY_AUDIO_CODECS
            audio_out = None
            if audio_in is not None:
                if copy:
                    audio_out = out.add_stream_from_template(audio_in)
                else:
                    layout = "mono" if audio_in.codec_context.channels == 1 else "stereo"
                    audio_out = out.add_stream("aac", rate=audio_in.codec_context.sample_rate, layout=layout)
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
                raise MIMAFaceError(f"no frames to write to {name}.")
            out.mux(video.encode())
            if audio_out is not None:
                duration = count / fps
                if copy:
                    _copy_audio(source, audio_in, audio_out, out, duration)
                else:
                    _encode_audio(source, audio_in, audio_out, out, duration)
        return count
    finally:
        if source is not None:
            source.close()


def _copy_audio(source, audio_in, audio_out, out, duration: float) -> None:
    for packet in source.demux(audio_in):
        if packet.dts is None:
            continue
        if packet.pts is not None and float(packet.pts * audio_in.time_base) >= duration:
            break
        packet.stream = audio_out
        out.mux(packet)


def _encode_audio(source, audio_in, audio_out, out, duration: float) -> None:
    """Decode, convert to the AAC encoder's float planar format and encode, cut at ``duration`` s."""
    import av

    rate = audio_out.codec_context.sample_rate
    resampler = av.AudioResampler(format="fltp", layout=audio_out.codec_context.layout.name, rate=rate)
    budget = int(round(duration * rate))
    written = 0

    def push(frames):
        nonlocal written
        for f in frames:
            if written >= budget:
                return
            data = f.to_ndarray()[:, : budget - written]
            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format="fltp",
                                               layout=audio_out.codec_context.layout.name)
            chunk.sample_rate, chunk.pts = rate, written
            out.mux(audio_out.encode(chunk))
            written += data.shape[1]

    for frame in source.decode(audio_in):
        frame.pts = None
        push(resampler.resample(frame))
        if written >= budget:
            break
    else:
        push(resampler.resample(None))
    out.mux(audio_out.encode())
