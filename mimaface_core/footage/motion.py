"""Motion per footage frame: the footage's own head pose, identity shape and gaze, with the
expression of a performance by region (``--region``).

Regions, on the BFM's 68 landmarks (iBUG-68, as ``morphable.controls``):

- ``face``: the performance's whole expression.
- ``lower_face``: jaw, lips and cheeks (landmarks 2–14 and 48–67, :data:`LOWER_LANDMARKS`) from
  the performance; eyes and brows (17–26, 36–47, :data:`UPPER_LANDMARKS`) stay the footage's.
  With ``J`` the landmark rows of the expression basis (``exBase``, the Jacobian the controls are
  solved from) the expression is ``argmin_e |J_low(e − e_perf)|² + |J_up(e − e_foot)|² +
  λ|e − (e_perf + e_foot)/2|²`` (λ as the controls' ridge), a fixed linear blend
  ``e = W·e_perf + (I − W)·e_foot``; then the named controls are set exactly
  (``ExpressionControls.apply(..., absolute=...)``, whose directions move only their own measure):
  blink_left, blink_right, brow_raise and brow_frown read the footage's values, mouth_open, smile,
  pucker and jaw_left the performance's.

Performances (:func:`performance_expression`): ``audio`` (the audio motion's expression as it is,
resampled to the footage's rate), ``transfer`` (the driver's change since its first frame added to
the footage's first-frame expression: relative to each clip's first frame) and ``footage`` (the
footage's own expression, for keyframe edits). Head pose (angles, translation) and gaze are the
footage's on every frame; identity is the footage's median over the frames with the face.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..morphable.coefficients import ANGLES, EXP, GAZE, ID, TRANSLATION
from ..motion.sequence import MotionSequence

log = logging.getLogger(__name__)

REGIONS = ("lower_face", "face")
PERFORMANCES = ("audio", "transfer", "footage")
UPPER_LANDMARKS = tuple(range(17, 27)) + tuple(range(36, 48))
LOWER_LANDMARKS = tuple(range(2, 15)) + tuple(range(48, 68))
#: Controls kept from the footage / taken from the performance in ``lower_face``.
EYE_BROW_CONTROLS = ("blink_left", "blink_right", "brow_raise", "brow_frown")
MOUTH_CONTROLS = ("mouth_open", "smile", "pucker", "jaw_left")
RIDGE = 1e-3


def region_blend_matrix(bfm) -> torch.Tensor:
    """(64, 64) float64 ``W`` of the lower-face blend (module doc): the expression of
    ``lower_face`` is ``e_perf @ Wᵀ + e_foot @ (I − W)ᵀ``.

    Raises:
        ValueError: the BFM has no 68 keypoints.
    """
    if bfm.keypoints.numel() != 68:
        raise ValueError(f"the BFM has {bfm.keypoints.numel()} keypoints; regions need the 68 landmarks.")
    basis = bfm.exp_base.double().cpu().reshape(-1, 3, bfm.exp_base.shape[1])
    jac = basis[bfm.keypoints.cpu()]  # (68, 3, 64)
    dim = jac.shape[-1]
    low = jac[list(LOWER_LANDMARKS)].reshape(-1, dim)
    up = jac[list(UPPER_LANDMARKS)].reshape(-1, dim)
    lam = RIDGE * float((jac * jac).sum()) / dim
    eye = torch.eye(dim, dtype=torch.float64)
    h = low.T @ low + up.T @ up + lam * eye
    return torch.linalg.solve(h, low.T @ low + lam / 2 * eye)


def region_expression(footage_exp: torch.Tensor, performance_exp: torch.Tensor, region: str, controls,
                      bfm) -> torch.Tensor:
    """(N, 64) expression of ``region`` from the footage's and the performance's (N, 64).

    Raises:
        ValueError: unknown region or different lengths.
    """
    if region not in REGIONS:
        raise ValueError(f"region must be one of {REGIONS}, got {region!r}.")
    if footage_exp.shape != performance_exp.shape:
        raise ValueError(f"footage and performance expressions differ in shape: {tuple(footage_exp.shape)} vs "
                         f"{tuple(performance_exp.shape)}.")
    perf = performance_exp.double().cpu()
    if region == "face":
        return perf.float()
    foot = footage_exp.double().cpu()
    w = region_blend_matrix(bfm)
    exp = perf @ w.T + foot @ (torch.eye(len(w), dtype=torch.float64) - w).T
    full = torch.zeros(len(exp), 261)
    full[:, EXP] = exp.float()
    foot_full, perf_full = torch.zeros_like(full), torch.zeros_like(full)
    foot_full[:, EXP], perf_full[:, EXP] = foot.float(), perf.float()
    keep = {n: v for n, v in controls.read(foot_full).items() if n in EYE_BROW_CONTROLS and n in controls.directions}
    take = {n: v for n, v in controls.read(perf_full).items() if n in MOUTH_CONTROLS and n in controls.directions}
    values = {**keep, **take}
    return controls.apply(full, values, absolute=set(values))[:, EXP]


def performance_expression(kind: str, footage: torch.Tensor, performance: torch.Tensor | None) -> torch.Tensor:
    """(N, 64) performance expression for N output frames.

    Args:
        kind: :data:`PERFORMANCES`.
        footage: (N, 261) the footage's coefficients per output frame.
        performance: (N, 261) the performance's coefficients per output frame (None for "footage").

    Raises:
        ValueError: unknown kind, missing or mis-sized performance.
    """
    if kind not in PERFORMANCES:
        raise ValueError(f"performance must be one of {PERFORMANCES}, got {kind!r}.")
    if kind == "footage":
        return footage[:, EXP].float().clone()
    if performance is None or len(performance) != len(footage):
        raise ValueError(f"the {kind} performance needs {len(footage)} frames of coefficients, got "
                         f"{None if performance is None else len(performance)}.")
    if kind == "audio":
        return performance[:, EXP].float().clone()
    return footage[:1, EXP].float() + performance[:, EXP].float() - performance[:1, EXP].float()


def footage_motion(footage: MotionSequence, order: np.ndarray, performance: torch.Tensor | None, kind: str,
                   region: str, controls, bfm) -> MotionSequence:
    """The motion of every output frame, in the footage's own crops.

    Args:
        footage: the tracked face's motion (``motion.tracks.extract_track_motions``), one row per
            footage frame; frames without the face hold the last pose (``missing``).
        order: (M,) footage frame of each output frame (:func:`.length.frame_order`).
        performance: (M, 261) the performance's coefficients per output frame, or None (kind
            "footage").
        kind: :data:`PERFORMANCES`. region: :data:`REGIONS`.
        controls: ``morphable.controls.controls_for(bfm)``.

    Returns:
        A :class:`MotionSequence` of M frames: angles, translation and gaze of the footage frame,
        identity the footage's median, expression by region; m512/m256 of the footage frame,
        ``missing`` the footage frame's (those frames pass through when composited);
        ``info["footage_frames"]`` the order.
    """
    order = np.asarray(order, np.int64)
    coeffs = footage.coeffs.float()[order].clone()
    exp = region_expression(coeffs[:, EXP], performance_expression(kind, coeffs, performance), region, controls, bfm) \
        if kind != "footage" else coeffs[:, EXP]
    present = ~np.asarray(footage.missing, bool)
    identity = footage.coeffs.float()[torch.from_numpy(np.flatnonzero(present))][:, ID].median(0).values
    coeffs[:, EXP] = exp
    coeffs[:, ID] = identity
    info = {**footage.info, "footage_frames": order.tolist(), "performance": kind, "region": region}
    return MotionSequence(coeffs, footage.m512[order], footage.m256[order], footage.m256_inv[order],
                          footage.scores[order], footage.missing[order], footage.frame_size, footage.fps, info,
                          footage.m512_frame)


def resample(coeffs: torch.Tensor, fps_in: float, fps_out: float, frames: int) -> torch.Tensor:
    """(frames, C) ``coeffs`` (N, C) at ``fps_in`` resampled to ``fps_out`` by linear interpolation
    in time; past the input's end the last frame is held."""
    c = coeffs.float().cpu().numpy()
    t = np.arange(frames) / fps_out
    src = np.arange(len(c)) / fps_in
    return torch.from_numpy(np.stack([np.interp(t, src, c[:, j]) for j in range(c.shape[1])], 1)).float()


__all__ = ["REGIONS", "PERFORMANCES", "footage_motion", "region_expression", "region_blend_matrix",
           "performance_expression", "resample", "ANGLES", "TRANSLATION", "GAZE"]
