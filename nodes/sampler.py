"""ICA Clip Sampler: a thin node over ``mimaface_core.sampling.animation.animate_latents``."""

from __future__ import annotations

import logging

import torch

from mimaface_core.networks.vae import VAE_SCALING_FACTOR
from mimaface_core.sampling.ica import CLIP_LENGTH, MAX_CLIP_LENGTH, OVERLAP
from mimaface_core.sampling.presets import EXACT, PRESET_NAMES, describe
from mimaface_core.sampling.schedulers import SCHEDULER_NAMES

from . import _comfy
from .types import APPEARANCE, CATEGORY, MODEL

log = logging.getLogger(__name__)
NOISE_MODES = ("same_every_clip", "fresh_per_clip")
_ENCODE_CHUNK = 1  # one frame at a time: progress and Cancel per frame


class ICAClipSampler:
    """Denoises the animation clip by clip, each clip conditioned on the previous one's last frames."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("One latent per driving frame (SD1.5 latent space, unscaled like every ComfyUI LATENT): "
                       "decode with VAE Decode and the sd-vae-ft-mse VAE.",)
    FUNCTION = "sample"
    DESCRIPTION = ("Video mode: clips of clip_length frames advancing by clip_length − overlap; each clip starts from "
                   "the previous clip's last overlap latents (ICA), so there are no seams. Image mode: one frame at "
                   "a time with the 2D UNet. Defaults are the released settings. While it runs, the node shows the "
                   "current clip's frames as a grid of live previews (ComfyUI's preview method; none turns them off).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (MODEL, {"tooltip": "From Load MIMAFace Model."}),
            "appearance": (APPEARANCE, {"tooltip": "From MIA Appearance Encode."}),
            "render": ("IMAGE", {"tooltip": "The render output of Render Coeff Image (same frames as the appearance)."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True,
                             "tooltip": "Noise seed (0 = released)."}),
            "steps": ("INT", {"default": 25, "min": 1, "max": 200, "tooltip": "Denoising steps per clip (25 released)."}),
            "cfg": ("FLOAT", {"default": 5.0, "min": 1.0, "max": 20.0, "step": 0.1, "round": 0.01,
                              "tooltip": "Classifier-free guidance against a zero appearance context (5.0 released)."}),
            "scheduler": (list(SCHEDULER_NAMES), {"default": "euler", "tooltip": "euler is the released scheduler."}),
            "clip_length": ("INT", {"default": CLIP_LENGTH, "min": 2, "max": MAX_CLIP_LENGTH,
                                    "tooltip": "Frames per clip (12 released; at most 32)."}),
            "overlap": ("INT", {"default": OVERLAP, "min": 0, "max": MAX_CLIP_LENGTH - 1,
                                "tooltip": "Frames carried from one clip to the next (ICA; 3 released). Must be "
                                "smaller than clip_length."}),
            "noise": (list(NOISE_MODES), {"default": NOISE_MODES[0], "tooltip": "same_every_clip: every clip starts "
                      "from the same seeded noise (released). fresh_per_clip: new noise for each clip."}),
        }, "optional": {
            "vae": ("VAE", {"tooltip": "A core VAE (VAE Loader) to encode the renders with; use the same one in VAE "
                    "Decode (sd-vae-ft-mse). Without it the VAE of Load MIMAFace Model encodes them."}),
            "preset": (list(PRESET_NAMES), {"default": PRESET_NAMES[0], "tooltip": "Speed preset. "
                       + "; ".join(describe(n) for n in PRESET_NAMES) + ". UNet passes per output frame on a long "
                       "video: exact 66.7, balanced <= 33.3, fast <= 13.3, draft <= 6.67. steps and scheduler "
                       "override the preset when set to other values than the release's (25, euler)."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, clip_length=None, overlap=None, **_):
        if clip_length is not None and overlap is not None and overlap >= clip_length:
            return (f"overlap ({overlap}) must be smaller than clip_length ({clip_length}): each clip carries "
                    "overlap frames from the previous one and needs at least one new frame.")
        return True

    def sample(self, model, appearance, render, seed, steps, cfg, scheduler, clip_length, overlap, noise, vae=None,
               preset=PRESET_NAMES[0]):
        from mimaface_core.sampling import SamplingOptions
        from mimaface_core.sampling.animation import animate_latents
        from mimaface_core.sampling.conditioning import (
            ClipConditioner,
            SourceAppearance,
        )
        from mimaface_core.sampling.cost import SamplingStats
        from mimaface_core.sampling.preview import latent_grid
        from mimaface_core.sampling.sampler import float32_copy

        blended = appearance.blended
        if len(render) != len(blended):
            raise ValueError(f"render has {len(render)} frames but the appearance {len(blended)}: "
                             "connect the outputs of the same Render Coeff Image run.")
        valid = self.VALIDATE_INPUTS(clip_length=clip_length, overlap=overlap)
        if valid is not True:
            raise ValueError(valid)
        # A widget always has a value: at the release's value it leaves the preset's (docs/SAMPLING.md §10).
        options = SamplingOptions(None if steps == EXACT["steps"] else steps, cfg,
                                  None if scheduler == EXACT["scheduler"] else scheduler, seed,
                                  "same" if noise == NOISE_MODES[0] else "fresh", clip_length, overlap, preset=preset)
        n = len(blended)
        video = model.model.mode == "video"
        progress = _comfy.Progress(n)
        latents = self._encode_renders(model, render, vae, progress)
        progress = _comfy.Progress(1, _comfy.latent_previewer())
        on_denoised = (lambda x0: progress.preview(latent_grid(x0))) if progress.previewing else None
        with model.use("denoiser", "mim") as m:
            conditioner = ClipConditioner(m.mim, SourceAppearance(appearance.tokens, appearance.identity), blended,
                                          lambda index: latents[list(index)], video)
            stats = SamplingStats()
            out = [lat for _, lat, _ in animate_latents(
                m.denoiser, conditioner, options, video=video, on_progress=progress,
                fp32_unet=float32_copy(m.denoiser), fp32_conditioner=conditioner.in_float32, stats=stats,
                on_denoised=on_denoised)]
        log.info("MIMAFace ICA Clip Sampler (preset %s): %s", preset, stats.line())
        return ({"samples": torch.cat(out) / VAE_SCALING_FACTOR},)

    @staticmethod
    def _encode_renders(model, render, vae, progress):
        """Render latents of every frame (× 0.18215), before the UNet is loaded: with the core VAE
        (its posterior mean, as ComfyUI's VAE Encode) or ours. Progress and Cancel per chunk."""
        from mimaface_core.networks.vae import encode_render_images

        n, out = len(render), []
        if vae is not None:
            for start in range(0, n, _ENCODE_CHUNK):
                out.append(vae.encode(render[start:start + _ENCODE_CHUNK, :, :, :3]).float().cpu() * VAE_SCALING_FACTOR)
                progress(min(start + _ENCODE_CHUNK, n), n)
            return torch.cat(out)
        with model.use("vae") as m:
            for start in range(0, n, _ENCODE_CHUNK):
                out.append(encode_render_images(m.vae, render[start:start + _ENCODE_CHUNK]))
                progress(min(start + _ENCODE_CHUNK, n), n)
        return torch.cat(out)
