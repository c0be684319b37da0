"""The evaluation loop: generated and driving frames in lockstep, one frame of each in memory at a
time, every metric of :mod:`.report` accumulated (MIMAFace §4.1, Table 1).

Frame of reference: both clips are compared on 512 face crops framed like the driving video's
released crop (docs/ALIGNMENT.md §6.2: squash to 512x512, the detector box of the first frame with a
face, the 512 box crop). A 512x512 clip is taken as such a crop already (the animate output, the
release's image mode); a generated clip with the driving video's size (a paste-back output) is
cropped with the driving video's box, so both sides share one crop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import FaceNotFoundError, MIMAFaceError
from ..face.align import LARGEST, align_source, choose_face, warp_crop_512
from ..face.crops import CROP_512, box_crop_matrix
from ..media.images import squash_to_512, to_rgb_uint8
from ..morphable.coefficients import ANGLES, EXP, GAZE, TRANSLATION
from .face_measures import Estimators, FaceMeasure, landmarks_in_box, measure_face
from .report import LABELS, METRICS, EvaluationResult, MetricResult
from .seams import seam_frames, seam_level_ratio, seam_score

#: With ``require_face``, a generated clip whose first this many frames have no face is refused
#: there, before the rest is measured.
EARLY_FACE_FRAMES = 5
Frames = Callable[[], Iterable]
Progress = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class EvaluationOptions:
    """What to compute.

    Attributes:
        same_identity: the source is a frame of the driving person (reconstruction): PSNR, SSIM
            and LPIPS are computed (Table 1 reports them for same-identity only).
        clip_length, overlap: the sampler's clip plan, for the seam scores (None = no seams).
        face: which face on each crop ("largest", as released, or an index).
        lpips, fid: compute them when their library and weights are here (else skipped with the
            reason); False skips them on purpose.
        fid_feature: a feature module for FID instead of the standard Inception-v3 (tests).
        require_face: no face in any generated frame is an error (the CLI); False reports it in
            the face metrics' skip reasons instead (the node: a failed animation must not stop
            the rest of a ComfyUI graph).
    """

    same_identity: bool = False
    clip_length: int | None = None
    overlap: int | None = None
    face: int | str = LARGEST
    lpips: bool = True
    fid: bool = True
    fid_feature: torch.nn.Module | None = None
    require_face: bool = True


def _unit(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255


class _Cropper:
    """Brings one clip's frames to the shared 512 crop."""

    def __init__(self, what: str, m512: np.ndarray | None, size: tuple[int, int] | None):
        self.what, self.m512, self.size = what, m512, size

    def __call__(self, rgb: np.ndarray, i: int) -> np.ndarray:
        if rgb.shape[:2] == (CROP_512, CROP_512):
            return rgb
        if self.m512 is None or (rgb.shape[1], rgb.shape[0]) != self.size:
            want = "512x512 crops" + (f" or {self.size[0]}x{self.size[1]} frames like the driving video" if self.size else "")
            raise MIMAFaceError(f"{self.what} frame {i} is {rgb.shape[1]}x{rgb.shape[0]}: expected {want} "
                                "(the animate output, or its paste-back onto the driving video).")
        return warp_crop_512(squash_to_512(rgb), self.m512)


def driving_box(frames: Frames, detector, face: int | str = LARGEST, what: str = "driving") -> tuple:
    """(m512, frame size) of the released driver crop: the box of the first frame with a face,
    on the frame squashed to 512x512; (None, None) for a clip of 512x512 crops.

    Raises:
        FaceNotFoundError: no frame has a face (the message names ``what``).
    """
    n = 0
    for n, frame in enumerate(frames(), 1):
        rgb = to_rgb_uint8(frame, f"{what} frame {n - 1}")
        if rgb.shape[:2] == (CROP_512, CROP_512):
            return None, None
        dets = detector.detect(squash_to_512(rgb))
        k = choose_face(dets, face)
        if k is not None:
            return box_crop_matrix(dets.boxes[k]), (rgb.shape[1], rgb.shape[0])
    raise FaceNotFoundError(f"{what}: no face found in any of its {n} frames; evaluate clips in which a face is visible.")


def _lockstep(generated: Iterable, driving: Iterable) -> Iterator[tuple[int, object, object]]:
    gi, di = iter(generated), iter(driving)
    i = 0
    while True:
        g, d = next(gi, None), next(di, None)
        if g is None and d is None:
            return
        if g is None or d is None:
            longer = "driving" if g is None else "generated"
            rest = sum(1 for _ in (di if g is None else gi)) + 1
            n_g, n_d = (i, i + rest) if g is None else (i + rest, i)
            raise MIMAFaceError(f"the generated clip has {n_g} frames and the driving clip {n_d}: they must match "
                                f"frame for frame (the {longer} one is longer; pick the driving frames the "
                                "animation used, e.g. the same --stride and --limit).")
        yield i, g, d
        i += 1


