"""Audio-driven motion: speech + the source's coefficients → a 25 fps :class:`MotionSequence`.

The source photo's D3DFR coefficients give SadTalker's reference (exp ``80:144``, angles
``224:227``, translation ``254:257``: its 70-column layout, from the same Deep3DFaceRecon
regressor); the audio networks give exp, angles and translation per frame; id, tex, gamma and gaze
stay the source's. Every frame uses the SOURCE's 512 box and 256 matrix, so the sequence is in the
source's crop frame and Render Coeff Image, MIA, the ICA sampler and Paste Back (into the source
photo) work on it unchanged. Paper §3 / Fig. 3 (coefficients from other modalities); fixture
``audio2coeff`` README, "Reference coefficients" and "The 70 columns".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..morphable.coefficients import ANGLES, EXP, TRANSLATION
from ..motion.sequence import MotionSequence
from .audio2pose import NUM_POSE_STYLES
from .blink import random_blinks, tile_to
from .coefficients import (
    BLINK_MODES,
    POSE_MODES,
    SADTALKER_EXP,
    SADTALKER_POSE,
    sadtalker_coefficients,
    seeded_latents,
)
from .decode import FPS, SAMPLES_PER_FRAME, Speech
from .mel import crop_to_frames, melspectrogram
from .weights import AudioNetworks

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class AudioMotionOptions:
    """How speech becomes motion; defaults are SadTalker's.

    Attributes:
        pose: "audio" (SadTalker's CVAE head motion in the style ``pose_style``), "still" (the
            source's head pose on every frame), "reference" (the audio pose plus a reference
            motion's change since its first frame: SadTalker's ``--ref_pose``) or
            "reference_only" (the source's pose plus the reference's change; no audio pose).
        pose_style: 0..45, the CVAE's pose style (class) for the audio poses.
        blink: "random" (SadTalker's random 5-frame blinks, drawn from ``seed``), "none" (eyes as
            in the source) or "reference" (the eyes of the reference motion: its expression is
            Audio2Exp's reference per frame, as SadTalker's ``--ref_eyeblink``).
        seed: seeds the blinks and the CVAE latents (same seed, same motion).
        expression_scale: 1 = as predicted; scales the predicted expression's difference from the
            source's (0 = the source's own expression, > 1 exaggerates).
        max_frames: keep at most this many 25 fps frames (None = the whole audio).
    """

    pose: str = "audio"
    pose_style: int = 0
    blink: str = "random"
    seed: int = 0
    expression_scale: float = 1.0
    max_frames: int | None = None

    def check(self, has_reference: bool, has_blink_reference: bool | None = None) -> None:
        """Raise ValueError (naming the option) for values that cannot work, before any model runs.

        Args:
            has_reference: a pose reference motion is given. has_blink_reference: a blink
                reference is given (default: the same as ``has_reference``).
        """
        if has_blink_reference is None:
            has_blink_reference = has_reference
        from ..ranges import check_options  # ValueRangeError (a ValueError) beyond the limits, a warning beyond the range

        check_options({"pose_style": self.pose_style, "seed": self.seed, "expression_scale": self.expression_scale,
                       "max_frames": self.max_frames}, "audio motion options")
        if self.pose not in POSE_MODES:
            raise ValueError(f"pose must be one of {POSE_MODES}, got {self.pose!r}.")
        if self.blink not in BLINK_MODES:
            raise ValueError(f"blink must be one of {BLINK_MODES}, got {self.blink!r}.")
        if not 0 <= int(self.pose_style) < NUM_POSE_STYLES:
            raise ValueError(f"pose style must be in 0..{NUM_POSE_STYLES - 1}, got {self.pose_style}.")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"the frame limit must be ≥ 1, got {self.max_frames}.")
        for what, needed, given in (("pose " + self.pose, self.pose.startswith("reference"), has_reference),
                                    ("blink reference", self.blink == "reference", has_blink_reference)):
            if needed and not given:
                raise ValueError(f"{what} needs a reference motion (e.g. extracted from a driving video); give one "
                                 "or choose another mode.")


def reference_at_fps(reference: MotionSequence, fps: float = FPS) -> np.ndarray:
    """A reference motion's coefficients at ``fps``: (M, 261) float32, resampled in time by linear
    interpolation when its own rate differs (logged); a sequence without a rate is taken as is."""
    c = reference.coeffs.float().cpu().numpy()
    if reference.fps is None or abs(reference.fps - fps) < 1e-3 or len(c) < 2:
        return c
    duration = (len(c) - 1) / reference.fps
    t = np.arange(int(np.floor(duration * fps + 1e-9)) + 1) / fps
    src = np.arange(len(c)) / reference.fps
    log.info("reference motion resampled from %.3f to %g fps (%d → %d frames).", reference.fps, fps, len(c), len(t))
    return np.stack([np.interp(t, src, c[:, j]) for j in range(c.shape[1])], 1).astype(np.float32)


def source_reference(coeffs: torch.Tensor) -> np.ndarray:
    """SadTalker's (70,) reference from (1, 261) or (261,) D3DFR coefficients: exp | angles | trans."""
    c = coeffs.reshape(-1).float().cpu().numpy()
    return np.concatenate([c[EXP], c[ANGLES], c[TRANSLATION]]).astype(np.float32)


