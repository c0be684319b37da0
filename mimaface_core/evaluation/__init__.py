"""The paper's evaluation metrics (MIMAFace §4, Table 1) between a generated clip, its driving clip
and the source photo: PSNR, SSIM, LPIPS, Exp, Pose, Gaze, CSIM, LMD, FID, and a seam score at the
clip boundaries of the ICA sampler. One module per metric family; :func:`evaluate_frames` runs them.

Attributes are resolved lazily (PEP 562) so importing the package loads no metric library.
"""

from __future__ import annotations

from .._lazy import lazy_getattr

_EXPORTS = {
    "EvaluationOptions": ".evaluate", "evaluate_frames": ".evaluate", "frames_from_path": ".frames",
    "EvaluationResult": ".report", "MetricResult": ".report",
    "Estimators": ".face_measures", "load_estimators": ".face_measures", "measure_face": ".face_measures",
    "seam_frames": ".seams", "seam_scores": ".seams",
}

__getattr__ = lazy_getattr(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
