"""The Wav2Lip-style mel spectrogram of SadTalker and its 16-column window per video frame.

Source: SadTalker ``src/utils/audio.py`` (``melspectrogram``) with ``src/utils/hparams.py`` and
``src/generate_batch.py`` (``get_data``); fixture ``audio2coeff`` README, "Mel" and "Per-frame
windows". Pipeline, float64 from the pre-emphasis on: ``lfilter([1, -0.97], [1], wav)`` (scipy) →
``|STFT|`` (``torch.stft``, n_fft 800, hop 200, periodic Hann window of 800, centred with ZERO
padding of 400 on each side, as librosa ≥ 0.9) → Slaney mel basis of 80 bands, 55–7600 Hz
(``transformers.audio_utils.mel_filter_bank``, within 2e-9 of librosa's, rounded to float32 as
librosa returns it) → ``20·log10(max(1e-5, ·)) − 20`` dB → ``clip(8·(S + 100)/100 − 4, −4, 4)``.

The spectrogram is computed in chunks of mel frames, each chunk from its own stretch of samples
(pre-emphasis needs one sample of history, the STFT 400 samples on each side), so memory holds
the samples, the (T_mel, 80) float32 result and one chunk, never the whole complex STFT. Chunking
does not change the result (same frames, same FFTs).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from .decode import FPS, SAMPLES_PER_FRAME

#: Rows of the mel spectrogram in one frame's window (``syncnet_mel_step_size``).
MEL_WINDOW = 16


@dataclass(frozen=True)
class MelParams:
    """SadTalker's ``hparams`` for the mel (``src/utils/hparams.py``): sample rate in Hz, FFT and
    window sizes and hop in samples, band edges in Hz, levels in dB, normalisation bound."""

    sample_rate: int = 16000
    n_fft: int = 800
    hop_size: int = 200
    win_size: int = 800
    num_mels: int = 80
    fmin: float = 55.0
    fmax: float = 7600.0
    preemphasis: float = 0.97
    min_level_db: float = -100.0
    ref_level_db: float = 20.0
    max_abs_value: float = 4.0

    @property
    def mel_rows_per_second(self) -> float:
        """Mel frames per second (80 for the defaults)."""
        return self.sample_rate / self.hop_size


HPARAMS = MelParams()


def crop_to_frames(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """SadTalker's ``parse_audio_length`` + ``crop_pad_audio``: ``num_frames = int(S / 640)`` and
    the samples cut to ``num_frames · 640``. Returns (the cut (num_frames·640,) samples, num_frames)."""
    num_frames = len(samples) // SAMPLES_PER_FRAME
    return samples[: num_frames * SAMPLES_PER_FRAME], num_frames


def preemphasize(samples: np.ndarray, k: float = HPARAMS.preemphasis) -> np.ndarray:
    """``scipy.signal.lfilter([1, −k], [1], x)``: (S,) → (S,) float64."""
    from scipy.signal import lfilter

    return lfilter([1.0, -k], [1.0], np.asarray(samples, np.float64))


@lru_cache(maxsize=4)
def mel_basis(params: MelParams = HPARAMS) -> np.ndarray:
    """(num_mels, n_fft/2 + 1) float32 Slaney mel filters (``librosa.filters.mel`` defaults)."""
    from transformers.audio_utils import mel_filter_bank

    fb = mel_filter_bank(num_frequency_bins=params.n_fft // 2 + 1, num_mel_filters=params.num_mels,
                         min_frequency=params.fmin, max_frequency=params.fmax, sampling_rate=params.sample_rate,
                         norm="slaney", mel_scale="slaney")
    return np.ascontiguousarray(fb.T, np.float32)


def _window(params: MelParams) -> torch.Tensor:
    return torch.hann_window(params.win_size, periodic=True, dtype=torch.float64)


def stft_magnitude(emphasized: np.ndarray, params: MelParams = HPARAMS) -> np.ndarray:
    """``|librosa.stft(y, n_fft, hop, win, center=True, pad_mode="constant")|`` of a whole signal:
    (S,) float64 → (n_fft/2 + 1, 1 + S // hop) float64."""
    y = torch.from_numpy(np.asarray(emphasized, np.float64))
    return torch.stft(y, params.n_fft, params.hop_size, params.win_size, window=_window(params), center=True,
                      pad_mode="constant", return_complex=True).abs().numpy()


def amplitude_to_normalized_db(mel_linear: np.ndarray, params: MelParams = HPARAMS) -> tuple[np.ndarray, np.ndarray]:
    """Mel amplitudes → (dB − ref_level_db, the normalised mel in [−4, 4]), both float64, same shape."""
    min_level = np.exp(params.min_level_db / 20 * np.log(10))
    db = 20 * np.log10(np.maximum(min_level, mel_linear)) - params.ref_level_db
    m = params.max_abs_value
    norm = np.clip(2 * m * ((db - params.min_level_db) / -params.min_level_db) - m, -m, m)
    return db, norm


def num_mel_rows(num_samples: int, params: MelParams = HPARAMS) -> int:
    """``T_mel = 1 + S // hop`` for S samples (centred STFT)."""
    return 1 + num_samples // params.hop_size


def melspectrogram(samples: np.ndarray, params: MelParams = HPARAMS, chunk_rows: int = 4096) -> np.ndarray:
    """SadTalker's ``audio.melspectrogram(wav).T`` of already cut samples.

    Args:
        samples: (S,) float32 at ``params.sample_rate`` Hz, in [−1, 1] (cut with :func:`crop_to_frames`).
        chunk_rows: mel frames computed at a time (memory bound; the result does not depend on it).

    Returns:
        (T_mel, num_mels) float32 in [−4, 4], ``T_mel = 1 + S // hop``.
    """
    x = np.asarray(samples, np.float32)
    s, hop, half = len(x), params.hop_size, params.n_fft // 2
    rows = num_mel_rows(s, params)
    basis = mel_basis(params).astype(np.float64)
    window = _window(params)
    out = np.empty((rows, params.num_mels), np.float32)
    for r0 in range(0, rows, chunk_rows):
        r1 = min(rows, r0 + chunk_rows)
        a, b = r0 * hop - half, (r1 - 1) * hop + half   # original sample range of the padded segment
        lo, hi = max(a, 0), min(b, s)
        seg = np.zeros(b - a, np.float64)
        if hi > lo:
            prev = x[lo - 1: lo] if lo > 0 else np.zeros(1, np.float32)
            seg[lo - a: hi - a] = preemphasize(np.concatenate([prev, x[lo:hi]]), params.preemphasis)[1:]
        mag = torch.stft(torch.from_numpy(seg), params.n_fft, hop, params.win_size, window=window, center=False,
                         return_complex=True).abs().numpy()
        _, norm = amplitude_to_normalized_db(basis @ mag, params)
        out[r0:r1] = norm.T
    return out


def window_starts(frames: np.ndarray | range, fps: int = FPS, params: MelParams = HPARAMS) -> np.ndarray:
    """First mel row of each video frame's window: ``int(80. * ((i − 2) / 25.))`` (Python ``int``
    truncates toward zero, so frames 0 and 1 start at −6 and −3). (n,) int64."""
    i = np.asarray(frames, np.float64)
    return np.trunc(params.mel_rows_per_second * ((i - 2) / float(fps))).astype(np.int64)


def frame_index(frames: np.ndarray | range, mel_rows: int, fps: int = FPS, params: MelParams = HPARAMS) -> np.ndarray:
    """(n, 16) int64 mel rows of each frame's window, clamped to ``[0, mel_rows − 1]``."""
    start = window_starts(frames, fps, params)
    return np.clip(start[:, None] + np.arange(MEL_WINDOW), 0, mel_rows - 1)


def mel_windows(mel: np.ndarray, frames: np.ndarray | range, fps: int = FPS, params: MelParams = HPARAMS) -> torch.Tensor:
    """The ``indiv_mels`` of the given video frames: (n, 80, 16) float32 tensor (mel rows of each
    window, transposed). Made on demand so that the whole (T, 80, 16) stack is never held."""
    idx = frame_index(frames, len(mel), fps, params)
    return torch.from_numpy(np.ascontiguousarray(mel[idx].transpose(0, 2, 1), np.float32))
