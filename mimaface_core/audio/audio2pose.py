"""Audio2Pose: head pose (angles and translation) from speech, SadTalker's conditional VAE.

Source: SadTalker ``src/audio2pose_models/`` (``audio2pose.py`` ``Audio2Pose.test``, ``cvae.py``
``CVAE``/``DECODER``/``ENCODER``, ``res_unet.py``, ``networks.py``, ``discriminator.py``) with the
sizes of ``src/config/auido2pose.yaml`` (sequence 32, latent 64, 46 pose styles, audio embedding
512 → 6). Fixture ``audio2coeff`` README, "audio2pose in detail".

At inference only the audio encoder and the CVAE decoder run. The CVAE encoder and the pose
discriminator (``netG.encoder``, ``netD_motion``) are training parts; they are built here only so
that the official checkpoints load strictly (every key accounted for) and can be dropped after.

Windowing of a T-frame clip (frame 0 is the reference frame, its motion is zero): ``n = T − 1``
frames in windows of 32 from frame 1; if ``n % 32 = re ≠ 0`` one more window on the LAST 32
frames (overlapping the previous one; front-padded with copies of its first embedding when fewer
than 32 frames exist), of which only the last ``re`` outputs are kept. Each window draws its own
latent ``z`` (1, 64); the official code draws ``torch.randn`` on the CPU default generator with no
seed, here the caller passes a seeded generator (same draws for the same seed) or the latents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .encoder import Wav2LipAudioEncoder
from .mel import mel_windows

SEQ_LEN = 32
LATENT = 64
NUM_POSE_STYLES = 46
POSE_DIM = 6
AUDIO_EMB = 512
AUDIO_OUT = 6


class ResidualConv(nn.Module):
    """BN-ReLU-Conv-BN-ReLU-Conv plus a Conv-BN skip (``networks.ResidualConv``)."""

    def __init__(self, cin: int, cout: int, stride, padding: int):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, 3, stride, padding),
            nn.BatchNorm2d(cout), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1))
        self.conv_skip = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_block(x) + self.conv_skip(x)


class Upsample(nn.Module):
    """Transposed convolution (``networks.Upsample``)."""

    def __init__(self, cin: int, cout: int, kernel, stride):
        super().__init__()
        self.upsample = nn.ConvTranspose2d(cin, cout, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsample(x)


class ResUnet(nn.Module):
    """The U-Net over a (B, 1, 32, 6) pose sequence, ending in a sigmoid (``res_unet.ResUnet``);
    strides (2, 1) halve time only."""

    def __init__(self, channel: int = 1, filters: tuple[int, ...] = (32, 64, 128, 256)):
        super().__init__()
        f = filters
        self.input_layer = nn.Sequential(nn.Conv2d(channel, f[0], 3, padding=1), nn.BatchNorm2d(f[0]), nn.ReLU(),
                                         nn.Conv2d(f[0], f[0], 3, padding=1))
        self.input_skip = nn.Sequential(nn.Conv2d(channel, f[0], 3, padding=1))
        self.residual_conv_1 = ResidualConv(f[0], f[1], (2, 1), 1)
        self.residual_conv_2 = ResidualConv(f[1], f[2], (2, 1), 1)
        self.bridge = ResidualConv(f[2], f[3], (2, 1), 1)
        self.upsample_1 = Upsample(f[3], f[3], (2, 1), (2, 1))
        self.up_residual_conv1 = ResidualConv(f[3] + f[2], f[2], 1, 1)
        self.upsample_2 = Upsample(f[2], f[2], (2, 1), (2, 1))
        self.up_residual_conv2 = ResidualConv(f[2] + f[1], f[1], 1, 1)
        self.upsample_3 = Upsample(f[1], f[1], (2, 1), (2, 1))
        self.up_residual_conv3 = ResidualConv(f[1] + f[0], f[0], 1, 1)
        self.output_layer = nn.Sequential(nn.Conv2d(f[0], 1, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.input_layer(x) + self.input_skip(x)
        x2 = self.residual_conv_1(x1)
        x3 = self.residual_conv_2(x2)
        x4 = self.upsample_1(self.bridge(x3))
        x6 = self.upsample_2(self.up_residual_conv1(torch.cat([x4, x3], 1)))
        x8 = self.upsample_3(self.up_residual_conv2(torch.cat([x6, x2], 1)))
        return self.output_layer(self.up_residual_conv3(torch.cat([x8, x1], 1)))


def _mlp(sizes: list[int], final_sigmoid: bool) -> nn.Sequential:
    """Linear layers ``L<i>`` with ReLU ``A<i>`` between them (and a final ``sigmoid``), as the CVAE."""
    mlp = nn.Sequential()
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mlp.add_module(f"L{i}", nn.Linear(a, b))
        if i + 2 < len(sizes) or not final_sigmoid:
            mlp.add_module(f"A{i}", nn.ReLU())
        else:
            mlp.add_module("sigmoid", nn.Sigmoid())
    return mlp


class PoseDecoder(nn.Module):
    """The CVAE decoder (``cvae.DECODER``): audio embeddings of a 32-frame window, the reference
    pose, a latent and a pose style → the window's head motion relative to the reference."""

    def __init__(self, seq_len: int = SEQ_LEN, latent: int = LATENT, num_classes: int = NUM_POSE_STYLES):
        super().__init__()
        self.seq_len = seq_len
        self.resunet = ResUnet()
        self.MLP = _mlp([latent + seq_len * AUDIO_OUT + POSE_DIM, 128, seq_len * POSE_DIM], final_sigmoid=True)
        self.pose_linear = nn.Linear(POSE_DIM, POSE_DIM)
        self.linear_audio = nn.Linear(AUDIO_EMB, AUDIO_OUT)
        self.classbias = nn.Parameter(torch.zeros(num_classes, latent))

    def forward(self, audio_emb: torch.Tensor, z: torch.Tensor, pose_style: torch.Tensor, ref: torch.Tensor,
                trace: dict | None = None) -> torch.Tensor:
        """Motion of a window.

        Args:
            audio_emb: (B, 32, 512) audio embeddings. z: (B, 64) latents. pose_style: (B,) int64
                in 0..45. ref: (B, 6) reference pose (angles in radians, translation).
            trace: when a dict, receives ``mlp_out`` (B, 192) and ``resunet_out`` (B, 1, 32, 6).

        Returns:
            (B, 32, 6) float pose motion (to add to the reference pose).
        """
        b = len(z)
        audio_out = self.linear_audio(audio_emb).reshape(b, -1)
        x = self.MLP(torch.cat([ref, z + self.classbias[pose_style], audio_out], -1))
        pose_emb = self.resunet(x.reshape(b, self.seq_len, -1).unsqueeze(1))
        if trace is not None:
            trace["mlp_out"], trace["resunet_out"] = x, pose_emb
        return self.pose_linear(pose_emb.squeeze(1))


