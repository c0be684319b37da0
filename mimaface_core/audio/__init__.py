"""Speech → 3DMM motion with SadTalker's audio-to-coefficient networks (paper Fig. 3: audio as a
driving modality). One module per concept: ``decode`` (audio in, 16 kHz mono), ``mel`` (the
Wav2Lip mel and per-frame windows), ``encoder`` / ``audio2exp`` / ``audio2pose`` (the networks),
``weights`` (the official checkpoints), ``blink``, ``coefficients`` (the assembly of
``Audio2Coeff.generate``) and ``motion`` (the MotionSequence in the source's crop frame)."""

from .._lazy import lazy_getattr
from .coefficients import BLINK_MODES, POSE_MODES
from .decode import (
         FPS,
         SAMPLE_RATE,
         SAMPLES_PER_FRAME,
         Speech,
         load_audio,
         probe_audio,
         speech_from_waveform,
)

_LAZY = {"AudioMotionOptions": ".motion", "audio_motion": ".motion", "AudioNetworks": ".weights",
         "find_audio_weights": ".weights", "load_audio_networks": ".weights"}

__all__ = ["BLINK_MODES", "FPS", "POSE_MODES", "SAMPLES_PER_FRAME", "SAMPLE_RATE", "AudioMotionOptions",
           "AudioNetworks", "Speech", "audio_motion", "find_audio_weights", "load_audio", "load_audio_networks",
           "probe_audio", "speech_from_waveform"]

__getattr__ = lazy_getattr(__name__, _LAZY)  # PEP 562: heavy modules load on first use