def _distance(a: np.ndarray, b: np.ndarray, part) -> float:
    return float(np.linalg.norm(np.asarray(a)[part].astype(np.float64) - np.asarray(b)[part].astype(np.float64)))


def _landmark_distance(detector, g: np.ndarray, d: np.ndarray, mg: FaceMeasure, md: FaceMeasure) -> float:
    """LMD of one frame: mean distance of the five landmarks, both crops measured in the driving
    crop's face box (:func:`.face_measures.landmarks_in_box`), else the detected landmarks."""
    lg = landmarks_in_box(detector, g, md.box)
    if lg is not None:
        return float(np.linalg.norm(lg - landmarks_in_box(detector, d, md.box), axis=1).mean())
    return float(np.linalg.norm(mg.landmarks - md.landmarks, axis=1).mean())


def _pose(c: np.ndarray) -> np.ndarray:
    return np.concatenate([c[ANGLES], c[TRANSLATION]])


def source_measure(source, estimators: Estimators, face: int | str = LARGEST, what: str = "source") -> FaceMeasure:
    """The source photo aligned by the source recipe (docs/ALIGNMENT.md §6.1) and measured.

    Raises:
        FaceNotFoundError: no face in the source (the message names ``what``).
    """
    aligned = align_source(estimators.detector, to_rgb_uint8(source, what), face, what)
    measure = measure_face(aligned.crop512, estimators)
    if not measure.found:
        raise FaceNotFoundError(f"{what}: no face found on its 512 crop.")
    return measure


def metric_networks(options: EvaluationOptions) -> dict[str, torch.nn.Module]:
    """The LPIPS and FID modules that ``options`` ask for and this machine can run, on the CPU
    ("lpips", "fid" → module; those that cannot run are left out and :func:`evaluate_frames`
    reports why), for a caller that keeps them between runs (``evaluate_frames(metrics=...)``)."""
    from .distribution import fid_network, fid_unavailable
    from .pixel_metrics import lpips_network, lpips_unavailable

    out = {}
    if options.same_identity and options.lpips and lpips_unavailable() is None:
        out["lpips"] = lpips_network()
    if options.fid and (options.fid_feature is not None or fid_unavailable() is None):
        out["fid"] = fid_network(options.fid_feature)
    return out


