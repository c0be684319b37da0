"""``python -m mimaface_core animate``: a portrait and a driving video, image or sound file in, an
mp4 (or png) out."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import MIMAFaceError
from .checks import IMAGE_SUFFIXES
from .help import DefaultsHelpFormatter
from .options import animate_options, audio_of, even_frame
from .progress import ProgressBars

#: ``motion.gaze.GAZE_METHODS`` (not imported: ``--help`` loads no torch; a test checks they agree).
GAZE_CHOICES = ("per_frame", "first_frame", "mean", "zero")

MOTION_SUFFIXES = {".safetensors", ".json"}
log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    """Register the ``animate`` subcommand on an argparse subparsers object."""
    from ..sampling.ica import CLIP_LENGTH, OVERLAP
    from ..sampling.schedulers import SCHEDULER_NAMES
    from ..weights.layout import SADTALKER_FILE as COMBINED_FILE
    from ..weights.layout import SADTALKER_FOLDER as SNAPSHOT_SUBFOLDER

    p = sub.add_parser("animate", help="animate a portrait with a driving video, image or sound file",
                       formatter_class=DefaultsHelpFormatter)
    p.add_argument("--source", required=True, type=Path, help="the portrait to animate (any size; EXIF orientation "
                   "applied)")
    drive = p.add_mutually_exclusive_group()
    drive.add_argument("--driving", type=Path, help="driving video (mp4, mov, webm, GIF...), a folder of numbered "
                       "frames, or one driving image")
    drive.add_argument("--audio", type=Path, help="speech to lip-sync (wav, mp3, m4a, flac, ogg, or a video's sound): "
                       "SadTalker's audio networks turn it into motion at 25 fps")
    p.add_argument("--weights", type=Path, default=None, help="the released MIMAFace folder (with sd-vae-ft-mse); "
                   "default: the first of $MIMAFACE_WEIGHTS, ComfyUI/models/mimaface/MIMAFace (when this pack is in "
                   "a ComfyUI's custom_nodes) and ~/.cache/mimaface/MIMAFace that holds the weights")
    p.add_argument("--out", required=True, type=Path, help="output .mp4 (or .png/.jpg for a driving image); written "
                   "under a temporary name and renamed when complete")
    p.add_argument("--vae", type=Path, default=None, help="an SD1.5 VAE file or diffusers folder (default: "
                   "<weights>/sd-vae-ft-mse)")
    p.add_argument("--fps", type=float, default=None, help="frame rate of a folder of frames (default 25)")
    p.add_argument("--stride", type=int, default=1, help="keep every N-th driving frame (the released demo uses 2)")
    p.add_argument("--limit", type=int, default=None, help="use at most N driving frames (after the stride; the demo "
                   "uses 42); with --audio, at most N frames of 40 ms")
    add_speed_arguments(p, SCHEDULER_NAMES)
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler's noise, and with --audio of the blinks "
                   "and the head motion")
    p.add_argument("--noise", choices=("same", "fresh"), default="same", help="same noise for every clip (released) or fresh per clip")
    p.add_argument("--clip-length", type=int, default=CLIP_LENGTH, help="frames per clip (at most 32)")
    p.add_argument("--overlap", type=int, default=OVERLAP, help="frames carried between clips (ICA)")
    p.add_argument("--pose", choices=("absolute", "relative"), default="absolute", help="absolute: the driver's head "
                   "pose (released); relative: the source keeps its pose and gets the driver's change since its "
                   "first frame")
    p.add_argument("--expression-scale", type=float, default=1.0, help="factor on the driver's expression; with "
                   "--audio on the speech's change from the source's expression")
    p.add_argument("--smoothing", type=int, default=0, help="Savitzky-Golay window on the driver's motion (frames)")
    for flag, axis in (("--pitch", "x (nod)"), ("--yaw", "y (turn)"), ("--roll", "z (tilt)")):
        p.add_argument(flag, type=float, default=0.0, help=f"degrees added to the head's rotation about {axis} on "
                       "every frame (Edit Motion's offsets)")
    p.add_argument("--gaze", choices=GAZE_CHOICES, default="per_frame", help="per_frame: each driving frame's gaze "
                   "(released); first_frame / mean: one gaze for every frame (steady eyes); zero: the regressor's "
                   "zero gaze (Gaze Embed's methods)")
    p.add_argument("--box-mode", choices=("auto", "first_frame", "tracked"), default="auto", help="auto (default): "
                   "first_frame when its box keeps the face on every frame, else tracked (logged); first_frame: the "
                   "512 box of the first frame for every frame (released); tracked: a smoothed box per frame (for "
                   "heads that move a lot)")
    p.add_argument("--detector", choices=("mtcnn", "mediapipe"), default="mtcnn", help="face detector (mtcnn "
                   "reproduces the released crops; mediapipe is optional and approximate)")
    p.add_argument("--mediapipe-models", default=None, help="folder of mediapipe's model files (with --detector "
                   "mediapipe)")
    p.add_argument("--paste-back", action="store_true", help="write the full driving frames (the source photo "
                   "with --audio) with the animated face pasted in, instead of the 512x512 crops")
    p.add_argument("--feather", type=int, default=24, help="soft edge of --paste-back, in crop pixels")
    p.add_argument("--device", default=None, help="cuda, cpu, mps... (default: cuda when available)")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default=None,
                   help="diffusion dtype (default: float16 on cuda, else float32)")
    p.add_argument("--compile", action="store_true", help="torch.compile the UNet: faster steps after a one-time "
                   "compilation of tens of seconds to minutes per clip shape (needs Triton on CUDA, a C++ compiler on "
                   "the CPU)")
    p.add_argument("--channels-last", action="store_true", help="store the UNet's convolution weights channels_last "
                   "(NHWC); see the README's speed section for where it helps")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    from .faces import add_face_arguments

    add_face_arguments(p)
    from .footage import add_footage_arguments

    add_footage_arguments(p)
    k = p.add_argument_group("expression keyframes")
    k.add_argument("--keyframes", type=Path, default=None, help="a keyframe file (one '<frame or 1.5s>[ step|linear|"
                   "smooth]: <control>=<value or hold>, ...' per line, or JSON) animating named controls (smile, "
                   "mouth_open, blink, brow_raise, yaw, gaze_left...) over the motion, as offsets; alone (no --driving "
                   "or --audio) it animates the still photo for --frames frames at --fps")
    k.add_argument("--frames", type=int, default=None, help="length of a --keyframes motion without a driver")
    k.add_argument("--save-motion", type=Path, default=None, help="write the motion used (after keyframes) as "
                   "FILE.json + FILE.safetensors, the format of Save/Load Motion")
    a = p.add_argument_group("audio driving (with --audio)")
    a.add_argument("--audio-weights", type=Path, default=None,
                   help=f"SadTalker's {COMBINED_FILE} (or the auido2exp/auido2pose .pth pair, or their folder); "
                   f"default <weights>/{SNAPSHOT_SUBFOLDER}/{COMBINED_FILE}")
    a.add_argument("--pose-style", type=int, default=0, help="head-motion style of SadTalker's pose network, 0..45")
    a.add_argument("--still", action="store_true", help="keep the source's head pose (no head motion from the audio)")
    a.add_argument("--ref-pose", type=Path, default=None, help="a video or a saved motion whose head motion (relative "
                   "to its first frame) is added: to the audio's head motion, or with --still to the source's pose")
    a.add_argument("--blink", choices=("random", "none", "reference"), default="random",
                   help="random: SadTalker's random blinks (from --seed); none; reference: the eyes of --ref-blink "
                   "(or of --ref-pose)")
    a.add_argument("--ref-blink", type=Path, default=None, help="a video or a saved motion whose eyes (expression) "
                   "are used; implies --blink reference")


def add_speed_arguments(p, scheduler_names) -> None:
    """``--preset`` and the sampler options it sets (``--steps``, ``--scheduler``,
    ``--guidance-interval``, ``--cache-interval``, ``--cache-depth``), and ``--guidance``; any
    command whose options become :func:`~.options.animate_options` can add them (docs/SAMPLING.md §10)."""
    from ..sampling.presets import PRESET_NAMES, describe

    s = p.add_argument_group("speed (a preset sets the options below; one given explicitly overrides it)")
    s.add_argument("--preset", choices=PRESET_NAMES, default="exact", help="; ".join(describe(n) for n in PRESET_NAMES)
                   + ". UNet passes per output frame on a long video: exact 66.7, balanced <= 33.3, fast <= 13.3, "
                   "draft <= 6.67 (printed at the end of every run)")
    s.add_argument("--steps", type=int, default=None, help="denoising steps per clip (default: the preset's; exact 25)")
    s.add_argument("--guidance", type=float, default=5.0, help="classifier-free guidance scale")
    s.add_argument("--scheduler", choices=scheduler_names, default=None, help="denoising scheduler (default: the "
                   "preset's; exact: euler, the released one)")
    s.add_argument("--guidance-interval", type=float, nargs=2, metavar=("LOW", "HIGH"), default=None,
                   help="classifier-free guidance only on the steps whose position in the noise schedule lies in "
                   "[LOW, HIGH], fractions in (0, 1] of the 1000-step SD1.5 schedule, (t+1)/1000 for timestep t "
                   "(1 = pure noise; 0.5 is sigma 1.6, 0.1 is sigma 0.34); other steps make one conditional pass "
                   "(Kynkaanniemi et al. 2024). Default: the preset's (exact: every step; 0.001 1 covers every step)")
    s.add_argument("--cache-interval", type=int, default=None, help="DeepCache (Ma et al. 2023): a full UNet pass "
                   "every N steps, between them only the outer blocks run on the cached deep features "
                   "(default: the preset's; 1 = off, exact)")
    s.add_argument("--cache-depth", type=int, default=None, help="how many outer down/up blocks DeepCache recomputes, "
                   "1..3 (default 1)")


def _report_work(stats) -> None:
    """The cost line every animate run ends with (docs/SAMPLING.md §12)."""
    if stats.output_frames:
        print(stats.line())


def run(args: argparse.Namespace) -> int:
    """``animate`` with parsed arguments: build the job, check every input before any model loads,
    run it (:mod:`mimaface_core.jobs`, the same path as a line of ``batch``).

    Returns:
        the number of frames written.

    Raises:
        MIMAFaceError / ValueError: bad inputs, missing weights, no face (messages name the input).
    """
    from ..jobs import Job, run_job

    return run_job(Job.from_namespace("animate", args).check()).frames


def execute(args: argparse.Namespace, checked, models) -> int:
    """Run a checked ``animate`` job (:func:`mimaface_core.jobs.check.check_animate`) with the
    networks of ``models`` (a :class:`~mimaface_core.jobs.models.ModelCache`): several faces,
    speech, keyframes alone, or a driving video / image. Returns the number of frames written."""
    from .checks import check_keyframes
    from .faces import run_faces, wants_faces
    from .footage import run_footage, wants_footage

    if wants_footage(args):
        return run_footage(args, checked, models)
    if wants_faces(args):
        return run_faces(args, checked, models)
    if args.audio is not None:
        return _run_audio(args, checked, models)
    if args.driving is None:
        return _run_keyframes_only(args, checked, models)
    from PIL import Image

    from ..face.detectors import make_detector
    from ..media.outputs import atomic_output
    from ..media.video_in import FRAME_FOLDER_FPS, iter_video_frames, video_info
    from ..media.video_out import write_video
    from ..motion.extract import encode_source, extract_image_motion, extract_motion
    from ..pipeline import iter_animate, to_uint8
    from ..sampling.cost import SamplingStats

    still = checked.driver_kind == "image"
    if still:
        driving_image = _load_driving_image(args.driving)
    else:
        info = video_info(args.driving, "--driving")
        fps = (args.fps or FRAME_FOLDER_FPS if checked.driver_kind == "frames" else info.fps) / args.stride
        expected = -(-info.frames // args.stride) if info.frames else None
        if expected is not None and args.limit:
            expected = min(expected, args.limit)
    check_keyframes(checked.keyframes, 1 if still else expected, 1.0 if still else fps)
    model = models.mimaface(args.weights, mode="image" if still else "video", device=checked.device,
                            dtype=checked.dtype, vae=args.vae)
    options = animate_options(args)
    stats = SamplingStats()
    detector = make_detector(args.detector, device=model.device, models_dir=args.mediapipe_models)
    source = encode_source(checked.source, detector, model.d3dfr, model.identity_encoder, what=f"--source {args.source}")
    with ProgressBars() as bars:
        if still:
            motion, fps = extract_image_motion(driving_image, detector, model.d3dfr, what=f"--driving {args.driving}"), 1.0
            originals = _repeat(driving_image)
        else:
            def driving():
                return iter_video_frames(args.driving, args.stride, args.limit, "--driving")

            motion = extract_motion(driving, detector, model.d3dfr, box_mode=args.box_mode, fps=fps,
                                    progress=lambda done, total: bars.frame(done, total or expected))
            bars.close("motion")
            _report_missing(motion)
            originals = driving()
        motion, options = _keyed(args, checked, model, motion, options, fps)
        log.info("animating %d frame(s): %s", len(motion), _plan_text(options.sampling, len(motion), still))

        def frames():
            chunks = iter_animate(model, source, motion, options, fps=fps, on_step=bars.step, stats=stats)
            if args.paste_back:
                chunks = _pasted(chunks, originals, motion, args.feather)
            for chunk in chunks:
                yield from to_uint8(chunk)

        if args.out.suffix.lower() in IMAGE_SUFFIXES:
            with atomic_output(args.out) as tmp:
                Image.fromarray(next(frames())).save(tmp)
            written = 1
        else:
            written = write_video(args.out, (even_frame(f) for f in frames()), fps,
                                  audio_from=None if still else audio_of(args.driving))
    print(f"wrote {written} frame(s) to {args.out}")
    _report_work(stats)
    return written


def _load_driving_image(path):
    from ..media.images import load_image

    return load_image(path, "--driving")


def _repeat(image):
    """The same frame forever (paste-back into one image)."""
    from ..media.images import to_rgb_uint8

    rgb = to_rgb_uint8(image, "frame")
    while True:
        yield rgb


def _pasted(chunks, originals, motion, feather: int):
    """Generated chunks pasted back into the original frames (read in step with them)."""
    import numpy as np
    import torch

    from ..face.paste_back import paste_back
    from ..media.images import to_rgb_uint8

    matrices = motion.frame_to_crop()
    done = 0
    for chunk in chunks:
        k = len(chunk)
        base = torch.from_numpy(np.stack([to_rgb_uint8(next(originals), "frame") for _ in range(k)])).float() / 255
        yield paste_back(base, chunk, matrices[done:done + k], feather)[0]
        done += k


def _report_missing(motion) -> None:
    if motion.missing_count:
        missing = [int(i) for i in motion.missing.nonzero()[0]]
        shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
        log.warning("%d of %d driving frames had no face on the crop (frames %s); they are filled from their "
                    "neighbours. If there are many, try --box-mode tracked.", motion.missing_count, len(motion), shown)


def _plan_text(sampling, frames: int, still: bool) -> str:
    from ..sampling.ica import plan_clips

    if still:
        return f"{sampling.steps} denoising steps"
    clips = plan_clips(frames, sampling.clip_length, sampling.overlap, sampling.skip_unused_clips)
    if len(clips) == 1:
        return f"1 clip of {frames} frames, {sampling.steps} steps"
    return (f"{len(clips)} clips of {sampling.clip_length} frames overlapping by {sampling.overlap}, "
            f"{sampling.steps} steps each ({len(clips) * sampling.steps} steps)")


def _audio_motion_options(args):
    from ..audio.motion import AudioMotionOptions

    if args.stride != 1:
        raise MIMAFaceError("--stride applies to driving videos; with --audio the output has 25 frames per second "
                            "(use --limit to make fewer frames).")
    if args.blink == "reference" or args.ref_blink is not None:
        blink = "reference"
    else:
        blink = args.blink
    if blink == "reference" and args.ref_blink is None and args.ref_pose is None:
        raise MIMAFaceError("--blink reference needs --ref-blink (or --ref-pose): a video or a saved motion whose "
                            "eyes to copy.")
    pose = ("reference_only" if args.still else "reference") if args.ref_pose is not None else \
        ("still" if args.still else "audio")
    options = AudioMotionOptions(pose, args.pose_style, blink, args.seed, args.expression_scale, args.limit)
    try:
        options.check(has_reference=True)
    except ValueError as exc:
        raise MIMAFaceError(f"--pose-style / --limit: {exc}") from exc
    return options


def _check_reference(path: Path | None, flag: str) -> None:
    if path is None:
        return
    if not path.is_file():
        raise MIMAFaceError(f"{flag}: file not found: {path}")
    if path.suffix.lower() in MOTION_SUFFIXES:
        from ..motion.sequence import MotionSequence

        MotionSequence.load(path)
    else:
        from ..media.video_in import video_info

        video_info(path)


def _load_reference(path: Path | None, detector, model, bars):
    """A reference motion from a saved motion file or a video (extracted with the released recipe)."""
    if path is None:
        return None
    from ..motion.sequence import MotionSequence

    if path.suffix.lower() in MOTION_SUFFIXES:
        return MotionSequence.load(path)
    from ..media.video_in import iter_video_frames, video_info
    from ..motion.extract import extract_motion

    return extract_motion(lambda: iter_video_frames(path), detector, model.d3dfr, fps=video_info(path).fps,
                          progress=bars.frame)


def check_audio_args(args):
    """The ``--audio`` checks that need no model: the motion options, the speech file, SadTalker's
    weights, the reference videos or motions. Returns (AudioMotionOptions, audio weights path).

    Raises:
        MIMAFaceError: the first problem, naming the option.
    """
    options = _audio_motion_options(args)
    weights_path = check_speech_and_weights(args)
    _check_reference(args.ref_pose, "--ref-pose")
    _check_reference(args.ref_blink, "--ref-blink")
    return options, weights_path


def check_speech_and_weights(args):
    """``--audio`` opens as sound and SadTalker's weights are found (``--audio-weights``, default
    ``<weights>/sadtalker/SadTalker_V0.0.2_256.safetensors``); returns the weights path. Shared by
    speech driving and footage dubbing (``cli.footage``).

    Raises:
        MIMAFaceError: naming ``--audio`` or ``--audio-weights``.
    """
    from ..audio import find_audio_weights, probe_audio
    from ..weights.layout import SADTALKER_FILE as COMBINED_FILE
    from ..weights.layout import SADTALKER_FOLDER as SNAPSHOT_SUBFOLDER

    probe_audio(args.audio, "--audio")
    weights_path = args.audio_weights or args.weights / SNAPSHOT_SUBFOLDER / COMBINED_FILE
    try:
        find_audio_weights(weights_path)
    except MIMAFaceError as exc:
        raise MIMAFaceError(f"--audio-weights: {exc}") from exc
    return weights_path


def _run_audio(args: argparse.Namespace, checked, models) -> int:
    """``animate --audio``: speech → SadTalker motion in the source's crop frame → MIMAFace, 25 fps."""
    from ..audio import FPS, load_audio
    from ..audio.motion import audio_motion
    from ..face.detectors import make_detector
    from ..media.video_out import write_video
    from ..motion.extract import encode_source
    from ..pipeline import iter_animate, to_uint8
    from ..sampling.cost import SamplingStats

    # the checks that need no model ran in the job's check (check_audio_args)
    options, weights_path = checked.audio
    speech = load_audio(args.audio, max_frames=args.limit, what="--audio")
    stats = SamplingStats()
    log.info("audio: %s, %.2f s at %d Hz (%d channel(s)) → %d frames at %d fps", speech.name, speech.duration,
             speech.source_rate, speech.channels, min(speech.num_frames, args.limit or speech.num_frames), FPS)
    from .checks import check_keyframes

    check_keyframes(checked.keyframes, min(speech.num_frames, args.limit or speech.num_frames), float(FPS))

    nets = models.audio_networks(weights_path, device=checked.device)
    model = models.mimaface(args.weights, mode="video", device=checked.device, dtype=checked.dtype, vae=args.vae)
    detector = make_detector(args.detector, device=model.device, models_dir=args.mediapipe_models)
    source = encode_source(checked.source, detector, model.d3dfr, model.identity_encoder, what=f"--source {args.source}")
    with ProgressBars() as bars:
        pose_ref = _load_reference(args.ref_pose, detector, model, bars)
        blink_ref = pose_ref if args.ref_blink in (None, args.ref_pose) else \
            _load_reference(args.ref_blink, detector, model, bars)
        bars.close("motion")
        motion = audio_motion(source.motion(detector.name), speech, nets, options, pose_ref,
                              blink_reference=blink_ref, progress=bars.audio)
        bars.close("audio")
        options_mia = animate_options(args, expression_scale=1.0)
        motion, options_mia = _keyed(args, checked, model, motion, options_mia, float(FPS))

        log.info("animating %d frame(s): %s", len(motion), _plan_text(options_mia.sampling, len(motion), False))

        def frames():
            chunks = iter_animate(model, source, motion, options_mia, fps=float(FPS), on_step=bars.step, stats=stats)
            if args.paste_back:
                chunks = _pasted(chunks, _repeat(checked.source), motion, args.feather)
            for chunk in chunks:
                yield from to_uint8(chunk)

        written = write_video(args.out, (even_frame(f) for f in frames()), float(FPS), audio_from=args.audio)
    print(f"wrote {written} frame(s) at {FPS} fps to {args.out}")
    _report_work(stats)
    return written