def audio_motion(source: MotionSequence, speech: Speech, nets: AudioNetworks,
                 options: AudioMotionOptions = AudioMotionOptions(), reference: MotionSequence | None = None, *,
                 blink_reference: MotionSequence | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 cancel: Callable[[], bool] | None = None) -> MotionSequence:
    """Motion of the source speaking ``speech``.

    Args:
        source: the source's motion (its first frame is used: coefficients and crop matrices), e.g.
            ``SourceFace.motion()`` or Extract 3DMM Motion on the source photo.
        speech: 16 kHz mono speech (``load_audio`` / ``speech_from_waveform``).
        nets: SadTalker's audio networks (``load_audio_networks``).
        options: see :class:`AudioMotionOptions`.
        reference: a motion for the reference pose modes (and blinks), resampled to 25 fps.
        blink_reference: another motion for the reference blinks (default ``reference``).
        progress: ``progress(done, total)`` over the network steps. cancel: True stops.

    Returns:
        A :class:`MotionSequence` of ``int(samples / 640)`` frames (or ``options.max_frames``) at
        25 fps: id, tex, gamma and gaze of the source, exp, angles and translation from the audio;
        the source's crop matrices on every frame (``m512_frame`` as the source's).

    Raises:
        ValueError: bad options (see :meth:`AudioMotionOptions.check`). SamplingCancelled.
    """
    blink_reference = reference if blink_reference is None else blink_reference
    options.check(reference is not None, blink_reference is not None)
    samples, num_frames = crop_to_frames(speech.samples)
    if options.max_frames is not None and options.max_frames < num_frames:
        num_frames = options.max_frames
        samples = samples[: num_frames * SAMPLES_PER_FRAME]
    mel = melspectrogram(samples)
    ref70 = source_reference(source.coeffs[0])
    ref_exp = ref_pose = None
    if reference is not None and options.pose.startswith("reference"):
        rc = reference_at_fps(reference)
        ref_pose = np.concatenate([rc[:, ANGLES], rc[:, TRANSLATION]], 1)
    if options.blink == "reference":
        ref_exp = tile_to(reference_at_fps(blink_reference)[:, EXP], num_frames)
    ratio = random_blinks(num_frames, options.seed) if options.blink == "random" else np.zeros(num_frames, np.float32)
    c70 = sadtalker_coefficients(nets.audio2exp, nets.audio2pose, mel, num_frames, ref70, ratio=ratio, ref_exp=ref_exp,
                                 pose=options.pose, pose_style=options.pose_style, latents=seeded_latents(options.seed),
                                 reference_pose=ref_pose, expression_scale=options.expression_scale,
                                 progress=progress, cancel=cancel)
    coeffs = source.coeffs[:1].float().cpu().repeat(num_frames, 1)
    c = torch.from_numpy(c70)
    coeffs[:, EXP] = c[:, SADTALKER_EXP]
    coeffs[:, ANGLES] = c[:, SADTALKER_POSE][:, :3]
    coeffs[:, TRANSLATION] = c[:, SADTALKER_POSE][:, 3:]
    rep = lambda a: np.repeat(np.asarray(a[:1]), num_frames, 0)  # noqa: E731
    info = {"driver": "audio", "audio": speech.name, "pose": options.pose, "pose_style": int(options.pose_style),
            "blink": options.blink, "seed": int(options.seed), "expression_scale": float(options.expression_scale),
            "sadtalker": [p.name for p in nets.files], "source": dict(source.info)}
    if speech.is_silent:
        info["silent"] = True
    return MotionSequence(coeffs, rep(source.m512), rep(source.m256), rep(source.m256_inv), rep(source.scores),
                          np.zeros(num_frames, bool), tuple(source.frame_size), float(FPS), info, source.m512_frame)
