"""Motion extraction: source face and driving frames → aligned crops, D3DFR coefficients and
identity features (docs/ALIGNMENT.md §5–§6, docs/WEIGHTS.md §9–§10).

The released driver recipe squashes every frame to 512x512, reuses the 512 box of the first frame
for every frame and fits a 256 matrix per frame on the crop ("first_frame" box mode). Beyond the
release: a "tracked" box mode (a box per frame, smoothed over time), the default "auto" mode (the
released box while the face stays detectable in it on every frame, else tracked boxes, logged), a
choice of face, and frames without a face filled from their neighbours and counted instead of
failing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import FaceNotFoundError
from ..face.align import (
    LARGEST,
    Alignment,
    align_crop,
    align_driver_image,
    align_source,
    choose_face,
    warp_crop_512,
)
from ..face.crops import box_crop_matrix, invert_affine
from ..face.detection import FaceDetector
from ..media.images import squash_to_512, to_rgb_uint8, to_signed_tensor
from ..media.warp import warp_affine
from ..networks.identity_encoder import identity_input
from .sequence import MotionSequence
from .smoothing import fill_missing, smooth

log = logging.getLogger(__name__)

#: "auto" (the default): "first_frame" when its box keeps a face on every frame, else "tracked".
BOX_MODES = ("auto", "first_frame", "tracked")
DEFAULT_BOX_MODE = "auto"
#: ``info["box_mode"]`` of :func:`extract_crops_motion`: every frame is its own 512 crop (no box).
AS_IS_512 = "as_is_512"
Progress = Callable[[int, "int | None"], None]


def regress_coefficients(d3dfr: torch.nn.Module, crops512: torch.Tensor, m256: torch.Tensor) -> torch.Tensor:
    """D3DFR on the 256 crops of 512 crops (docs/ALIGNMENT.md §4.3, docs/WEIGHTS.md §9).

    Args:
        crops512: (B, 3, 512, 512) float in [-1, 1]. m256: (B, 2, 3) 512 → 256 matrices.

    Returns:
        (B, 261) float32 coefficients on the regressor's device.
    """
    param = next(d3dfr.parameters())
    x = warp_affine(crops512.to(param.device, torch.float32), m256.to(param.device), (256, 256))
    with torch.inference_mode():
        return d3dfr(x).float()


@dataclass
class SourceFace:
    """The source portrait, aligned and encoded once (docs/ALIGNMENT.md §5, §6.1).

    Attributes:
        alignment: boxes, matrices and the uint8 512 crop.
        image512: (1, 3, 512, 512) float32 [-1, 1] crop (``src512``).
        coeffs: (1, 261) float32 D3DFR coefficients.
        identity: (1, 25088) float32 CurricularFace deep features (docs/ALIGNMENT.md §5).
        frame_size: (width, height) of the photo in pixels.
    """

    alignment: Alignment
    image512: torch.Tensor
    coeffs: torch.Tensor
    identity: torch.Tensor
    frame_size: tuple[int, int] = (512, 512)

    def motion(self, detector: str = "") -> MotionSequence:
        """The source as a 1-frame motion (its coefficients and crop matrices, on the photo's own
        pixels), as Extract 3DMM Motion gives for a source photo."""
        a = self.alignment
        return MotionSequence(self.coeffs.detach().float().cpu(), a.m512[None], a.m256[None], a.m256_inv[None],
                              np.array([a.score], np.float32), np.zeros(1, bool), self.frame_size, None,
                              {"detector": detector, "box_mode": "image", "face": "source"}, "original")


def source_identity(identity_encoder: torch.nn.Module, src512: torch.Tensor, m256) -> torch.Tensor:
    """CurricularFace deep features of a source crop through the released chain (docs/ALIGNMENT.md §5).

    Args:
        src512: (1, 3, 512, 512) float in [-1, 1]. m256: (2, 3) or (1, 2, 3) 512 → 256 matrix
            (numpy or tensor).

    Returns:
        (1, 25088) float32 on the encoder's device.
    """
    param = next(identity_encoder.parameters())
    m256 = torch.as_tensor(np.asarray(m256), dtype=torch.float32).reshape(1, 2, 3)
    with torch.inference_mode():
        return identity_encoder.deep_features(identity_input(src512.to(param.device), m256.to(param.device))).float()


def encode_source(image, detector: FaceDetector, d3dfr: torch.nn.Module, identity_encoder: torch.nn.Module,
                  face: int | str = LARGEST, what: str = "source image") -> SourceFace:
    """Align the source photo and compute its coefficients and identity feature.

    Args:
        image: the photo at its original size (PIL image, (H, W, C) uint8 or [0, 1] float array).
        face: "largest" or a face index (largest first).
        what: the input's name for error messages (the CLI passes ``--source <its path>``).

    Raises:
        FaceNotFoundError: no face in the source image (the message names it).
        ValueError: the image has an unusable shape.
    """
    rgb = to_rgb_uint8(image, what)
    aligned = align_source(detector, rgb, face, what)
    src512 = to_signed_tensor(aligned.crop512)
    m256 = torch.from_numpy(aligned.m256).float()[None]
    coeffs = regress_coefficients(d3dfr, src512, m256)
    return SourceFace(aligned, src512, coeffs, source_identity(identity_encoder, src512, aligned.m256),
                      (rgb.shape[1], rgb.shape[0]))


def _frame_iter(frames, twice: bool) -> Iterable:
    if callable(frames):
        return frames()
    if twice and not (hasattr(frames, "__len__") and hasattr(frames, "__getitem__")):
        raise ValueError("the tracked box mode reads the driving frames twice: pass a list/array/tensor "
                         "of frames or a function returning a fresh iterator.")
    return frames


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = w * h
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def _tracked_boxes(frames, detector: FaceDetector, face, smoothing: int) -> np.ndarray:
    """Pass 1 of the tracked mode: a box per frame (the chosen face, then the best IoU match with
    the previous box), missing boxes filled, centre and side smoothed. (N, 4)."""
    boxes, found, prev = [], [], None
    for i, frame in enumerate(_frame_iter(frames, True)):
        dets = detector.detect(squash_to_512(to_rgb_uint8(frame, f"driving frame {i}")))
        k = None
        if len(dets):
            if prev is None:
                k = choose_face(dets, face)
            else:
                iou = _iou(prev, dets.boxes)
                k = int(np.argmax(iou)) if iou.max() > 0.1 else None
        boxes.append(dets.boxes[k] if k is not None else np.zeros(4))
        found.append(k is not None)
        prev = dets.boxes[k] if k is not None else prev
    found = np.array(found, bool)
    if not found.any():
        raise FaceNotFoundError(f"driving video: no face found in any of its {len(found)} frames.")
    b = fill_missing(np.array(boxes), ~found)
    centre, size = (b[:, :2] + b[:, 2:]) / 2, (b[:, 2:] - b[:, :2]).max(1, keepdims=True)
    centre, size = smooth(centre, smoothing), smooth(size, smoothing)
    return np.concatenate([centre - size / 2, centre + size / 2], 1)


class _FaceLeftBox(Exception):
    """Auto mode: a frame has no face on the first frame's box (its index in ``args[0]``)."""


