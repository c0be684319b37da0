"""Motion sequences on disk, filling and smoothing, retargeting options and gaze overrides."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mimaface_core.errors import MIMAFaceError
from mimaface_core.morphable.coefficients import ANGLES, EXP, GAMMA, GAZE, ID, NUM_COEFFS, TEX, TRANSLATION, blend
from mimaface_core.motion import MotionSequence
from mimaface_core.motion.gaze import adjust_gaze, gaze_of, with_gaze
from mimaface_core.motion.retarget import retarget
from mimaface_core.motion.smoothing import fill_missing, smooth


def _sequence(n=7, seed=0) -> MotionSequence:
    g = np.random.default_rng(seed)
    m = np.tile(np.array([[1.1, 0.1, 3.0], [-0.1, 1.1, -2.0]]), (n, 1, 1)) + 0.01 * g.standard_normal((n, 2, 3))
    inv = np.stack([np.linalg.inv(np.vstack([x, [0, 0, 1]]))[:2] for x in m])
    return MotionSequence(torch.randn(n, NUM_COEFFS), m, m.copy(), inv, g.random(n).astype(np.float32),
                          g.random(n) < 0.3, (640, 480), 29.97, {"detector": "mtcnn"})


def test_sequence_round_trip(tmp_path):
    seq = _sequence()
    written = seq.save(tmp_path / "drive.json")
    assert written.suffix == ".safetensors" and (tmp_path / "drive.json").is_file()
    meta = json.loads((tmp_path / "drive.json").read_text())
    assert meta["frames"] == len(seq) and meta["missing_frames"] == np.flatnonzero(seq.missing).tolist()
    assert meta["coefficient_layout"]["gaze"] == [GAZE.start, GAZE.stop]
    back = MotionSequence.load(tmp_path / "drive.safetensors")
    assert torch.equal(back.coeffs, seq.coeffs)
    for name in ("m512", "m256", "m256_inv", "scores", "missing"):
        assert np.array_equal(getattr(back, name), getattr(seq, name)), name
    assert back.frame_size == seq.frame_size and back.fps == seq.fps and back.info == seq.info
    assert back.missing_count == int(seq.missing.sum())


def test_sequence_load_errors(tmp_path):
    with pytest.raises(MIMAFaceError, match="not found"):
        MotionSequence.load(tmp_path / "none")
    _sequence().save(tmp_path / "a")
    (tmp_path / "a.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(MIMAFaceError, match="not a MIMAFace motion file"):
        MotionSequence.load(tmp_path / "a")


def test_sequence_checks_shapes():
    seq = _sequence()
    with pytest.raises(ValueError, match="m256"):
        MotionSequence(seq.coeffs, seq.m512, seq.m256[:3], seq.m256_inv, seq.scores, seq.missing)
    with pytest.raises(ValueError, match="coeffs"):
        MotionSequence(seq.coeffs[:, :257], seq.m512, seq.m256, seq.m256_inv, seq.scores, seq.missing)


def test_frame_to_crop_composes_the_squash():
    seq = _sequence()
    w, h = seq.frame_size
    full = seq.frame_to_crop()
    # PIL resize maps pixel centres: x' + 0.5 = (x + 0.5) * 512 / W
    x, y = 100.0, 50.0
    xs, ys = (x + 0.5) * 512 / w - 0.5, (y + 0.5) * 512 / h - 0.5
    expected = seq.m512[:, :, :2] @ np.array([xs, ys]) + seq.m512[:, :, 2]
    assert np.allclose(full[:, :, :2] @ np.array([x, y]) + full[:, :, 2], expected)


def test_fill_missing_interpolates_between_neighbours():
    values = np.array([[0.0, 10], [9, 9], [9, 9], [3, 40], [9, 9]])
    missing = np.array([False, True, True, False, True])
    filled = fill_missing(values, missing)
    assert np.allclose(filled[:, 0], [0, 1, 2, 3, 3])
    assert np.allclose(filled[:, 1], [10, 20, 30, 40, 40])
    with pytest.raises(ValueError):
        fill_missing(values, np.ones(5, bool))


def test_smoothing_keeps_quadratics_and_reduces_noise():
    t = np.arange(40, dtype=np.float64)
    curve = 0.01 * t ** 2 - 0.3 * t + 2
    assert np.allclose(smooth(curve[:, None], 9)[:, 0], curve, atol=1e-9)
    noisy = curve + np.random.default_rng(0).normal(0, 1, len(t))
    assert np.std(smooth(noisy, 9) - curve) < 0.7 * np.std(noisy - curve)
    assert np.array_equal(smooth(noisy, 1), noisy)
    assert smooth(noisy[:4], 9).shape == (4,)  # window shortened to the sequence


def test_retarget_absolute_is_the_released_blend():
    src, drv = torch.randn(1, NUM_COEFFS), torch.randn(6, NUM_COEFFS)
    assert torch.equal(retarget(src, drv), blend(src, drv))


def test_retarget_relative_pose_and_expression_scale():
    src, drv = torch.randn(1, NUM_COEFFS), torch.randn(6, NUM_COEFFS)
    out = retarget(src, drv, pose="relative", expression_scale=0.5)
    for part in (ANGLES, TRANSLATION):
        assert torch.allclose(out[0, part], src[0, part])
        assert torch.allclose(out[:, part] - out[:1, part], drv[:, part] - drv[:1, part], atol=1e-6)
    assert torch.allclose(out[:, EXP], 0.5 * drv[:, EXP])
    for part in (ID, TEX, GAMMA):
        assert torch.equal(out[:, part], src[:, part].expand(6, -1))
    assert torch.equal(out[:, GAZE], drv[:, GAZE])
    with pytest.raises(ValueError, match="pose"):
        retarget(src, drv, pose="sideways")


def test_retarget_smoothing_touches_only_driver_motion():
    src, drv = torch.randn(1, NUM_COEFFS), torch.randn(12, NUM_COEFFS)
    out = retarget(src, drv, smoothing=5)
    assert not torch.allclose(out[:, EXP], drv[:, EXP])
    assert out[:, EXP].diff(dim=0).abs().mean() < drv[:, EXP].diff(dim=0).abs().mean()
    assert torch.equal(out[:, ID], src[:, ID].expand(12, -1))


def test_gaze_overrides():
    coeffs = torch.randn(5, NUM_COEFFS)
    gaze = gaze_of(coeffs)
    assert torch.equal(gaze, coeffs[:, GAZE])
    assert torch.equal(adjust_gaze(gaze), gaze)
    assert torch.allclose(adjust_gaze(gaze, scale=0.5, offset=[1, 2, 3, 4]), 0.5 * gaze + torch.tensor([1.0, 2, 3, 4]))
    fixed = adjust_gaze(gaze, fixed=[0.1, 0.2, 0.3, 0.4])
    assert torch.allclose(fixed, torch.tensor([0.1, 0.2, 0.3, 0.4]).expand(5, 4))
    assert torch.equal(with_gaze(coeffs, fixed)[:, GAZE], fixed)
    assert torch.equal(with_gaze(coeffs, fixed)[:, :GAZE.start], coeffs[:, :GAZE.start])
    with pytest.raises(ValueError, match="4 values"):
        adjust_gaze(gaze, offset=[1, 2])


def test_edit_motion_offsets_scale_and_smoothing():
    """Core Edit Motion: the angles get the offsets in radians, the expression the factor, then
    Savitzky–Golay over every coefficient; crop matrices untouched; the input unchanged."""
    from mimaface_core import edit_motion
    from mimaface_core.motion.edit import edit_coefficients

    seq = _sequence(n=9)
    before = seq.coeffs.clone()
    out = edit_motion(seq, pitch=10.0, yaw=-5.0, roll=2.5, expression_scale=0.5)
    assert torch.equal(seq.coeffs, before) and out is not seq
    assert torch.allclose(out.coeffs[:, ANGLES] - before[:, ANGLES],
                          torch.tensor(np.radians([10.0, -5.0, 2.5]), dtype=torch.float32).expand(9, 3), atol=1e-6)
    assert torch.allclose(out.coeffs[:, EXP], 0.5 * before[:, EXP])
    untouched = [i for i in range(NUM_COEFFS) if i not in range(ANGLES.start, ANGLES.stop) and i not in range(EXP.start, EXP.stop)]
    assert torch.equal(out.coeffs[:, untouched], before[:, untouched])
    assert np.array_equal(out.m512, seq.m512) and np.array_equal(out.m256_inv, seq.m256_inv)
    smoothed = edit_motion(seq, smoothing=5)
    assert torch.allclose(smoothed.coeffs, torch.from_numpy(smooth(before.numpy(), 5)).float())
    assert torch.equal(edit_motion(seq, smoothing=1).coeffs, before)
    with pytest.raises(ValueError, match="261"):
        edit_coefficients(before[:, :100])
    with pytest.raises(ValueError, match="negative"):
        edit_coefficients(before, expression_scale=-1.0)


def test_gaze_by_method():
    """The Gaze Embed methods in the core: per-frame, first frame, mean, zero; strength and
    smoothing through adjust_gaze; unknown methods named."""
    from mimaface_core import gaze_by_method
    from mimaface_core.cli.animate import GAZE_CHOICES
    from mimaface_core.motion.gaze import GAZE_METHODS

    assert GAZE_CHOICES == GAZE_METHODS
    gaze = gaze_of(_sequence(n=8).coeffs)
    assert torch.equal(gaze_by_method(gaze, "per_frame"), gaze)
    assert torch.allclose(gaze_by_method(gaze, "first_frame", 0.5), 0.5 * gaze[:1].expand(8, 4))
    assert torch.allclose(gaze_by_method(gaze, "mean"), gaze.mean(0, keepdim=True).expand(8, 4))
    assert torch.equal(gaze_by_method(gaze, "zero"), torch.zeros(8, 4))
    assert torch.allclose(gaze_by_method(gaze, "per_frame", 2.0, 5), adjust_gaze(gaze, scale=2.0, smoothing=5))
    assert torch.allclose(gaze_by_method(gaze, "mean", offset=[1, 0, 0, 0])[:, 0], gaze[:, 0].mean() + 1)
    with pytest.raises(ValueError, match="per_frame"):
        gaze_by_method(gaze, "sideways")
