"""The three MTCNN networks (PNet, RNet, ONet) with facenet-pytorch's key names (docs/ALIGNMENT.md §2.2,
docs/WEIGHTS.md §12).

Inputs are normalised RGB ``(x − 127.5) / 128``. Max pooling uses ceil mode; before the dense
layers RNet and ONet flatten in (x, y, channel) order (the TensorFlow/Caffe layout the weights
were trained with). Every network returns face probabilities from a softmax over 2 classes, index
1 being "face".
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

#: The converted weights shipped with the package (MIT; licence notice in data/, docs/ALIGNMENT.md §2.1).
MTCNN_WEIGHTS = Path(__file__).with_name("data") / "mtcnn.safetensors"


def _flatten_xyc(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) → (N, W·H·C) in (x, y, channel) order."""
    return x.permute(0, 3, 2, 1).reshape(len(x), -1)


class PNet(nn.Module):
    """Proposal network: fully convolutional; (N,3,H,W), H,W ≥ 12 → (regression (N,4,h,w),
    probabilities (N,2,h,w)); each output cell is a 12x12 window with stride 2."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refinement network: (N,3,24,24) → (regression (N,4), probabilities (N,2))."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu4(self.dense4(_flatten_xyc(self.prelu3(self.conv3(x)))))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output network: (N,3,48,48) → (regression (N,4), landmarks (N,10) as 5 x then 5 y
    relative to the box, probabilities (N,2))."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(_flatten_xyc(self.prelu4(self.conv4(x)))))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


def load_mtcnn_networks(path: str | Path | None = None, device="cpu") -> tuple[PNet, RNet, ONet]:
    """PNet, RNet and ONet in eval mode, float32, from a safetensors file with ``pnet.``,
    ``rnet.`` and ``onet.`` key prefixes (default: the weights shipped with the package).

    Raises:
        MissingWeightFileError / WeightMismatchError: missing file or keys/shapes that do not fit.
    """
    from ..weights.safe_load import read_state_dict
    from ..weights.state_checks import load_checked

    path = Path(path) if path is not None else MTCNN_WEIGHTS
    state = read_state_dict(path, "MTCNN weights")
    with torch.random.fork_rng(devices=[]):  # their random init is overwritten: keep the global generator untouched
        nets = (PNet(), RNet(), ONet())
    for name, net in zip(("pnet", "rnet", "onet"), nets):
        part = {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")}
        load_checked(net, part, file=path, component=f"MTCNN {name}")
        net.to(device=device, dtype=torch.float32).eval()
    return nets
