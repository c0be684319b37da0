"""Small pieces the ``animate`` commands share (one face and several faces): the options object
from parsed arguments, where a driver's sound comes from, and even frame sizes for H.264."""

from __future__ import annotations

from pathlib import Path


def animate_options(args, expression_scale: float | None = None):
    """The :class:`~mimaface_core.pipeline.AnimateOptions` of parsed ``animate`` options."""
    from ..pipeline import AnimateOptions
    from ..sampling import SamplingOptions

    return AnimateOptions(
        SamplingOptions(args.steps, args.guidance, args.scheduler, args.seed, args.noise, args.clip_length, args.overlap,
                        compile=getattr(args, "compile", False), channels_last=getattr(args, "channels_last", False)),
        args.pose, args.expression_scale if expression_scale is None else expression_scale, args.smoothing,
        box_mode=args.box_mode, detector=args.detector, models_dir=args.mediapipe_models,
        rotation=(args.pitch, args.yaw, args.roll),
        gaze={} if args.gaze == "per_frame" else {"method": args.gaze})


def sampling_options(args):
    """The :class:`~mimaface_core.sampling.SamplingOptions` of parsed options: ``--preset`` and the
    options it sets (None = not given: the preset's value), guidance, seed, noise, clips.

    Raises:
        MIMAFaceError: a bad value, naming its option (runs before any model loads, from the checks).
    """
    from ..errors import MIMAFaceError
    from ..sampling.sampler import SamplingOptions

    interval = getattr(args, "guidance_interval", None)
    try:
        return SamplingOptions(args.steps, args.guidance, args.scheduler, args.seed, args.noise, args.clip_length,
                               args.overlap, preset=getattr(args, "preset", "exact"),
                               guidance_interval=tuple(interval) if interval is not None else None,
                               cache_interval=getattr(args, "cache_interval", None),
                               cache_depth=getattr(args, "cache_depth", None),
                               compile=getattr(args, "compile", False),
                               channels_last=getattr(args, "channels_last", False))
    except ValueError as exc:
        flag = next((f for f in SAMPLING_FLAGS if f[2:].replace("-", "_") in str(exc)), "--preset")
        raise MIMAFaceError(f"{flag}: {exc}") from exc


#: Sampler options named in the errors of :func:`sampling_options`.
SAMPLING_FLAGS = ("--guidance-interval", "--cache-interval", "--cache-depth", "--steps", "--scheduler", "--noise",
                  "--preset")


def audio_of(path):
    """The driver's file for its sound, or None for a folder of frames."""
    return None if Path(path).is_dir() else path


def even_frame(frame):
    """H.264 in yuv420p needs even sizes: an odd width or height is padded by one edge pixel."""
    import numpy as np

    h, w = frame.shape[:2]
    if h % 2 or w % 2:
        frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frame
