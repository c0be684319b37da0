"""CurricularFace IR-101 identity encoder (``models/ArcFace/CurricularFace_Backbone.pth``). docs/WEIGHTS.md §10.

MIMAFace uses the deep features of the body (before ``output_layer``): (B, 512, 7, 7) for a 112x112
input, flattened channel-major to (B, 25088). ``output_layer`` is kept so the released file loads
strictly; the pipeline never runs it (the evaluation's CSIM does, :meth:`IR101.embedding`).
"""

from __future__ import annotations

import torch
from torch import nn

#: Units per stage of IR-101 and their widths (docs/WEIGHTS.md §10).
IR101_STAGES: tuple[tuple[int, int], ...] = ((64, 3), (128, 13), (256, 30), (512, 3))
INPUT_SIZE = 112


class BottleneckIR(nn.Module):
    """IR unit: BN → 3x3 conv → PReLU → 3x3 conv (stride s) → BN, plus a shortcut.

    The shortcut is a 1x1 max-pool of stride s when the width does not change, else a 1x1 conv
    (stride s, no bias) + BN.
    """

    def __init__(self, in_ch: int, depth: int, stride: int):
        super().__init__()
        if in_ch == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_ch, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_ch),
            nn.Conv2d(in_ch, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class IR101(nn.Module):
    """CurricularFace ``Backbone(112, 100, 'ir')`` with the released key names (672 entries).

    Args:
        stages: (width, units) per stage; the first unit of each stage has stride 2.
        embedding: size of the unused output embedding.
    """

    def __init__(self, stages: tuple[tuple[int, int], ...] = IR101_STAGES, embedding: int = 512):
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        last = stages[-1][0]
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(last),
            nn.Dropout(),
            nn.Flatten(),
            nn.Linear(last * 7 * 7, embedding),
            nn.BatchNorm1d(embedding, affine=False),
        )
        units, in_ch = [], 64
        for depth, n in stages:
            units.append(BottleneckIR(in_ch, depth, 2))
            units += [BottleneckIR(depth, depth, 1) for _ in range(n - 1)]
            in_ch = depth
        self.body = nn.Sequential(*units)

    def deep_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 112, 112) RGB in [-1, 1] → (B, 25088) body output flattened channel-major."""
        return self.body(self.input_layer(x)).flatten(1)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 112, 112) RGB in [-1, 1] → (B, 512) CurricularFace embedding (``output_layer``).

        The face-recognition output (BN, dropout, linear, BN), used for the CSIM metric on
        ArcFace-aligned crops; MIMAFace's MIM uses :meth:`deep_features` instead.
        """
        return self.output_layer(self.body(self.input_layer(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`deep_features` (the only output MIMAFace uses)."""
        return self.deep_features(x)


def identity_input(src512: torch.Tensor, m256: torch.Tensor) -> torch.Tensor:
    """The released identity crop (docs/ALIGNMENT.md §5).

    Warp the 512 crop with its 256 matrix into a 512x512 canvas (zero padding), bilinear 512→256,
    rows [0,224) and columns [16,240), bilinear 224→112. The face sits at half the usual ArcFace
    scale in the top-left quarter: this is what the MIM's identity projection was trained on.

    Args:
        src512: (B, 3, 512, 512) RGB in [-1, 1].
        m256: (B, 2, 3) or (2, 3) matrices, 512-crop → 256-crop pixels.

    Returns:
        (B, 3, 112, 112) in [-1, 1] (0 where outside the source crop).
    """
    from ..media.warp import warp_affine

    canvas = warp_affine(src512, m256, (512, 512))
    half = torch.nn.functional.interpolate(canvas, size=(256, 256), mode="bilinear", align_corners=False)
    crop = half[:, :, :224, 16:240]
    return torch.nn.functional.interpolate(crop, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
