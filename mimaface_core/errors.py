"""Exceptions raised by mimaface_core.

Every error carries a message meant for the person running the pack: it names the input or file
at fault and says what to do. ComfyUI shows the message as is.
"""


class MIMAFaceError(Exception):
    """Base class of every error raised on purpose by mimaface_core."""


class WeightFileError(MIMAFaceError):
    """A weight file is missing, unreadable, unsafe or does not hold the expected tensors."""


class MissingWeightFileError(WeightFileError, FileNotFoundError):
    """A file or folder of the released layout is absent."""


class UnsafeWeightFileError(WeightFileError):
    """A checkpoint holds pickled objects other than tensors; it is refused, never executed."""


class WeightMismatchError(WeightFileError):
    """A weight file's keys or shapes do not match the network it is loaded into."""


class FaceNotFoundError(MIMAFaceError, ValueError):
    """No face was found where one is required (the source photo, or every driving frame)."""


class MissingDependencyError(MIMAFaceError, ImportError):
    """An optional library needed by the chosen option is not installed."""


class SamplingCancelled(MIMAFaceError):
    """The user cancelled a running sampler; raised within one denoising step of the request."""


class AudioInputError(MIMAFaceError, ValueError):
    """An audio input cannot be used: missing, corrupt, without an audio stream, undecodable, or
    shorter than one video frame. The message names the input and says what to do."""
