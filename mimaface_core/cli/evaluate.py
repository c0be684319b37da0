"""``python -m mimaface_core evaluate``: the paper's Table 1 metrics of one generated clip
(MIMAFace §4.1), printed as a table, with per-frame JSON and a PNG of the per-frame curves."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import MIMAFaceError
from .help import DefaultsHelpFormatter

log = logging.getLogger("mimaface")


def add_parser(sub) -> None:
    """Register the ``evaluate`` subcommand on an argparse subparsers object."""
    p = sub.add_parser("evaluate", help="the paper's metrics (PSNR, SSIM, LPIPS, Exp, Pose, Gaze, CSIM, LMD, FID) "
                       "of a generated clip against its driving clip", formatter_class=DefaultsHelpFormatter)
    p.add_argument("--generated", required=True, type=Path, help="the generated clip: a video, a folder of frames or "
                   "an image (512x512 crops as animate writes them, or pasted back at the driving video's size)")
    p.add_argument("--driving", required=True, type=Path, help="the driving clip it was made from (video, folder of "
                   "frames or image), frame for frame")
    p.add_argument("--source", type=Path, default=None, help="the source photo, for CSIM (identity similarity)")
    p.add_argument("--weights", type=Path, default=None, help="the MIMAFace snapshot whose estimators measure the "
                   "faces (D3DFR, CurricularFace); default: where animate looks (python -m mimaface_core --help)")
    p.add_argument("--same-identity", action="store_true", help="the source is the driving person (reconstruction): "
                   "also PSNR, SSIM and LPIPS")
    p.add_argument("--stride", type=int, default=1, help="keep every N-th driving frame, as the animation did")
    p.add_argument("--limit", type=int, default=None, help="at most N driving frames (after the stride), as the "
                   "animation did")
    p.add_argument("--clip-length", type=int, default=None, help="the sampler's clip length: report seam scores at "
                   "the clip boundaries")
    p.add_argument("--overlap", type=int, default=None, help="the sampler's overlap (with --clip-length; default 3)")
    p.add_argument("--json", type=Path, default=None, help="write every metric with its per-frame values here")
    p.add_argument("--plot", type=Path, default=None, help="write a PNG of the per-frame Exp/Pose/Gaze errors and "
                   "CSIM here")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    p.add_argument("--no-fid", action="store_true", help="skip FID")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: cuda when available)")
    p.add_argument("--detector", choices=("mtcnn", "mediapipe"), default="mtcnn", help="face detector (mtcnn is the "
                   "released one)")
    p.add_argument("--mediapipe-models", type=Path, default=None, help="folder of mediapipe's model files (with "
                   "--detector mediapipe)")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error")


def check_evaluate_args(args):
    """Every check that needs no model: clips readable with matching frame counts, the source an
    image, ranges, output formats and folders, the estimator files, the device.

    Returns:
        (generated Clip, driving Clip, source PIL image or None, device string).

    Raises:
        MIMAFaceError: the first problem, naming the option.
    """
    from ..evaluation.face_measures import check_estimator_files
    from ..evaluation.frames import frames_from_path
    from ..media.images import load_image
    from ..sampling.ica import MAX_CLIP_LENGTH, OVERLAP
    from .checks import check_device, check_output

    if args.stride < 1:
        raise MIMAFaceError(f"--stride {args.stride}: must be at least 1.")
    if args.limit is not None and args.limit < 1:
        raise MIMAFaceError(f"--limit {args.limit}: must be at least 1.")
    if args.overlap is not None and args.clip_length is None:
        raise MIMAFaceError("--overlap needs --clip-length (the seam scores need the whole clip plan).")
    if args.clip_length is not None:
        args.overlap = OVERLAP if args.overlap is None else args.overlap
        if not 2 <= args.clip_length <= MAX_CLIP_LENGTH:
            raise MIMAFaceError(f"--clip-length {args.clip_length}: must be between 2 and {MAX_CLIP_LENGTH}.")
        if not 0 <= args.overlap < args.clip_length:
            raise MIMAFaceError(f"--overlap {args.overlap}: must be between 0 and --clip-length − 1 ({args.clip_length - 1}).")
    generated = frames_from_path(args.generated, "--generated")
    driving = frames_from_path(args.driving, "--driving", args.stride, args.limit)
    if generated.count and driving.count and generated.count != driving.count:
        raise MIMAFaceError(f"--generated has {generated.count} frames and --driving {driving.count} (stride "
                            f"{args.stride}, limit {args.limit}): they must match frame for frame; give the "
                            "--stride and --limit the animation used.")
    source = load_image(args.source, "--source") if args.source is not None else None
    if args.json is not None:
        check_output(args.json, {".json"}, "--json")
    if args.plot is not None:
        check_output(args.plot, {".png"}, "--plot")
    if args.weights is None:
        from ..weights.location import find_weights

        args.weights = find_weights("image")
    if not args.weights.is_dir():
        raise MIMAFaceError(f"--weights: folder not found: {args.weights} (a MIMAFace snapshot).")
    check_estimator_files(args.weights)
    if args.detector == "mediapipe" and args.mediapipe_models is None:
        raise MIMAFaceError("--detector mediapipe needs --mediapipe-models FOLDER.")
    device, _ = check_device(args.device, None)
    return generated, driving, source, device


def run(args: argparse.Namespace) -> int:
    """``evaluate`` with parsed arguments: build the job, check it, run it (:mod:`mimaface_core.jobs`,
    the same path as a line of ``batch``). Returns the number of frames measured."""
    from ..jobs import Job, run_job

    return run_job(Job.from_namespace("evaluate", args).check()).frames


def execute(args: argparse.Namespace, checked, models) -> int:
    """Load the estimators (from ``models``, a :class:`~mimaface_core.jobs.models.ModelCache`),
    evaluate, print the table, write the JSON and the plot; ``checked`` is what
    :func:`check_evaluate_args` returned. Returns the number of frames measured."""
    from tqdm import tqdm

    from ..evaluation.evaluate import EvaluationOptions, evaluate_frames

    generated, driving, source, device = checked
    estimators = models.estimators(args.weights, device, args.detector, args.mediapipe_models)
    options = EvaluationOptions(same_identity=args.same_identity, clip_length=args.clip_length, overlap=args.overlap,
                                lpips=not args.no_lpips, fid=not args.no_fid)
    with tqdm(total=driving.count, desc="evaluate", unit="frame") as bar:
        result = evaluate_frames(generated.frames, driving.frames, estimators, source, options,
                                 num_frames=driving.count, progress=lambda done, total: bar.update(done - bar.n),
                                 source_what=f"--source {args.source}")
    print(result.table())
    if args.json is not None:
        result.write_json(args.json)
        log.info("wrote %s", args.json)
    if args.plot is not None:
        result.write_plot(args.plot)
        log.info("wrote %s", args.plot)
    return driving.count or 0