class _Recorded:
    """A one-shot iterable read once, keeping what was read so it can be read again (auto mode's
    fallback to tracked boxes on an iterator: the frames are then held in memory)."""

    def __init__(self, frames):
        self.iterator, self.seen = iter(frames), []

    def __iter__(self):
        for frame in self.iterator:
            self.seen.append(frame)
            yield frame

    def replay(self) -> list:
        self.seen.extend(self.iterator)
        return self.seen


def extract_motion(frames, detector: FaceDetector, d3dfr: torch.nn.Module, *, box_mode: str = DEFAULT_BOX_MODE,
                   face: int | str = LARGEST, box_smoothing: int = 9, fps: float | None = None,
                   batch_size: int = 8, progress: Progress | None = None,
                   on_crop: Callable[[int, np.ndarray], None] | None = None) -> MotionSequence:
    """Per-frame coefficients and matrices of driving frames, one frame at a time.

    Args:
        frames: the driving frames, each (H, W, C) uint8 or [0, 1] float (or PIL), all the same
            size: a sequence or a function returning a fresh iterator (read again by the tracked
            modes), or a one-shot iterable (``"first_frame"``; with ``"auto"`` it is held in memory
            if the fallback needs it again; ``"tracked"`` refuses it).
        box_mode: ``"auto"`` (default): the released ``"first_frame"`` box when the face stays
            detectable in it on every frame, else ``"tracked"``; the choice and its reason are
            logged and stored in ``info["box_mode"]`` / ``info["box_mode_reason"]``. The decision
            is made on the first frame whose crop has no face: from there the frames are read
            again with tracked boxes (``progress`` keeps counting up: the frames read again are
            added to its total, so a host's bar never goes back).
            ``"first_frame"`` (released: the 512 box of the first frame with a face, reused for
            every frame) or ``"tracked"`` (a box per frame, smoothed over ``box_smoothing``
            frames; for heads that move a lot).
        face, box_smoothing, fps, batch_size, progress, on_crop: as :func:`_extract_motion`.

    Returns:
        A :class:`MotionSequence` (see :func:`_extract_motion`).

    Raises:
        FaceNotFoundError: no frame has a face. ValueError: frames of different sizes, an
        unusable image, or an unknown ``box_mode``.
    """
    if box_mode not in BOX_MODES:
        raise ValueError(f"box_mode must be one of {BOX_MODES}, got {box_mode!r}.")
    kwargs = dict(face=face, box_smoothing=box_smoothing, fps=fps, batch_size=batch_size, progress=progress,
                  on_crop=on_crop)
    if box_mode != "auto":
        return _extract_motion(frames, detector, d3dfr, box_mode=box_mode, **kwargs)
    reusable = callable(frames) or (hasattr(frames, "__len__") and hasattr(frames, "__getitem__"))
    recorded = None if reusable else _Recorded(frames)
    first_pass = [0]

    def first_progress(done, total):
        first_pass[0] = done
        progress(done, total)

    def again_progress(done, total):  # counts on from the first pass
        progress(first_pass[0] + done, None if total is None else first_pass[0] + total)

    try:
        seq = _extract_motion(frames if reusable else recorded, detector, d3dfr, box_mode="first_frame",
                              stop_at_missing=True, **{**kwargs, "progress": progress and first_progress})
    except _FaceLeftBox as left:
        reason = (f"frame {left.args[0]} has no face on the first frame's box (the head moves out of it), so "
                  "every frame gets its own tracked box")
        log.info("driving crop auto: tracked boxes: %s.", reason)
        seq = _extract_motion(frames if reusable else recorded.replay(), detector, d3dfr, box_mode="tracked",
                              **{**kwargs, "progress": progress and again_progress})
    else:
        reason = f"the first frame's box keeps a face on all {len(seq)} frames"
        log.info("driving crop auto: the released first-frame box: %s.", reason)
    seq.info["box_mode_requested"] = "auto"
    seq.info["box_mode_reason"] = reason
    return seq


