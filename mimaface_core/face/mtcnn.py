"""MTCNN face detection exactly as facenet-pytorch 2.5.3 ``MTCNN.detect`` computes it (docs/ALIGNMENT.md §2.3–§2.4).

The released MIMAFace crops depend on this detector's box and landmark conventions, so every rule
is kept as the release has it, including the MATLAB-inherited 1-based offsets: ``int(H·s + 1)``
pyramid sizes, ``≥`` in stage 1 and ``>`` afterwards, clipped (not zero-padded) crops, area
resampling (``adaptive_avg_pool2d``), torchvision-style IoU NMS in stages 1–2 and the numpy "Min"
NMS with +1 areas in stage 3. All arithmetic is float32 as in the release.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .detection import Detections
from .mtcnn_nets import load_mtcnn_networks

#: Released defaults (docs/ALIGNMENT.md §2.3).
MIN_FACE_SIZE = 20
THRESHOLDS = (0.6, 0.7, 0.7)
SCALE_FACTOR = 0.709
_BATCH = 512


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - 127.5) * 0.0078125


def _resample(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.interpolate(mode="area")`` = adaptive average pooling (docs/ALIGNMENT.md §2.3)."""
    return F.adaptive_avg_pool2d(img, size)


def pyramid_scales(height: int, width: int, min_face_size: int = MIN_FACE_SIZE,
                   factor: float = SCALE_FACTOR) -> list[float]:
    """Scales of the image pyramid, accumulated as the release does (docs/ALIGNMENT.md §2.3)."""
    m = 12.0 / min_face_size
    smallest = min(height, width) * m
    scales, scale = [], m
    while smallest >= 12:
        scales.append(scale)
        scale *= factor
        smallest *= factor
    return scales


