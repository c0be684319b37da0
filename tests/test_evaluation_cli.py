"""``python -m mimaface_core evaluate`` on a real driving clip: against itself, against a shifted
copy, with JSON and plot outputs; every bad input refused with a clear error (early ones before
any model loads)."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
from PIL import Image

from alignment_fixture import entries, media_path
from mimaface_core.__main__ import main
from mimaface_core.evaluation import face_measures
from mimaface_core.evaluation.distribution import INCEPTION_FILE, fid_unavailable
from mimaface_core.evaluation.pixel_metrics import ALEXNET_FILE, PSNR_CAP_DB, lpips_unavailable
from mimaface_core.evaluation.report import METRICS
from mimaface_core.media.video_in import iter_video_frames

FRAMES = 3
SHIFT = 6


def _video() -> dict:
    """The fixture's first driving video (a real face)."""
    videos = entries("video")
    assert videos, "the alignment fixture has no video"
    return videos[0]


def _source():
    return media_path(entries("photo")[0])


def _folder(path, frames):
    path.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(path / f"{i:04d}.png")
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """(driving video, its first FRAMES frames as a PNG folder, a copy shifted by SHIFT pixels)."""
    video = media_path(_video())
    frames = list(iter_video_frames(video, limit=FRAMES))
    root = tmp_path_factory.mktemp("eval_clip")
    same = _folder(root / "same", frames)
    shifted = _folder(root / "shifted", [np.roll(f, SHIFT, axis=1) for f in frames])
    return video, same, shifted


def _args(clip_dir, driving, weights, *extra):
    return ["evaluate", "--generated", str(clip_dir), "--driving", str(driving), "--weights", str(weights),
            "--limit", str(FRAMES), *extra]


@pytest.fixture(scope="module")
def runs(clip, released_root, tmp_path_factory):
    """Both evaluations through the CLI (the estimators loaded from the snapshot each time)."""
    video, same, shifted = clip
    out = tmp_path_factory.mktemp("eval_out")
    results = {}
    for name, gen in (("same", same), ("shifted", shifted)):
        code = main(_args(gen, video, released_root, "--source", str(_source()), "--same-identity",
                          "--clip-length", "2", "--overlap", "0", "--json", str(out / f"{name}.json"),
                          "--plot", str(out / f"{name}.png")))
        assert code == 0
        results[name] = (json.loads((out / f"{name}.json").read_text()), out / f"{name}.png")
    return results


def _imports(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - any failure counts, as in pixel_metrics.why_unavailable
        return False
    return True


def test_clip_against_itself(runs):
    data, plot = runs["same"]
    assert set(data) == {name for name, *_ in METRICS}
    for name in ("psnr", "ssim", "exp", "pose", "gaze", "lmd", "csim", "frame_difference"):
        assert len(data[name]["per_frame"]) == FRAMES, name
    assert data["psnr"]["mean"] == PSNR_CAP_DB and data["ssim"]["mean"] == 1.0
    for name in ("exp", "pose", "gaze", "lmd"):
        assert data[name]["mean"] == 0.0 and data[name]["frames"] == FRAMES, name
    assert -1 <= data["csim"]["mean"] <= 1 and data["csim"]["frames"] == FRAMES
    assert data["frame_difference"]["per_frame"][0] is None
    for name, why_not, library, weights in (("lpips", lpips_unavailable, "torchvision", ALEXNET_FILE),
                                            ("fid", fid_unavailable, "torch_fidelity", INCEPTION_FILE)):
        reason = why_not()  # this machine: library and torch.hub weights present or not
        if reason is None:  # both here: the metric is measured
            assert data[name]["skipped"] is None and data[name]["mean"] is not None, (name, data[name])
            continue
        assert data[name]["skipped"] == reason and data[name]["mean"] is None, (name, data[name])
        if not _imports(library):
            assert library.replace("_", "-") in reason and "does not import" in reason, reason
        else:  # the library imports: the missing file is named
            assert weights in reason, reason
    with Image.open(plot) as im:
        assert im.size == (1000, 800)


def test_shifted_copy_moves_each_metric(runs):
    same, _ = runs["same"]
    data, _ = runs["shifted"]
    assert data["psnr"]["mean"] < 40 and data["ssim"]["mean"] < same["ssim"]["mean"]
    assert data["lmd"]["mean"] > 1.0, "a shifted face has its landmarks elsewhere on the shared crop"
    for name in ("psnr", "ssim", "lmd", "exp", "pose", "gaze"):
        assert data[name]["frames"] == FRAMES
    for name in ("exp", "pose"):  # the 3DMM fit of a moved face differs from the driving frame's
        assert data[name]["mean"] > 0 and same[name]["mean"] == 0.0, name


@pytest.fixture
def no_models(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the estimators were loaded before the inputs were checked")

    monkeypatch.setattr(face_measures, "load_estimators", refuse)


def _error(capsys, argv) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err and last.startswith("error:"), err
    return last


def test_early_errors_name_the_input(clip, released_root, tmp_path, capsys, no_models):
    video, same, _ = clip
    err = _error(capsys, _args(same, video, released_root)[:-2] + ["--limit", str(FRAMES - 1)])
    assert f"{FRAMES} frames" in err and f"{FRAMES - 1}" in err and "--stride and --limit" in err
    err = _error(capsys, _args(tmp_path / "none.mp4", video, released_root))
    assert "--generated" in err and "none.mp4" in err
    err = _error(capsys, _args(same, video, released_root, "--plot", str(tmp_path / "p.jpg")))
    assert "--plot" in err and ".png" in err
    err = _error(capsys, _args(same, video, released_root, "--json", str(tmp_path / "r.txt")))
    assert "--json" in err
    err = _error(capsys, _args(same, video, tmp_path))
    assert "--weights" in err and "missing" in err
    err = _error(capsys, _args(same, video, released_root, "--overlap", "2"))
    assert "--overlap needs --clip-length" in err
    err = _error(capsys, _args(same, video, released_root, "--clip-length", "4", "--overlap", "4"))
    assert "--overlap 4" in err
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    err = _error(capsys, _args(same, video, released_root, "--source", str(bad)))
    assert "--source" in err and "bad.png" in err


def test_errors_found_while_measuring(clip, released_root, estimators, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(face_measures, "load_estimators", lambda *a, **k: estimators)
    video, same, _ = clip
    black = _folder(tmp_path / "black", [np.zeros((512, 512, 3), np.uint8)] * FRAMES)
    err = _error(capsys, _args(black, video, released_root))
    assert f"generated: no face found in any of its {FRAMES} frames" in err
    small = _folder(tmp_path / "small", [np.zeros((300, 200, 3), np.uint8)] * FRAMES)
    err = _error(capsys, _args(small, video, released_root))
    assert "generated frame 0 is 200x300" in err and "512x512" in err
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(blank)
    err = _error(capsys, _args(same, video, released_root, "--source", str(blank)))
    assert "source" in err and "no face" in err
