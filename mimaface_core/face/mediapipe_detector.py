"""MediaPipe face detection mapped onto MTCNN's box and five-point conventions (docs/ALIGNMENT.md §3).

A stand-in for MTCNN when it cannot be used. The Tasks FaceLandmarker (478-point mesh,
``face_landmarker.task``) is used when that file is in the models folder, else the Tasks BlazeFace
FaceDetector (``blaze_face_short_range.tflite``, or ``face_detection_short_range.tflite`` from the
mediapipe 0.10.21 wheel). Boxes and points come out in input pixels as :class:`Detections`.

Expected residuals against the released MTCNN pipeline (docs/NUMERICS.md §12, square photos): M512 scale
mean 3.4% / max 13% and centre mean 6 px / max 20 px at 512, M256 template points median 3.2 px
at 256 with the mesh (fitted with the legacy FaceMesh; the Tasks landmarker's newer model is
similar, not identical); with BlazeFace mean 3.7% / max 14%, 7 / 22 px and a median of 8.8 px.
Non-square video frames squashed to 512² are clearly worse (scale mean 9%, max 35%).

mediapipe is optional (``pip install "mediapipe>=0.10.30,<0.10.32"``); it is imported only when a
detector is loaded. 0.10.32 and later depend on opencv-contrib-python, a GUI OpenCV build that
overwrites the headless ``cv2`` and needs libGL.
"""

from __future__ import annotations

import urllib.request
import weakref
from pathlib import Path

import numpy as np

from ..errors import MIMAFaceError, MissingDependencyError
from .detection import Detections

RESIDUALS_NOTE = (
    "MediaPipe only approximates the released MTCNN crops (docs/NUMERICS.md §12): on photos the 512 crop "
    "differs by about 3-4% in scale (up to 14%) and 6-7 px in centre (up to 22 px), and the 256 "
    "alignment by a median 3 px with face_landmarker.task or 9 px with BlazeFace, more on squashed "
    "non-square video frames."
)
PIP_HINT = 'pip install "mediapipe>=0.10.30,<0.10.32"'
LANDMARKER_FILE = "face_landmarker.task"
BLAZEFACE_FILES = ("blaze_face_short_range.tflite", "face_detection_short_range.tflite")
MODEL_URLS = {
    LANDMARKER_FILE: "https://storage.googleapis.com/mediapipe-models/face_landmarker/"
    "face_landmarker/float16/latest/face_landmarker.task",
    BLAZEFACE_FILES[0]: "https://storage.googleapis.com/mediapipe-models/face_detector/"
    "blaze_face_short_range/float16/latest/blaze_face_short_range.tflite",
}
#: Box offsets (x1, y1, x2, y2) as fractions of the mesh box width/height, docs/ALIGNMENT.md §3.
MESH_BOX_OFFSETS = (-0.0172, -0.1488, -0.0169, -0.0006)
#: Mesh landmarks averaged for left eye, right eye, nose, left and right mouth corner (image left).
MESH_POINTS = ((159, 145), (386, 374), (1,), (61,), (291,))
#: Offsets added to the BlazeFace box (x, y, x + w, y + h) as fractions of w/h, docs/ALIGNMENT.md §3.
BLAZE_BOX_OFFSETS = (-0.0350, -0.3078, -0.0430, -0.0412)
#: Per MTCNN point: (BlazeFace keypoint index, a, b); point = keypoint + d·(a·u + b·v).
BLAZE_POINTS = ((0, 0.021, -0.083), (1, 0.004, -0.072), (2, 0.043, -0.003), (3, -0.420, 0.018), (3, 0.459, 0.029))


