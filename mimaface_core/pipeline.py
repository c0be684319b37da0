"""The main job: a source portrait and a driving video (or image, or motion sequence) in, animated
512x512 frames out, clip by clip (docs/SAMPLING.md §1, §3–§9).

Memory and time grow with the number of frames only through the per-frame coefficients and the
output frames: renders, render latents, contexts and latents exist for the current clip only.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import SamplingCancelled
from .face.detection import FaceDetector
from .face.detectors import make_detector
from .morphable.coefficients import GAZE
from .morphable.render import render_motion, render_to_image
from .motion.edit import edit_coefficients
from .motion.extract import (
    SourceFace,
    encode_source,
    extract_image_motion,
    extract_motion,
)
from .motion.gaze import gaze_by_method, with_gaze
from .motion.retarget import retarget
from .motion.sequence import MotionSequence
from .networks.appearance_encoder import appearance_tokens
from .networks.bundle import MIMAFaceModel
from .networks.denoiser import is_video_unet
from .networks.vae import decode_latents, encode_render_images
from .sampling import SamplingOptions
from .sampling.animation import animate_latents
from .sampling.conditioning import ClipConditioner, SourceAppearance, encoded_renders
from .sampling.cost import SamplingStats
from .sampling.sampler import float32_copy


@dataclass(frozen=True)
class AnimateOptions:
    """Everything :func:`animate` can change; defaults are the release's.

    Attributes:
        sampling: steps, guidance, scheduler, seed, noise mode, clip length, overlap.
        pose: "absolute" (released) or "relative" (see ``motion.retarget``).
        expression_scale: factor on the driver's expression (1 = released).
        smoothing: Savitzky–Golay window (frames) on the driver's motion (0 = off, released).
        gaze: keyword arguments of ``motion.gaze.gaze_by_method`` (method, strength, smoothing,
            fixed, offset, scale).
        box_mode: "auto" (default: the released "first_frame" box when it keeps the face on every
            frame, else "tracked"; logged), "first_frame" (released) or "tracked".
        face: "largest" (released) or a face index, for the source and the driver.
        detector: "mtcnn" (released) or "mediapipe" (needs ``models_dir``).
        models_dir: mediapipe's model folder.
        rotation: (pitch, yaw, roll) degrees added to the animated head pose (``motion.edit``).
    """

    sampling: SamplingOptions = SamplingOptions()
    pose: str = "absolute"
    expression_scale: float = 1.0
    smoothing: int = 0
    gaze: dict = field(default_factory=dict)
    box_mode: str = "auto"
    face: int | str = "largest"
    detector: str = "mtcnn"
    models_dir: str | None = None
    rotation: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self):
        """Raises ``ranges.ValueRangeError`` (a MIMAFaceError and ValueError) for an expression
        scale, smoothing window or rotation outside ``ranges.OPTION_RANGES``' limits, before any
        model runs (a warning beyond the plausible range); ``sampling`` checked itself."""
        from .ranges import check_options

        pitch, yaw, roll = self.rotation
        check_options({"expression_scale": self.expression_scale, "smoothing": self.smoothing, "pitch": pitch,
                       "yaw": yaw, "roll": roll}, "animate options")


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """[0, 1] frames → uint8 with the release's truncation ``uint8(255·x)`` (docs/SAMPLING.md §9)."""
    return (frames.clamp(0, 1) * 255).to(torch.uint8).numpy()


def render_source(bfm, blended: torch.Tensor, m256_inv: np.ndarray) -> Callable[[list[int]], torch.Tensor]:
    """Renders of frames, drawn when asked: indices → (k, 512, 512, 3) IMAGE float32 in [0, 1] on the CPU
    (docs/ALIGNMENT.md §9–§11; the IMAGE form of every path, docs/NUMERICS.md §21)."""
    def renders(index):
        index = list(index)
        return render_to_image(render_motion(bfm, blended[index], m256_inv[index])[0])

    return renders


def _driving_motion(driving, model: MIMAFaceModel, detector: FaceDetector, options: AnimateOptions,
                    fps: float | None, on_frame) -> MotionSequence:
    if isinstance(driving, MotionSequence):
        return driving
    if _is_single_image(driving):
        return extract_image_motion(driving, detector, model.d3dfr, options.face)
    return extract_motion(driving, detector, model.d3dfr, box_mode=options.box_mode, face=options.face,
                          fps=fps, progress=on_frame)


