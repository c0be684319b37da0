"""Choosing a face detector backend by name (docs/ALIGNMENT.md §2–§3)."""

from __future__ import annotations

from pathlib import Path

from .detection import FaceDetector

#: "mtcnn": the released detector (our port, weights shipped); "mediapipe": the Tasks API mapped
#: onto MTCNN's conventions (optional dependency, approximate, docs/ALIGNMENT.md §3).
DETECTORS = ("mtcnn", "mediapipe")


def make_detector(name: str = "mtcnn", *, device="cpu", models_dir: str | Path | None = None,
                  allow_download: bool = True) -> FaceDetector:
    """A detector backend.

    Args:
        name: "mtcnn" (default, reproduces the released crops) or "mediapipe".
        device: torch device for MTCNN (mediapipe runs on the CPU).
        models_dir: where mediapipe's model files are (or are downloaded to on first use);
            required for "mediapipe".
        allow_download: let mediapipe download its model file on first use.

    Raises:
        ValueError: unknown name, or "mediapipe" without ``models_dir``.
    """
    if name == "mtcnn":
        from .mtcnn import MTCNNDetector

        return MTCNNDetector(device=device)
    if name == "mediapipe":
        if models_dir is None:
            raise ValueError("the mediapipe detector needs models_dir (where face_landmarker.task or "
                             "blaze_face_short_range.tflite are, e.g. ComfyUI/models/mediapipe).")
        from .mediapipe_detector import MediaPipeDetector

        return MediaPipeDetector(models_dir, allow_download=allow_download)
    raise ValueError(f"unknown face detector {name!r}; choose one of {DETECTORS}.")
