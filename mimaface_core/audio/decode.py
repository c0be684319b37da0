"""Speech in: any audio PyAV opens, or ComfyUI's AUDIO wire, as 16 kHz mono float32 samples.

SadTalker's audio path (``src/generate_batch.py`` ``get_data``; fixture ``audio2coeff`` README,
"Conventions") runs at 16 kHz with 25 video frames per second, i.e. 640 samples per frame, and
makes ``num_frames = int(samples / 640)`` frames. The official loader is ``librosa.core.load(path,
sr=16000)``: channels averaged, then resampled. Here decoding, sample-format conversion and
resampling are FFmpeg's, through PyAV: ``av.AudioResampler`` (libswresample) converts each decoded
frame to float32 planar, the channels are averaged (as librosa does; swresample's own downmix
would scale stereo by √2), and a second ``av.AudioResampler`` resamples the mono signal to 16 kHz,
streaming, so only the 16 kHz samples are ever held. On the fixture's 44.1 kHz AAC speech it is
within 8e-5 RMS (4e-4 max) of ``scipy.signal.resample_poly``, with no delay; a file already at
16 kHz passes unchanged (int16 / 32768 exactly, as librosa reads it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AudioInputError

log = logging.getLogger(__name__)

#: SadTalker's rates: 16 kHz audio, 25 video frames per second, 640 samples per frame.
SAMPLE_RATE = 16000
FPS = 25
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS


@dataclass(frozen=True)
class Speech:
    """Mono speech at 16 kHz, the input of the audio-to-coefficient networks.

    Attributes:
        samples: (S,) float32 in [-1, 1] at :data:`SAMPLE_RATE` Hz.
        name: what it came from (a file name or "audio"), for messages.
        source_rate: the sample rate of the input in Hz (before resampling).
        channels: the input's channel count (averaged to mono).
    """

    samples: np.ndarray
    name: str = "audio"
    source_rate: int = SAMPLE_RATE
    channels: int = 1

    @property
    def num_frames(self) -> int:
        """Video frames at 25 fps that the audio covers: ``int(S / 640)`` (SadTalker's rule)."""
        return len(self.samples) // SAMPLES_PER_FRAME

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / SAMPLE_RATE

    @property
    def is_silent(self) -> bool:
        """True when every sample is exactly zero."""
        return not np.any(self.samples)


def _check_speech(speech: Speech, what: str) -> Speech:
    if speech.num_frames < 1:
        raise AudioInputError(
            f"{what}: {speech.name} is {speech.duration * 1000:.1f} ms long, shorter than one video frame "
            f"(40 ms at {FPS} fps): nothing to animate. Use a longer recording.")
    if speech.is_silent:
        log.warning("%s: %s is silent; the audio networks will give a closed, still mouth (a still "
                    "talking head).", what, speech.name)
    return speech


def _mono_resampler(rate: int):
    import av

    return av.AudioResampler(format="fltp", layout="mono", rate=SAMPLE_RATE) if rate != SAMPLE_RATE else None


def _push_mono(chunk: np.ndarray, rate: int, resampler, out: list, pts: int) -> None:
    """Resample one (n,) float32 mono chunk at ``rate`` to 16 kHz into ``out``."""
    import av

    if resampler is None:
        out.append(chunk.astype(np.float32, copy=True))
        return
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk[None], np.float32), format="fltp", layout="mono")
    frame.sample_rate = rate
    frame.pts = pts
    for o in resampler.resample(frame):
        out.append(o.to_ndarray()[0].copy())


def _flush(resampler, out: list) -> None:
    if resampler is not None:
        for o in resampler.resample(None):
            out.append(o.to_ndarray()[0].copy())


