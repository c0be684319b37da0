"""``animate --source FOOTAGE``: a video, a GIF or a folder of frames as the source selects footage
mode: the footage's face is re-performed by ``--audio`` (dubbing), ``--driving`` (another
performance, relative to each clip's first frame) or ``--keyframes`` (an edit of its own
performance), or audio with keyframes on top; the output has the footage's size and frame rate
(``mimaface_core.footage``)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import MIMAFaceError

log = logging.getLogger(__name__)
#: ``footage.motion.REGIONS`` and ``footage.length.LOOP_MODES`` (not imported: ``--help`` loads no torch).
REGION_CHOICES = ("lower_face", "face")
LOOP_CHOICES = ("pingpong", "loop", "cut")
#: File suffixes of a still source (``media.video_in.IMAGE_SUFFIXES``); anything else is footage.
STILL_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def add_footage_arguments(p) -> None:
    """The footage-mode options of ``animate``."""
    g = p.add_argument_group("footage (a video, GIF or folder of frames as --source)")
    g.add_argument("--region", choices=REGION_CHOICES, default=None, help="what the performance replaces: lower_face "
                   "(jaw, lips, cheeks; eyes and brows stay the footage's; default with --audio) or face (the whole "
                   "expression; default otherwise). Head pose, identity and gaze are always the footage's")
    g.add_argument("--footage-loop", choices=LOOP_CHOICES, default="pingpong", help="when the audio is longer than "
                   "the footage: pingpong (forward, backward, forward...), loop, or cut (stop at the footage's end)")
    g.add_argument("--reference-frame", type=int, default=None, help="the footage frame (from 0) whose appearance is "
                   "used (default: the most frontal frame with open eyes and a closed mouth in the first 3 s)")
    g.add_argument("--reference", type=Path, default=None, help="a photo to take the appearance from instead of a "
                   "footage frame")
    g.add_argument("--colour-match", choices=("on", "off"), default="on", help="match the generated region's "
                   "Lab mean and spread to each footage frame's (lighting changes carry over)")


def is_footage(path) -> bool:
    """Whether ``--source`` is footage: a folder holding frame images, or a file that is not a still
    image (a video or a GIF). A folder without frames is left to the image checks (they name it)."""
    path = Path(path)
    if path.is_dir():
        from ..media.video_in import frame_files

        return bool(frame_files(path))
    return path.suffix.lower() not in STILL_SUFFIXES


def wants_footage(args) -> bool:
    """Whether footage mode runs."""
    return getattr(args, "source", None) is not None and is_footage(args.source)


def check_footage_source(args, driver_kind):
    """The model-free checks of footage mode (run by ``checks.check_animate_args``): the footage
    opens (upright size, average frame rate as for drivers), the driver is not a still image, the
    options fit. Returns the footage's ``VideoInfo``.

    Raises:
        MIMAFaceError: the first problem, naming the option.
    """
    from ..media.video_in import check_driver, video_info

    kind = check_driver(args.source, "--source")
    info = video_info(args.source, "--source")
    if driver_kind == "image":
        raise MIMAFaceError(f"--driving {Path(args.driving).name}: a still image cannot drive footage (--source is a "
                            "video); give a driving video, or --audio, or --keyframes.")
    if getattr(args, "face_map", None) is not None:
        raise MIMAFaceError("--face-map: in footage mode choose the faces with --faces (indices of the footage's face "
                            "tracks, or all); every chosen face gets the same performance.")
    if args.stride != 1:
        raise MIMAFaceError("--stride: footage mode keeps every frame of the footage.")
    if getattr(args, "paste_back", False):
        log.info("--paste-back: footage mode always writes the footage's frames.")
    if args.reference_frame is not None and args.reference_frame < 0:
        raise MIMAFaceError(f"--reference-frame {args.reference_frame}: must be at least 0.")
    if args.reference_frame is not None and args.reference is not None:
        raise MIMAFaceError("--reference-frame and --reference: give one (a footage frame or a photo).")
    if args.reference_frame is not None and info.frames and args.reference_frame >= info.frames:
        raise MIMAFaceError(f"--reference-frame {args.reference_frame}: past the footage's end ({info.frames} "
                            f"frames, 0..{info.frames - 1}).")
    if args.reference is not None:
        from ..media.images import load_image

        load_image(args.reference, "--reference")
    if kind == "frames" and args.fps:
        info = type(info)(float(args.fps), info.width, info.height, info.frames, info.has_audio, info.rotation)
    return info


def _speech(args):
    """The dubbing speech, checked (a sound that is not silent) and loaded; (speech, weights path)."""
    from ..audio import load_audio
    from .animate import check_speech_and_weights

    weights_path = check_speech_and_weights(args)
    speech = load_audio(args.audio, what="--audio")
    if speech.is_silent:
        raise MIMAFaceError(f"--audio {Path(args.audio).name}: the sound is silent (every sample is zero); there is "
                            "no speech to dub the footage with.")
    return speech, weights_path


def run_footage(args: argparse.Namespace, checked, models=None) -> int:
    """Track the footage, check, load the models (from ``models``, a
    :class:`~mimaface_core.jobs.models.ModelCache`; a fresh one when None), build each face's motion,
    generate, composite, write (with the new speech, or the footage's own sound). Returns the number
    of frames written."""
    from ..face.detectors import make_detector
    from ..face.tracks import TrackingOptions
    from ..footage.perform import face_performance, output_order
    from ..footage.reperform import iter_reperform, ordered_frames, track_footage
    from ..group import parse_faces
    from ..media.video_in import iter_video_frames
    from ..media.video_out import write_video
    from ..morphable.controls import controls_for
    from ..motion.tracks import extract_track_motions
    from ..sampling.cost import SamplingStats
    from .checks import check_keyframes
    from .options import animate_options, audio_of, even_frame
    from .progress import ProgressBars

    info = checked.footage
    fps = info.fps
    kind = "audio" if args.audio is not None else "transfer" if args.driving is not None else "footage"
    region = args.region or ("lower_face" if kind == "audio" else "face")
    speech = weights_path = None
    if kind == "audio":
        speech, weights_path = _speech(args)

    def footage():
        return iter_video_frames(args.source, 1, None, "--source")

    faces = "default" if args.faces is None else parse_faces(args.faces, "--faces")
    tracking = TrackingOptions(max_gap=args.track_gap, identity_weight=args.identity_weight)
    detector = make_detector(args.detector, models_dir=args.mediapipe_models)
    with ProgressBars() as bars:
        tracks, chosen = track_footage(footage(), detector, faces=faces, tracking=tracking, progress=bars.frame)
        bars.close("motion")
    n = tracks.n_frames
    for line in tracks.summary().splitlines():
        log.info("footage: %s", line)
    if args.reference_frame is not None and args.reference_frame >= n:
        raise MIMAFaceError(f"--reference-frame {args.reference_frame}: past the footage's end ({n} frames, "
                            f"0..{n - 1}).")
    order = output_order(n, fps, speech=speech, limit=args.limit, loop=args.footage_loop)
    check_keyframes(checked.keyframes, len(order), fps)

    if models is None:
        from ..jobs.models import ModelCache

        models = ModelCache()
    model = models.mimaface(args.weights, mode="video", device=checked.device, dtype=checked.dtype, vae=args.vae)
    detector = make_detector(args.detector, device=model.device, models_dir=args.mediapipe_models)
    controls = controls_for(model.bfm)
    nets = None
    if speech is not None:
        nets = models.audio_networks(weights_path, device=checked.device)
    from ..face.tracks import FaceTracks

    picked = FaceTracks([tracks[t] for t in chosen], n, tracks.frame_size, tracks.options)
    with ProgressBars() as bars:
        motions = extract_track_motions(footage(), picked, detector, model.d3dfr, box_mode="tracked", fps=fps,
                                        progress=bars.frame)
        bars.close("motion")
        driver = dfps = None
        if kind == "transfer":
            from ..motion.extract import extract_motion

            from ..media.video_in import FRAME_FOLDER_FPS, video_info

            dfps = (args.fps or FRAME_FOLDER_FPS) if checked.driver_kind == "frames" else \
                video_info(args.driving, "--driving").fps
            driver = extract_motion(lambda: iter_video_frames(args.driving, 1, None, "--driving"), detector,
                                    model.d3dfr, box_mode=args.box_mode, fps=dfps, progress=bars.frame)
            bars.close("motion")
            if len(driver) / dfps < len(order) / fps:
                log.info("--driving: %d frame(s) at %.3f fps, shorter than the footage; its last frame is held.",
                         len(driver), dfps)
        reference_image = None
        if args.reference is not None:
            from ..media.images import load_image

            reference_image = load_image(args.reference, "--reference")
        audio_options = None
        if kind == "audio":
            from ..audio.motion import AudioMotionOptions

            audio_options = AudioMotionOptions("still", 0, "none" if args.blink == "reference" else args.blink,
                                               args.seed, args.expression_scale)
        frames_read: dict = {}

        def frame_at(i):  # one footage frame kept: the last reference read
            if i not in frames_read:
                frames_read.clear()
                frames_read[i] = _frame_at(footage(), i)
            return frames_read[i]

        faces_in = {}
        for t, motion in zip(chosen, motions):
            if motion is None:
                log.warning("footage: face track %d is never found on its own crop; it passes through.", t)
                continue
            face = face_performance(motion, tracks[t], order, fps, kind=kind, region=region, detector=detector,
                                    d3dfr=model.d3dfr, identity_encoder=model.identity_encoder, bfm=model.bfm,
                                    controls=controls, frame_at=frame_at, reference_frame=args.reference_frame,
                                    reference_image=reference_image, speech=speech, audio_nets=nets,
                                    audio_options=audio_options, driver=driver, driver_fps=dfps,
                                    audio_progress=bars.audio)
            if kind == "audio":
                bars.close("audio")
            log.info("face track %d: %s", t, face.reference.describe())
            source, m = face.source, face.motion
            if checked.keyframes is not None:
                from ..motion.keyframes import keyframe_motion

                m = keyframe_motion(m, checked.keyframes, controls, fps)
            passed = int(m.missing.sum())
            if passed:
                log.warning("face track %d: absent on %d of %d output frame(s); they pass through unchanged.", t,
                            passed, len(m))
            faces_in[t] = (source, m)
        if not faces_in:
            raise MIMAFaceError("--source: none of the chosen faces could be followed on its crop; nothing to "
                                "re-perform.")
        if args.save_motion is not None:
            for t, (_, m) in faces_in.items():
                path = args.save_motion if len(faces_in) == 1 else \
                    args.save_motion.with_name(f"{args.save_motion.with_suffix('').name}_face{t}")
                print(f"wrote the motion of face track {t} to {m.save(path).with_suffix('.json')}")
        import dataclasses

        options = dataclasses.replace(animate_options(args, expression_scale=1.0), pose="absolute", smoothing=0)
        log.info("re-performing %d face(s) over %d frame(s) at %.3f fps (%s, region %s).", len(faces_in), len(order),
                 fps, kind, region)

        stats = SamplingStats()

        def out_frames():
            for chunk in iter_reperform(model, faces_in, ordered_frames(footage, order), options, region=region,
                                        feather=args.feather, colour_match=args.colour_match == "on", fps=fps,
                                        on_step=bars.step, stats=stats):
                yield from chunk

        sound = args.audio if kind == "audio" else audio_of(args.source)
        written = write_video(args.out, (even_frame(f) for f in out_frames()), fps, audio_from=sound)
    print(f"wrote {written} frame(s) at {fps:g} fps to {args.out}")
    print(f"{stats.line()} (per re-performed face frame)")
    return written


def _frame_at(frames, index: int):
    for i, frame in enumerate(frames):
        if i == index:
            return frame
    raise MIMAFaceError(f"--source: frame {index} could not be read.")
