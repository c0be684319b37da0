"""One optimisation step of each training stage, equal to the release's loop body (docs/SAMPLING.md §10,
``train_image.py`` / ``train_video.py``; the train_step fixture README lists it step by step).

1. latents = VAE posterior mode × 0.18215 of the target frames, render latents likewise;
2. CLIP ``last_hidden_state`` of the source (train mode);
3. the MIA module on every frame: CLIP tokens, identity features and the coefficient slices;
4. DDPM noising on the SD1.5 betas (diffusers' ``DDPMScheduler.add_noise``), t ~ U{0..999};
5. condition channels 8..12: image stage, with probability 0.01 the clean latents and mask 1; video
   stage (ICA), k = 0 with probability 0.5, else k ~ U{1..4}: clean latents + 0.1·noise on the first
   k frames, mask 1 there;
6. appearance dropout (probability 0.1 per step): the MIA output becomes zeros; video: the context
   is the mean over the frames;
7. ε-prediction with Min-SNR(γ = 5) weighted MSE (diffusers' ``compute_snr``), over every frame.

Every random draw is a :class:`StepDraws`, made by :func:`draw_step` from generators we seed, or
given (the parity tests feed the release's stored draws).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

from ..morphable.coefficients import ANGLES, EXP, GAMMA, GAZE, TEX, TRANSLATION

LATENT_SCALE = 0.18215
#: Release values: Min-SNR γ, P(clean condition) in the image stage, P(appearance dropout),
#: P(ICA k > 0), the largest k, the ICA noise scale.
SNR_GAMMA = 5.0
P_CLEAN_CONDITION = 0.01
P_APPEARANCE_DROPOUT = 0.1
P_ICA = 0.5
MAX_ICA_FRAMES = 4
ICA_NOISE = 0.1


@dataclass
class TrainBatch:
    """One batch, as the release's data pipeline hands it to the loop.

    Attributes:
        clip_pixel_values: (B, 3, 224, 224) float32 CLIPImageProcessor pixels of the source crop.
        vae_mode_target: (B, F, 4, h, w) float32 SD VAE posterior mode of the target frames (unscaled).
        vae_mode_render: (B, F, 4, h, w) float32 the same of the renders of the blended 3DMM face.
        coeffs: (B·F, 261) float32 blended 3DMM coefficients, frame-major within each sample (row b·F + f).
        identity: (B, 25088) float32 CurricularFace deep features of the source (docs/ALIGNMENT.md §5).
        labels: (B,) int64 identity labels (one per training video) for the identity loss; optional.
    """

    clip_pixel_values: torch.Tensor
    vae_mode_target: torch.Tensor
    vae_mode_render: torch.Tensor
    coeffs: torch.Tensor
    identity: torch.Tensor
    labels: torch.Tensor | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(B, F)."""
        return tuple(self.vae_mode_target.shape[:2])

    def to(self, device) -> "TrainBatch":
        return TrainBatch(*(None if t is None else t.to(device) for t in (
            self.clip_pixel_values, self.vae_mode_target, self.vae_mode_render, self.coeffs, self.identity, self.labels)))


@dataclass
class StepDraws:
    """Every random draw of one step.

    Attributes:
        noise: ε, shaped like the latents: (B·F, 4, h, w) image stage, (B, 4, F, h, w) video stage.
        timesteps: (B,) int64 in 0..999.
        clean_condition: image stage: the 1 % branch (clean target latents + mask 1 in channels 8..12).
        k: video stage: the ICA frame count (0..4).
        ica_noise: video stage: (B, 4, k, h, w) noise on the ICA latents (None when k = 0).
        dropout: the appearance dropout (MIA output → zeros).
    """

    noise: torch.Tensor
    timesteps: torch.Tensor
    clean_condition: bool = False
    k: int = 0
    ica_noise: torch.Tensor | None = None
    dropout: bool = False


