"""Speed presets (docs/SAMPLING.md §10–§12): exact stays the release, the two identities (guidance
on every step, DeepCache N = 1) are bit for bit, an explicit option overrides its preset, the
DeepCache cache is per clip and per CFG branch, ICA works at any step count, the counted UNet
passes meet the targets, and bad options are refused before any model loads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import mimaface_core.sampling.sampler as sampler_module
from alignment_fixture import entries, media_path
from mimaface_core.__main__ import main
from mimaface_core.networks.denoiser import build_unet3d, predict_noise
from mimaface_core.sampling import SamplingOptions, plan_clips, sample_video
from mimaface_core.sampling.cost import SamplingStats, cache_bytes, planned_passes, shallow_share
from mimaface_core.sampling.deepcache import DeepCache
from mimaface_core.sampling.ica import clip_condition
from mimaface_core.sampling.presets import EXACT, PRESET_NAMES, PRESETS

ROOT = Path(__file__).resolve().parents[1]
PORTRAIT = ROOT / "example_media" / "portrait_eileen_collins.jpg"
CLIP = media_path(min(entries("video"), key=lambda e: e["data"]["source"]["frames_decoded"]))
#: The released UNet's configuration (SD1.5 with 13 input channels), from the manifests fixture.
RELEASED_CONFIG = Path(os.environ.get("MIMAFACE_MANIFESTS", ROOT / "tests" / "fixtures" / "manifests")) \
    / "pretrained_unet_config.json"
#: Targets: UNet passes per output frame as a share of exact's (issue: 1/2, 1/5, 1/10).
TARGETS = {"balanced": 1 / 2, "fast": 1 / 5, "draft": 1 / 10}


def _latent_size(unet) -> int:
    return int(unet.config.sample_size)


def _inputs(unet, frames_total: int):
    h = _latent_size(unet)
    width = unet.config.cross_attention_dim
    g = torch.Generator().manual_seed(5)
    renders = torch.randn(frames_total, 4, h, h, generator=g)
    contexts = torch.randn(8, 1, 264, width, generator=g)

    def inputs(clip):
        return renders[list(clip.frames)], contexts[clip.index]
    return inputs


def _sample(unet, options, frames=5, stats=None):
    return [lat for _, lat in sample_video(unet, frames, _inputs(unet, frames), options, stats=stats)]


# ---------------------------------------------------------------------------------------------
# options


def test_exact_is_the_default_and_the_release():
    assert SamplingOptions() == SamplingOptions(preset="exact")
    o = SamplingOptions()
    assert (o.steps, o.scheduler, o.guidance_interval, o.cache_interval, o.cache_depth) == \
        (EXACT["steps"], EXACT["scheduler"], None, 1, 1) == (25, "euler", None, 1, 1)
    assert PRESET_NAMES[0] == "exact" and not o.given


@pytest.mark.parametrize("preset", [n for n in PRESET_NAMES if n != "exact"])
def test_explicit_option_overrides_its_preset(preset):
    plain = SamplingOptions(preset=preset)
    for name, value in PRESETS[preset].items():
        assert getattr(plain, name) == value
    mine = SamplingOptions(steps=3, preset=preset, cache_interval=1)
    assert (mine.steps, mine.cache_interval) == (3, 1) and mine.given == {"steps", "cache_interval"}
    assert mine.scheduler == PRESETS[preset]["scheduler"], "what was not given still comes from the preset"
    back = mine.with_preset("exact")
    assert (back.steps, back.cache_interval, back.scheduler) == (3, 1, "euler")


@pytest.mark.parametrize("kwargs,phrase", [
    (dict(preset="turbo"), "unknown preset"),
    (dict(guidance_interval=(0.0, 1.0)), "(0, 1]"),
    (dict(guidance_interval=(0.5, 1.5)), "(0, 1]"),
    (dict(guidance_interval=(0.8, 0.2)), "LOW must not be above HIGH"),
    (dict(cache_interval=0), "cache_interval"),
])
def test_bad_options_are_refused(kwargs, phrase):
    with pytest.raises(ValueError, match=phrase.replace("(", r"\(").replace("]", r"\]")):
        SamplingOptions(**kwargs)


# ---------------------------------------------------------------------------------------------
# the identities, bit for bit


def test_full_interval_and_cache_interval_one_equal_exact_bit_for_bit(video_model):
    unet = video_model.denoiser
    base = dict(steps=3, clip_length=4, overlap=1)
    exact = _sample(unet, SamplingOptions(**base))
    full_interval = _sample(unet, SamplingOptions(**base, guidance_interval=(0.001, 1.0)))
    cache_one = _sample(unet, SamplingOptions(**base, cache_interval=1))
    assert len(exact) == 2
    for a, b, c in zip(exact, full_interval, cache_one):
        assert torch.equal(a, b) and torch.equal(a, c)
    narrower = _sample(unet, SamplingOptions(**base, guidance_interval=(0.3, 1.0)))
    assert not torch.equal(exact[-1], narrower[-1]), "an interval that leaves steps out changes the result"


def _call(unet, x, t, context):
    return lambda: predict_noise(unet, x, t, context)


def test_deepcache_wrapper_n1_and_shallow_pass_on_the_same_input(video_model):
    unet = video_model.denoiser
    h = _latent_size(unet)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 13, 4, h, h, generator=g)
    y = torch.randn(1, 13, 4, h, h, generator=g)
    ctx = torch.randn(1, 264, unet.config.cross_attention_dim, generator=g)
    t = torch.tensor(500.0)
    with torch.inference_mode():
        plain = predict_noise(unet, x, t, ctx)
        every = DeepCache(unet, interval=1)
        outs = [every(_call(unet, x, t, ctx), i, ("cond",)) for i in range(3)]
        assert all(full and torch.equal(out, plain) for out, full in outs)
        cache = DeepCache(unet, interval=3)
        first, full0 = cache(_call(unet, x, t, ctx), 0, ("cond",))
        again, full1 = cache(_call(unet, x, t, ctx), 1, ("cond",))
        other, _ = cache(_call(unet, y, t, ctx), 2, ("cond",))
        assert full0 and not full1
        torch.testing.assert_close(again, first, atol=1e-5, rtol=1e-5)  # same input: deep features equal
        assert not torch.allclose(other, predict_noise(unet, y, t, ctx), atol=1e-4), "the shallow pass used the cache"


# ---------------------------------------------------------------------------------------------
# one cache per clip and per branch


def test_cache_is_per_branch(video_model):
    unet = video_model.denoiser
    h = _latent_size(unet)
    g = torch.Generator().manual_seed(2)
    x0, x1 = torch.randn(2, 1, 13, 4, h, h, generator=g)
    ctx = torch.randn(1, 264, unet.config.cross_attention_dim, generator=g)
    pair_ctx = torch.cat([torch.zeros_like(ctx), ctx])
    t0, t1 = torch.tensor(700.0), torch.tensor(600.0)
    with torch.inference_mode():
        pair = DeepCache(unet, interval=2)
        pair(_call(unet, torch.cat([x0, x0]), t0, pair_ctx), 0, ("uncond", "cond"))
        out, full = pair(_call(unet, torch.cat([x1, x1]), t1, pair_ctx), 1, ("uncond", "cond"))
        assert not full
        alone = []
        for branch, c in (("uncond", torch.zeros_like(ctx)), ("cond", ctx)):
            own = DeepCache(unet, interval=2)
            own(_call(unet, x0, t0, c), 0, (branch,))
            o, f = own(_call(unet, x1, t1, c), 1, (branch,))
            assert not f
            alone.append(o)
        torch.testing.assert_close(out, torch.cat(alone), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(alone[0], alone[1], atol=1e-4), "the branches' caches differ"
        cond_only = DeepCache(unet, interval=2)
        cond_only(_call(unet, x0, t0, ctx), 0, ("cond",))
        _, full = cond_only(_call(unet, torch.cat([x1, x1]), t1, pair_ctx), 1, ("uncond", "cond"))
        assert full, "no uncond cache: the step is a full pass, never the cond branch's cache"


def test_cache_is_per_clip(video_model, monkeypatch):
    made = []

    class Recording(DeepCache):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.calls = []
            made.append(self)

        def __call__(self, run, step, branches):
            had = dict(self.caches)
            out, full = super().__call__(run, step, branches)
            self.calls.append((step, full, had))
            return out, full

    monkeypatch.setattr(sampler_module, "DeepCache", Recording)
    options = SamplingOptions(steps=4, clip_length=4, overlap=1, cache_interval=2, guidance_interval=(0.5, 1.0))
    clips = [c for c in plan_clips(7, 4, 1) if c.keep]  # a trailing clip with nothing to keep is not sampled
    _sample(video_model.denoiser, options, frames=7)
    assert len(made) == len(clips) == 2 and made[0] is not made[1]
    for cache in made:
        step, full, had = cache.calls[0]
        assert step == 0 and full and not had, "each clip starts with an empty cache and a full pass"
        assert [c[1] for c in cache.calls] == [True, False, True, False]


# ---------------------------------------------------------------------------------------------
# ICA at any step count


@pytest.mark.parametrize("steps", [4, 7, 25])
def test_ica_condition_at_any_step_count(video_model, steps):
    unet = video_model.denoiser
    seen = []
    hook = unet.register_forward_pre_hook(lambda m, args: seen.append(args[0][:, 4:].clone()))
    options = SamplingOptions(steps=steps, scheduler="dpmpp_2m_karras", clip_length=4, overlap=2, guidance=1.0)
    inputs = _inputs(unet, 6)
    out = []
    try:
        for clip, latents in sample_video(unet, 6, inputs, options):
            out.append((clip, latents))
    finally:
        hook.remove()
    assert len(seen) == 2 * steps
    previous = None
    for k, (clip, latents) in enumerate(out):
        want = clip_condition(inputs(clip)[0], previous, options.overlap)
        for cond in seen[k * steps:(k + 1) * steps]:
            assert torch.equal(cond, want), "every step gets the clip's render and ICA condition unchanged"
        assert torch.isfinite(latents).all()
        previous = latents
    assert torch.equal(seen[steps][0, 4:8, :2], out[0][1][-2:].transpose(0, 1)), "the overlap frames carry over"


# ---------------------------------------------------------------------------------------------
# cost accounting


def _released_unet():
    data = json.loads(RELEASED_CONFIG.read_text())
    return build_unet3d(data.get("config_json", data), device="meta")


def test_passes_meet_the_targets_on_the_released_architecture():
    unet = _released_unet()
    size, frames = int(unet.config.sample_size), 12
    share = shallow_share(unet, frames, size, size, 1)
    assert 0.05 < share < 0.8
    long_plan, plan_120 = 9 * 1000 + 3, 120
    exact_long = planned_passes(long_plan, SamplingOptions())
    assert exact_long == pytest.approx(25 * 2 * 12 / 9, rel=1e-3)  # 66.7: the release on a long video
    for name, ratio in TARGETS.items():
        options = SamplingOptions(preset=name)
        for n in (plan_120, long_plan):
            assert planned_passes(n, options, share) <= ratio * planned_passes(n, SamplingOptions()), (name, n)
        assert planned_passes(long_plan, options, share) <= ratio * 66.67
    expected = frames * int(unet.config.block_out_channels[1]) * size * size * 2 * 2
    assert cache_bytes(unet, frames, size, size) == expected  # SD1.5: 12 x 640 x 64 x 64 fp16, two branches


def test_counted_passes_equal_the_plan(video_model):
    unet = video_model.denoiser
    h = _latent_size(unet)
    for name in PRESET_NAMES:
        options = SamplingOptions(preset=name, steps=None if name != "exact" else 3, clip_length=4, overlap=1)
        stats = SamplingStats()
        _sample(unet, options, frames=4, stats=stats)
        share = shallow_share(unet, 4, h, h, options.cache_depth) if options.cache_interval > 1 else None
        sampled = [c for c in plan_clips(4, 4, 1) if c.keep]  # the trailing clip with nothing to keep is skipped
        assert stats.output_frames == 4 and stats.steps == len(sampled) * options.steps
        assert stats.passes_per_output_frame == pytest.approx(planned_passes(4, options, share)), name
        assert stats.line() == f"UNet passes per output frame: {stats.passes_per_output_frame:.1f}"


# ---------------------------------------------------------------------------------------------
# the command line


def _frames(path):
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def test_cli_preset_exact_equals_no_preset(animate_root, tmp_path, capsys):
    common = ["animate", "--source", str(PORTRAIT), "--driving", str(CLIP), "--weights", str(animate_root),
              "--limit", "4", "--steps", "2", "--clip-length", "3", "--overlap", "1", "--device", "cpu"]
    a, b = tmp_path / "plain.mp4", tmp_path / "exact.mp4"
    assert main([*common, "--out", str(a)]) == 0
    plain_out = capsys.readouterr().out
    assert main([*common, "--out", str(b), "--preset", "exact"]) == 0
    exact_out = capsys.readouterr().out
    fa, fb = _frames(a), _frames(b)
    assert len(fa) == 4 and np.array_equal(fa, fb)
    clips = plan_clips(4, 3, 1)
    want = f"UNet passes per output frame: {len(clips) * 2 * 2 * 3 / 4:.1f}"
    assert want in plain_out and want in exact_out


@pytest.mark.parametrize("argv,name,phrase", [
    (["--preset", "turbo"], "--preset", "invalid choice"),
    (["--guidance-interval", "0", "1"], "--guidance-interval", "(0, 1]"),
    (["--guidance-interval", "0.5", "1.2"], "--guidance-interval", "(0, 1]"),
    (["--guidance-interval", "0.8", "0.2"], "--guidance-interval", "LOW must not be above HIGH"),
    (["--cache-interval", "0"], "--cache-interval", "outside 1.."),
    (["--cache-depth", "4"], "--cache-depth", "outside 1..3"),
])
def test_cli_refuses_bad_speed_options_before_any_model(tmp_path, capsys, monkeypatch, argv, name, phrase):
    import mimaface_core.weights.loader as loader

    loads = []
    monkeypatch.setattr(loader, "load_mimaface", lambda *a, **k: loads.append(a))
    try:
        code = main(["animate", "--source", str(PORTRAIT), "--driving", str(CLIP), "--weights",
                     str(tmp_path / "no_weights"), "--out", str(tmp_path / "o.mp4"), *argv])
    except SystemExit as exc:  # argparse's own refusal (a --preset not in its choices)
        code = exc.code
    err = capsys.readouterr().err
    assert code != 0 and name in err and phrase in err, err
    assert "Traceback" not in err and not loads
