"""The MIA module: motion- and identity-modulated appearance tokens (released as ``mim.pth``).

Paper: MIMAFace §3.2 (Motion-Identity modulated Appearance feature learning, MIA). The released
weights implement it as the "MIMAFacePostfuseModule(768)": seven condition tokens (identity, gaze,
expression, texture, lighting, angles, translation) are projected to the UNet's context width and
put in front of the projected CLIP tokens; three pre-LayerNorm residual blocks of single-head
self-attention mix all 264 tokens; a final LayerNorm. docs/SAMPLING.md §3; the paper's cross-attention
formulation (Eq. 1) is not what the weights were trained with (docs/SAMPLING.md §3, "Paper vs release").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Names and widths of the condition inputs, in token order after the identity token (docs/SAMPLING.md §3).
COEFF_TOKENS: tuple[tuple[str, int], ...] = (
    ("gaze", 4),
    ("exp", 64),
    ("tex", 80),
    ("gamma", 27),
    ("angles", 3),
    ("translation", 3),
)


class SingleHeadSelfAttention(nn.Module):
    """One-head self-attention with a fused ``c_qkv`` projection (docs/SAMPLING.md §3, step 3).

    q, k, v are the contiguous thirds of ``c_qkv(x)``; logits are ``q·k/√width`` (both scaled by
    ``width^(-1/4)``), softmax in float32, no dropout, no mask.
    """

    def __init__(self, width: int):
        super().__init__()
        self.width = width
        self.c_qkv = nn.Linear(width, 3 * width)
        self.c_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, width) → (B, T, width)."""
        q, k, v = self.c_qkv(x).split(self.width, dim=-1)
        scale = self.width ** -0.25
        logits = torch.einsum("btc,bsc->bts", q * scale, k * scale)
        weights = torch.softmax(logits.float(), dim=-1).to(v.dtype)
        return self.c_proj(torch.einsum("bts,bsc->btc", weights, v))


class MLP(nn.Module):
    """width → 4·width → exact (erf) GELU → width."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.c_fc = nn.Linear(width, hidden)
        self.c_proj = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))


def _layer_norm(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """LayerNorm evaluated in float32 whatever the module dtype (docs/SAMPLING.md §3). The weights are taken
    to the input's device (a host that loads the module partially may leave them offloaded)."""
    weight, bias = (t.to(x.device, torch.float32) for t in (norm.weight, norm.bias))
    return F.layer_norm(x.float(), norm.normalized_shape, weight, bias, norm.eps).to(x.dtype)


class ResidualBlock(nn.Module):
    """Pre-LN block: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``."""

    def __init__(self, width: int, mlp_width: int, eps: float):
        super().__init__()
        self.attn = SingleHeadSelfAttention(width)
        self.ln_1 = nn.LayerNorm(width, eps=eps)
        self.mlp = MLP(width, mlp_width)
        self.ln_2 = nn.LayerNorm(width, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(_layer_norm(self.ln_1, x))
        return x + self.mlp(_layer_norm(self.ln_2, x))


class Mapper(nn.Module):
    """The stack of residual blocks (``mapper.resblocks.{i}``)."""

    def __init__(self, width: int, layers: int, mlp_width: int, eps: float):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualBlock(width, mlp_width, eps) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class MIMModule(nn.Module):
    """The MIA module with the released ``mim.pth`` layout (54 tensors at the default sizes).

    Args:
        width: context width of the UNet's cross-attention (768 for SD1.5).
        clip_dim: width of the CLIP vision tokens (1024 for ViT-L/14).
        identity_dim: length of the flattened CurricularFace deep features (512·7·7 = 25088).
        layers: residual blocks in the mapper (3).
        mlp_width: hidden width of each block's MLP (3072).
        eps: LayerNorm epsilon (1e-5).
    """

    def __init__(
        self,
        width: int = 768,
        clip_dim: int = 1024,
        identity_dim: int = 25088,
        layers: int = 3,
        mlp_width: int = 3072,
        eps: float = 1e-5,
    ):
        super().__init__()
        self.transform_dim_clip = nn.Linear(clip_dim, width)
        self.transform_dim_arcface = nn.Linear(identity_dim, width)
        for name, dim in COEFF_TOKENS:
            setattr(self, f"transform_dim_{name}", nn.Linear(dim, width))
        self.mapper = Mapper(width, layers, mlp_width, eps)
        self.layer_norm = nn.LayerNorm(width, eps=eps)

    def forward(
        self,
        clip_tokens: torch.Tensor,
        identity: torch.Tensor,
        gaze: torch.Tensor,
        exp: torch.Tensor,
        tex: torch.Tensor,
        gamma: torch.Tensor,
        angles: torch.Tensor,
        translation: torch.Tensor,
    ) -> torch.Tensor:
        """Appearance context per frame.

        Args:
            clip_tokens: (F, 257, clip_dim) CLIP ``last_hidden_state`` of the source crop.
            identity: (F, identity_dim) CurricularFace deep features of the source.
            gaze, exp, tex, gamma, angles, translation: (F, 4/64/80/27/3/3) slices of the blended
                3DMM coefficients (docs/ALIGNMENT.md §7, §11); angles in radians.

        Returns:
            (F, 7 + 257, width) tokens in the order [identity, gaze, exp, tex, gamma, angles,
            translation, clip_0 … clip_256], after the final LayerNorm. Video mode averages them
            over the clip's frames (:func:`clip_context`).
        """
        return self.forward_projected(self.project_source(clip_tokens, identity), gaze, exp, tex, gamma, angles,
                                      translation)

    def project_source(self, clip_tokens: torch.Tensor, identity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The source's projected tokens, which do not depend on the frame: computed once per source.

        Args:
            clip_tokens: (B, 257, clip_dim). identity: (B, identity_dim). B is 1 (one source) or F.

        Returns:
            (identity token (B, 1, width), CLIP tokens (B, 257, width)).
        """
        return self.transform_dim_arcface(identity)[:, None], self.transform_dim_clip(clip_tokens)

    def forward_projected(self, source: tuple[torch.Tensor, torch.Tensor], gaze: torch.Tensor, exp: torch.Tensor,
                          tex: torch.Tensor, gamma: torch.Tensor, angles: torch.Tensor,
                          translation: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` with the source already projected by :meth:`project_source` (expanded to
        the F frames when it holds one source). Same numbers, less work per frame."""
        coeffs = dict(gaze=gaze, exp=exp, tex=tex, gamma=gamma, angles=angles, translation=translation)
        f = len(gaze)
        id_token, clip_proj = (t.expand(f, -1, -1) if len(t) != f else t for t in source)
        tokens = [id_token]
        tokens += [getattr(self, f"transform_dim_{name}")(coeffs[name])[:, None] for name, _ in COEFF_TOKENS]
        tokens.append(clip_proj)
        x = self.mapper(torch.cat(tokens, dim=1))
        return _layer_norm(self.layer_norm, x)


def clip_context(per_frame: torch.Tensor) -> torch.Tensor:
    """Video-mode context of one clip: the mean over frames, (F, T, C) → (1, T, C). docs/SAMPLING.md §3."""
    return per_frame.mean(dim=0, keepdim=True)