def draw_step(stage: str, latent_shape: tuple[int, ...], generator: torch.Generator, rng: random.Random,
              device: str | torch.device = "cpu", max_ica_frames: int = MAX_ICA_FRAMES) -> StepDraws:
    """The draws of one step, in the release's order of decisions (image: clean-condition then
    dropout; video: ICA, k, then dropout), from a seeded torch generator and ``random.Random``.

    Args:
        latent_shape: the latents' shape ((B·F, 4, h, w) or (B, 4, F, h, w)).
    """
    noise = torch.randn(latent_shape, generator=generator).to(device)
    b = latent_shape[0]
    timesteps = torch.randint(0, 1000, (b,), generator=generator).to(device)
    if stage == "image":
        clean = rng.random() < P_CLEAN_CONDITION
        return StepDraws(noise, timesteps, clean_condition=clean, dropout=rng.random() < P_APPEARANCE_DROPOUT)
    k = rng.randint(1, max_ica_frames) if rng.random() < P_ICA else 0
    frames = latent_shape[2]
    k = min(k, frames)
    ica = torch.randn((b, 4, k, *latent_shape[3:]), generator=generator).to(device) if k else None
    return StepDraws(noise, timesteps, k=k, ica_noise=ica, dropout=rng.random() < P_APPEARANCE_DROPOUT)


@dataclass
class StepOptions:
    """How the step differs from the release (defaults = the release).

    Attributes:
        train_clip_layers: video stage: the last two CLIP layers get gradients (the release's never do).
        per_sample_clip_tokens: with B > 1 and F > 1, each sample's frames get its own CLIP tokens; the
            release tiles the batch's tokens (``.repeat(1, F, 1, 1)``), so frames get other samples'
            tokens. False = the release.
    """

    train_clip_layers: bool = False
    per_sample_clip_tokens: bool = False


@dataclass
class StepOutput:
    """The loss and the intermediates of one step (names as the train_step fixture's ``out.*``)."""

    loss: torch.Tensor
    out: dict[str, torch.Tensor] = field(default_factory=dict)
    clip_tokens: torch.Tensor | None = None


def ddpm_scheduler():
    """diffusers' DDPMScheduler on the SD1.5 betas (scaled_linear 0.00085 → 0.012, 1000 steps)."""
    from diffusers import DDPMScheduler

    from ..sampling.schedulers import SD15_BETAS

    return DDPMScheduler(**SD15_BETAS)


def min_snr_weights(scheduler, timesteps: torch.Tensor, gamma: float = SNR_GAMMA) -> tuple[torch.Tensor, torch.Tensor]:
    """(SNR, min(SNR, γ)/SNR) per sample for ε-prediction (Hang et al. 2023; diffusers' compute_snr)."""
    from diffusers.training_utils import compute_snr

    snr = compute_snr(scheduler, timesteps)
    weights = torch.stack([snr, gamma * torch.ones_like(snr)], dim=1).min(dim=1)[0] / snr
    return snr, weights


