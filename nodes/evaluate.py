"""Evaluate Animation: the paper's Table 1 metrics of a generated clip inside the graph."""

from __future__ import annotations

from contextlib import nullcontext

from . import _comfy
from .images import frames_of, to_image
from .model_groups import NetworkHandle
from .types import CATEGORY, MODEL

_METRICS: dict = {}


def _metrics(options) -> NetworkHandle | None:
    """The LPIPS/FID networks the options ask for, built once per choice and kept as the "metrics"
    group (None when none is asked for or none can run here)."""
    from mimaface_core.evaluation.evaluate import metric_networks

    key = (options.same_identity and options.lpips, options.fid)
    if key not in _METRICS:
        _METRICS.clear()
        networks = metric_networks(options)
        _METRICS[key] = NetworkHandle("metrics", networks) if networks else None
    return _METRICS[key]


class EvaluateAnimation:
    """PSNR, SSIM, LPIPS, Exp, Pose, Gaze, CSIM, LMD and FID of generated frames against their
    driving frames (and the source photo), with the per-frame curves as an image."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("STRING", "IMAGE")
    RETURN_NAMES = ("summary", "curves")
    OUTPUT_TOOLTIPS = ("The metrics table (also shown on the node).",
                       "Per-frame Exp, Pose and Gaze errors and CSIM; dashed lines at clip seams.")
    OUTPUT_NODE = True
    FUNCTION = "evaluate"
    DESCRIPTION = ("Measures a generated clip the way the MIMAFace paper does (Table 1): expression, pose and gaze "
                   "errors against the driving frames (D3DFR), identity similarity to the source (CSIM, "
                   "CurricularFace), landmark distance, FID, and for same-identity tests PSNR, SSIM and LPIPS. "
                   "Compare settings side by side by evaluating two samplers' outputs.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (MODEL, {"tooltip": "From Load MIMAFace Model: its D3DFR and CurricularFace measure the faces."}),
            "generated": ("IMAGE", {"tooltip": "The generated frames (VAE Decode of the sampler, or the pasted-back frames)."}),
            "driving": ("IMAGE", {"tooltip": "The driving frames the animation used, frame for frame."}),
            "same_identity": ("BOOLEAN", {"default": False, "tooltip": "On when the source is the driving person "
                              "(reconstruction): also PSNR, SSIM and LPIPS."}),
            "clip_length": ("INT", {"default": 0, "min": 0, "max": 32, "tooltip": "The sampler's clip length, for "
                            "seam scores at clip boundaries (0 = none)."}),
            "overlap": ("INT", {"default": 3, "min": 0, "max": 31, "tooltip": "The sampler's overlap (with clip_length)."}),
            "lpips": ("BOOLEAN", {"default": True, "tooltip": "LPIPS (needs AlexNet's weights in torch's hub folder; "
                      "skipped with a message when absent)."}),
            "fid": ("BOOLEAN", {"default": True, "tooltip": "FID (needs torch-fidelity and its Inception weights; "
                    "skipped with a message when absent)."}),
        }, "optional": {
            "source": ("IMAGE", {"tooltip": "The source photo, for CSIM (identity similarity)."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, clip_length, overlap):
        if clip_length and overlap >= clip_length:
            return f"overlap ({overlap}) must be smaller than clip_length ({clip_length})."
        return True

    def evaluate(self, model, generated, driving, same_identity, clip_length, overlap, lpips, fid, source=None):
        from mimaface_core.evaluation.evaluate import EvaluationOptions, evaluate_frames
        from mimaface_core.evaluation.face_measures import Estimators

        gen, drv = frames_of(generated, "generated"), frames_of(driving, "driving")
        if len(gen) != len(drv):
            raise ValueError(f"generated has {len(gen)} frames and driving {len(drv)}: connect the driving frames the "
                             "animation used (same frame count).")
        src = frames_of(source, "source")[0] if source is not None else None
        options = EvaluationOptions(same_identity=same_identity, clip_length=clip_length or None,
                                    overlap=overlap if clip_length else None, lpips=lpips, fid=fid,
                                    require_face=False)
        progress = _comfy.Progress(len(gen))
        metrics = _metrics(options)
        with model.use("face") as m, (metrics.use("metrics") if metrics else nullcontext()) as n:
            estimators = Estimators(m.detector, m.d3dfr, m.identity_encoder, model.compute)
            result = evaluate_frames(lambda: iter(gen), lambda: iter(drv), estimators, src, options,
                                     num_frames=len(gen), progress=progress, metrics=n.metrics if n else None)
        summary = result.table()
        return {"ui": {"text": [summary]}, "result": (summary, to_image([result.plot()]))}
