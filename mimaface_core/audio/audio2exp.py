"""Audio2Exp: expression coefficients from speech (SadTalker ``SimpleWrapperV2``).

Source: SadTalker ``src/audio2exp_models/networks.py`` (``SimpleWrapperV2``) and
``src/audio2exp_models/audio2exp.py`` (``Audio2Exp.test``). Per video frame: the Wav2Lip encoder's
512-vector of the frame's mel window, the reference expression (64) and the blink ratio (1) go
through one linear layer to 64 expression coefficients (BFM09 / Deep3DFaceRecon ``exp``).
The official test runs chunks of 10 frames; frames are independent, so any chunking gives the
same result (within float rounding).
"""

from __future__ import annotations

import torch
from torch import nn

from .encoder import Wav2LipAudioEncoder

EXP_DIM = 64
EMB_DIM = 512


class Audio2ExpNet(nn.Module):
    """``SimpleWrapperV2``: keys ``audio_encoder.*`` and ``mapping1.{weight,bias}`` (577 → 64)."""

    def __init__(self):
        super().__init__()
        self.audio_encoder = Wav2LipAudioEncoder()
        self.mapping1 = nn.Linear(EMB_DIM + EXP_DIM + 1, EXP_DIM)

    def forward(self, mels: torch.Tensor, ref_exp: torch.Tensor, ratio: torch.Tensor,
                return_embedding: bool = False):
        """Expression per frame.

        Args:
            mels: (n, 80, 16) or (n, 1, 80, 16) float mel windows.
            ref_exp: (n, 64) reference expression of each frame (the source's, or a reference
                video's for reference blinks).
            ratio: (n,) or (n, 1) blink ratio in [0, 1] (0 = eyes as the reference, 1 = closed).
            return_embedding: also return the (n, 512) audio embedding.

        Returns:
            (n, 64) float expression coefficients (and the embedding when asked).
        """
        emb = self.audio_encoder(mels.reshape(len(mels), 1, *mels.shape[-2:]))
        exp = self.mapping1(torch.cat([emb, ref_exp.reshape(len(emb), -1), ratio.reshape(len(emb), 1)], 1))
        return (exp, emb) if return_embedding else exp