def mesh_to_mtcnn(landmarks_px) -> tuple[np.ndarray, np.ndarray]:
    """MTCNN-equivalent box and five points from a face mesh (docs/ALIGNMENT.md §3).

    Args:
        landmarks_px: (478, 2) or (468, 2) mesh landmarks (x, y) in input pixels; only 0–467 are used.

    Returns:
        box: (4,) float64 ``[x1, y1, x2, y2]``; points: (5, 2) float64, both in input pixels.
    """
    lm = np.asarray(landmarks_px, np.float64)[:468, :2]
    (bx1, by1), (bx2, by2) = lm.min(0), lm.max(0)
    w, h = bx2 - bx1, by2 - by1
    ox1, oy1, ox2, oy2 = MESH_BOX_OFFSETS
    box = np.array([bx1 + ox1 * w, by1 + oy1 * h, bx2 + ox2 * w, by2 + oy2 * h])
    points = np.stack([lm[list(ids)].mean(0) for ids in MESH_POINTS])
    return box, points


def blazeface_to_mtcnn(box_xywh, keypoints) -> tuple[np.ndarray, np.ndarray]:
    """MTCNN-equivalent box and five points from a BlazeFace detection (docs/ALIGNMENT.md §3).

    Args:
        box_xywh: (4,) ``(x, y, w, h)`` of the BlazeFace box, input pixels.
        keypoints: (6, 2) BlazeFace keypoints in input pixels: the subject's right eye (image
            left on an upright face), left eye, nose tip, mouth centre, right and left tragion.

    Returns:
        box: (4,) float64 ``[x1, y1, x2, y2]``; points: (5, 2) float64, both in input pixels.
        ``u`` is the unit vector from keypoint 0 to keypoint 1, ``v`` it rotated by +90° (down the
        face in image coordinates), ``d`` the eye distance.
    """
    x, y, w, h = (float(t) for t in box_xywh)
    ox1, oy1, ox2, oy2 = BLAZE_BOX_OFFSETS
    box = np.array([x + ox1 * w, y + oy1 * h, x + w + ox2 * w, y + h + oy2 * h])
    kp = np.asarray(keypoints, np.float64)
    eye = kp[1] - kp[0]
    d = float(np.hypot(*eye))
    u = eye / d if d > 0 else np.array([1.0, 0.0])
    v = np.array([-u[1], u[0]])
    points = np.stack([kp[i] + d * (a * u + b * v) for i, a, b in BLAZE_POINTS])
    return box, points


def _import_mediapipe():
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError as exc:
        raise MissingDependencyError(
            f"The MediaPipe face detector needs the optional package mediapipe: {PIP_HINT}. "
            "Do not install 0.10.32 or newer: they pull opencv-contrib-python, a GUI OpenCV build "
            f"that replaces opencv-python-headless and needs libGL. ({exc})"
        ) from exc
    return mp, BaseOptions, vision


