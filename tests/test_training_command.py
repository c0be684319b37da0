"""The train command on a tiny dataset cut from the fixture's real clips, with the tiny recipe
weights: each stage trains (its loss on a fixed batch falls), writes checkpoints in the released
layout that load_mimaface loads and animates with, resumes with the same next loss as an
uninterrupted run; bad inputs are refused before any step."""

from __future__ import annotations

import random
import shutil
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from alignment_fixture import entries, media_path
from mimaface_core.__main__ import main
from mimaface_core.training.loop import TrainOptions, _step_seed, load_data_networks, train

STEPS = 20
MAX_FRAMES = 3


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Two real clips (two people) of the alignment fixture."""
    root = tmp_path_factory.mktemp("train_data")
    people = {}
    for e in entries("video"):
        person = "_".join(media_path(e).stem.split("_")[:3])
        people.setdefault(person, media_path(e))
    assert len(people) >= 2, "the fixture needs clips of two people"
    for i, path in enumerate(list(people.values())[:2]):
        (root / f"clip{i}{path.suffix}").symlink_to(path)
    return root


@pytest.fixture(scope="module")
def networks(animate_root):
    return load_data_networks(TrainOptions("image", Path("."), animate_root, Path(".")))


def _options(stage, data_dir, weights, out, cache, **kw):
    base = dict(steps=STEPS, lr=1e-4, max_frames=MAX_FRAMES, checkpoint_every=10, gradient_checkpointing=False,
                cache=cache, frames=None if stage == "image" else 2)
    base.update(kw)
    return TrainOptions(stage, data_dir, weights, out, **base)


def _fixed_step_loss(checkpoint_or_root, options, networks, resume=False):
    """The loss of step 0's batch and draws with the networks of a folder (no update)."""
    from mimaface_core.training.data import prepare_dataset, sample_batch, usable
    from mimaface_core.training.models import load_training_models, set_trainable
    from mimaface_core.training.step import StepOptions, draw_step, forward_step

    videos = usable(prepare_dataset(options.data, options.cache, networks, max_frames=options.max_frames,
                                    root_tag=str(Path(options.weights).resolve())), options.clip_frames)
    models = load_training_models(checkpoint_or_root, options.stage, resume=resume)
    set_trainable(models, options.train_clip_layers)
    seed = _step_seed(options.seed, 0)
    rng, gen = random.Random(seed), torch.Generator().manual_seed(seed)
    batch, _ = sample_batch(videos, options.batch_size, options.clip_frames, networks, rng)
    h, w = batch.vae_mode_target.shape[-2:]
    shape = (options.batch_size, 4, h, w) if options.stage == "image" else (options.batch_size, 4, options.clip_frames, h, w)
    draws = draw_step(options.stage, shape, gen, rng)
    with torch.no_grad():
        return float(forward_step(models, batch, draws, StepOptions(options.train_clip_layers,
                                                                    options.per_sample_clip_tokens)).loss)


@pytest.fixture(scope="module")
def image_run(data_dir, animate_root, networks, tmp_path_factory):
    out = tmp_path_factory.mktemp("image_run")
    options = _options("image", data_dir, animate_root, out, out / "cache")
    return options, train(options, networks=networks)


def test_image_stage_trains_and_its_checkpoint_animates(image_run, networks):
    from mimaface_core import load_mimaface
    from mimaface_core.pipeline import AnimateOptions, animate
    from mimaface_core.sampling.sampler import SamplingOptions

    options, result = image_run
    assert len(result.losses) == STEPS and all(np.isfinite(result.losses))
    ckpt = result.checkpoint
    assert ckpt.name == f"checkpoint-{STEPS:06d}" and (options.out / "checkpoint-000010").is_dir()
    for rel in ("checkpoints/image/pretrained_unet/diffusion_pytorch_model.safetensors",
                "checkpoints/image/mim.safetensors", "checkpoints/image/vision_encoder/model.safetensors"):
        assert (ckpt / rel).is_file() and not (ckpt / rel).is_symlink(), rel
    assert not (ckpt / "checkpoints/image/mim.pth").exists()
    after = _fixed_step_loss(ckpt, options, networks)
    assert after < result.losses[0], f"the loss of step 0's batch did not fall: {result.losses[0]:.4f} -> {after:.4f}"
    model = load_mimaface(ckpt, mode="image")
    clip = media_path(entries("video")[0])
    from mimaface_core.media.video_in import iter_video_frames

    source, driving = list(iter_video_frames(clip, limit=2))
    frames = animate(model, source, driving, AnimateOptions(sampling=SamplingOptions(steps=1)))
    assert frames.shape == (1, 512, 512, 3) and torch.isfinite(frames).all()


