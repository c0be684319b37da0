"""End to end on real footage with tiny released-layout weights and a tiny VAE: the animate CLI,
the Python API, cancel and determinism. Media are named by the alignment fixture's JSON files."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from alignment_fixture import entries, media_path
from mimaface_core.__main__ import main
from mimaface_core.pipeline import AnimateOptions, animate, iter_animate
from mimaface_core.errors import SamplingCancelled
from mimaface_core.media.video_in import iter_video_frames, video_info
from mimaface_core.sampling import SamplingOptions

PHOTO = entries("photo")[0]
VIDEOS = entries("video")
#: The clip with sound is the pack's own example (the alignment fixture folder may hold none);
#: the shortest video of the fixture plays the silent one (its sound, if any, is not needed).
TALKING = Path(__file__).resolve().parents[1] / "example_media" / "driving_talking.mp4"
SILENT = min(VIDEOS, key=lambda e: e["data"]["source"]["frames_decoded"])
FAST = SamplingOptions(steps=2, clip_length=6, overlap=2)


def _streams(path):
    with av.open(str(path)) as c:
        return {s.type: s for s in c.streams}, [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.mark.parametrize("driver,stride,limit", [(TALKING, 3, 8), (media_path(SILENT), 1, 9)],
                         ids=["with-audio-stride3", "fixture-clip"])
def test_animate_cli_writes_one_frame_per_driving_frame(animate_root, tmp_path, driver, stride, limit):
    out = tmp_path / "out.mp4"
    code = main(["animate", "--source", str(media_path(PHOTO)), "--driving", str(driver),
                 "--weights", str(animate_root), "--out", str(out), "--stride", str(stride), "--limit", str(limit),
                 "--steps", str(FAST.steps), "--clip-length", str(FAST.clip_length), "--overlap", str(FAST.overlap),
                 "--device", "cpu"])
    assert code == 0
    expected = len(list(iter_video_frames(driver, stride, limit)))
    streams, frames = _streams(out)
    assert len(frames) == expected and frames[0].shape == (512, 512, 3)
    assert streams["video"].codec_context.name == "h264"
    assert ("audio" in streams) == video_info(driver).has_audio
    assert video_info(out).fps == pytest.approx(video_info(driver).fps / stride, rel=1e-3)


def test_animate_cli_driving_image(animate_root, tmp_path):
    out = tmp_path / "still.png"
    photo = str(media_path(PHOTO))
    assert main(["animate", "--source", photo, "--driving", photo, "--weights", str(animate_root),
                 "--out", str(out), "--steps", "2", "--device", "cpu"]) == 0
    assert Image.open(out).size == (512, 512)


def test_animate_cli_reports_bad_inputs(animate_root, tmp_path, capsys):
    assert main(["animate", "--source", str(tmp_path / "none.jpg"), "--driving", str(media_path(SILENT)),
                 "--weights", str(animate_root), "--out", str(tmp_path / "o.mp4")]) == 1
    assert "--source" in capsys.readouterr().err


def _driving_frames(n):
    return list(iter_video_frames(media_path(SILENT), limit=n))


def test_same_seed_same_frames_and_progress(animate_model):
    source = Image.open(media_path(PHOTO))
    frames = _driving_frames(7)
    steps = []
    a = animate(animate_model, source, frames, AnimateOptions(FAST), on_step=lambda d, t: steps.append((d, t)))
    b = animate(animate_model, source, frames, AnimateOptions(FAST))
    assert a.shape == (7, 512, 512, 3) and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, b)
    clips = 2  # 7 frames, clips of 6 advancing by 4
    assert steps == [(i, clips * FAST.steps) for i in range(1, clips * FAST.steps + 1)]
    c = animate(animate_model, source, frames, AnimateOptions(SamplingOptions(steps=2, clip_length=6, overlap=2, seed=1)))
    assert not torch.equal(a, c)


def test_cancel_stops_within_one_step(animate_model):
    source = Image.open(media_path(PHOTO))
    done = []

    def cancel():
        return len(done) >= 3

    with pytest.raises(SamplingCancelled):
        for _ in iter_animate(animate_model, source, _driving_frames(7), AnimateOptions(FAST),
                              on_step=lambda d, t: done.append(d), cancel=cancel):
            pass
    assert done == [1, 2, 3]


def test_frames_arrive_clip_by_clip(animate_model):
    source = Image.open(media_path(PHOTO))
    chunks = [c.shape[0] for c in iter_animate(animate_model, source, _driving_frames(7), AnimateOptions(FAST))]
    assert chunks == [6, 1]  # clip 0 whole, clip 1 only its new frame


def test_driving_motion_sequence_and_missing_vae(animate_model, released_root):
    from mimaface_core import load_mimaface
    from mimaface_core.errors import WeightFileError
    from mimaface_core.face.mtcnn import MTCNNDetector
    from mimaface_core.motion.extract import extract_motion

    source = Image.open(media_path(PHOTO))
    motion = extract_motion(_driving_frames(5), MTCNNDetector(), animate_model.d3dfr)
    out = animate(animate_model, source, motion, AnimateOptions(FAST))
    assert out.shape == (5, 512, 512, 3)
    no_vae = load_mimaface(released_root, mode="video")
    with pytest.raises(WeightFileError, match="VAE"):
        animate(no_vae, source, motion, AnimateOptions(FAST))
    assert np.isfinite(out.numpy()).all()