def _extract_motion(frames, detector: FaceDetector, d3dfr: torch.nn.Module, *, box_mode: str = "first_frame",
                   face: int | str = LARGEST, box_smoothing: int = 9, fps: float | None = None,
                   batch_size: int = 8, progress: Progress | None = None,
                   on_crop: Callable[[int, np.ndarray], None] | None = None,
                   stop_at_missing: bool = False) -> MotionSequence:
    """Per-frame coefficients and matrices of driving frames, one frame at a time, in one box mode.

    Args:
        frames: the driving frames, each (H, W, C) uint8 or [0, 1] float (or PIL), all the same
            size: an iterable (read once) or, for ``box_mode="tracked"``, a sequence or a function
            returning a fresh iterator (read twice).
        box_mode: ``"first_frame"`` (released: the 512 box of the first frame with a face, reused
            for every frame) or ``"tracked"`` (a box per frame, smoothed over ``box_smoothing``
            frames; for heads that move a lot).
        face: "largest" (released) or a face index, largest first.
        fps: the driver's frame rate, stored in the result.
        batch_size: frames per D3DFR batch.
        progress: called as ``progress(done, total)`` after each frame (total None when unknown);
            it may raise to cancel.
        on_crop: called with each frame's index and its (512, 512, 3) uint8 crop.
        stop_at_missing: raise :class:`_FaceLeftBox` at the first frame without a face on its
            crop (auto mode's test of the first-frame box).

    Returns:
        A :class:`MotionSequence`; frames without a face on their crop are filled from their
        neighbours, flagged in ``missing`` and counted in ``missing_count``.

    Raises:
        FaceNotFoundError: no frame has a face. ValueError: frames of different sizes, an
        unusable image, or an unknown ``box_mode``.
    """
    if box_mode not in BOX_MODES:
        raise ValueError(f"box_mode must be one of {BOX_MODES}, got {box_mode!r}.")
    total = len(frames) if hasattr(frames, "__len__") else None
    tracked = _tracked_boxes(frames, detector, face, box_smoothing) if box_mode == "tracked" else None
    crop_face = LARGEST if face == LARGEST else 0
    m512s, m256s, scores, coeffs = [], [], [], {}
    batch: list[tuple[int, np.ndarray, np.ndarray]] = []
    waiting: list[np.ndarray] = []  # first_frame mode: frames before the first face
    fixed_m512, frame_size = None, None

    def flush():
        if batch:
            idx, crops, mats = zip(*batch)
            x = torch.cat([to_signed_tensor(c) for c in crops])
            out = regress_coefficients(d3dfr, x, torch.from_numpy(np.stack(mats)).float()).cpu()
            coeffs.update(zip(idx, out))
            batch.clear()

    def process(squashed: np.ndarray, m512: np.ndarray):
        i = len(m512s)
        crop = warp_crop_512(squashed, m512)
        if on_crop is not None:
            on_crop(i, crop)
        _, score, m256, _ = align_crop(detector, crop, crop_face)
        m512s.append(m512)
        m256s.append(m256 if m256 is not None else np.full((2, 3), np.nan))
        scores.append(score)
        if m256 is None and stop_at_missing:
            raise _FaceLeftBox(i)
        if m256 is not None:
            batch.append((i, crop, m256))
            if len(batch) >= batch_size:
                flush()
        if progress is not None:
            progress(i + 1, total)

    for i, frame in enumerate(_frame_iter(frames, box_mode == "tracked")):
        rgb = to_rgb_uint8(frame, f"driving frame {i}")
        if frame_size is None:
            frame_size = (rgb.shape[1], rgb.shape[0])
        elif frame_size != (rgb.shape[1], rgb.shape[0]):
            raise ValueError(f"driving frame {i} is {rgb.shape[1]}x{rgb.shape[0]}, frame 0 is {frame_size[0]}x{frame_size[1]}: "
                             "all driving frames must have the same size.")
        squashed = squash_to_512(rgb)
        if tracked is not None:
            process(squashed, box_crop_matrix(tracked[i]))
            continue
        if fixed_m512 is None:
            dets = detector.detect(squashed)
            k = choose_face(dets, face)
            if k is None:
                waiting.append(squashed)
                continue
            fixed_m512 = box_crop_matrix(dets.boxes[k])
            for early in waiting:
                process(early, fixed_m512)
            waiting.clear()
        process(squashed, fixed_m512)
    flush()
    n = len(m512s) + len(waiting)
    if n == 0:
        raise ValueError("driving frames: no frames were given.")
    if not coeffs:
        raise FaceNotFoundError(f"driving video: no face found in any of its {n} frames. Use footage where "
                                "one face is clearly visible, or the tracked box mode if the head moves a lot.")
    missing = np.array([i not in coeffs for i in range(n)])
    template = next(iter(coeffs.values()))
    c = np.stack([coeffs[i].numpy() if i in coeffs else np.zeros_like(template.numpy()) for i in range(n)])
    m256 = fill_missing(np.stack(m256s), missing)
    return MotionSequence(
        coeffs=torch.from_numpy(fill_missing(c, missing)).float(),
        m512=np.stack(m512s), m256=m256, m256_inv=np.stack([invert_affine(m) for m in m256]),
        scores=np.array(scores, np.float32), missing=missing, frame_size=frame_size, fps=fps,
        info={"detector": detector.name, "box_mode": box_mode, "face": face, "box_smoothing": box_smoothing,
              "missing_count": int(missing.sum())})


