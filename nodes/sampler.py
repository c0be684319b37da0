"""ICA Clip Sampler."""

from __future__ import annotations

import torch

from mimaface_core.animate import encode_renders, mia_context
from mimaface_core.mia import clip_context
from mimaface_core.sampling import SamplingOptions, sample_image, sample_video
from mimaface_core.sampling.clips import CLIP_LENGTH, MAX_CLIP_LENGTH, OVERLAP, plan_clips
from mimaface_core.schedulers import SCHEDULER_NAMES
from mimaface_core.vae import VAE_SCALING_FACTOR

from . import _comfy
from .images import image_to_signed
from .wires import APPEARANCE, CATEGORY, MODEL

NOISE_MODES = ("same_every_clip", "fresh_per_clip")


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
                   "a time with the 2D UNet. Defaults are the released settings.")

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
                                "tooltip": "Frames carried from one clip to the next (ICA; 3 released)."}),
            "noise": (list(NOISE_MODES), {"default": NOISE_MODES[0], "tooltip": "same_every_clip: every clip starts "
                      "from the same seeded noise (released). fresh_per_clip: new noise for each clip."}),
        }}

    def sample(self, model, appearance, render, seed, steps, cfg, scheduler, clip_length, overlap, noise):
        blended = appearance.blended
        if len(render) != len(blended):
            raise ValueError(f"render has {len(render)} frames but the appearance {len(blended)}: "
                             "connect the outputs of the same Render Coeff Image run.")
        options = SamplingOptions(steps, cfg, scheduler, seed, "same" if noise == NOISE_MODES[0] else "fresh",
                                  clip_length, overlap)
        with model.on_device() as m:
            latents = self._run(m, appearance, render, options)
            if not torch.isfinite(latents).all() and m.dtype != torch.float32:
                print(f"[MIMAFace] {m.dtype} sampling gave NaN/inf values; running again in float32.")
                m.to(m.device, torch.float32)
                latents = self._run(m, appearance, render, options)
        return ({"samples": latents / VAE_SCALING_FACTOR},)

    @staticmethod
    def _run(m, appearance, render, options):
        vae = m.require_vae()
        n = len(appearance.blended)
        if m.mode == "image":
            progress = _comfy.Progress(n * options.steps)
            out = []
            for i in range(n):
                context = mia_context(m, appearance.tokens, appearance.identity, appearance.blended[i:i + 1])
                lat = encode_renders(vae, image_to_signed(render[i:i + 1]))
                out.append(sample_image(m.denoiser, lat, context, options,
                                        on_step=lambda d, t, i=i: progress(i * options.steps + d, n * options.steps)).cpu())
            return torch.cat(out)
        total = len(plan_clips(n, options.clip_length, options.overlap, options.skip_unused_clips)) * options.steps
        progress = _comfy.Progress(total)

        def clip_inputs(clip):
            index = list(clip.frames)
            context = clip_context(mia_context(m, appearance.tokens, appearance.identity, appearance.blended[index]))
            return encode_renders(vae, image_to_signed(render[index])), context

        kept = [latents[list(clip.keep)].cpu()
                for clip, latents in sample_video(m.denoiser, n, clip_inputs, options, on_step=progress)]
        return torch.cat(kept)
