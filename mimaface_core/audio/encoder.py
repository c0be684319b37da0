"""The Wav2Lip audio encoder that both SadTalker audio networks use.

Source: SadTalker ``src/audio2exp_models/networks.py`` (``Conv2d``, ``SimpleWrapperV2.audio_encoder``)
and ``src/audio2pose_models/audio_encoder.py`` (``AudioEncoder``), the Wav2Lip layout. State-dict
keys ``<i>.conv_block.0.{weight,bias}`` (conv) and ``<i>.conv_block.1.*`` (BatchNorm) are the
official ones.
"""

from __future__ import annotations

import torch
from torch import nn

#: (in, out, kernel, stride, padding, residual) of the 13 blocks.
BLOCKS: tuple[tuple[int, int, int, int | tuple[int, int], int, bool], ...] = (
    (1, 32, 3, 1, 1, False), (32, 32, 3, 1, 1, True), (32, 32, 3, 1, 1, True),
    (32, 64, 3, (3, 1), 1, False), (64, 64, 3, 1, 1, True), (64, 64, 3, 1, 1, True),
    (64, 128, 3, 3, 1, False), (128, 128, 3, 1, 1, True), (128, 128, 3, 1, 1, True),
    (128, 256, 3, (3, 2), 1, False), (256, 256, 3, 1, 1, True),
    (256, 512, 3, 1, 0, False), (512, 512, 1, 1, 0, False),
)


class ConvBlock(nn.Module):
    """Conv2d + BatchNorm2d (``conv_block``), plus the input when ``residual``, then ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride, padding: int, residual: bool):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding), nn.BatchNorm2d(cout))
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return torch.relu(out)


class Wav2LipAudioEncoder(nn.Sequential):
    """Mel windows → one 512-vector per window.

    Input (n, 1, 80, 16) float (normalised mel in [−4, 4]); output (n, 512). BatchNorm runs in
    eval mode (running statistics).
    """

    def __init__(self):
        super().__init__(*(ConvBlock(*b) for b in BLOCKS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return super().forward(x).reshape(len(x), -1)
