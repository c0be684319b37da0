"""Speech → SadTalker's 70 coefficients per frame: expression (64), angles (3, radians, pitch/yaw/
roll) and translation (3). The assembly of ``Audio2Coeff.generate`` (SadTalker
``src/test_audio2coeff.py``) plus ``get_data``'s inputs (``src/generate_batch.py``):

* expression: Audio2Exp per frame from the frame's mel window, the reference expression (the
  source's, or a reference video's when blinks come from it) and the blink ratio;
* pose: Audio2Pose window by window, added to the reference pose, then smoothed over time by
  ``scipy.signal.savgol_filter`` (window 13, order 2; ``int((T − 1)/2)·2 + 1`` below 13 frames);
* ``using_refpose``: the motion of a reference pose sequence relative to its first frame added on
  top (tiled when shorter than the audio).

Beyond SadTalker: a "still" pose (the source's own on every frame), a "reference_only" pose (the
source's pose plus the reference's motion, no audio pose) and an expression scale.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..errors import SamplingCancelled
from .audio2exp import EXP_DIM, Audio2ExpNet
from .audio2pose import LATENT, POSE_DIM, Audio2PoseNet, iter_pose_motion, pose_windows
from .mel import mel_windows

#: Head-pose sources and blink sources of audio driving (see ``motion.AudioMotionOptions``).
POSE_MODES = ("audio", "still", "reference", "reference_only")
BLINK_MODES = ("random", "none", "reference")
#: Columns of SadTalker's 70-coefficient layout.
SADTALKER_EXP = slice(0, 64)
SADTALKER_ANGLES = slice(64, 67)
SADTALKER_TRANSLATION = slice(67, 70)
SADTALKER_POSE = slice(64, 70)
NUM_SADTALKER_COEFFS = 70

Progress = Callable[[int, int], None]


def seeded_latents(seed: int) -> Callable[[int], torch.Tensor]:
    """Window latents from a CPU generator seeded with ``seed``: window k gets the k-th
    ``torch.randn(1, 64)`` draw, exactly the official draws after ``torch.manual_seed(seed)``.
    Windows must be asked for in order (0, 1, 2, ...)."""
    g = torch.Generator("cpu").manual_seed(int(seed))
    drawn: list[torch.Tensor] = []

    def latent(k: int) -> torch.Tensor:
        while len(drawn) <= k:
            drawn.append(torch.randn(1, LATENT, generator=g))
        return drawn[k]

    return latent


def stored_latents(z: torch.Tensor) -> Callable[[int], torch.Tensor]:
    """Window latents from a (n_windows, 64) tensor (e.g. recorded official draws)."""
    return lambda k: z[k].reshape(1, LATENT)


def _tick(progress: Progress | None, cancel: Callable[[], bool] | None, done: int, total: int) -> None:
    if cancel is not None and cancel():
        raise SamplingCancelled("audio to coefficients cancelled.")
    if progress is not None:
        progress(done, total)


def predict_expression(net: Audio2ExpNet, mel: np.ndarray, num_frames: int, ref_exp: np.ndarray, ratio: np.ndarray,
                       *, chunk: int = 250, embeddings: list | None = None,
                       on_chunk: Callable[[int], None] | None = None) -> np.ndarray:
    """Audio2Exp over all frames, ``chunk`` frames at a time (``Audio2Exp.test``; the official
    chunk is 10, frames are independent).

    Args:
        mel: (T_mel, 80) normalised mel. num_frames: T.
        ref_exp: (64,) or (T, 64) reference expression. ratio: (T,) blink ratio in [0, 1].
        embeddings: when a list, receives each chunk's (n, 512) audio embedding.
        on_chunk: called with the number of frames done after each chunk (may raise to cancel).

    Returns:
        (T, 64) float32 expression coefficients.
    """
    param = next(net.parameters())
    dev, dt = param.device, param.dtype
    ref_exp = np.broadcast_to(np.asarray(ref_exp, np.float32).reshape(-1, EXP_DIM), (num_frames, EXP_DIM))
    ratio = np.asarray(ratio, np.float32).reshape(num_frames)
    out = np.empty((num_frames, EXP_DIM), np.float32)
    for a in range(0, num_frames, chunk):
        b = min(num_frames, a + chunk)
        with torch.inference_mode():
            exp, emb = net(mel_windows(mel, range(a, b)).to(dev, dt), torch.from_numpy(ref_exp[a:b].copy()).to(dev, dt),
                           torch.from_numpy(ratio[a:b].copy()).to(dev, dt), return_embedding=True)
        out[a:b] = exp.float().cpu().numpy()
        if embeddings is not None:
            embeddings.append(emb.float().cpu())
        if on_chunk is not None:
            on_chunk(b)
    return out


def predict_pose(net: Audio2PoseNet, mel: np.ndarray, num_frames: int, ref_pose: np.ndarray, pose_style: int,
                 latents: Callable[[int], torch.Tensor], *, trace: list | None = None,
                 on_window: Callable[[int], None] | None = None) -> np.ndarray:
    """``Audio2Pose.test``: the reference pose plus the decoded motion, BEFORE smoothing.

    Args:
        ref_pose: (6,) reference angles (radians) and translation. pose_style: 0..45.
        latents: window latents, see :func:`seeded_latents` / :func:`stored_latents`.
        trace: see ``audio2pose.iter_pose_motion``.
        on_window: called with the number of windows done (may raise to cancel).

    Returns:
        (T, 6) float32 ``pose_pred``; frame 0 is the reference pose.
    """
    ref = np.asarray(ref_pose, np.float32).reshape(POSE_DIM)
    motion = np.zeros((num_frames, POSE_DIM), np.float32)
    for k, (w, m) in enumerate(iter_pose_motion(net, mel, num_frames, torch.from_numpy(ref.copy()), pose_style,
                                                latents, trace=trace)):
        motion[w.out_start:w.out_start + w.keep] = m.numpy()
        if on_window is not None:
            on_window(k + 1)
    return ref[None] + motion


def smooth_pose(pose: np.ndarray) -> np.ndarray:
    """The Savitzky–Golay smoothing of ``Audio2Coeff.generate``: order 2 over time, window 13
    frames, or ``int((T − 1)/2)·2 + 1`` when T < 13 (scipy ``mode="interp"``). Clips shorter than
    3 frames (where the official call fails) are returned unchanged. (T, 6) → (T, 6) float32."""
    pose = np.asarray(pose, np.float32)
    t = len(pose)
    window = 13 if t >= 13 else int((t - 1) / 2) * 2 + 1
    if window <= 2:
        return pose.copy()
    from scipy.signal import savgol_filter

    return savgol_filter(pose.astype(np.float64), window, 2, axis=0).astype(np.float32)


def apply_reference_pose(pose: np.ndarray, reference_pose: np.ndarray) -> np.ndarray:
    """SadTalker's ``using_refpose``: add the reference's pose change since its first frame.

    Args:
        pose: (T, 6) angles (radians) and translation per frame.
        reference_pose: (N, 6) of the reference; tiled when N < T (N·(T // N) frames, then the
            first T % N).

    Returns:
        (T, 6) float32 ``pose + (ref[t] − ref[0])``.
    """
    from .blink import tile_to

    ref = tile_to(np.asarray(reference_pose, np.float32), len(pose))
    return (np.asarray(pose, np.float32) + (ref - ref[:1])).astype(np.float32)


def sadtalker_coefficients(exp_net: Audio2ExpNet, pose_net: Audio2PoseNet | None, mel: np.ndarray, num_frames: int,
                           ref70: np.ndarray, *, ratio: np.ndarray, ref_exp: np.ndarray | None = None,
                           pose: str = "audio", pose_style: int = 0,
                           latents: Callable[[int], torch.Tensor] | None = None,
                           reference_pose: np.ndarray | None = None, expression_scale: float = 1.0,
                           progress: Progress | None = None, cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """The (T, 70) coefficients of ``Audio2Coeff.generate`` (with the options of the module docstring).

    Args:
        mel: (T_mel, 80) normalised mel of the cut audio; num_frames: T.
        ref70: (70,) the source's exp | angles | translation.
        ratio: (T,) blink ratio. ref_exp: (T, 64) per-frame reference expression (reference
            blinks), default the source's.
        pose: "audio" (Audio2Pose + smoothing), "still" (the source's pose), "reference"
            (audio pose + ``using_refpose``), "reference_only" (the source's pose +
            the reference's motion).
        pose_style: 0..45. latents: window latents (needed for the audio poses).
        reference_pose: (N, 6) for the reference modes.
        expression_scale: 1 = as predicted; s scales the predicted expression's difference from
            the source's (0 = the source's expression on every frame).
        progress: ``progress(done, total)`` over expression chunks and pose windows.
        cancel: returns True to stop (raises ``SamplingCancelled``).

    Returns:
        (T, 70) float32.

    Raises:
        ValueError: unknown pose mode, a missing reference or latents. SamplingCancelled.
    """
    if pose not in POSE_MODES:
        raise ValueError(f"pose must be one of {POSE_MODES}, got {pose!r}.")
    uses_audio_pose = pose in ("audio", "reference")
    if pose in ("reference", "reference_only") and reference_pose is None:
        raise ValueError(f"pose {pose!r} needs a reference pose sequence.")
    if uses_audio_pose and (pose_net is None or latents is None):
        raise ValueError("the audio pose needs the Audio2Pose network and window latents.")
    ref70 = np.asarray(ref70, np.float32).reshape(-1)
    chunk = 25  # one second of frames per progress step
    exp_steps = -(-num_frames // chunk)
    total = exp_steps + (len(pose_windows(num_frames)) if uses_audio_pose else 0)
    _tick(progress, cancel, 0, total)
    exp = predict_expression(exp_net, mel, num_frames, ref70[SADTALKER_EXP] if ref_exp is None else ref_exp, ratio,
                             chunk=chunk, on_chunk=lambda b: _tick(progress, cancel, -(-b // chunk), total))
    if expression_scale != 1.0:
        exp = ref70[None, SADTALKER_EXP] + expression_scale * (exp - ref70[None, SADTALKER_EXP])
    ref6 = ref70[SADTALKER_POSE]
    if uses_audio_pose:
        p = smooth_pose(predict_pose(pose_net, mel, num_frames, ref6, pose_style, latents,
                                     on_window=lambda k: _tick(progress, cancel, exp_steps + k, total)))
    else:
        p = np.repeat(ref6[None], num_frames, 0)
    if pose in ("reference", "reference_only"):
        p = apply_reference_pose(p, reference_pose)
    return np.concatenate([exp, p], 1).astype(np.float32)
