"""The paper's identity contrastive loss (MIMAFace, arXiv 2409.15179, §3 "Identity Contrastive Loss",
Fig. 4). The released training code has no such loss (docs/NUMERICS.md §17); this is a reimplementation.

What the paper describes: the source image is augmented photometrically
(:mod:`mimaface_core.training.augment`); the CLIP class token of each (augmented) source image is
its ID token; a memory bank keeps the ID tokens of previous batches; an InfoNCE-style loss pulls
tokens of the same identity together and pushes tokens of other identities apart; the term is added
to the diffusion loss with a weight::

    total = diffusion_loss + id_loss_weight · L_id          (--id-loss-weight; 0 = the release)

With weight 0 the training loop should not compute the term at all (the release's behaviour). The
paper's own text was not available offline to this implementation; the choices it leaves open are
made as follows, each with its source:

* ID token: the class token ``last_hidden_state[:, 0]`` of the CLIP vision tower (paper Fig. 4:
  "class token"), taken, like every CLIP token of this package, after the last encoder layer and
  without ``post_layernorm`` (docs/SAMPLING.md §2) — see :func:`clip_id_tokens`.
* Normalisation: tokens are L2-normalised, similarities are cosines (SimCLR, Chen et al. 2020; MoCo,
  He et al. 2020; SupCon, Khosla et al. 2020).
* Loss: InfoNCE (Oord et al., "Representation Learning with Contrastive Predictive Coding", 2018) in
  its supervised multi-positive form L_out (SupCon, Khosla et al., "Supervised Contrastive
  Learning", NeurIPS 2020, eq. 2): every other token with the same identity label is a positive
  (the other augmented view, other frames of the same video in the batch, and bank tokens of the
  same video); the denominator holds every other batch token and every bank token (positives
  included, the anchor itself excluded). Formula in :func:`identity_contrastive_loss`.
* Temperature: ``DEFAULT_TEMPERATURE = 0.07``, the value of MoCo (He et al., "Momentum Contrast for
  Unsupervised Visual Representation Learning", CVPR 2020) and InstDisc (Wu et al. 2018), also the
  default of the SupCon reference code.
* Memory bank: a FIFO queue of past tokens as in MoCo (He et al. 2020), but holding the tokens of
  the trained encoder itself with their labels, without a momentum encoder — the cross-batch memory
  of XBM (Wang et al., "Cross-Batch Memory for Embedding Learning", CVPR 2020), which shows such
  embeddings drift slowly enough to be reused (MIMAFace trains CLIP at lr 1e-5). Bank tokens are
  detached (no gradient), pushed after the loss of the step is computed (MoCo's enqueue order), and
  only in training mode. ``DEFAULT_BANK_SIZE = 4096`` tokens (MoCo's queue is 65536 for ImageNet's
  1.28 M images; 4096 is ~500 steps of 4 sources × 2 views, a window in which CLIP changes little).
* Identity labels: one per training video (the video's index in the dataset), since the released
  data is grouped by video id (docs/SAMPLING.md §10) and a source frame and its augmentations show the person of
  its video. Two videos of the same person are then treated as different identities (false
  negatives); when the dataset knows the speaker (VoxCeleb2 ``idXXXXX``) pass that id instead.
* Anchors without any positive (a video seen once, not in the bank) are left out of the average;
  a batch with none gives an exact 0 that still belongs to the graph (``backward`` works).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DEFAULT_BANK_SIZE",
    "DEFAULT_TEMPERATURE",
    "IDTokenBank",
    "IdentityContrastiveLoss",
    "clip_id_tokens",
    "identity_contrastive_loss",
]

#: InfoNCE temperature τ (MoCo, He et al. 2020; InstDisc, Wu et al. 2018).
DEFAULT_TEMPERATURE = 0.07
#: Number of ID tokens the memory bank keeps (see the module docstring).
DEFAULT_BANK_SIZE = 4096


def _describe(value: object) -> object:
    """A tensor's shape, else the type name (for error messages)."""
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


