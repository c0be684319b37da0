"""Small pieces of audio driving: reference motions at 25 fps, the option checks, photo-aligned
motion files (m512_frame) and the mel's chunking with partial windows."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mimaface_core.audio.blink import random_blinks, tile_to
from mimaface_core.audio.coefficients import smooth_pose
from mimaface_core.audio.motion import AudioMotionOptions, reference_at_fps
from mimaface_core.motion.sequence import MotionSequence


def _motion(n, fps=None, frame="squashed", size=(640, 480)):
    eye = np.repeat(np.array([[[1.0, 0, 0], [0, 1.0, 0]]]), n, 0)
    m512 = eye.copy()
    m512[:, :, 2] = [10.0, 20.0]
    return MotionSequence(torch.arange(n * 261, dtype=torch.float32).reshape(n, 261), m512, eye, eye.copy(),
                          np.ones(n, np.float32), np.zeros(n, bool), size, fps, {"box_mode": "image"}, frame)


def test_reference_resampled_to_25_fps():
    ref = _motion(31, fps=30.0)  # one second at 30 fps
    out = reference_at_fps(ref)
    assert out.shape == (26, 261)
    np.testing.assert_allclose(out[-1], ref.coeffs[-1].numpy(), rtol=1e-6)
    t = 3 / 25  # frame 3 at 25 fps lies between source frames 3 and 4 at 30 fps
    np.testing.assert_allclose(out[3], ref.coeffs[3].numpy() + (t * 30 - 3) * 261, rtol=1e-5)
    assert reference_at_fps(_motion(7, fps=25.0)).shape == (7, 261)
    assert reference_at_fps(_motion(7, fps=None)).shape == (7, 261)


@pytest.mark.parametrize("kwargs,phrase", [
    (dict(pose="nod"), "pose must be one of"), (dict(blink="wink"), "blink must be one of"),
    (dict(pose_style=46), "0..45"), (dict(max_frames=0), "max_frames=0"),
    (dict(pose="reference"), "reference motion"), (dict(blink="reference"), "reference motion"),
])
def test_options_are_checked(kwargs, phrase):
    with pytest.raises(ValueError, match=phrase):
        AudioMotionOptions(**kwargs).check(has_reference=False)


def test_photo_aligned_motion_round_trip_and_legacy_files(tmp_path):
    photo = _motion(1, frame="original")
    np.testing.assert_allclose(photo.frame_to_crop(), photo.m512)  # no squash for a photo's own pixels
    video = _motion(1, frame="squashed")
    assert not np.allclose(video.frame_to_crop(), video.m512)
    path = photo.save(tmp_path / "photo")
    assert MotionSequence.load(path).m512_frame == "original"
    meta = json.loads((tmp_path / "photo.json").read_text())
    del meta["m512_frame"]  # a file written before the field existed: image motions were photo-aligned
    (tmp_path / "photo.json").write_text(json.dumps(meta))
    assert MotionSequence.load(path).m512_frame == "original"
    with pytest.raises(ValueError, match="m512_frame"):
        _motion(1, frame="sideways")


def test_blinks_tiling_and_short_smoothing():
    assert not random_blinks(20, 0).any() and random_blinks(200, 0).max() == 1.0
    assert np.array_equal(random_blinks(300, 5), random_blinks(300, 5))
    assert not np.array_equal(random_blinks(300, 5), random_blinks(300, 6))
    assert tile_to(np.arange(3), 7).tolist() == [0, 1, 2, 0, 1, 2, 0]
    pose = np.random.default_rng(0).normal(size=(2, 6)).astype(np.float32)
    assert np.array_equal(smooth_pose(pose), pose)  # too short for the official filter: unchanged
