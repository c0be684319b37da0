"""The sampling cases of official_tiny: the clip loop and image mode against the release."""

from __future__ import annotations

import pytest
import torch

import official_tiny as ot
from mimaface_core.sampling import SamplingOptions, plan_clips, sample_image, sample_video


def _options(case: str) -> SamplingOptions:
    p = ot.cases()[case]["params"]
    return SamplingOptions(steps=p["num_inference_steps"], guidance=p["guidance_scale"],
                           clip_length=p.get("frames_per_clip", 12), overlap=p.get("prev_frame_num", 3),
                           skip_unused_clips=False)  # every released clip, to compare each one


def test_clip_plan_matches_the_release():
    p = ot.cases()["sampling_video"]["params"]
    clips = plan_clips(p["num_frames"], p["frames_per_clip"], p["prev_frame_num"])
    assert [c.start for c in clips] == p["clip_starts"]
    assert [list(c.frames) for c in clips] == p["clip_frame_index"]
    kept = [c.frames[j] for c in clips for j in c.keep]
    assert kept == list(range(p["num_frames"]))
    skipped = plan_clips(p["num_frames"], p["frames_per_clip"], p["prev_frame_num"], skip_unused=True)
    assert skipped == [c for c in clips[:len(skipped)]] and all(not c.keep for c in clips[len(skipped):])
    assert [c.frames[j] for c in skipped for j in c.keep] == kept


@pytest.mark.parametrize("noise_source", ["stored", "seeded"])
def test_sampling_image(image_model, noise_source):
    options = _options("sampling_image")
    noise = None
    if noise_source == "stored":
        noise = ot.inp("sampling_image", "init_noise")
    got = sample_image(image_model.denoiser, ot.inp("sampling_image", "render_latents"),
                       ot.inp("sampling_image", "context"), options, noise=noise)
    ot.check("sampling_image", "latents", got)


def test_sampling_video(video_model):
    case = "sampling_video"
    options = _options(case)
    frames = ot.inp(case, "render_latents_frames")
    contexts = ot.inp(case, "contexts")
    noise = ot.inp(case, "init_noise")
    stitched, seen = [], []

    def inputs(clip):
        render = frames[list(clip.frames)]
        ot.check(case, f"clip{clip.index}_render_latents", render.transpose(0, 1)[None])
        return render, contexts[clip.index]

    for clip, latents in sample_video(video_model.denoiser, len(frames), inputs, options, noise=noise):
        ot.check(case, f"clip{clip.index}_latents", latents)
        stitched.append(latents[list(clip.keep)])
        seen.append(clip.index)
    assert seen == list(range(len(contexts)))
    ot.check(case, "latents_stitched", torch.cat(stitched))


def test_video_sampler_seeds_every_clip_with_the_stored_noise(video_model, monkeypatch):
    """Without given noise, sample_video starts every clip (noise "same", released) from the noise
    drawn from the seed, which equals the release's stored draw; with the same inputs the stored-noise
    run above then covers the numbers (the UNet is not run again here)."""
    from mimaface_core.sampling import sampler

    case = "sampling_video"
    options = _options(case)
    frames, contexts = ot.inp(case, "render_latents_frames"), ot.inp(case, "contexts")
    starts = []

    def record(unet, noise, condition, context, opts, steps, stats=None):
        starts.append(noise.clone())
        return torch.zeros(1, 4, *noise.shape[2:])

    monkeypatch.setattr(sampler, "denoise", record)
    clips = list(sampler.sample_video(video_model.denoiser, len(frames),
                                      lambda clip: (frames[list(clip.frames)], contexts[clip.index]), options))
    assert len(starts) == len(clips) == len(contexts)
    for noise in starts:
        assert torch.equal(noise, ot.inp(case, "init_noise"))


@pytest.mark.parametrize("case", ["sampling_image", "sampling_video"])
def test_seeding_draws_the_stored_noise(case):
    stored = ot.inp(case, "init_noise")
    assert torch.equal(torch.randn(stored.shape, generator=torch.Generator("cpu").manual_seed(_options(case).seed)), stored)