def probe_audio(path: str | Path, what: str = "--audio") -> tuple[float, int, int]:
    """Open an audio or video file and check it has a decodable audio stream, without decoding it.

    Returns:
        (duration in seconds or 0.0 when the container does not say, sample rate in Hz, channels).

    Raises:
        AudioInputError: missing file, not a media file, no audio stream, or a codec FFmpeg cannot
            decode; the message names ``what`` and the file and says what to do.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise AudioInputError(f"{what}: file not found: {path}")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise AudioInputError(f"{what}: cannot open {path.name} as audio ({exc}). The file is corrupt or not a "
                              "media file: export it again as wav, mp3, m4a or flac.") from exc
    with container:
        if not container.streams.audio:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "nothing"
            raise AudioInputError(f"{what}: {path.name} has no audio stream (it holds {kinds}). Give a sound file "
                                  "or a video with sound.")
        stream = container.streams.audio[0]
        if stream.codec_context is None:
            raise AudioInputError(f"{what}: {path.name} holds audio in a format FFmpeg cannot decode. Convert it to "
                                  "a 16-bit PCM wav, mp3 or flac.")
        duration = float(stream.duration * stream.time_base) if stream.duration else (
            container.duration / 1e6 if container.duration else 0.0)
        return duration, int(stream.codec_context.sample_rate), int(stream.codec_context.channels)


def load_audio(path: str | Path, max_frames: int | None = None, what: str = "--audio") -> Speech:
    """Decode the first audio stream of a file to 16 kHz mono float32 (see the module docstring).

    Args:
        path: wav, mp3, m4a/aac, flac, ogg/opus, or a video file with sound.
        max_frames: stop decoding once this many 25 fps frames (640 samples each) are covered;
            None decodes everything.
        what: the input's name for messages (e.g. ``"--audio"``).

    Returns:
        A :class:`Speech` of at least one frame.

    Raises:
        AudioInputError: missing, corrupt or unreadable file, no audio stream, a decode error in
            the middle (the message gives the time), or audio shorter than one frame (40 ms).
    """
    import av

    path = Path(path)
    _, rate, channels = probe_audio(path, what)
    if max_frames is not None and max_frames < 1:
        raise AudioInputError(f"{what}: the frame limit must be ≥ 1, got {max_frames}.")
    wanted = None if max_frames is None else max_frames * SAMPLES_PER_FRAME
    out: list[np.ndarray] = []
    to_float = av.AudioResampler(format="fltp")
    resampler = _mono_resampler(rate)
    done_src = have = 0
    expected = None  # source-rate sample position where the next decoded frame should start
    gaps: list[tuple[float, float]] = []

    def push(mono: np.ndarray) -> None:
        nonlocal done_src, have
        before = len(out)
        _push_mono(mono, rate, resampler, out, done_src)
        have += sum(len(o) for o in out[before:])
        done_src += len(mono)

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        try:
            for frame in container.decode(stream):
                if frame.sample_rate != rate:
                    raise AudioInputError(f"{what}: {path.name} changes its sample rate in the middle "
                                          f"({rate} → {frame.sample_rate} Hz); convert it to one rate first.")
                pos = expected if frame.pts is None or frame.time_base is None else \
                    int(round(frame.pts * frame.time_base * rate))
                if expected is not None and pos is not None and pos - expected > rate // 1000:
                    # FFmpeg skipped damaged packets: keep the timing by filling the hole with silence
                    gaps.append((expected / rate, (pos - expected) / rate))
                    push(np.zeros(pos - expected, np.float32))
                    expected = pos
                expected = (expected if expected is not None and (pos is None or pos < expected) else pos or 0) \
                    + frame.samples
                for f in to_float.resample(frame):
                    push(f.to_ndarray().mean(0, dtype=np.float64).astype(np.float32))
                if wanted is not None and have >= wanted:
                    break
            else:
                _flush(resampler, out)
        except av.error.FFmpegError as exc:
            at = done_src / rate if rate else 0.0
            raise AudioInputError(f"{what}: {path.name} could not be decoded after {at:.2f} s ({exc}). The file is "
                                  "damaged: re-encode it (e.g. ffmpeg -i in -ar 16000 out.wav) or cut the damaged "
                                  "part.") from exc
    for start, length in gaps:
        log.warning("%s: %s is damaged at %.2f s: %.0f ms could not be decoded and were filled with silence to keep "
                    "the timing (re-encode the file to avoid it).", what, path.name, start, length * 1000)
    samples = np.concatenate(out) if out else np.zeros(0, np.float32)
    if wanted is not None:
        samples = samples[:wanted]
    return _check_speech(Speech(samples, path.name, rate, channels), what)


def speech_from_waveform(waveform, sample_rate: int, what: str = "audio", max_frames: int | None = None) -> Speech:
    """ComfyUI's AUDIO (``{"waveform": (B, C, S) float, "sample_rate": int}``) → 16 kHz mono.

    Args:
        waveform: (B, C, S), (C, S) or (S,) float samples in [-1, 1] (torch tensor or array); with
            B > 1 only the first item is used (logged).
        sample_rate: Hz.
        what: the input's name for messages.
        max_frames: keep at most this many 25 fps frames.

    Raises:
        AudioInputError: empty or non-finite samples, a bad rate, or shorter than one frame.
    """
    x = waveform.detach().cpu().float().numpy() if hasattr(waveform, "detach") else np.asarray(waveform, np.float32)
    if x.ndim == 3:
        if x.shape[0] > 1:
            log.warning("%s: a batch of %d audio clips; using the first.", what, x.shape[0])
        x = x[0] if len(x) else np.zeros((1, 0), np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise AudioInputError(f"{what}: expected a waveform (B, C, S), got shape {tuple(waveform.shape)}.")
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate < 1000:
        raise AudioInputError(f"{what}: the sample rate must be an integer ≥ 1000 Hz, got {sample_rate!r}.")
    if x.size and not np.isfinite(x).all():
        raise AudioInputError(f"{what}: the waveform holds NaN or infinite samples.")
    mono = x.mean(0, dtype=np.float64).astype(np.float32)
    if max_frames is not None:
        mono = mono[: int(np.ceil(max_frames * SAMPLES_PER_FRAME * sample_rate / SAMPLE_RATE)) + 64]
    out: list[np.ndarray] = []
    resampler = _mono_resampler(int(sample_rate))
    step = int(sample_rate)  # one second per push: bounded temporary memory
    for start in range(0, len(mono), step):
        _push_mono(mono[start:start + step], int(sample_rate), resampler, out, start)
    _flush(resampler, out)
    samples = np.concatenate(out) if out else np.zeros(0, np.float32)
    if max_frames is not None:
        samples = samples[: max_frames * SAMPLES_PER_FRAME]
    return _check_speech(Speech(samples, what, int(sample_rate), x.shape[0]), what)
