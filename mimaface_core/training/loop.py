"""The training loop behind ``python -m mimaface_core train``: data, the step of the stage, the
identity loss, periodic checkpoints in the released layout, resume (docs/SAMPLING.md §10; paper §3.4).

Determinism: step s draws its batch, its noise, timesteps and decisions from generators seeded with
``seed · 1000003 + s``, so a resumed run continues with exactly the losses of an uninterrupted one.

Several GPUs: start the same command with ``torchrun`` (:mod:`.distributed`); the losses shown are
the mean over the processes.

Defaults that differ from the release (each has an option restoring the release's behaviour):
``train_clip_layers`` (video stage: the last two CLIP layers really train), ``max_grad_norm`` 1.0
(really clips), ``per_sample_clip_tokens`` (batches > 1 keep each sample's own CLIP tokens).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from ..errors import MIMAFaceError

log = logging.getLogger("mimaface")

MIXED_PRECISION = ("no", "fp16", "bf16")


@dataclass
class TrainOptions:
    """Everything ``train`` can change.

    Attributes:
        stage: "image" (UNet, MIM, CLIP) or "video" (motion modules, conv_in, MIM; CLIP's last two layers).
        data: folder of videos or frame folders. weights: the snapshot to start from. out: checkpoints go here.
        steps: optimisation steps in all (a resumed run counts from its checkpoint).
        lr: AdamW learning rate (1e-5 released). batch_size: samples per step.
        frames: frames per sample (image stage 1; video stage default 10, the release's video_length).
        mixed_precision: "no" (fp32), "fp16" (autocast + GradScaler, CUDA) or "bf16" (autocast).
        resume: continue from the latest checkpoint in ``out``.
        seed: seeds every draw (777 released).
        checkpoint_every: steps between checkpoints (the last step always writes one).
        max_grad_norm: clip the gradient norm to this (None or 0: clip nothing, the release).
        train_clip_layers: video stage: train the last two CLIP layers (False: the release).
        per_sample_clip_tokens: False: the release's tiling of CLIP tokens across a batch.
        id_loss_weight: weight of the identity contrastive loss (0: the release, not computed).
        gradient_checkpointing: in the UNet (and CLIP when it trains), as the release.
        optimizer: "adamw" (released) or "adamw8bit" (bitsandbytes).
        device: torch device. motion_file: video stage motion modules (default the snapshot's 3dunet).
        vae: SD VAE for the data (default ``<weights>/sd-vae-ft-mse``). max_frames: frames read per video.
        cache: the data cache folder (default ``<out>/data_cache``).
    """

    stage: str
    data: Path
    weights: Path
    out: Path
    steps: int = 1000
    lr: float = 1e-5
    batch_size: int = 1
    frames: int | None = None
    mixed_precision: str = "no"
    resume: bool = False
    seed: int = 777
    checkpoint_every: int = 500
    max_grad_norm: float | None = 1.0
    train_clip_layers: bool = True
    per_sample_clip_tokens: bool = True
    id_loss_weight: float = 0.0
    gradient_checkpointing: bool = True
    optimizer: str = "adamw"
    device: str = "cpu"
    motion_file: Path | None = None
    vae: Path | None = None
    max_frames: int | None = None
    cache: Path | None = None

    @property
    def clip_frames(self) -> int:
        return 1 if self.stage == "image" else (self.frames or 10)


@dataclass
class TrainResult:
    """What a run did: the loss of every step it ran (index = step − first_step), its first step,
    the last checkpoint written."""

    losses: list[float] = field(default_factory=list)
    first_step: int = 0
    checkpoint: Path | None = None


def _step_seed(seed: int, step: int) -> int:
    return seed * 1000003 + step


def load_data_networks(options: TrainOptions):
    """The frozen data networks of the snapshot (detector, D3DFR, CurricularFace, VAE, BFM)."""
    from ..face.detectors import make_detector
    from ..morphable.bfm import load_bfm09
    from ..weights.components import load_d3dfr, load_identity_encoder
    from ..weights.layout import ReleasedLayout
    from ..weights.vae_file import load_vae
    from .data import DataNetworks

    layout = ReleasedLayout(Path(options.weights))
    vae_path = options.vae or layout.vae
    if not Path(vae_path).exists():
        raise MIMAFaceError(f"no VAE: {vae_path} is missing; give --vae FILE (an SD1.5 VAE) or download the snapshot.")
    device = options.device
    return DataNetworks(make_detector("mtcnn", device=device), load_d3dfr(layout.weight_file("d3dfr"), device),
                        load_identity_encoder(layout.weight_file("curricularface"), device),
                        load_vae(vae_path, device).eval(), load_bfm09(layout.bfm).to(device))


def train(options: TrainOptions, progress: Callable[[int, int, float], None] | None = None,
          networks=None) -> TrainResult:
    """Run the training (see the module docstring).

    Args:
        progress: called as ``progress(step, steps, loss)`` after each step (may raise to stop).
        networks: the data networks, when already loaded (tests reuse them).

    Raises:
        MIMAFaceError / FaceNotFoundError: bad data, weights or options (before any step).
    """
    from .checkpoint import latest_checkpoint, read_trainer_state, write_checkpoint
    from .data import prepare_dataset, sample_batch, usable
    from .distributed import rank_seed, setup, wrap
    from .identity_loss import IdentityContrastiveLoss, clip_id_tokens
    from .models import load_training_models, set_trainable
    from .step import StepOptions, draw_step, make_optimizer

    start_step, root, state = 0, Path(options.weights), None
    if options.resume:
        ckpt = latest_checkpoint(options.out)
        if ckpt is None:
            raise MIMAFaceError(f"--resume: no checkpoint-* folder in {options.out}.")
        state = read_trainer_state(ckpt)
        if state.get("stage") != options.stage:
            raise MIMAFaceError(f"--resume: {ckpt.name} is a {state.get('stage')}-stage checkpoint, not {options.stage}.")
        start_step, root = int(state["step"]), ckpt
        log.info("resuming from %s (step %d)", ckpt, start_step)
    dist = setup(options.device)
    if dist.world > 1:
        if options.id_loss_weight > 0:
            raise MIMAFaceError("--id-loss-weight is not supported with several processes yet; train on one GPU "
                                "or set it to 0.")
        options = replace(options, device=dist.device)
        log.info("process %d of %d on %s", dist.rank, dist.world, dist.device)
    nets = networks or load_data_networks(options)

    def prepare():
        return prepare_dataset(options.data, options.cache or Path(options.out) / "data_cache", nets,
                               max_frames=options.max_frames, root_tag=str(Path(options.weights).resolve()))

    videos = prepare() if dist.main else None
    dist.barrier()  # rank 0 fills the cache; the others read it
    videos = videos if videos is not None else prepare()
    frames = options.clip_frames
    videos = usable(videos, frames)
    resume_video = options.resume and options.stage == "video"
    models = load_training_models(root, options.stage, options.motion_file if not options.resume else None,
                                  options.device, resume=resume_video)
    step_options = StepOptions(train_clip_layers=options.train_clip_layers,
                               per_sample_clip_tokens=options.per_sample_clip_tokens)
    trainable = set_trainable(models, options.train_clip_layers)
    if options.gradient_checkpointing:
        models.unet.enable_gradient_checkpointing()
        if any(n.startswith("clip.") for n, _ in trainable):
            models.clip.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    run_step = wrap(models, dist)
    params = [p for _, p in trainable]
    fused = True if options.optimizer == "adamw" and torch.device(options.device).type in ("cpu", "cuda") else None
    optimizer = make_optimizer(params, lr=options.lr, kind=options.optimizer, fused=fused)
    id_loss = None
    if options.id_loss_weight > 0:
        if not any(n.startswith("clip.") for n, _ in trainable):
            raise MIMAFaceError("--id-loss-weight needs a CLIP that trains: the image stage, or the video stage "
                                "with --train-clip-layers.")
        id_loss = IdentityContrastiveLoss(dim=models.clip.config.hidden_size).to(options.device)
    scaler = torch.amp.GradScaler("cuda") if options.mixed_precision == "fp16" else None
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        if id_loss is not None and state.get("bank") is not None:
            id_loss.load_state_dict(state["bank"])
        if scaler is not None and state.get("scaler") is not None:
            scaler.load_state_dict(state["scaler"])
    autocast = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(options.mixed_precision)
    device_type = torch.device(options.device).type
    result = TrainResult(first_step=start_step)
    motion_file = None if options.resume else options.motion_file
    for step in range(start_step, options.steps):
        seed = rank_seed(_step_seed(options.seed, step), dist.rank)
        rng, gen = random.Random(seed), torch.Generator().manual_seed(seed)
        batch, sources = sample_batch(videos, options.batch_size, frames, nets, rng)
        batch = batch.to(options.device)
        h, w = batch.vae_mode_target.shape[-2:]
        b = options.batch_size
        shape = (b, 4, h, w) if options.stage == "image" else (b, 4, frames, h, w)
        draws = draw_step(options.stage, shape, gen, rng, options.device)
        with torch.autocast(device_type, dtype=autocast, enabled=autocast is not None):
            loss, intermediates = run_step(batch, draws, step_options)
            if id_loss is not None:
                loss = loss + options.id_loss_weight * _identity_term(models, intermediates, sources, batch.labels,
                                                                      id_loss, gen)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if options.max_grad_norm:
            torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], options.max_grad_norm)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        value = float(loss.detach())
        if value != value:
            raise MIMAFaceError(f"step {step + 1}: the loss is NaN; lower --lr or use --mixed-precision no/bf16.")
        value = dist.mean(value)
        result.losses.append(value)
        if progress is not None:
            progress(step + 1, options.steps, value)
        done = step + 1
        if (done % options.checkpoint_every == 0 or done == options.steps) and dist.main:
            trainer_state = {"step": done, "stage": options.stage, "optimizer": optimizer.state_dict(),
                             "bank": id_loss.state_dict() if id_loss is not None else None,
                             "scaler": scaler.state_dict() if scaler is not None else None}
            info = {"step": done, "processes": dist.world, "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()},
                    "losses": result.losses[-100:]}
            result.checkpoint = write_checkpoint(models, root, options.out, done, trainer_state, info, motion_file)
            log.info("wrote %s", result.checkpoint)
        if done % options.checkpoint_every == 0 or done == options.steps:
            dist.barrier()
    dist.close()
    return result


def _identity_term(models, out: dict, sources: torch.Tensor, labels: torch.Tensor, id_loss, generator) -> torch.Tensor:
    """The identity contrastive loss of the batch's sources (their CLIP tokens from the step's
    intermediates) and their photometric augmentations."""
    from ..networks.appearance_encoder import clip_preprocess
    from .augment import photometric_augment

    images = sources.permute(0, 3, 1, 2).float() / 255
    augmented = photometric_augment(images, generator)
    pixels = torch.cat([clip_preprocess((a.permute(1, 2, 0) * 255).round().clamp(0, 255).to(torch.uint8).numpy())
                        for a in augmented]).to(out["clip_last_hidden_state"].device)
    aug_tokens = models.clip(pixel_values=pixels).last_hidden_state
    tokens = out["clip_last_hidden_state"]
    return id_loss(clip_id_tokens(tokens), clip_id_tokens(aug_tokens), labels.to(tokens.device))
