"""The main job: a source portrait and a driving video (or image, or motion sequence) in, animated
512x512 frames out, clip by clip (spec §1.3–1.4, §4.2, §6).

Memory and time grow with the number of frames only through the per-frame coefficients and the
output frames: renders, render latents, contexts and latents exist for the current clip only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from .appearance import clip_preprocess
from .denoiser import is_video_unet
from .face.detection import FaceDetector
from .face.detectors import make_detector
from .mia import clip_context
from .morphable.coefficients import ANGLES, EXP, GAMMA, GAZE, TEX, TRANSLATION
from .motion.extract import SourceFace, encode_source, extract_image_motion, extract_motion
from .motion.gaze import adjust_gaze, with_gaze
from .motion.render import render_motion
from .motion.retarget import retarget
from .motion.sequence import MotionSequence
from .sampling import SamplingOptions, sample_image, sample_video
from .vae import VAE_SCALING_FACTOR
from .weights.loader import MIMAFaceModel


@dataclass(frozen=True)
class AnimateOptions:
    """Everything :func:`animate` can change; defaults are the release's.

    Attributes:
        sampling: steps, guidance, scheduler, seed, noise mode, clip length, overlap.
        pose: "absolute" (released) or "relative" (see ``motion.retarget``).
        expression_scale: factor on the driver's expression (1 = released).
        smoothing: Savitzky–Golay window (frames) on the driver's motion (0 = off, released).
        gaze: keyword overrides for ``motion.gaze.adjust_gaze`` (fixed, offset, scale, smoothing).
        box_mode: "first_frame" (released) or "tracked".
        face: "largest" (released) or a face index, for the source and the driver.
        detector: "mtcnn" (released) or "mediapipe" (needs ``models_dir``).
        models_dir: mediapipe's model folder.
    """

    sampling: SamplingOptions = SamplingOptions()
    pose: str = "absolute"
    expression_scale: float = 1.0
    smoothing: int = 0
    gaze: dict = field(default_factory=dict)
    box_mode: str = "first_frame"
    face: int | str = "largest"
    detector: str = "mtcnn"
    models_dir: str | None = None


def appearance_tokens(model: MIMAFaceModel, crop512: np.ndarray) -> torch.Tensor:
    """CLIP tokens of the source's (512, 512, 3) uint8 crop, computed once per source (spec §4.1).
    Returns (1, 257, 1024) in the model's dtype."""
    with torch.inference_mode():
        return model.appearance_encoder(clip_preprocess(crop512))


def mia_context(model: MIMAFaceModel, tokens: torch.Tensor, identity: torch.Tensor, blended: torch.Tensor) -> torch.Tensor:
    """MIA per frame of a clip (spec §4.2): (F, 264, 768) in the model's dtype.

    Args:
        tokens: (1, 257, 1024) CLIP tokens of the source. identity: (1, 25088) source identity.
        blended: (F, 261) blended coefficients of the clip's frames.
    """
    param = next(model.mim.parameters())
    b = blended.to(param.device, param.dtype)
    f = len(b)
    with torch.inference_mode():
        return model.mim(tokens.to(param.device, param.dtype).expand(f, -1, -1),
                         identity.to(param.device, param.dtype).expand(f, -1),
                         b[:, GAZE], b[:, EXP], b[:, TEX], b[:, GAMMA], b[:, ANGLES], b[:, TRANSLATION])


def encode_renders(vae, render512: torch.Tensor) -> torch.Tensor:
    """Render latents: VAE posterior mean × 0.18215 (spec §1.3; the posterior std is negligible).
    (F, 3, 512, 512) in [−1, 1] → (F, 4, 64, 64) float32."""
    param = next(vae.parameters())
    with torch.inference_mode():
        return vae.encode(render512.to(param.device, param.dtype)).latent_dist.mean.float() * VAE_SCALING_FACTOR


def decode_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """Frames from latents (spec §6.5): ``VAE.decode(latents / 0.18215)`` clamped, as (F, 512, 512, 3)
    float32 in [0, 1] on the CPU (ComfyUI's IMAGE layout)."""
    param = next(vae.parameters())
    with torch.inference_mode():
        x = vae.decode(latents.to(param.device, param.dtype) / VAE_SCALING_FACTOR).sample.float().clamp(-1, 1)
    return ((x + 1) / 2).permute(0, 2, 3, 1).cpu()


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """[0, 1] frames → uint8 with the release's truncation ``uint8(255·x)`` (spec §1.5)."""
    return (frames.clamp(0, 1) * 255).to(torch.uint8).numpy()


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
                 cancel: Callable[[], bool] | None = None) -> Iterator[torch.Tensor]:
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
        cancel: returns True to stop; checked at every denoising step.

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
    motion = _driving_motion(driving, model, detector, options, fps, on_frame)
    blended = retarget(source.coeffs.cpu(), motion.coeffs, options.pose, options.expression_scale, options.smoothing)
    if options.gaze:
        blended = with_gaze(blended, adjust_gaze(blended[:, GAZE], **options.gaze))
    tokens = appearance_tokens(model, source.alignment.crop512)
    video = is_video_unet(model.denoiser)
    if not video:
        if len(motion) != 1:
            raise ValueError(f"the image-mode model animates one driving image, got {len(motion)} frames: "
                             "load the model with mode='video' for a driving video.")
        render, _ = render_motion(model.bfm, blended, motion.m256_inv)
        context = mia_context(model, tokens, source.identity, blended)
        latents = sample_image(model.denoiser, encode_renders(vae, render), context, options.sampling, on_step, cancel)
        yield decode_latents(vae, latents)
        return

    def clip_inputs(clip):
        index = list(clip.frames)
        render, _ = render_motion(model.bfm, blended[index], motion.m256_inv[index])
        context = clip_context(mia_context(model, tokens, source.identity, blended[index]))
        return encode_renders(vae, render), context

    for clip, latents in sample_video(model.denoiser, len(motion), clip_inputs, options.sampling, on_step, cancel):
        yield decode_latents(vae, latents[list(clip.keep)])


def animate(model: MIMAFaceModel, source_image, driving, options: AnimateOptions = AnimateOptions(), **kwargs) -> torch.Tensor:
    """:func:`iter_animate` gathered: (N, 512, 512, 3) float32 frames in [0, 1], one per driving frame."""
    return torch.cat(list(iter_animate(model, source_image, driving, options, **kwargs)))
