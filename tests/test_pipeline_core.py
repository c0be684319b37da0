"""The one pipeline: per-clip conditioning with the source projected once and overlap frames
reused (same numbers as computing every clip from scratch), progress and cancel per frame, the
float32 NaN fallback on a copy, core paste-back through the CLI, and the sampler's input check."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import pytest
import torch
from PIL import Image

import official_tiny as ot
from alignment_fixture import entries, media_path
from mimaface_core.__main__ import main
from mimaface_core.errors import SamplingCancelled
from mimaface_core.media.video_in import iter_video_frames, video_info
from mimaface_core.networks.mia import clip_context
from mimaface_core.sampling import SamplingOptions, plan_clips
from mimaface_core.sampling.animation import animate_latents
from mimaface_core.sampling.conditioning import ClipConditioner, SourceAppearance

PHOTO = media_path(entries("photo")[0])
TALKING = Path(__file__).resolve().parents[1] / "example_media" / "driving_talking.mp4"


def _mim_inputs(frames: int):
    torch.manual_seed(3)
    tokens, identity = ot.inp("mim", "clip_tokens")[:1], ot.inp("mim", "identity")[:1]
    blended = torch.randn(frames, 261) * 0.3
    return tokens, identity, blended


def test_projected_source_gives_the_same_mia(video_model):
    tokens, identity, blended = _mim_inputs(5)
    mim = video_model.mim
    from mimaface_core.morphable.coefficients import ANGLES, EXP, GAMMA, GAZE, TEX, TRANSLATION

    parts = [blended[:, s] for s in (GAZE, EXP, TEX, GAMMA, ANGLES, TRANSLATION)]
    with torch.inference_mode():
        full = mim(tokens.expand(5, -1, -1), identity.expand(5, -1), *parts)
        projected = mim.forward_projected(mim.project_source(tokens, identity), *parts)
    torch.testing.assert_close(projected, full, atol=2e-5, rtol=1e-5)


def test_conditioner_reuses_overlap_frames_with_the_same_numbers(video_model):
    tokens, identity, blended = _mim_inputs(9)
    asked: dict[str, list] = {"reused": [], "fresh": []}

    def latents(record):
        def make(index):
            asked[record].extend(index)
            return torch.stack([torch.full((4, 2, 2), float(i)) for i in index])
        return make

    options = SamplingOptions(clip_length=4, overlap=2)
    clips = plan_clips(9, options.clip_length, options.overlap)
    cond = ClipConditioner(video_model.mim, SourceAppearance(tokens, identity), blended, latents("reused"))
    fresh = ClipConditioner(video_model.mim, SourceAppearance(tokens, identity), blended, latents("fresh"))
    assert cond.frames_to_condition(clips, options.overlap) == 9
    for clip in clips:
        lat, ctx = cond(clip, keep_for_next=options.overlap)
        fresh._cache.clear()
        ref_lat, ref_ctx = fresh(clip)
        torch.testing.assert_close(lat, ref_lat)
        torch.testing.assert_close(ctx, ref_ctx, atol=1e-5, rtol=1e-5)
        assert len(cond._cache) <= options.overlap, "only the overlap is carried"
    assert asked["reused"] == list(range(9)), "every frame encoded once, in order"
    assert len(asked["fresh"]) == sum(len(set(c.frames)) for c in clips) > 9


def test_progress_counts_every_frame_and_cancel_stops_within_one_frame(video_model):
    tokens, identity, blended = _mim_inputs(5)
    unet_calls = []
    hook = video_model.denoiser.register_forward_hook(lambda *a: unet_calls.append(1))
    progress = []

    def latents(index):
        return torch.zeros(len(index), 4, 16, 16)

    cond = ClipConditioner(video_model.mim, SourceAppearance(tokens, identity), blended, latents)
    options = SamplingOptions(steps=2, clip_length=4, overlap=2)
    try:
        with pytest.raises(SamplingCancelled):
            for _ in animate_latents(video_model.denoiser, cond, options, video=True,
                                     on_progress=lambda d, t: progress.append((d, t)),
                                     cancel=lambda: len(progress) >= 2):
                pass
    finally:
        hook.remove()
    clips = plan_clips(5, 4, 2, options.skip_unused_clips)
    total = len(clips) * options.steps + 5
    assert progress == [(1, total), (2, total)], "one unit per conditioned frame, then it stopped"
    assert not unet_calls, "cancelled during the conditioning: no UNet step ran"


def test_nan_in_low_precision_samples_the_clip_again_in_float32(video_model, caplog):
    import copy

    unet = copy.deepcopy(video_model.denoiser).to(torch.bfloat16)
    unet.register_forward_hook(lambda mod, inp, out: (torch.full_like(out[0], float("nan")),) + tuple(out[1:])
                               if next(mod.parameters()).dtype == torch.bfloat16 else None)
    tokens, identity, blended = _mim_inputs(3)
    cond = ClipConditioner(video_model.mim, SourceAppearance(tokens, identity), blended,
                           lambda index: torch.zeros(len(index), 4, 16, 16))
    made = []

    def fp32():
        made.append(1)
        return copy.deepcopy(unet).float()

    with caplog.at_level(logging.WARNING):
        out = list(animate_latents(unet, cond, SamplingOptions(steps=1, clip_length=3, overlap=1), video=True,
                                   fp32_unet=fp32))
    latents = torch.cat([o[1] for o in out])
    assert torch.isfinite(latents).all() and latents.shape == (3, 4, 16, 16)
    assert made == [1] and next(unet.parameters()).dtype == torch.bfloat16
    assert any("float32 on a temporary copy" in r.getMessage() for r in caplog.records)


def test_cli_paste_back_writes_the_full_frames(animate_root, tmp_path):
    out = tmp_path / "pasted.mp4"
    driver = TALKING
    assert main(["animate", "--source", str(PHOTO), "--driving", str(driver), "--weights", str(animate_root),
                 "--out", str(out), "--limit", "3", "--steps", "1", "--clip-length", "3", "--overlap", "1",
                 "--paste-back", "--device", "cpu"]) == 0
    info = video_info(driver)
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 3 and frames[0].shape == (info.height, info.width, 3)
    original = next(iter_video_frames(driver))
    corner = (abs(frames[0][:8, :8].astype(int) - original[:8, :8].astype(int))).mean()
    assert corner < 6, "outside the face the driving frame is kept (up to H.264 loss)"


def test_sampler_rejects_overlap_not_below_clip_length():
    from nodes.sampler import ICAClipSampler

    message = ICAClipSampler.VALIDATE_INPUTS(clip_length=6, overlap=6)
    assert isinstance(message, str) and "overlap (6)" in message and "clip_length (6)" in message
    assert ICAClipSampler.VALIDATE_INPUTS(clip_length=6, overlap=5) is True