def nms_iou(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy NMS with torchvision's CPU semantics (no +1 areas; suppress IoU > threshold).

    Args:
        boxes: (N, 4) float32 ``[x1, y1, x2, y2]``. scores: (N,) float32.

    Returns:
        (K,) long indices of the kept boxes in descending score order.
    """
    order = torch.sort(scores, descending=True, stable=True).indices
    b = boxes[order]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    alive = torch.ones(len(b), dtype=torch.bool)
    keep = []
    for i in range(len(b)):
        if not alive[i]:
            continue
        keep.append(i)
        rest = torch.arange(i + 1, len(b))[alive[i + 1:]]
        if len(rest) == 0:
            break
        w = (torch.minimum(b[i, 2], b[rest, 2]) - torch.maximum(b[i, 0], b[rest, 0])).clamp(min=0)
        h = (torch.minimum(b[i, 3], b[rest, 3]) - torch.maximum(b[i, 1], b[rest, 1])).clamp(min=0)
        inter = w * h
        iou = inter / (area[i] + area[rest] - inter)
        alive[rest[iou > threshold]] = False
    return order[torch.tensor(keep, dtype=torch.long)]


def nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Stage-3 NMS: +1 areas, overlap = intersection / smaller area, suppress > threshold.

    Args:
        boxes: (N, 4) float32. scores: (N,) float32.

    Returns:
        (K,) indices in descending score order (numpy ``argsort``, as released).
    """
    x1, y1, x2, y2 = (boxes[:, i] for i in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    keep = []
    while order.size > 0:
        i, idx = order[-1], order[:-1]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[idx]) - np.maximum(x1[i], x1[idx]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[idx]) - np.maximum(y1[i], y1[idx]) + 1)
        overlap = w * h / np.minimum(area[i], area[idx])
        order = idx[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """``rerec``: square about the centre, float, no rounding. (N, ≥4) → same."""
    boxes = boxes.clone()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    boxes[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    boxes[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    boxes[:, 2] = boxes[:, 0] + side
    boxes[:, 3] = boxes[:, 1] + side
    return boxes


def _regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """``bbreg`` with +1 widths (stages 2 and 3)."""
    boxes = boxes.clone()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, :4] = torch.stack([boxes[:, 0] + reg[:, 0] * w, boxes[:, 1] + reg[:, 1] * h,
                                boxes[:, 2] + reg[:, 2] * w, boxes[:, 3] + reg[:, 3] * h], 1)
    return boxes


def _crops(img: torch.Tensor, boxes: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped crops of the boxes resized to ``size``²; returns (crops, kept box indices).

    Coordinates are truncated toward zero, ``x1, y1`` clamped to ≥ 1 and ``x2, y2`` to the image
    size, and the 1-based inclusive ranges cropped (docs/ALIGNMENT.md §2.3).
    """
    h, w = img.shape[-2:]
    b = boxes[:, :4].trunc().to(torch.int64).tolist()
    out, kept = [], []
    for k, (x1, y1, x2, y2) in enumerate(b):
        x1, y1, x2, y2 = max(x1, 1), max(y1, 1), min(x2, w), min(y2, h)
        if y2 > y1 - 1 and x2 > x1 - 1:
            out.append(_resample(img[:, :, y1 - 1:y2, x1 - 1:x2], (size, size)))
            kept.append(k)
    if not out:
        return img.new_zeros((0, 3, size, size)), torch.zeros(0, dtype=torch.long)
    return _normalise(torch.cat(out)), torch.tensor(kept, dtype=torch.long)


def _batched(net, x: torch.Tensor):
    outs = [net(x[i:i + _BATCH]) for i in range(0, len(x), _BATCH)]
    return tuple(torch.cat(parts) for parts in zip(*outs))


class MTCNNDetector:
    """The released face detector (facenet-pytorch 2.5.3 ``MTCNN(keep_all=True).detect``).

    Args:
        weights: a safetensors file with ``pnet.``/``rnet.``/``onet.`` keys; default the weights
            shipped with the package (``face/data/mtcnn.safetensors``, MIT).
        device: torch device for the networks (float32 always).
        min_face_size, thresholds, factor: the released defaults (20 px, (0.6, 0.7, 0.7), 0.709).

    Raises:
        WeightFileError: the weight file is missing or does not fit.
    """

    name = "mtcnn"

    def __init__(self, weights: str | Path | None = None, device="cpu", min_face_size: int = MIN_FACE_SIZE,
                 thresholds: tuple[float, float, float] = THRESHOLDS, factor: float = SCALE_FACTOR):
        self.pnet, self.rnet, self.onet = load_mtcnn_networks(weights, device)
        self.min_face_size, self.thresholds, self.factor = min_face_size, thresholds, factor

    @property
    def device(self) -> torch.device:
        """Where the networks are (they may be moved, e.g. by ComfyUI's model manager)."""
        return next(self.pnet.parameters()).device

    def networks(self) -> dict[str, torch.nn.Module]:
        """The three networks by name, for a host that moves models between devices."""
        return {"pnet": self.pnet, "rnet": self.rnet, "onet": self.onet}

    @torch.inference_mode()
    def detect(self, rgb: np.ndarray) -> Detections:
        """Faces in one RGB image.

        Args:
            rgb: (H, W, 3) uint8 RGB.

        Returns:
            :class:`Detections` (float32 values stored as float64), largest box first.

        Raises:
            ValueError: ``rgb`` is not (H, W, 3) uint8.
        """
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"MTCNN expects an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}.")
        img = torch.from_numpy(np.array(rgb)).to(self.device).permute(2, 0, 1)[None].float()
        boxes = self._stage1(img)
        if len(boxes):
            boxes = self._stage2(img, boxes)
        if not len(boxes):
            return Detections.empty()
        boxes, points = self._stage3(img, boxes)
        if not len(boxes):
            return Detections.empty()
        boxes, points = boxes.cpu().numpy(), points.cpu().numpy()
        order = np.argsort((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[::-1]
        return Detections(boxes[order, :4].astype(np.float64), boxes[order, 4].astype(np.float64),
                          points[order].astype(np.float64))

    @torch.inference_mode()
    def landmarks_in(self, rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The five landmarks of the face in ``box`` by the landmark stage alone (ONet on the
        squared box): two images measured in the same box differ only where their pixels do,
        not by which candidate box the cascade kept (the evaluation's LMD).

        Args:
            rgb: (H, W, 3) uint8 RGB. box: (4,) x1, y1, x2, y2 pixels (e.g. a detection's box).

        Returns:
            (5, 2) float64 pixels, MTCNN order.
        """
        img = torch.from_numpy(np.array(rgb)).to(self.device).permute(2, 0, 1)[None].float()
        boxes = _square(torch.as_tensor(np.asarray(box, np.float32)[None, :4], device=self.device))
        crops, kept = _crops(img, boxes, 48)
        if not len(kept):
            raise ValueError(f"landmarks_in: the box {np.asarray(box).tolist()} is outside the image.")
        _, lms, _ = self.onet(crops)
        bw, bh = boxes[0, 2] - boxes[0, 0] + 1, boxes[0, 3] - boxes[0, 1] + 1
        points = torch.stack([bw * lms[0, :5] + boxes[0, 0] - 1, bh * lms[0, 5:] + boxes[0, 1] - 1], -1)
        return points.cpu().numpy().astype(np.float64)

    def _stage1(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        found = []
        for scale in pyramid_scales(h, w, self.min_face_size, self.factor):
            level = _normalise(_resample(img, (int(h * scale + 1), int(w * scale + 1))))
            reg, prob = self.pnet(level)
            prob = prob[0, 1]
            mask = prob >= self.thresholds[0]
            yx = mask.nonzero()
            cell = yx.flip(1).to(reg.dtype)  # (x, y)
            q1 = ((2 * cell + 1) / scale).floor()
            q2 = ((2 * cell + 12) / scale).floor()
            cand = torch.cat([q1, q2, prob[mask][:, None], reg[0][:, mask].T], 1)
            found.append(cand[nms_iou(cand[:, :4], cand[:, 4], 0.5)])
        boxes = torch.cat(found) if found else img.new_zeros((0, 9))
        boxes = boxes[nms_iou(boxes[:, :4], boxes[:, 4], 0.7)]
        bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        out = torch.stack([boxes[:, 0] + boxes[:, 5] * bw, boxes[:, 1] + boxes[:, 6] * bh,
                           boxes[:, 2] + boxes[:, 7] * bw, boxes[:, 3] + boxes[:, 8] * bh, boxes[:, 4]], 1)
        return _square(out)

    def _stage2(self, img: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        crops, kept = _crops(img, boxes, 24)
        boxes = boxes[kept]
        reg, prob = _batched(self.rnet, crops)
        ok = prob[:, 1] > self.thresholds[1]
        boxes = torch.cat([boxes[ok, :4], prob[ok, 1:2]], 1)
        reg = reg[ok]
        pick = nms_iou(boxes[:, :4], boxes[:, 4], 0.7)
        return _square(_regress(boxes[pick], reg[pick]))

    def _stage3(self, img: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        crops, kept = _crops(img, boxes, 48)
        boxes = boxes[kept]
        reg, lms, prob = _batched(self.onet, crops)
        ok = prob[:, 1] > self.thresholds[2]
        boxes, reg, lms = torch.cat([boxes[ok, :4], prob[ok, 1:2]], 1), reg[ok], lms[ok]
        bw = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        bh = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        px = bw * lms[:, :5] + boxes[:, 0:1] - 1
        py = bh * lms[:, 5:] + boxes[:, 1:2] - 1
        points = torch.stack([px, py], -1)
        boxes = _regress(boxes, reg)
        pick = torch.from_numpy(nms_min(boxes[:, :4].cpu().numpy(), boxes[:, 4].cpu().numpy(), 0.7))
        return boxes[pick.to(boxes.device)], points[pick.to(boxes.device)]
