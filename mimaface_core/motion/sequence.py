"""The motion-sequence type: what the extraction of a driving video yields, saved as safetensors
plus a JSON side file so a sequence can be edited and reused (never pickle)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..errors import MIMAFaceError
from ..morphable.coefficients import (
    ANGLES,
    EXP,
    GAMMA,
    GAZE,
    ID,
    NUM_COEFFS,
    TEX,
    TRANSLATION,
)

FORMAT = "mimaface-motion"
M512_FRAMES = ("squashed", "original")
VERSION = 1
_LAYOUT = {name: [part.start, part.stop] for name, part in
           (("id", ID), ("exp", EXP), ("tex", TEX), ("angles", ANGLES), ("gamma", GAMMA),
            ("translation", TRANSLATION), ("gaze", GAZE))}


@dataclass
class MotionSequence:
    """Per-frame 3DMM coefficients and alignment of N frames (docs/ALIGNMENT.md §4–§7).

    Attributes:
        coeffs: (N, 261) float32 D3DFR coefficients (id, exp, tex, angles in radians, gamma,
            translation, gaze); frames without a face hold values filled from their neighbours.
        m512: (N, 2, 3) float64, 512x512 squashed frame → 512 box crop (pixels).
        m256: (N, 2, 3) float64, 512 crop → 256 crop; ``m256_inv`` its inverse.
        scores: (N,) float32 detection score on each crop, 0 where no face was found.
        missing: (N,) bool, True where no face was found (values there are filled).
        frame_size: (width, height) of the original frames in pixels (the 512 frame is a
            squash of it, docs/ALIGNMENT.md §6.2).
        fps: frames per second of the driver, or None for still images.
        info: free JSON-serialisable details (detector, box mode, face choice...).
        m512_frame: what ``m512`` maps from: ``"squashed"`` (the frame squashed to 512x512, the
            video recipe, docs/ALIGNMENT.md §6.2) or ``"original"`` (the frame's own pixels, the photo
            recipe of docs/ALIGNMENT.md §6.1: source photos, single driving images, audio-driven motion).
    """

    coeffs: torch.Tensor
    m512: np.ndarray
    m256: np.ndarray
    m256_inv: np.ndarray
    scores: np.ndarray
    missing: np.ndarray
    frame_size: tuple[int, int] = (512, 512)
    fps: float | None = None
    info: dict = field(default_factory=dict)
    m512_frame: str = "squashed"

    def __post_init__(self):
        if self.m512_frame not in M512_FRAMES:
            raise ValueError(f"m512_frame must be one of {M512_FRAMES}, got {self.m512_frame!r}.")
        n = len(self.coeffs)
        if self.coeffs.ndim != 2 or self.coeffs.shape[1] != NUM_COEFFS:
            raise ValueError(f"motion coeffs must be (N, {NUM_COEFFS}), got {tuple(self.coeffs.shape)}.")
        for name in ("m512", "m256", "m256_inv"):
            if getattr(self, name).shape != (n, 2, 3):
                raise ValueError(f"motion {name} must be ({n}, 2, 3), got {getattr(self, name).shape}.")
        for name in ("scores", "missing"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"motion {name} must be ({n},), got {getattr(self, name).shape}.")

    def __len__(self) -> int:
        return len(self.coeffs)

    @property
    def missing_count(self) -> int:
        """How many frames had no face (and were filled from their neighbours)."""
        return int(self.missing.sum())

    def frame_to_crop(self) -> np.ndarray:
        """(N, 2, 3) matrices from ORIGINAL frame pixels to the 512 crop: ``m512`` itself when it
        maps original pixels, else ``m512`` composed with the bicubic squash to 512x512 (pixel
        centres: ``x' = (x + 0.5)·512/W − 0.5``)."""
        if self.m512_frame == "original":
            return np.array(self.m512, np.float64)
        w, h = self.frame_size
        sx, sy = 512 / w, 512 / h
        squash = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])
        full = np.concatenate([self.m512, np.broadcast_to([0.0, 0, 1], (len(self), 1, 3))], axis=1)
        return (full @ squash)[:, :2]

    def with_coeffs(self, coeffs: torch.Tensor) -> "MotionSequence":
        """A copy with other coefficients (same alignment), e.g. after editing."""
        return MotionSequence(coeffs, self.m512, self.m256, self.m256_inv, self.scores, self.missing,
                              self.frame_size, self.fps, dict(self.info), self.m512_frame)

    def save(self, path: str | Path) -> Path:
        """Write ``<path>.safetensors`` (tensors) and ``<path>.json`` (everything else, readable
        and editable). ``path`` may carry either suffix. Returns the safetensors path."""
        from ..media.outputs import atomic_output

        base = Path(path).with_suffix("")
        tensors = {
            "coeffs": self.coeffs.detach().float().cpu().contiguous(),
            "m512": torch.from_numpy(np.ascontiguousarray(self.m512, np.float64)),
            "m256": torch.from_numpy(np.ascontiguousarray(self.m256, np.float64)),
            "m256_inv": torch.from_numpy(np.ascontiguousarray(self.m256_inv, np.float64)),
            "scores": torch.from_numpy(np.ascontiguousarray(self.scores, np.float32)),
            "missing": torch.from_numpy(np.ascontiguousarray(self.missing, np.bool_)),
        }
        meta = {"format": FORMAT, "version": VERSION, "frames": len(self), "frame_size": list(self.frame_size),
                "fps": self.fps, "m512_frame": self.m512_frame, "missing_frames": np.flatnonzero(self.missing).tolist(),
                "coefficient_layout": _LAYOUT, "info": self.info}
        with atomic_output(base.with_suffix(".safetensors")) as tmp:
            save_file(tensors, str(tmp), metadata={"format": FORMAT})
        with atomic_output(base.with_suffix(".json")) as tmp:
            tmp.write_text(json.dumps(meta, indent=1))
        return base.with_suffix(".safetensors")

    @staticmethod
    def load(path: str | Path) -> "MotionSequence":
        """Read a sequence written by :meth:`save`.

        Raises:
            MIMAFaceError: a file is missing, or is not a MIMAFace motion file, or its tensors do
                not fit (the message names the file).
        """
        base = Path(path).with_suffix("")
        tensors_file, meta_file = base.with_suffix(".safetensors"), base.with_suffix(".json")
        for f in (tensors_file, meta_file):
            if not f.is_file():
                raise MIMAFaceError(f"motion file not found: {f} (a motion is a .safetensors and a .json side by side).")
        meta = json.loads(meta_file.read_text())
        if meta.get("format") != FORMAT:
            raise MIMAFaceError(f"{meta_file.name} is not a MIMAFace motion file (format {meta.get('format')!r}).")
        t = load_file(str(tensors_file))
        try:
            return MotionSequence(t["coeffs"].float(), t["m512"].numpy(), t["m256"].numpy(), t["m256_inv"].numpy(),
                                  t["scores"].numpy(), t["missing"].numpy().astype(bool),
                                  tuple(meta["frame_size"]), meta.get("fps"), meta.get("info", {}),
                                  meta.get("m512_frame", _legacy_m512_frame(meta)))
        except (KeyError, ValueError) as exc:
            raise MIMAFaceError(f"{tensors_file.name}: not a valid motion sequence ({exc}).") from exc


def _legacy_m512_frame(meta: dict) -> str:
    """Files written before ``m512_frame`` existed: image motions (box mode "image") were aligned
    on the photo's own pixels, everything else on the squashed frame."""
    return "original" if meta.get("info", {}).get("box_mode") == "image" else "squashed"