def forward_step(models, batch: TrainBatch, draws: StepDraws, options: StepOptions = StepOptions(),
                 scheduler=None) -> StepOutput:
    """The loss of one step (no backward).

    Args:
        models: :class:`.models.TrainModels` with ``set_trainable`` applied.
        batch: :class:`TrainBatch`. draws: :class:`StepDraws` for this batch.

    Returns:
        :class:`StepOutput`: ``loss`` (0-dim) and the intermediates (latents, render_latents,
        noisy_latents, gt_image_latents, gt_mask, clip_last_hidden_state, mim_output,
        encoder_hidden_states, unet_input, pred, target, snr, mse_loss_weights, mse_per_sample).

    Raises:
        ValueError: shapes that do not fit together (named).
    """
    stage = models.stage
    b, f = batch.shape
    if stage == "image" and f != 1:
        raise ValueError(f"the image stage trains on single frames, got {f} frames per sample.")
    if batch.coeffs.shape[0] != b * f:
        raise ValueError(f"coeffs has {batch.coeffs.shape[0]} rows, expected B·F = {b * f}.")
    scheduler = scheduler or ddpm_scheduler()
    out: dict[str, torch.Tensor] = {}
    h, w = batch.vae_mode_target.shape[-2:]
    if stage == "image":
        latents = (batch.vae_mode_target * LATENT_SCALE).reshape(b * f, 4, h, w)
        render = (batch.vae_mode_render * LATENT_SCALE).reshape(b * f, 4, h, w)
    else:
        latents = (batch.vae_mode_target * LATENT_SCALE).permute(0, 2, 1, 3, 4)
        render = (batch.vae_mode_render * LATENT_SCALE).permute(0, 2, 1, 3, 4)
    out["latents"], out["render_latents"] = latents, render

    clip_grad = stage == "image" or options.train_clip_layers
    with torch.set_grad_enabled(clip_grad and torch.is_grad_enabled()):
        clip_tokens = models.clip(pixel_values=batch.clip_pixel_values).last_hidden_state
    out["clip_last_hidden_state"] = clip_tokens
    if options.per_sample_clip_tokens:
        tokens = clip_tokens.repeat_interleave(f, dim=0)
    else:
        tokens = clip_tokens.repeat(f, 1, 1)  # the release's .repeat(1, F, 1, 1): batch-major tiling
    identity = batch.identity.repeat_interleave(f, dim=0)
    c = batch.coeffs
    mim_out = models.mim(tokens, identity, c[:, GAZE], c[:, EXP], c[:, TEX], c[:, GAMMA], c[:, ANGLES], c[:, TRANSLATION])
    out["mim_output"] = mim_out

    noise, t = draws.noise, draws.timesteps
    if tuple(noise.shape) != tuple(latents.shape):
        raise ValueError(f"draws.noise is {tuple(noise.shape)}, the latents are {tuple(latents.shape)}.")
    noisy = scheduler.add_noise(latents, noise, t)
    out["noisy_latents"] = noisy
    if stage == "image":
        if draws.clean_condition:
            cond, mask = latents, torch.ones_like(latents[:, :1])
        else:
            cond, mask = torch.zeros_like(latents), torch.zeros_like(latents[:, :1])
    else:
        cond, mask = torch.zeros_like(latents), torch.zeros_like(latents[:, :1])
        if draws.k:
            cond[:, :, :draws.k] = latents[:, :, :draws.k] + ICA_NOISE * draws.ica_noise
            mask[:, :, :draws.k] = 1
    out["gt_image_latents"], out["gt_mask"] = cond, mask

    context = torch.zeros_like(mim_out) if draws.dropout else mim_out
    if stage == "video":
        context = context.reshape(b, f, *context.shape[1:]).mean(dim=1)
    out["encoder_hidden_states"] = context
    unet_input = torch.cat([noisy, render, cond, mask], dim=1)
    out["unet_input"] = unet_input
    hidden = context.repeat_interleave(f, dim=0) if stage == "video" else context
    pred = models.unet(unet_input, t, encoder_hidden_states=hidden, return_dict=False)[0]
    out["pred"], out["target"] = pred, noise

    snr, weights = min_snr_weights(scheduler, t)
    mse = torch.nn.functional.mse_loss(pred.float(), noise.float(), reduction="none")
    mse = mse.mean(dim=list(range(1, mse.ndim)))
    loss = (mse * weights).mean()
    out.update(snr=snr, mse_loss_weights=weights, mse_per_sample=mse, loss=loss)
    return StepOutput(loss, out, clip_tokens)


def make_optimizer(parameters, lr: float = 1e-5, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                   kind: str = "adamw", fused: bool | None = None):
    """The release's optimizer: torch AdamW (lr 1e-5, β 0.9/0.999, ε 1e-8, weight decay 1e-2), one
    group; ``kind="adamw8bit"`` takes bitsandbytes' AdamW8bit (when installed).

    Args:
        fused: torch's fused AdamW kernel (same update, a few times faster on CPU; None = torch's
            default, the release's for-loop/foreach implementation).

    Raises:
        RuntimeError: ``adamw8bit`` without bitsandbytes. ValueError: unknown kind.
    """
    params = [p for p in parameters]
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, fused=fused)
    if kind == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError as exc:
            raise RuntimeError("--optimizer adamw8bit needs bitsandbytes (pip install bitsandbytes; CUDA only).") from exc
        return bnb.optim.AdamW8bit(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {kind!r}; use adamw or adamw8bit.")


def optimizer_step(loss: torch.Tensor, parameters: list[torch.nn.Parameter], optimizer,
                   max_grad_norm: float | None = None) -> float | None:
    """Backward, optional gradient clipping, one optimizer step, zero the gradients.

    Args:
        max_grad_norm: clip the total norm of the gradients to this; None clips nothing (the
            release: its clip_grad_norm_ receives an exhausted iterator).

    Returns:
        The total gradient norm before clipping (None without clipping).
    """
    loss.backward()
    norm = None
    if max_grad_norm is not None:
        norm = float(torch.nn.utils.clip_grad_norm_([p for p in parameters if p.grad is not None], max_grad_norm))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return norm