def _is_single_image(x) -> bool:
    from PIL import Image

    if isinstance(x, Image.Image):
        return True
    return isinstance(x, (np.ndarray, torch.Tensor)) and x.ndim in (2, 3) and x.shape[-1] in (1, 3, 4)


def iter_animate(model: MIMAFaceModel, source_image, driving, options: AnimateOptions = AnimateOptions(), *,
                 fps: float | None = None, on_step: Callable[[int, int], None] | None = None,
                 on_frame: Callable[[int, "int | None"], None] | None = None,
                 on_progress: Callable[[int, int], None] | None = None,
                 cancel: Callable[[], bool] | None = None, stats: SamplingStats | None = None) -> Iterator[torch.Tensor]:
    """Animate clip by clip, yielding the new frames of each clip as soon as they are decoded.

    Args:
        model: from ``load_mimaface`` (video mode for several frames, image mode for one) with a VAE.
        source_image: the portrait (PIL, (H, W, C) uint8 or [0, 1] float array), or a
            ``SourceFace`` already encoded with ``encode_source``.
        driving: one driving image, or the driving frames (an iterable, a sequence, or a function
            returning a fresh iterator), or a :class:`MotionSequence`.
        options: see :class:`AnimateOptions`.
        fps: the driver's frame rate, kept in the motion sequence.
        on_step: denoising progress across all clips, ``on_step(done, total)``.
        on_frame: motion-extraction progress, ``on_frame(done, total or None)``.
        on_progress: progress of the animation over every denoising step and every frame
            conditioned or decoded (``sampling.animation``).
        cancel: returns True to stop; checked before every extracted frame, every denoising step
            and every frame conditioned or decoded.

    Yields:
        (k, 512, 512, 3) float32 frames in [0, 1] on the CPU, one per driving frame in order.

    Raises:
        FaceNotFoundError: no face in the source or in the whole driver. SamplingCancelled:
        ``cancel`` fired. WeightFileError: no VAE loaded. ValueError: bad options.
    """
    vae = model.require_vae()
    detector = make_detector(options.detector, device=model.device, models_dir=options.models_dir)
    source = source_image if isinstance(source_image, SourceFace) else \
        encode_source(source_image, detector, model.d3dfr, model.identity_encoder, options.face)
    def frame_done(done, total):
        if on_frame is not None:
            on_frame(done, total)
        if cancel is not None and cancel():
            raise SamplingCancelled(f"motion extraction cancelled after {done} frames.")

    motion = _driving_motion(driving, model, detector, options, fps, frame_done)
    blended = retarget(source.coeffs.cpu(), motion.coeffs, options.pose, options.expression_scale, options.smoothing)
    if any(options.rotation):
        blended = edit_coefficients(blended, *options.rotation)
    if options.gaze:
        blended = with_gaze(blended, gaze_by_method(blended[:, GAZE], **options.gaze))
    appearance = SourceAppearance(appearance_tokens(model.appearance_encoder, source.alignment.crop512),
                                  source.identity)
    video = is_video_unet(model.denoiser)
    if not video and len(motion) != 1:
        raise ValueError(f"the image-mode model animates one driving image, got {len(motion)} frames: "
                         "load the model with mode='video' for a driving video.")
    renders = render_source(model.bfm, blended, motion.m256_inv)
    conditioner = ClipConditioner(model.mim, appearance, blended,
                                  encoded_renders(renders, lambda x: encode_render_images(vae, x)), video)

    def fp32_conditioner():
        vae32 = copy.deepcopy(vae).float()
        return conditioner.in_float32(encoded_renders(renders, lambda x: encode_render_images(vae32, x)))

    for _, _, frames in animate_latents(model.denoiser, conditioner, options.sampling, video=video,
                                        decode=lambda lat: decode_latents(vae, lat), on_step=on_step,
                                        on_progress=on_progress, cancel=cancel,
                                        fp32_unet=float32_copy(model.denoiser), fp32_conditioner=fp32_conditioner,
                                        stats=stats):
        yield frames


def animate(model: MIMAFaceModel, source_image, driving, options: AnimateOptions = AnimateOptions(), **kwargs) -> torch.Tensor:
    """:func:`iter_animate` gathered: (N, 512, 512, 3) float32 frames in [0, 1], one per driving frame."""
    return torch.cat(list(iter_animate(model, source_image, driving, options, **kwargs)))