def _keyed(args, checked, model, motion, options, fps):
    """The motion with ``--keyframes`` applied after the driver's smoothing (the sampler then
    smooths nothing more), saved with ``--save-motion``; (motion, options)."""
    import dataclasses

    if checked.keyframes is not None:
        from ..morphable.controls import controls_for
        from ..motion.keyframes import keyframe_motion

        motion = keyframe_motion(motion, checked.keyframes, controls_for(model.bfm), fps, options.smoothing)
        options = dataclasses.replace(options, smoothing=0)
    if args.save_motion is not None:
        print(f"wrote the motion to {motion.save(args.save_motion).with_suffix('.json')}")
    return motion, options


def _run_keyframes_only(args: argparse.Namespace, checked, models) -> int:
    """``animate --keyframes`` without a driver: the still photo animated by the keyframes alone,
    ``--frames`` frames at ``--fps`` (default 25)."""
    from ..face.detectors import make_detector
    from ..media.video_out import write_video
    from ..motion.extract import encode_source
    from ..motion.keyframes import DEFAULT_FPS, still_motion
    from ..pipeline import iter_animate, to_uint8
    from ..sampling.cost import SamplingStats

    fps = float(args.fps or DEFAULT_FPS)
    stats = SamplingStats()
    model = models.mimaface(args.weights, mode="video", device=checked.device, dtype=checked.dtype, vae=args.vae)
    detector = make_detector(args.detector, device=model.device, models_dir=args.mediapipe_models)
    source = encode_source(checked.source, detector, model.d3dfr, model.identity_encoder, what=f"--source {args.source}")
    motion, options = _keyed(args, checked, model, still_motion(source.motion(detector.name), args.frames, fps),
                             animate_options(args), fps)
    log.info("animating %d frame(s): %s", len(motion), _plan_text(options.sampling, len(motion), False))
    with ProgressBars() as bars:
        def frames():
            chunks = iter_animate(model, source, motion, options, fps=fps, on_step=bars.step, stats=stats)
            if args.paste_back:
                chunks = _pasted(chunks, _repeat(checked.source), motion, args.feather)
            for chunk in chunks:
                yield from to_uint8(chunk)

        written = write_video(args.out, (even_frame(f) for f in frames()), fps)
    print(f"wrote {written} frame(s) at {fps:g} fps to {args.out}")
    _report_work(stats)
    return written