class MediaPipeDetector:
    """MediaPipe Tasks face detector returning MTCNN-convention :class:`Detections`.

    Args:
        models_dir: folder holding ``face_landmarker.task`` and/or ``blaze_face_short_range.tflite``
            (or ``face_detection_short_range.tflite``), e.g. ComfyUI's ``models/mediapipe``.
        allow_download: if no model file is there, download ``blaze_face_short_range.tflite``
            (plus ``face_landmarker.task`` with ``download_landmarker``) on first use.
        min_confidence: minimum detection confidence. num_faces: landmarker face limit.

    The short-range detector (also the landmarker's first stage) sees the whole image at 128×128:
    faces narrower than about a tenth of the image are missed (a 95 px face is found in a 768²
    image, not in 1024²); small images are fine (the 115 px fixture photo is found).
    """

    name = "mediapipe"

    def __init__(self, models_dir, allow_download: bool = True, download_landmarker: bool = False,
                 min_confidence: float = 0.5, num_faces: int = 8):
        self.models_dir = Path(models_dir)
        self.allow_download = allow_download
        self.download_landmarker = download_landmarker
        self.min_confidence = min_confidence
        self.num_faces = num_faces
        self.model_path: Path | None = None
        self._task = None
        self._mp = None

    def find_model(self) -> Path | None:
        """The model file to use: the landmarker if present, else a BlazeFace file, else None."""
        for name in (LANDMARKER_FILE, *BLAZEFACE_FILES):
            if (self.models_dir / name).is_file():
                return self.models_dir / name
        return None

    def _download(self, name: str) -> Path:
        from ..media.outputs import atomic_output

        dest = self.models_dir / name
        try:
            with urllib.request.urlopen(MODEL_URLS[name], timeout=60) as resp, atomic_output(dest) as tmp:
                tmp.write_bytes(resp.read())
        except OSError as exc:
            raise MIMAFaceError(
                f"Could not download the MediaPipe model {name} ({exc}). Download it from "
                f"{MODEL_URLS[name]} and put it in {self.models_dir}."
            ) from exc
        return dest

    def load(self) -> "MediaPipeDetector":
        """Create the MediaPipe task (imports mediapipe; may download the model once)."""
        if self._task is not None:
            return self
        mp, base_options, vision = _import_mediapipe()
        path = self.find_model()
        if path is None:
            if not self.allow_download:
                raise MIMAFaceError(
                    f"No MediaPipe face model in {self.models_dir}: put {BLAZEFACE_FILES[0]} "
                    f"({MODEL_URLS[BLAZEFACE_FILES[0]]}) or {LANDMARKER_FILE} "
                    f"({MODEL_URLS[LANDMARKER_FILE]}) there."
                )
            path = self._download(BLAZEFACE_FILES[0])
            if self.download_landmarker:
                path = self._download(LANDMARKER_FILE)
        base, mode = base_options(model_asset_path=str(path)), vision.RunningMode.IMAGE
        try:
            if path.name == LANDMARKER_FILE:
                task = vision.FaceLandmarker.create_from_options(vision.FaceLandmarkerOptions(
                    base_options=base, running_mode=mode, num_faces=self.num_faces,
                    min_face_detection_confidence=self.min_confidence, min_face_presence_confidence=0.5))
            else:
                task = vision.FaceDetector.create_from_options(vision.FaceDetectorOptions(
                    base_options=base, running_mode=mode, min_detection_confidence=self.min_confidence))
        except (RuntimeError, ValueError) as exc:
            raise MIMAFaceError(f"{path} is not a usable MediaPipe model ({exc}); replace it.") from exc
        weakref.finalize(self, task.close)  # close before interpreter teardown, not in __del__
        self._mp, self._task, self.model_path = mp, task, path
        return self

    def detect(self, rgb: np.ndarray) -> Detections:
        """Faces in a (H, W, 3) uint8 RGB image, MTCNN conventions, largest box first."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise MIMAFaceError(f"MediaPipeDetector.detect expects (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}.")
        self.load()
        h, w = rgb.shape[:2]
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        result = self._task.detect(image)
        boxes, scores, points = [], [], []
        if self.model_path.name == LANDMARKER_FILE:
            for face in result.face_landmarks:  # the landmarker reports no per-face score
                box, pts = mesh_to_mtcnn(np.array([(p.x * w, p.y * h) for p in face]))
                boxes.append(box), scores.append(1.0), points.append(pts)
        else:
            for det in result.detections:
                bb = det.bounding_box
                kp = np.array([(k.x * w, k.y * h) for k in det.keypoints])
                # The Tasks API floors the float box; + 0.5 px restores it on average (±0.5 px).
                xywh = np.array([bb.origin_x, bb.origin_y, bb.width, bb.height], np.float64) + 0.5
                box, pts = blazeface_to_mtcnn(xywh, kp)
                score = det.categories[0].score if det.categories else 1.0
                boxes.append(box), scores.append(float(score)), points.append(pts)
        if not boxes:
            return Detections.empty()
        return Detections(np.array(boxes), np.array(scores, np.float64), np.array(points)).sorted_by_area()