def clip_id_tokens(last_hidden_state: torch.Tensor) -> torch.Tensor:
    """The ID token of each image: the CLIP class token (paper §3, Fig. 4).

    Args:
        last_hidden_state: (B, 1 + N, D) ``CLIPVisionModel`` output (``last_hidden_state``, no
            post-LayerNorm; (B, 257, 1024) for the released ViT-L/14 at 224 px), any float dtype.

    Returns:
        (B, D) ``last_hidden_state[:, 0]``, same dtype and device, still in the autograd graph.

    Raises:
        ValueError: ``last_hidden_state`` is not 3-D with at least one token.
    """
    if not isinstance(last_hidden_state, torch.Tensor) or last_hidden_state.ndim != 3:
        shape = _describe(last_hidden_state)
        raise ValueError(f"last_hidden_state must be a (B, tokens, D) tensor; got {shape}.")
    if last_hidden_state.shape[1] < 1:
        raise ValueError("last_hidden_state has no tokens (shape[1] == 0); the class token is index 0.")
    return last_hidden_state[:, 0]


def _check_tokens(tokens: torch.Tensor, name: str = "tokens") -> None:
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2:
        shape = _describe(tokens)
        raise ValueError(f"{name} must be a 2-D (B, D) tensor of ID tokens; got {shape}.")
    if not tokens.is_floating_point():
        raise ValueError(f"{name} must be a float tensor; got dtype {tokens.dtype}.")


def _check_labels(labels: torch.Tensor, count: int, name: str = "labels") -> torch.Tensor:
    """Validated labels as int64 (shape (count,))."""
    if not isinstance(labels, torch.Tensor) or labels.ndim != 1:
        shape = _describe(labels)
        raise ValueError(f"{name} must be a 1-D tensor of integer identity labels; got {shape}.")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"{name} must have an integer dtype; got {labels.dtype}.")
    if labels.shape[0] != count:
        raise ValueError(
            f"{name} has {labels.shape[0]} entries but there are {count} tokens; give one label per token."
        )
    return labels.long()


