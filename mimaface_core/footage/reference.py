"""The reference frame of the footage: the frame whose appearance (512 crop and identity) the
re-performed face is generated from.

Default (:func:`choose_reference_frame`): among the frames of the first ``seconds`` seconds where
the tracked face was found, the one with the lowest cost
``|angles|/10° + max(blink, 0) + 3·max(mouth_open, 0)``: the head rotation's norm in degrees
(frontal), the eyes' closure and the lips' gap read with the named controls of
``morphable.controls`` (control units: blink 1 ≈ closed eyes, mouth_open 1 ≈ a wide open mouth).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..morphable.coefficients import ANGLES

#: Seconds of footage searched for the default reference frame.
REFERENCE_SECONDS = 3.0


@dataclass(frozen=True)
class ReferenceChoice:
    """``frame`` (footage index), ``cost`` and its parts (degrees, blink, mouth_open readings),
    and ``how`` ("auto", "given" or "photo")."""

    frame: int
    cost: float
    degrees: float
    blink: float
    mouth_open: float
    how: str = "auto"

    def describe(self) -> str:
        """One line for the log."""
        if self.how == "photo":
            return "reference: the photo given with --reference"
        return (f"reference frame {self.frame} ({self.how}): head turned {self.degrees:.1f} deg, blink "
                f"{self.blink:.2f}, mouth_open {self.mouth_open:.2f}")


def reference_costs(coeffs: torch.Tensor, controls) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(cost, degrees, blink, mouth_open), each (N,) float64, of (N, 261) coefficients."""
    read = controls.read(coeffs.float())
    degrees = torch.rad2deg(coeffs[:, ANGLES].double()).norm(dim=1).numpy()
    blink = read["blink"].double().numpy() if "blink" in read else np.zeros(len(coeffs))
    mouth = read["mouth_open"].double().numpy() if "mouth_open" in read else np.zeros(len(coeffs))
    cost = degrees / 10 + np.maximum(blink, 0) + 3 * np.maximum(mouth, 0)
    return cost, degrees, blink, mouth


def choose_reference_frame(coeffs: torch.Tensor, missing: np.ndarray, controls, fps: float | None,
                           seconds: float = REFERENCE_SECONDS, frame: int | None = None) -> ReferenceChoice:
    """The footage frame to take the appearance from.

    Args:
        coeffs: (N, 261) the footage's tracked coefficients. missing: (N,) bool, no face there.
        controls: ``morphable.controls.ExpressionControls`` of the loaded BFM.
        fps: the footage's frame rate (None: 25).
        seconds: search the frames of the first ``seconds`` seconds (all frames if none of them has
            the face).
        frame: a frame given by the user (``--reference-frame``), taken as is when it has the face.

    Raises:
        ValueError: ``frame`` past the end or on a frame without the face; no frame has the face.
    """
    n = len(coeffs)
    missing = np.asarray(missing, bool)
    if missing.all():
        raise ValueError("the footage has no frame with the face.")
    cost, degrees, blink, mouth = reference_costs(coeffs, controls)
    if frame is not None:
        if not 0 <= frame < n:
            raise ValueError(f"reference frame {frame} is past the footage's end (frames 0..{n - 1}).")
        if missing[frame]:
            raise ValueError(f"reference frame {frame} has no tracked face; choose a frame where the face is seen.")
        k, how = frame, "given"
    else:
        window = np.arange(n) < max(1, int(round(seconds * float(fps or 25.0))))
        pool = np.flatnonzero(window & ~missing)
        if not len(pool):
            pool = np.flatnonzero(~missing)
        k, how = int(pool[np.argmin(cost[pool])]), "auto"
    return ReferenceChoice(int(k), float(cost[k]), float(degrees[k]), float(blink[k]), float(mouth[k]), how)
