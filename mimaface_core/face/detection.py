"""What a face detector returns, in MTCNN's conventions (docs/ALIGNMENT.md §2.4).

Every backend (MTCNN, MediaPipe) returns a :class:`Detections` whose boxes and five landmarks
follow facenet-pytorch's ``MTCNN.detect``: pixel coordinates of the input image with pixel
centres at integers, boxes ``[x1, y1, x2, y2]``, landmarks in the order left eye, right eye, nose
tip, left mouth corner, right mouth corner ("left" = smaller x in the image), faces sorted by
decreasing box area ``(x2 − x1)·(y2 − y1)`` so that index 0 is the face the release uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Detections:
    """Faces found in one image.

    Attributes:
        boxes: (N, 4) float64 ``[x1, y1, x2, y2]`` in input pixels.
        scores: (N,) float64 face probability in [0, 1].
        landmarks: (N, 5, 2) float64 (x, y) of left eye, right eye, nose tip, left and right
            mouth corner, input pixels.
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)

    @staticmethod
    def empty() -> "Detections":
        """No face."""
        return Detections(np.zeros((0, 4)), np.zeros((0,)), np.zeros((0, 5, 2)))

    def sorted_by_area(self) -> "Detections":
        """The same faces, largest box area first (stable for equal areas)."""
        area = (self.boxes[:, 2] - self.boxes[:, 0]) * (self.boxes[:, 3] - self.boxes[:, 1])
        order = np.argsort(-area, kind="stable")
        return Detections(self.boxes[order], self.scores[order], self.landmarks[order])


class FaceDetector(Protocol):
    """A face detector backend: ``detect(rgb)`` with ``rgb`` a (H, W, 3) uint8 RGB array."""

    name: str

    def detect(self, rgb: np.ndarray) -> Detections:
        """Faces in one image, sorted by decreasing box area (docs/ALIGNMENT.md §2.4)."""
        ...