def evaluate_frames(generated: Frames, driving: Frames, estimators: Estimators, source=None,
                    options: EvaluationOptions = EvaluationOptions(), *, num_frames: int | None = None,
                    progress: Progress | None = None,
                    on_crops: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
                    metrics: dict | None = None, source_what: str = "source") -> EvaluationResult:
    """Every metric between a generated clip and its driving clip (and the source photo).

    Args:
        generated, driving: functions returning a fresh iterator of frames, each (H, W, 3) uint8
            RGB or [0, 1] float (or PIL); the driving clip is read twice (its crop box first).
            Frame t of one is compared with frame t of the other.
        estimators: from :func:`.face_measures.load_estimators` (or a loaded model's networks).
        source: the source photo (PIL, array) for CSIM; None skips CSIM.
        options: :class:`EvaluationOptions`.
        num_frames: the expected count, for the progress total.
        progress: called as ``progress(done, total)`` after each frame; may raise to cancel.
        on_crops: called with each frame's index and its generated and driving (512, 512, 3) uint8
            crops (e.g. to pool FID over many clips, as the benchmark protocol does).
        metrics: the LPIPS/FID modules of :func:`metric_networks`, built once and kept by the
            caller (e.g. under ComfyUI's model manager); None: built here when needed.
        source_what: the source's name for error messages (the CLI passes ``--source <its path>``).

    Returns:
        An :class:`EvaluationResult`: per-frame PSNR, SSIM, LPIPS (same-identity), Exp, Pose, Gaze,
        CSIM, LMD and the frame difference; FID over both sets; seam scores when the clip plan is
        given. Frames where either crop has no face have None for the face metrics (the driving
        crop is measured only where the generated one has a face).

    Raises:
        MIMAFaceError: the clips differ in frame count, or a frame has a size that is neither a
            512 crop nor the driving video's. FaceNotFoundError: no face in the source, in any
            driving frame, or (with ``options.require_face``) in any generated frame.
    """
    names = [n for n, *_ in METRICS]
    results = {n: MetricResult(n) for n in names}
    same = options.same_identity
    for n in ("psnr", "ssim", "lpips"):
        if not same:
            results[n].skipped = (f"{n.upper()} skipped: cross-identity (Table 1 reports it for same-identity "
                                  "reconstruction only; pass --same-identity when the source is the driving person).")
    lpips = fid = None
    if same and options.lpips:
        from .pixel_metrics import LPIPS, lpips_unavailable

        reason = None if "lpips" in (metrics or {}) else lpips_unavailable()
        if reason:
            results["lpips"].skipped = reason
        else:
            lpips = LPIPS(estimators.device, (metrics or {}).get("lpips"))
    elif same:
        results["lpips"].skipped = "LPIPS skipped on request."
    if options.fid:
        from .distribution import FIDAccumulator, fid_unavailable

        reason = None if options.fid_feature is not None or "fid" in (metrics or {}) else fid_unavailable()
        if reason:
            results["fid"].skipped = reason
        else:
            fid = FIDAccumulator(options.fid_feature, estimators.device, (metrics or {}).get("fid"))
    else:
        results["fid"].skipped = "FID skipped on request."
    src = None
    if source is not None:
        src = source_measure(source, estimators, options.face, source_what)
    else:
        results["csim"].skipped = "CSIM skipped: no source photo given."

    m512, size = driving_box(driving, estimators.detector, options.face)
    crop_d = _Cropper("driving", m512, size)
    crop_g = _Cropper("generated", m512, size)
    from .pixel_metrics import psnr, ssim

    missing_g, missing_d, previous, count = [], [], None, 0
    for i, g_frame, d_frame in _lockstep(generated(), driving()):
        g = crop_g(to_rgb_uint8(g_frame, f"generated frame {i}"), i)
        d = crop_d(to_rgb_uint8(d_frame, f"driving frame {i}"), i)
        if on_crops is not None:
            on_crops(i, g, d)
        gu, du = _unit(g), _unit(d)
        if same:
            results["psnr"].per_frame.append(psnr(gu, du))
            results["ssim"].per_frame.append(ssim(gu, du))
            if lpips is not None:
                results["lpips"].per_frame.append(lpips(gu, du))
        results["frame_difference"].per_frame.append(None if previous is None else float((gu - previous).abs().mean()))
        previous = gu
        if fid is not None:
            fid.add(gu, real=False)
            fid.add(du, real=True)
        mg = measure_face(g, estimators, options.face, identity=src is not None)
        # the driving face is measured only where the generated one exists: every metric that
        # uses it compares the two (a failed animation costs half the time)
        md = measure_face(d, estimators, options.face, identity=False) if mg.found else FaceMeasure(False)
        if not mg.found:
            missing_g.append(i)
        elif not md.found:
            missing_d.append(i)
        both = mg.found and md.found
        results["exp"].per_frame.append(_distance(mg.coeffs, md.coeffs, EXP) if both else None)
        results["pose"].per_frame.append(_distance(_pose(mg.coeffs), _pose(md.coeffs), slice(None)) if both else None)
        results["gaze"].per_frame.append(_distance(mg.coeffs, md.coeffs, GAZE) if both else None)
        results["lmd"].per_frame.append(_landmark_distance(estimators.detector, g, d, mg, md) if both else None)
        if src is not None:
            results["csim"].per_frame.append(float(np.dot(mg.embedding, src.embedding)) if mg.found else None)
        count = i + 1
        if options.require_face and count == EARLY_FACE_FRAMES and len(missing_g) == count:
            raise FaceNotFoundError(f"generated: no face found in its first {count} frames (on the shared 512 "
                                    "crop); check that the generated clip belongs to this driving clip (stopped "
                                    "before measuring the rest).")
        if progress is not None:
            progress(count, num_frames)
    if count == 0:
        raise MIMAFaceError("the generated and driving clips have no frames.")
    if len(missing_g) == count:
        message = (f"generated: no face found in any of its {count} frames (on the shared 512 crop); "
                   "check that the generated clip belongs to this driving clip.")
        if options.require_face:
            raise FaceNotFoundError(message)
        for name in ("exp", "pose", "gaze", "lmd", "csim"):
            if not results[name].skipped:
                results[name].skipped = f"{LABELS[name]} not measured: {message}"
    if fid is not None:
        if count < 2:
            results["fid"].skipped = "FID skipped: it needs at least 2 frames."
        else:
            results["fid"].value = fid.value()
    seams = []
    if options.clip_length is not None:
        seams = seam_frames(count, options.clip_length, options.overlap or 0)
        for name, m in results.items():
            if m.skipped or not m.per_frame:
                continue
            values = [np.nan if v is None else v for v in m.per_frame]
            m.seam = seam_level_ratio(values, seams) if name == "frame_difference" else seam_score(values, seams)
    return EvaluationResult(results, count, seams, same, missing_g, missing_d)