def extract_image_motion(image, detector: FaceDetector, d3dfr: torch.nn.Module, face: int | str = LARGEST,
                         on_crop: Callable[[int, np.ndarray], None] | None = None, as_crop: bool | None = None,
                         what: str = "driving image") -> MotionSequence:
    """Motion of one image. Returns a 1-frame :class:`MotionSequence`.

    Args:
        as_crop: True: the image is already a 512x512 face crop framed like the box crop and is
            used as is (the release's image-mode driver, docs/ALIGNMENT.md §6.3); False: detect and box-crop it
            like a source photo (docs/ALIGNMENT.md §6.1); None: True for 512x512 images, else False.
        what: the input's name for error messages.

    Raises:
        FaceNotFoundError: no face in the image. ValueError: ``as_crop=True`` with another size.
    """
    rgb = to_rgb_uint8(image, what)
    if as_crop is None:
        as_crop = rgb.shape[:2] == (512, 512)
    if as_crop and rgb.shape[:2] != (512, 512):
        raise ValueError(f"{what}: 'as is' needs a 512x512 face crop, got {rgb.shape[1]}x{rgb.shape[0]}.")
    aligned = align_driver_image(detector, rgb, face, what) if as_crop else align_source(detector, rgb, face, what)
    if on_crop is not None:
        on_crop(0, aligned.crop512)
    coeffs = regress_coefficients(d3dfr, to_signed_tensor(aligned.crop512), torch.from_numpy(aligned.m256).float()[None])
    return MotionSequence(coeffs.cpu(), aligned.m512[None], aligned.m256[None], aligned.m256_inv[None],
                          np.array([aligned.score], np.float32), np.zeros(1, bool), (rgb.shape[1], rgb.shape[0]),
                          None, {"detector": detector.name, "box_mode": "image", "face": face}, "original")


