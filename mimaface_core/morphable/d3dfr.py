"""The D3DFR 3DMM coefficient regressor (``models/D3DFR/netG_epoch_25.pth``). docs/WEIGHTS.md §9,
docs/ALIGNMENT.md §7.

A ResNet-50 v1.5 without ``fc`` (torchvision's topology and key names, written here because
torchvision has no build for every platform this pack runs on and is not a dependency of the core),
global average pooling and eight 1x1 convolution heads, whose outputs are concatenated into 261
coefficients. The head container keeps the released, misspelled name ``fianl_layers``.
"""

from __future__ import annotations

import torch
from torch import nn

#: Output widths of the eight heads, in order (docs/WEIGHTS.md §9): id, exp, tex, angles, gamma, (tx, ty),
#: tz, eye/gaze.
HEAD_SIZES: tuple[int, ...] = (80, 64, 80, 3, 27, 2, 1, 4)
#: Input side in pixels (the 256 similarity crop).
INPUT_SIZE = 256


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3x3 conv), torchvision key names."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50Backbone(nn.Module):
    """ResNet-50 feature extractor: (B,3,H,W) → (B,2048,1,1) after global average pooling."""

    def __init__(self, layers: tuple[int, ...] = (3, 4, 6, 3), widths: tuple[int, ...] = (64, 128, 256, 512)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_ch = 64
        for idx, (n, width) in enumerate(zip(layers, widths)):
            stride = 1 if idx == 0 else 2
            out_ch = width * Bottleneck.expansion
            down = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))
            blocks = [Bottleneck(in_ch, width, stride, down)] + [Bottleneck(out_ch, width) for _ in range(n - 1)]
            setattr(self, f"layer{idx + 1}", nn.Sequential(*blocks))
            in_ch = out_ch
        self.out_channels = in_ch
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x)


class D3DFRRegressor(nn.Module):
    """The released D3DFR network ("ResNet50_nofc"), 334 state-dict entries.

    Input: (B, 3, 256, 256) RGB in [-1, 1], the 256 similarity crop (no ImageNet normalisation).
    Output: (B, 261) float coefficients laid out as in docs/ALIGNMENT.md §7 (see ``mimaface_core.morphable``
    for the slices). Use in eval mode (BatchNorm running statistics).
    """

    def __init__(self, head_sizes: tuple[int, ...] = HEAD_SIZES):
        super().__init__()
        self.backbone = ResNet50Backbone()
        self.fianl_layers = nn.ModuleList(nn.Conv2d(self.backbone.out_channels, n, 1) for n in head_sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(x)
        return torch.cat([head(features) for head in self.fianl_layers], dim=1).flatten(1)