class IDTokenBank(nn.Module):
    """Fixed-size FIFO memory bank (ring buffer) of L2-normalised ID tokens and their labels.

    The MoCo queue (He et al. 2020) / XBM cross-batch memory (Wang et al. 2020) of the paper's
    identity contrastive loss (§3, Fig. 4). Its buffers are part of ``state_dict()`` so a resumed
    training continues with the same bank; they follow ``.to(device)``.

    Args:
        size: how many tokens it keeps (> 0); pushing more overwrites the oldest.
        dim: token dimension D (> 0), e.g. 1024 for the released CLIP ViT-L/14.

    Save and resume with the inherited ``state_dict()`` / ``load_state_dict()``; loading a bank of
    another size or dim raises ValueError. Buffers: ``token_buffer`` (size, D) float32,
    ``label_buffer`` (size,) int64, ``pointer`` (next slot to write) and ``filled`` (number of valid
    entries), both int64 scalars.
    """

    def __init__(self, size: int = DEFAULT_BANK_SIZE, dim: int = 1024):
        super().__init__()
        if int(size) <= 0:
            raise ValueError(f"size must be a positive number of tokens; got {size}.")
        if int(dim) <= 0:
            raise ValueError(f"dim must be a positive token dimension; got {dim}.")
        self.size = int(size)
        self.dim = int(dim)
        self.register_buffer("token_buffer", torch.zeros(self.size, self.dim, dtype=torch.float32))
        self.register_buffer("label_buffer", torch.full((self.size,), -1, dtype=torch.int64))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.int64))
        self.register_buffer("filled", torch.zeros((), dtype=torch.int64))

    def __len__(self) -> int:
        return int(self.filled)

    def _order(self) -> torch.Tensor:
        """Slot indices of the valid entries, oldest first."""
        n = int(self.filled)
        start = (int(self.pointer) - n) % self.size
        return (start + torch.arange(n, device=self.token_buffer.device)) % self.size

    def tokens(self) -> torch.Tensor:
        """(len, D) float32 L2-normalised tokens, oldest first (a copy, no gradient)."""
        return self.token_buffer[self._order()]

    def labels(self) -> torch.Tensor:
        """(len,) int64 identity labels matching :meth:`tokens`, oldest first."""
        return self.label_buffer[self._order()]

    @torch.no_grad()
    def push(self, tokens: torch.Tensor, labels: torch.Tensor) -> None:
        """Append tokens (detached, L2-normalised, stored as float32) and their labels.

        Args:
            tokens: (B, D) float ID tokens, any device (moved to the bank's).
            labels: (B,) integer identity labels.

        When the bank is full the oldest entries are overwritten; when B > size only the last
        ``size`` tokens are kept.

        Raises:
            ValueError: ``tokens`` not (B, D) float with the bank's D, or ``labels`` not B integers.
        """
        _check_tokens(tokens)
        if tokens.shape[1] != self.dim:
            raise ValueError(f"tokens have dimension {tokens.shape[1]} but the bank holds dimension {self.dim}.")
        labels = _check_labels(labels, tokens.shape[0])
        if tokens.shape[0] == 0:
            return
        tokens = F.normalize(tokens.detach().float(), dim=1)[-self.size:]
        labels = labels[-self.size:]
        n = tokens.shape[0]
        slots = (int(self.pointer) + torch.arange(n, device=self.token_buffer.device)) % self.size
        self.token_buffer[slots] = tokens.to(self.token_buffer.device)
        self.label_buffer[slots] = labels.to(self.label_buffer.device)
        self.pointer.fill_((int(self.pointer) + n) % self.size)
        self.filled.fill_(min(int(self.filled) + n, self.size))

    def reset(self) -> None:
        """Empty the bank."""
        self.pointer.zero_()
        self.filled.zero_()
        self.label_buffer.fill_(-1)
        self.token_buffer.zero_()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Check the saved bank against this one before loading (also when loaded as a submodule).

        Raises:
            ValueError: a saved buffer has another shape than this bank's (another size or dim), or
                the saved ``pointer``/``filled`` are out of range.
        """
        expected = {"token_buffer": (self.size, self.dim), "label_buffer": (self.size,), "pointer": (), "filled": ()}
        for key, shape in expected.items():
            value = state_dict.get(prefix + key)
            if value is not None and tuple(value.shape) != shape:
                raise ValueError(
                    f"state_dict[{prefix + key!r}] has shape {tuple(value.shape)}, this bank expects {shape} "
                    f"(size {self.size}, dim {self.dim}); build the bank with the saved size and dim."
                )
        pointer, filled = state_dict.get(prefix + "pointer"), state_dict.get(prefix + "filled")
        if pointer is not None and not 0 <= int(pointer) < self.size:
            raise ValueError(f"state_dict[{prefix + 'pointer'!r}] = {int(pointer)} is outside [0, {self.size}).")
        if filled is not None and not 0 <= int(filled) <= self.size:
            raise ValueError(f"state_dict[{prefix + 'filled'!r}] = {int(filled)} is outside [0, {self.size}].")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}, filled={len(self)}"


def identity_contrastive_loss(
    tokens: torch.Tensor,
    labels: torch.Tensor,
    bank: IDTokenBank | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
) -> torch.Tensor:
    """Supervised InfoNCE over ID tokens, with an optional memory bank (paper §3, Fig. 4).

    With z the L2-normalised tokens of the batch (B of them), b the bank tokens (M of them, no
    gradient), C = the other batch tokens and all bank tokens (for anchor i: every batch token except
    i, plus every bank token), P(i) = the members of C with the label of i::

        L_i = -1/|P(i)| · sum over p in P(i) of  log( exp(z_i·c_p / τ) / sum over a in C of exp(z_i·c_a / τ) )
        L   = mean of L_i over the anchors i with |P(i)| > 0

    This is SupCon's L_out (Khosla et al. 2020, eq. 2), i.e. InfoNCE (Oord et al. 2018) with
    several positives; bank entries act as extra positives/negatives like MoCo's queue (He et al.
    2020). Only the batch tokens are anchors. The similarities are computed in float32.

    Args:
        tokens: (B, D) float ID tokens (e.g. :func:`clip_id_tokens`), any scale (normalised here).
        labels: (B,) integer identity labels (one per training video).
        bank: optional :class:`IDTokenBank` with the same D; not modified here.
        temperature: τ > 0 (default 0.07).

    Returns:
        A float32 scalar ≥ 0 with gradient to ``tokens``; exactly 0 (still in the graph) when no
        anchor has a positive.

    Raises:
        ValueError: ``tokens`` not 2-D float, ``labels`` not (B,) integers, ``bank`` dimension not
            D, or ``temperature`` ≤ 0.
    """
    _check_tokens(tokens)
    labels = _check_labels(labels, tokens.shape[0]).to(tokens.device)
    if not float(temperature) > 0:
        raise ValueError(f"temperature must be > 0; got {temperature}.")
    if bank is not None and bank.dim != tokens.shape[1]:
        raise ValueError(f"bank holds tokens of dimension {bank.dim} but tokens have dimension {tokens.shape[1]}.")

    z = F.normalize(tokens.float(), dim=1)
    candidates, candidate_labels = z, labels
    if bank is not None and len(bank) > 0:
        candidates = torch.cat([z, bank.tokens().to(z.device)])
        candidate_labels = torch.cat([labels, bank.labels().to(labels.device)])

    b = z.shape[0]
    is_self = torch.zeros(b, candidates.shape[0], dtype=torch.bool, device=z.device)
    is_self[:, :b] = torch.eye(b, dtype=torch.bool, device=z.device)
    positive = (labels[:, None] == candidate_labels[None, :]) & ~is_self
    n_positive = positive.sum(dim=1)
    has_positive = n_positive > 0
    if not bool(has_positive.any()):
        return z.sum() * 0.0

    logits = (z @ candidates.T / float(temperature)).masked_fill(is_self, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    per_anchor = -log_prob.masked_fill(~positive, 0.0).sum(dim=1) / n_positive.clamp(min=1)
    return per_anchor[has_positive].mean()


class IdentityContrastiveLoss(nn.Module):
    """The identity contrastive loss of one training step, with its memory bank (paper §3, Fig. 4).

    forward(source_tokens, augmented_tokens, labels): the ID tokens of the source images and of
    their photometric augmentations are contrasted together and against the bank
    (:func:`identity_contrastive_loss` on the 2B tokens, labels repeated), then — in training mode
    only — pushed to the bank. The bank is a submodule, so it is saved in ``state_dict()`` and moves
    with ``.to()``. The loss weight (``--id-loss-weight``) is applied by the training loop.

    Args:
        dim: token dimension D (1024 for the released CLIP ViT-L/14).
        bank_size: tokens the bank keeps (default 4096; 0 disables the bank).
        temperature: τ > 0 (default 0.07).
    """

    def __init__(self, dim: int = 1024, bank_size: int = DEFAULT_BANK_SIZE, temperature: float = DEFAULT_TEMPERATURE):
        super().__init__()
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be > 0; got {temperature}.")
        if int(bank_size) < 0:
            raise ValueError(f"bank_size must be >= 0; got {bank_size}.")
        self.temperature = float(temperature)
        self.bank = IDTokenBank(bank_size, dim) if int(bank_size) > 0 else None

    def forward(
        self, source_tokens: torch.Tensor, augmented_tokens: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """The loss of one step.

        Args:
            source_tokens: (B, D) float ID tokens of the source images (e.g. :func:`clip_id_tokens`).
            augmented_tokens: (B, D) float ID tokens of their augmented views, row i from source i
                (or any second view of the same identity).
            labels: (B,) integer identity labels, one per training video.

        Returns:
            A float32 scalar (see :func:`identity_contrastive_loss`).

        Raises:
            ValueError: the two token tensors differ in shape, or any check of
                :func:`identity_contrastive_loss` fails.
        """
        _check_tokens(source_tokens, "source_tokens")
        _check_tokens(augmented_tokens, "augmented_tokens")
        if source_tokens.shape != augmented_tokens.shape:
            raise ValueError(
                f"source_tokens {tuple(source_tokens.shape)} and augmented_tokens {tuple(augmented_tokens.shape)} "
                "must have the same (B, D) shape."
            )
        labels = _check_labels(labels, source_tokens.shape[0])
        tokens = torch.cat([source_tokens, augmented_tokens.to(source_tokens.dtype)])
        all_labels = torch.cat([labels, labels])
        loss = identity_contrastive_loss(tokens, all_labels, bank=self.bank, temperature=self.temperature)
        if self.training and self.bank is not None:
            self.bank.push(tokens, all_labels)
        return loss

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