def extract_crops_motion(frames, detector: FaceDetector, d3dfr: torch.nn.Module, face: int | str = LARGEST,
                         on_crop: Callable[[int, np.ndarray], None] | None = None,
                         progress: Progress | None = None) -> MotionSequence:
    """Motion of a batch of 512x512 face crops used as they are (the release's image-mode driver,
    docs/ALIGNMENT.md §6.3, frame by frame): no box, each frame its own crop, one sequence.

    Args:
        frames: a sequence of (512, 512, 3) images (uint8 or [0, 1] float, or PIL).
        face: "largest" (released) or a face index, largest first.
        on_crop: called with each frame's index and its (512, 512, 3) uint8 crop.
        progress: called as ``progress(done, total)`` after each frame; it may raise to cancel.

    Raises:
        FaceNotFoundError: a frame without a face (the message names it). ValueError: no frames,
        or a frame that is not 512x512.
    """
    if len(frames) == 0:
        raise ValueError("driving crops: no frames were given.")
    parts = []
    for i, frame in enumerate(frames):
        keep = None if on_crop is None else (lambda _, crop, i=i: on_crop(i, crop))
        parts.append(extract_image_motion(frame, detector, d3dfr, face, keep, True, f"frame {i}"))
        if progress is not None:
            progress(i + 1, len(frames))
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
    return MotionSequence(torch.cat([p.coeffs for p in parts]), cat("m512"), cat("m256"), cat("m256_inv"),
                          cat("scores"), cat("missing"), parts[0].frame_size, None,
                          {"detector": detector.name, "box_mode": AS_IS_512, "face": face}, "original")