def test_resume_continues_with_the_same_next_loss(image_run, networks, tmp_path):
    options, result = image_run
    out = tmp_path / "resumed"
    out.mkdir()
    shutil.copytree(options.out / "checkpoint-000010", out / "checkpoint-000010", symlinks=True)
    resumed = train(replace(options, out=out, resume=True, steps=11), networks=networks)
    assert resumed.first_step == 10 and len(resumed.losses) == 1
    assert resumed.losses[0] == pytest.approx(result.losses[10], rel=1e-5, abs=1e-7)


def test_video_stage_trains_from_the_image_checkpoint_and_animates(image_run, data_dir, networks, tmp_path, capsys):
    from mimaface_core import load_mimaface
    from mimaface_core.pipeline import AnimateOptions, animate
    from mimaface_core.media.video_in import iter_video_frames
    from mimaface_core.sampling.sampler import SamplingOptions

    image_options, image_result = image_run
    start = image_result.checkpoint
    out = tmp_path / "video_run"
    options = _options("video", data_dir, start, out, image_options.cache)
    result = train(options, networks=networks)
    assert len(result.losses) == STEPS and all(np.isfinite(result.losses))
    ckpt = result.checkpoint
    assert (ckpt / "checkpoints/video/3dunet.safetensors").is_file() and (ckpt / "checkpoints/video/mim.safetensors").is_file()
    assert _fixed_step_loss(ckpt, options, networks, resume=True) < result.losses[0]
    model = load_mimaface(ckpt, mode="video")
    source, *driving = list(iter_video_frames(media_path(entries("video")[0]), limit=3))
    frames = animate(model, source, driving, AnimateOptions(sampling=SamplingOptions(steps=1, clip_length=2, overlap=0)))
    assert frames.shape == (2, 512, 512, 3) and torch.isfinite(frames).all()


def _black_video(path: Path, frames: int = 4) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 128, 128, "yuv420p"
        for _ in range(frames):
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.zeros((128, 128, 3), np.uint8), format="rgb24")))
        c.mux(s.encode())
    return path


def _train_error(capsys, *argv) -> str:
    assert main(["train", *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error:"), err
    return err


def test_bad_inputs_are_refused_before_any_step(data_dir, animate_root, networks, tmp_path, capsys, monkeypatch):
    import mimaface_core.training.step as step_module
    from mimaface_core.errors import FaceNotFoundError, WeightMismatchError

    empty = tmp_path / "empty"
    empty.mkdir()
    common = ["--weights", str(animate_root), "--out", str(tmp_path / "o"), "--device", "cpu"]
    err = _train_error(capsys, "--stage", "image", "--data", str(empty), *common)
    assert "--data" in err and "no video" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = _train_error(capsys, "--stage", "image", "--data", str(data_dir), "--weights", str(animate_root),
                       "--out", str(blocker / "sub"), "--device", "cpu")
    assert "--out" in err and "cannot be written" in err
    err = _train_error(capsys, "--stage", "video", "--data", str(data_dir), *common, "--motion-file",
                       str(tmp_path / "none.ckpt"))
    assert "--motion-file" in err and "none.ckpt" in err
    err = _train_error(capsys, "--stage", "image", "--data", str(data_dir), *common, "--resume")
    assert "--resume" in err
    err = _train_error(capsys, "--stage", "image", "--data", str(data_dir), *common, "--frames", "4")
    assert "--frames" in err

    steps = []
    monkeypatch.setattr(step_module, "forward_step", lambda *a, **k: steps.append(1))  # train() imports it per call
    faceless = tmp_path / "faceless"
    faceless.mkdir()
    _black_video(faceless / "black.mp4")
    with pytest.raises(FaceNotFoundError, match="none of its 1 video"):
        train(_options("image", faceless, animate_root, tmp_path / "o2", tmp_path / "c2"), networks=networks)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _black_video(mixed / "black.mp4")
    (mixed / "real.mp4").symlink_to(next(data_dir.iterdir()).resolve())
    from mimaface_core.training.data import prepare_dataset

    videos = prepare_dataset(mixed, tmp_path / "c3", networks, max_frames=MAX_FRAMES)
    assert [v.path.name for v in videos] == ["real.mp4"]
    wrong = animate_root / "checkpoints/image/mim.pth"
    with pytest.raises(WeightMismatchError, match="no motion modules"):
        train(_options("video", data_dir, animate_root, tmp_path / "o3", tmp_path / "c4", motion_file=wrong),
              networks=networks)
    assert not steps, "a training step ran before the bad input was found"
