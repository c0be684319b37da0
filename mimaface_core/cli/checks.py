"""Checks of the ``animate`` command's inputs that need no model, run before any weight is read, so
a bad input fails in seconds with a message naming the option and saying what to do."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import MIMAFaceError
from ..media.video_in import IMAGE_SUFFIXES, check_driver

VIDEO_OUTPUTS = {".mp4"}
IMAGE_OUTPUTS = {".png", ".jpg", ".jpeg", ".webp"}
#: The command's numeric options, checked (in this order) against ``mimaface_core.ranges.OPTION_RANGES``.
RANGED_OPTIONS = ("stride", "limit", "frames", "steps", "clip_length", "overlap", "guidance", "seed", "expression_scale",
                  "smoothing", "pitch", "yaw", "roll", "feather", "pose_style", "fps", "cache_interval", "cache_depth")


@dataclass
class CheckedInputs:
    """What the checks found: the source photo (PIL, EXIF orientation applied), the kind of
    driver ("image", "video" or "frames"; None with --audio), the torch device and dtype, the
    parsed --keyframes (None without), and what the path-specific checks found: ``faces`` (faces,
    face map, face boxes, tracking) of ``cli.faces.check_face_args`` and ``audio`` (motion
    options, audio weights path) of ``cli.animate.check_audio_args`` (None when not that path)."""

    source: object
    driver_kind: str | None
    device: str
    dtype: object
    keyframes: object = None
    faces: tuple | None = None
    audio: tuple | None = None
    footage: object = None


def check_ranges(args) -> None:
    """Every numeric option in its range (the core's check, ``mimaface_core.ranges``: refused beyond
    its limits, warned beyond its plausible range); ``--overlap`` below ``--clip-length``."""
    from ..ranges import check_options

    values = {attr: getattr(args, attr, None) for attr in RANGED_OPTIONS}
    check_options(values, names={attr: "--" + attr.replace("_", "-") for attr in RANGED_OPTIONS})
    if args.overlap >= args.clip_length:
        raise MIMAFaceError(f"--overlap {args.overlap} must be smaller than --clip-length {args.clip_length}: each "
                            "clip carries overlap frames from the previous one and needs at least one new frame.")


def check_device(device: str | None, dtype_name: str | None):
    """The torch device and dtype to use, refused early when this machine cannot provide them
    (:func:`mimaface_core.networks.devices.resolve_device` with the options' names).

    Returns:
        (device string, torch dtype).
    """
    from ..networks.devices import resolve_device

    dev, dtype = resolve_device(device, dtype_name, device_arg="--device", dtype_arg="--dtype")
    return str(dev), dtype


def check_output(out: Path, allowed: set[str], what: str = "--out") -> None:
    """The output names a format we write and its folder can be written."""
    suffix = out.suffix.lower()
    if not suffix:
        raise MIMAFaceError(f"{what} {out}: add an extension naming the format ({', '.join(sorted(allowed))}).")
    if suffix not in allowed:
        raise MIMAFaceError(f"{what} {out.name}: {suffix} is not a format written here; use "
                            f"{' or '.join(sorted(allowed))}.")
    if out.is_dir():
        raise MIMAFaceError(f"{what} {out}: is a folder; name a file inside it.")
    folder = out.parent if str(out.parent) else Path(".")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise MIMAFaceError(f"{what} {out}: the folder {existing} cannot be written; choose another place.")


def check_weights(weights: Path, mode: str) -> None:
    """The MIMAFace folder exists and holds the files of ``mode`` (nothing is read yet)."""
    from ..weights.layout import ReleasedLayout

    if not weights.is_dir():
        raise MIMAFaceError(f"--weights: folder not found: {weights}. Download the snapshot there with "
                            f"python -m mimaface_core download {weights}.")
    missing = ReleasedLayout(weights).missing(mode)
    if missing:
        raise MIMAFaceError(f"--weights {weights}: incomplete for {mode} mode; missing: {', '.join(missing)}. "
                            f"Run python -m mimaface_core download {weights}.")


def check_animate_args(args) -> CheckedInputs:
    """Every check of the ``animate`` command that needs no model, in the order a user reads them.

    Raises:
        MIMAFaceError: the first problem found, naming the option and the file.
    """
    from ..media.images import load_image

    from .footage import check_footage_source, wants_footage
    from .options import sampling_options

    check_ranges(args)
    sampling_options(args)  # --preset, --guidance-interval, ...: refused here, before any model loads
    footage = wants_footage(args)
    source = None if footage else load_image(args.source, "--source")
    keyframes = check_keyframe_args(args, footage)
    kind = None if args.audio is not None or args.driving is None else check_driver(args.driving)
    info = check_footage_source(args, kind) if footage else None
    if kind == "image" and not footage:
        check_output(args.out, IMAGE_OUTPUTS | VIDEO_OUTPUTS)
    else:
        check_output(args.out, VIDEO_OUTPUTS)
    mode = "image" if kind == "image" else "video"
    if args.weights is None:
        from ..weights.location import find_weights

        args.weights = find_weights(mode)
    check_weights(args.weights, mode)
    if args.vae is not None and not Path(args.vae).exists():
        raise MIMAFaceError(f"--vae: not found: {args.vae} (an SD1.5 VAE file or a diffusers VAE folder).")
    if args.vae is None and not (Path(args.weights) / "sd-vae-ft-mse").exists():
        raise MIMAFaceError(f"no VAE: {Path(args.weights) / 'sd-vae-ft-mse'} is missing. Run python -m mimaface_core "
                            "download on the weights folder, or give --vae FILE (an SD1.5 VAE such as "
                            "vae-ft-mse-840000-ema-pruned.safetensors).")
    device, dtype = check_device(args.device, args.dtype)
    if getattr(args, "compile", False):
        from ..sampling.compile import check_compile

        check_compile(device, "--compile")
    return CheckedInputs(source, kind, device, dtype, keyframes, footage=info)


def check_keyframe_args(args, footage: bool = False):
    """``--keyframes``/``--frames``/``--save-motion``: a driver or a keyframe track with a length;
    the track parsed, and checked against ``--frames`` when there is no driver. Returns the parsed
    :class:`~mimaface_core.motion.keyframes.Keyframes` or None. ``footage``: the source is footage
    (it gives the length; keyframes alone edit its own performance)."""
    keys_path, frames = getattr(args, "keyframes", None), getattr(args, "frames", None)
    driven = args.driving is not None or args.audio is not None or footage
    if footage and not (args.driving is not None or args.audio is not None) and keys_path is None:
        raise MIMAFaceError("--source is footage (a video): give its new performance: --audio (dubbing), --driving "
                            "(another video) or --keyframes FILE (an edit of its own performance).")
    if not driven and keys_path is None:
        raise MIMAFaceError("give a driver: --driving (a video, frames or an image), --audio (speech), or "
                            "--keyframes FILE with --frames N (the still photo animated by keyframes alone).")
    if frames is not None and (driven or frames < 1):
        raise MIMAFaceError(f"--frames {frames}: sets the length of a --keyframes motion without a driver (at least "
                            "1); with --driving or --audio the driver gives the length.")
    save = getattr(args, "save_motion", None)
    if save is not None:
        check_output(save.with_suffix(".json"), {".json"}, "--save-motion")
    if keys_path is None:
        return None
    from ..motion.keyframes import DEFAULT_FPS, load_keyframes

    if not Path(keys_path).is_file():
        raise MIMAFaceError(f"--keyframes: file not found: {keys_path}")
    keyframes = load_keyframes(keys_path)
    if not driven:
        if frames is None:
            raise MIMAFaceError("--keyframes without --driving or --audio needs --frames N (the length of the "
                                "animation; --fps sets its frame rate, default 25).")
        check_keyframes(keyframes, frames, float(args.fps or DEFAULT_FPS))
    return keyframes


def check_keyframes(keyframes, frames: int | None, fps: float) -> None:
    """The track fits a motion of ``frames`` frames at ``fps`` (no-op without a track)."""
    if keyframes is not None:
        keyframes.check(frames, fps)