class PoseEncoder(nn.Module):
    """The CVAE encoder (``cvae.ENCODER``), used only in training: built so that checkpoints load
    strictly; it has no inference forward here."""

    def __init__(self, seq_len: int = SEQ_LEN, latent: int = LATENT, num_classes: int = NUM_POSE_STYLES):
        super().__init__()
        self.resunet = ResUnet()
        self.MLP = _mlp([192 + latent + seq_len * AUDIO_OUT + POSE_DIM, 128], final_sigmoid=False)
        self.linear_means = nn.Linear(128, latent)
        self.linear_logvar = nn.Linear(128, latent)
        self.linear_audio = nn.Linear(AUDIO_EMB, AUDIO_OUT)
        self.classbias = nn.Parameter(torch.zeros(num_classes, latent))


class CVAE(nn.Module):
    """``netG``: the encoder (training only) and the decoder."""

    def __init__(self):
        super().__init__()
        self.encoder = PoseEncoder()
        self.decoder = PoseDecoder()


class _ConvNormRelu1d(nn.Module):
    """``discriminator.ConvNormRelu`` in its 1-D BatchNorm form (training only)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel, stride, padding, bias=False)
        self.norm = nn.BatchNorm1d(cout)


class PoseSequenceDiscriminator(nn.Module):
    """``netD_motion`` (training only; built so that checkpoints load strictly)."""

    def __init__(self):
        super().__init__()
        self.seq = nn.Sequential(_ConvNormRelu1d(POSE_DIM, 256, 4, 2, 1), _ConvNormRelu1d(256, 512, 4, 2, 1),
                                 _ConvNormRelu1d(512, 1024, 3, 1, 1), nn.Conv1d(1024, 1, 3, 1, 1))


class _AudioEncoderWrapper(nn.Module):
    """``Audio2Pose.audio_encoder`` (``audio_encoder.AudioEncoder``): holds the Wav2Lip encoder as
    ``audio_encoder`` so the keys read ``audio_encoder.audio_encoder.*``."""

    def __init__(self):
        super().__init__()
        self.audio_encoder = Wav2LipAudioEncoder()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """(B, L, 80, 16) → (B, L, 512)."""
        b, n = mels.shape[:2]
        return self.audio_encoder(mels.reshape(b * n, 1, *mels.shape[-2:])).reshape(b, n, -1)


class Audio2PoseNet(nn.Module):
    """SadTalker's ``Audio2Pose`` with the official state-dict layout (``audio_encoder.*``,
    ``netG.encoder.*``, ``netG.decoder.*``, ``netD_motion.*``; 419 entries)."""

    def __init__(self):
        super().__init__()
        self.audio_encoder = _AudioEncoderWrapper()
        self.netG = CVAE()
        self.netD_motion = PoseSequenceDiscriminator()

    def drop_training_parts(self) -> "Audio2PoseNet":
        """Free the CVAE encoder and the discriminator (never used at inference). Returns self."""
        self.netG.encoder = None
        self.netD_motion = None
        return self


@dataclass(frozen=True)
class PoseWindow:
    """One decoder window: video frames ``[start, stop)`` feed it (``stop − start ≤ 32``), it is
    front-padded by ``pad`` copies of its first embedding, and its last ``keep`` outputs become
    frames ``[out_start, out_start + keep)``."""

    start: int
    stop: int
    pad: int
    keep: int
    out_start: int


def pose_windows(num_frames: int, seq_len: int = SEQ_LEN) -> list[PoseWindow]:
    """The windows of ``Audio2Pose.test`` for a ``num_frames`` clip (frame 0 is the reference)."""
    n = num_frames - 1
    div, re = divmod(n, seq_len) if n > 0 else (0, 0)
    wins = [PoseWindow(1 + k * seq_len, 1 + (k + 1) * seq_len, 0, seq_len, 1 + k * seq_len) for k in range(div)]
    if re:
        start = max(1, num_frames - seq_len)
        wins.append(PoseWindow(start, num_frames, seq_len - (num_frames - start), re, num_frames - re))
    return wins


def iter_pose_motion(net: Audio2PoseNet, mel: np.ndarray, num_frames: int, ref_pose: torch.Tensor, pose_style: int,
                     latents: Callable[[int], torch.Tensor], *, batch_windows: int = 8,
                     trace: list | None = None) -> Iterator[tuple[PoseWindow, torch.Tensor]]:
    """Run the decoder window by window (``Audio2Pose.test`` without the concatenation).

    Args:
        mel: (T_mel, 80) normalised mel of the clip. num_frames: T video frames at 25 fps.
        ref_pose: (6,) reference pose (the source's angles in radians and translation).
        pose_style: 0..45, the row of ``classbias`` added to the latent.
        latents: ``latents(k)`` gives window k's (1, 64) latent; called in window order.
        batch_windows: windows decoded together (results do not depend on it beyond rounding).
        trace: when a list, receives per window a dict with ``audio_emb`` (1, L, 512) before
            padding, ``mlp_out``, ``resunet_out`` and ``motion`` (1, 32, 6).

    Yields:
        (window, (keep, 6) float32 CPU motion of its kept frames), in frame order.

    Raises:
        ValueError: ``pose_style`` outside 0..45.
    """
    if not 0 <= int(pose_style) < NUM_POSE_STYLES:
        raise ValueError(f"pose style must be in 0..{NUM_POSE_STYLES - 1}, got {pose_style}.")
    param = next(net.netG.decoder.parameters())
    dev, dt = param.device, param.dtype
    wins = pose_windows(num_frames)
    for b0 in range(0, len(wins), batch_windows):
        group = wins[b0:b0 + batch_windows]
        z = torch.cat([latents(b0 + i).reshape(1, LATENT) for i in range(len(group))]).to(dev, dt)
        embs = []
        with torch.inference_mode():
            for w in group:
                emb = net.audio_encoder(mel_windows(mel, range(w.start, w.stop)).to(dev, dt)[None])
                if trace is not None:
                    trace.append({"audio_emb": emb.float().cpu()})
                if w.pad:
                    emb = torch.cat([emb[:, :1].expand(1, w.pad, -1), emb], 1)
                embs.append(emb)
            t: dict = {}
            motion = net.netG.decoder(torch.cat(embs), z, torch.full((len(group),), int(pose_style), device=dev),
                                      ref_pose.reshape(1, POSE_DIM).to(dev, dt).expand(len(group), -1), t)
        for i, w in enumerate(group):
            if trace is not None:
                trace[b0 + i].update(mlp_out=t["mlp_out"][i:i + 1].float().cpu(),
                                     resunet_out=t["resunet_out"][i:i + 1].float().cpu(),
                                     motion=motion[i:i + 1].float().cpu())
            yield w, motion[i, -w.keep:].float().cpu()
