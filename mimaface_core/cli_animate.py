"""``python -m mimaface_core animate``: a portrait and a driving video or image in, an mp4 out."""

from __future__ import annotations

import argparse
from pathlib import Path

from .errors import MIMAFaceError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def add_parser(sub) -> None:
    """Register the ``animate`` subcommand on an argparse subparsers object."""
    from .sampling.clips import CLIP_LENGTH, OVERLAP
    from .schedulers import SCHEDULER_NAMES

    p = sub.add_parser("animate", help="animate a portrait with a driving video or image",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--source", required=True, type=Path, help="the portrait to animate (any size)")
    p.add_argument("--driving", required=True, type=Path, help="driving video, or one driving image")
    p.add_argument("--weights", required=True, type=Path, help="the released MIMAFace folder (with sd-vae-ft-mse)")
    p.add_argument("--out", required=True, type=Path, help="output .mp4 (or .png/.jpg for a driving image)")
    p.add_argument("--stride", type=int, default=1, help="keep every N-th driving frame (the released demo uses 2)")
    p.add_argument("--limit", type=int, default=None, help="use at most N driving frames (after the stride; the demo uses 42)")
    p.add_argument("--steps", type=int, default=25, help="denoising steps per clip")
    p.add_argument("--guidance", type=float, default=5.0, help="classifier-free guidance scale")
    p.add_argument("--scheduler", choices=SCHEDULER_NAMES, default="euler")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", choices=("same", "fresh"), default="same", help="same noise for every clip (released) or fresh per clip")
    p.add_argument("--clip-length", type=int, default=CLIP_LENGTH, help="frames per clip (at most 32)")
    p.add_argument("--overlap", type=int, default=OVERLAP, help="frames carried between clips (ICA)")
    p.add_argument("--pose", choices=("absolute", "relative"), default="absolute")
    p.add_argument("--expression-scale", type=float, default=1.0)
    p.add_argument("--smoothing", type=int, default=0, help="Savitzky-Golay window on the driver's motion (frames)")
    p.add_argument("--box-mode", choices=("first_frame", "tracked"), default="first_frame")
    p.add_argument("--detector", choices=("mtcnn", "mediapipe"), default="mtcnn")
    p.add_argument("--mediapipe-models", default=None, help="folder of mediapipe's model files")
    p.add_argument("--device", default=None, help="cuda, cpu, mps... (default: cuda when available)")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default=None,
                   help="diffusion dtype (default: float16 on cuda, else float32)")


def run(args: argparse.Namespace) -> None:
    """Execute ``animate`` with parsed arguments.

    Raises:
        MIMAFaceError / ValueError: bad inputs, missing weights, no face (messages name the input).
    """
    import torch
    from PIL import Image
    from tqdm import tqdm

    from .animate import AnimateOptions, iter_animate, to_uint8
    from .media import iter_video_frames, video_info
    from .sampling import SamplingOptions
    from .video_out import write_video
    from .weights.loader import load_mimaface

    for name in ("source", "driving"):
        if not getattr(args, name).is_file():
            raise MIMAFaceError(f"--{name}: file not found: {getattr(args, name)}")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.float16 if device.startswith("cuda") else torch.float32)
    still = args.driving.suffix.lower() in IMAGE_SUFFIXES
    model = load_mimaface(args.weights, mode="image" if still else "video", device=device, dtype=dtype)
    options = AnimateOptions(
        SamplingOptions(args.steps, args.guidance, args.scheduler, args.seed, args.noise, args.clip_length, args.overlap),
        args.pose, args.expression_scale, args.smoothing, box_mode=args.box_mode, detector=args.detector,
        models_dir=args.mediapipe_models)
    source = Image.open(args.source)
    if still:
        driving, fps = Image.open(args.driving), 1.0
    else:
        info = video_info(args.driving)
        fps = info.fps / args.stride

        def driving():
            return iter_video_frames(args.driving, args.stride, args.limit)

    bars = {}

    def on_frame(done, total):
        bars.setdefault("motion", tqdm(total=total, desc="motion", unit="frame")).update(1)

    def on_step(done, total):
        bars.setdefault("sample", tqdm(total=total, desc="sampling", unit="step")).update(1)

    def frames():
        for chunk in iter_animate(model, source, driving, options, fps=fps, on_step=on_step, on_frame=on_frame):
            yield from to_uint8(chunk)

    try:
        if args.out.suffix.lower() in IMAGE_SUFFIXES:
            if not still:
                raise MIMAFaceError(f"--out {args.out.name}: a driving video needs a video file (.mp4).")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(next(frames())).save(args.out)
            written = 1
        else:
            written = write_video(args.out, frames(), fps, audio_from=None if still else args.driving)
    finally:
        for bar in bars.values():
            bar.close()
    print(f"wrote {written} frame(s) to {args.out}")
