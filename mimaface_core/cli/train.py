"""``python -m mimaface_core train``: fine-tune MIMAFace on your own footage (paper §3.4, docs/SAMPLING.md §10)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import MIMAFaceError
from .help import DefaultsHelpFormatter


def add_parser(sub) -> None:
    """Register the ``train`` subcommand."""
    p = sub.add_parser("train", help="fine-tune MIMAFace on a folder of your videos (image or video stage)",
                       formatter_class=DefaultsHelpFormatter)
    p.add_argument("--stage", required=True, choices=("image", "video"), help="image: UNet, MIA module and CLIP on "
                   "single frames; video: motion modules, conv_in and the MIA module on clips (ICA)")
    p.add_argument("--data", required=True, type=Path, help="folder of training videos (any format PyAV reads) or "
                   "folders of frames; one person per video")
    p.add_argument("--weights", type=Path, default=None, help="the MIMAFace snapshot to start from (or a checkpoint "
                   "of an earlier run); default: the weights place animate uses ($MIMAFACE_WEIGHTS, ComfyUI's "
                   "models/mimaface/MIMAFace, ~/.cache/mimaface/MIMAFace)")
    p.add_argument("--out", required=True, type=Path, help="checkpoints go here, as checkpoint-<step>/ in the "
                   "released layout (load it with --weights)")
    p.add_argument("--steps", type=int, default=1000, help="optimisation steps in all")
    p.add_argument("--lr", type=float, default=1e-5, help="AdamW learning rate (the release's)")
    p.add_argument("--batch-size", type=int, default=1, help="samples per step")
    p.add_argument("--frames", type=int, default=None, help="video stage: frames per clip (default 10, the release's)")
    p.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no", help="fp16 needs CUDA")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--seed", type=int, default=777, help="seeds every random draw (the release's)")
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (the last step "
                   "always writes one)")
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="clip the gradient norm (0: clip nothing, as "
                   "the release in effect does)")
    p.add_argument("--train-clip-layers", action=argparse.BooleanOptionalAction, default=True, help="video stage: "
                   "really train the last two CLIP layers (the release marks them trainable but they never get a "
                   "gradient: --no-train-clip-layers)")
    p.add_argument("--release-clip-tiling", action="store_true", help="batches > 1: tile CLIP tokens across samples "
                   "as the release does (by default each sample keeps its own)")
    p.add_argument("--id-loss-weight", type=float, default=0.0, help="weight of the paper's identity contrastive "
                   "loss (0: off, as the release)")
    p.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=True,
                   help="trade compute for memory, as the release")
    p.add_argument("--optimizer", choices=("adamw", "adamw8bit"), default="adamw", help="adamw8bit needs bitsandbytes")
    p.add_argument("--motion-file", type=Path, default=None, help="video stage: motion modules to start from "
                   "(default <weights>/checkpoints/video/3dunet.pth; an AnimateDiff v3_sd15_mm.ckpt works)")
    p.add_argument("--vae", type=Path, default=None, help="SD1.5 VAE for the data (default <weights>/sd-vae-ft-mse)")
    p.add_argument("--max-frames", type=int, default=None, help="read at most N frames of each video")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error")


def check_train_args(args) -> str:
    """Every check that needs no model, in order; returns the device.

    Raises:
        MIMAFaceError: the first problem, naming the option.
    """
    from ..training.checkpoint import latest_checkpoint
    from ..training.data import find_videos
    from ..weights.layout import ReleasedLayout
    from .checks import check_device

    for flag, value, low in (("--steps", args.steps, 1), ("--batch-size", args.batch_size, 1),
                             ("--checkpoint-every", args.checkpoint_every, 1)):
        if value < low:
            raise MIMAFaceError(f"{flag} {value}: must be at least {low}.")
    if not args.lr > 0:
        raise MIMAFaceError(f"--lr {args.lr}: must be positive.")
    if args.frames is not None and args.stage == "image":
        raise MIMAFaceError("--frames is for the video stage (the image stage trains on single frames).")
    if args.frames is not None and not 2 <= args.frames <= 32:
        raise MIMAFaceError(f"--frames {args.frames}: must be between 2 and 32 (the motion modules' table).")
    if args.id_loss_weight < 0:
        raise MIMAFaceError(f"--id-loss-weight {args.id_loss_weight}: must be ≥ 0.")
    find_videos(args.data)
    if args.weights is None:
        from ..weights.location import find_weights

        args.weights = find_weights("video" if args.stage == "video" and args.motion_file is None else "image")
    if not args.weights.is_dir():
        raise MIMAFaceError(f"--weights: folder not found: {args.weights}")
    layout = ReleasedLayout(args.weights)
    needed = [layout.folder("pretrained_unet") / "config.json", layout.weight_file("d3dfr"),
              layout.weight_file("curricularface"), layout.bfm]
    if args.stage == "image" or not args.resume:
        needed += [layout.mim("image"), layout.vision_encoder("image") / "config.json"]
    missing = [str(p.relative_to(args.weights)) for p in needed if not p.is_file()]
    if missing:
        raise MIMAFaceError(f"--weights {args.weights}: not a MIMAFace snapshot the {args.stage} stage can start "
                            f"from; missing: {', '.join(missing)}.")
    if args.stage == "video":
        motion = args.motion_file or layout.weight_file("unet3d")
        if not Path(motion).is_file():
            raise MIMAFaceError(f"the video stage starts from motion modules: {motion} is missing; give --motion-file "
                                "(3dunet.pth or AnimateDiff's v3_sd15_mm.ckpt).")
    if args.vae is not None and not args.vae.exists():
        raise MIMAFaceError(f"--vae: not found: {args.vae}")
    if args.vae is None and not layout.vae.exists():
        raise MIMAFaceError(f"no VAE: {layout.vae} is missing; give --vae FILE (an SD1.5 VAE).")
    existing = args.out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise MIMAFaceError(f"--out {args.out}: {existing} cannot be written; choose another folder.")
    if args.resume and latest_checkpoint(args.out) is None:
        raise MIMAFaceError(f"--resume: no checkpoint-* folder in {args.out} to continue from.")
    device, _ = check_device(args.device, None)
    if args.mixed_precision == "fp16" and not device.startswith("cuda"):
        raise MIMAFaceError("--mixed-precision fp16 needs a CUDA GPU; use bf16 or no on this device.")
    return device


def options_from_args(args, device: str):
    from ..training.loop import TrainOptions

    return TrainOptions(stage=args.stage, data=args.data, weights=args.weights, out=args.out, steps=args.steps,
                        lr=args.lr, batch_size=args.batch_size, frames=args.frames,
                        mixed_precision=args.mixed_precision, resume=args.resume, seed=args.seed,
                        checkpoint_every=args.checkpoint_every, max_grad_norm=args.max_grad_norm or None,
                        train_clip_layers=args.train_clip_layers, per_sample_clip_tokens=not args.release_clip_tiling,
                        id_loss_weight=args.id_loss_weight, gradient_checkpointing=args.gradient_checkpointing,
                        optimizer=args.optimizer, device=device, motion_file=args.motion_file, vae=args.vae,
                        max_frames=args.max_frames)


def run(args: argparse.Namespace) -> None:
    """Check, then train with a progress bar showing the loss."""
    from tqdm import tqdm

    from ..training.loop import train

    device = check_train_args(args)
    options = options_from_args(args, device)
    quiet = int(os.environ.get("RANK", "0")) != 0  # under torchrun, one progress bar (rank 0)
    with tqdm(total=args.steps, desc=f"train ({args.stage} stage)", unit="step", disable=quiet) as bar:
        def progress(step, steps, loss):
            bar.n = step
            bar.set_postfix(loss=f"{loss:.4f}")
            bar.refresh()

        result = train(options, progress)
    if quiet:
        return
    print(f"trained steps {result.first_step + 1}..{result.first_step + len(result.losses)}; last checkpoint: "
          f"{result.checkpoint}")
