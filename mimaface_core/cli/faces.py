"""``animate --faces/--face-map``: every face of a group photo animated by its own tracked face of
the driving video (``group``), written as one video of the photo's size (or, with
``--paste-back``, of the driving frames' size)."""

from __future__ import annotations

import argparse
import logging

from ..errors import MIMAFaceError

log = logging.getLogger(__name__)
#: ``face.tracks.TrackingOptions``' max_gap and identity_weight (not imported: ``--help`` loads no
#: torch; a test checks they agree).
TRACK_GAP, IDENTITY_WEIGHT = 12, 0.3


def add_face_arguments(p) -> None:
    """The several-faces options of ``animate``."""
    g = p.add_argument_group("several faces (group photos, several people in the driver)")
    g.add_argument("--faces", default=None, help="animate several faces of the source: 'all' or indices left to right "
                   "(e.g. 0,2); the output is the whole photo (the driving frames with --paste-back)")
    g.add_argument("--face-map", default=None, help="which driving face track drives which source face: auto (the "
                   "tracks left to right where they first appear together, onto the faces left to right), FACE:TRACK "
                   "pairs such as 0:1,1:0, or all:TRACK (one track drives every face); implies --faces all")
    g.add_argument("--track-gap", type=int, default=TRACK_GAP, help="frames a driving face may be missing and keep "
                   "its track by box overlap; after that only its identity brings it back")
    g.add_argument("--identity-weight", type=float, default=IDENTITY_WEIGHT, help="weight of the CurricularFace "
                   "identity term (vs. box overlap) when linking faces into tracks, 0..1")


def wants_faces(args) -> bool:
    """Whether the several-faces path runs."""
    return getattr(args, "faces", None) is not None or getattr(args, "face_map", None) is not None


def check_face_args(args, checked):
    """The several-faces checks that need no MIMAFace model (only the shipped face detector):
    option syntax, then the faces of the source. Returns (faces, face map, face boxes, tracking).

    Raises:
        MIMAFaceError: a bad option or a face that does not exist (the message names the option).
    """
    from ..face.detectors import make_detector
    from ..face.tracks import TrackingOptions
    from ..group import FaceMap, parse_faces
    from ..motion.sources import source_face_boxes

    faces = parse_faces(args.faces, "--faces")
    face_map = FaceMap.parse(args.face_map, "--face-map")
    tracking = TrackingOptions(max_gap=args.track_gap, identity_weight=args.identity_weight)
    if args.track_gap < 0:
        raise MIMAFaceError(f"--track-gap {args.track_gap}: must be at least 0.")
    if not 0 <= args.identity_weight <= 1:
        raise MIMAFaceError(f"--identity-weight {args.identity_weight}: must be between 0 and 1.")
    if args.audio is not None:
        raise MIMAFaceError("--faces/--face-map: several faces are driven by a driving video; with --audio, "
                            "animate one face (the largest) for now.")
    if getattr(args, "driving", None) is None or checked.driver_kind == "image":
        raise MIMAFaceError("--faces/--face-map: several faces need a driving video (--driving), not an image.")
    detector = make_detector(args.detector, models_dir=args.mediapipe_models)
    boxes = source_face_boxes(checked.source, detector, f"--source {args.source}")
    if faces is not None and faces[-1] >= len(boxes):
        raise MIMAFaceError(f"--faces: face {faces[-1]} does not exist; the source has {len(boxes)} face(s) "
                            f"(0..{len(boxes) - 1}, left to right).")
    face_map.check_faces(len(boxes), "--face-map")
    if len(boxes) == 1:
        log.info("--faces: the source has one face; animating it with the several-faces path.")
    return faces, face_map, boxes, tracking


def run_faces(args: argparse.Namespace, checked, models) -> int:
    """Plan (faces, tracks, who drives whom; reported), animate every driven face, write the video."""
    from ..face.detectors import make_detector
    from ..group import iter_animate_faces, plan_faces
    from ..media.video_in import FRAME_FOLDER_FPS, iter_video_frames, video_info
    from ..media.video_out import write_video
    from ..pipeline import to_uint8
    from ..sampling.cost import SamplingStats
    from .options import animate_options, audio_of, even_frame
    from .progress import ProgressBars

    faces, face_map, _, tracking = checked.faces  # check_face_args ran in the job's check
    info = video_info(args.driving, "--driving")
    fps = (args.fps or FRAME_FOLDER_FPS if checked.driver_kind == "frames" else info.fps) / args.stride

    def driving():
        return iter_video_frames(args.driving, args.stride, args.limit, "--driving")

    model = models.mimaface(args.weights, mode="video", device=checked.device, dtype=checked.dtype, vae=args.vae)
    detector = make_detector(args.detector, device=model.device, models_dir=args.mediapipe_models)
    options = animate_options(args)
    stats = SamplingStats()
    with ProgressBars() as bars:
        plan = plan_faces(checked.source, driving, detector, model.d3dfr, model.identity_encoder, faces=faces,
                          face_map=face_map, tracking=tracking, box_mode=args.box_mode, fps=fps,
                          progress=bars.frame)
        face_map.check_tracks(len(plan.tracks), "--face-map")
        for line in plan.describe().splitlines():
            log.info("%s", line)
        if not plan.drivers:
            raise MIMAFaceError("--faces/--face-map: no source face has a driving track; see the faces and tracks "
                                "listed above.")

        def out_frames():
            for chunk in iter_animate_faces(model, plan.sources, plan.drivers, checked.source, options,
                                            base_frames=driving() if args.paste_back else None,
                                            feather=args.feather, fps=fps, on_step=bars.step, stats=stats):
                yield from to_uint8(chunk.frames)

        written = write_video(args.out, (even_frame(f) for f in out_frames()), fps, audio_from=audio_of(args.driving))
    print(f"wrote {written} frame(s) with {len(plan.drivers)} animated face(s) to {args.out}")
    print(f"{stats.line()} (per animated face frame)")
    return written
