"""Every file the pack writes gets the mode of a file the user creates (``0o666 & ~umask``), and a
photo without a face is reported with its path.

Writers use ``media.outputs.atomic_output``; safetensors alone would leave its files at 0600, which
a render farm's other users and services cannot read.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mimaface_core.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
STILL_DRIVER = ROOT / "example_media" / "driving_expression.jpg"
QUICK = ["--steps", "1", "--clip-length", "2", "--overlap", "1", "--device", "cpu"]


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _assert_user_mode(path: Path, mask: int) -> None:
    assert path.is_file(), path
    assert _mode(path) == 0o666 & ~mask, f"{path.name}: mode {oct(_mode(path))}, want {oct(0o666 & ~mask)}"


def _sequence(n=3):
    from mimaface_core.morphable.coefficients import NUM_COEFFS
    from mimaface_core.motion.sequence import MotionSequence

    m = np.tile(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (n, 1, 1))
    return MotionSequence(torch.zeros(n, NUM_COEFFS), m, m.copy(), m.copy(), np.ones(n, np.float32),
                          np.zeros(n, bool), (512, 512), 25.0, {})


def test_motion_video_report_and_plot_get_the_umask_mode(umask, tmp_path):
    from mimaface_core.evaluation.report import METRICS, EvaluationResult, MetricResult
    from mimaface_core.media.video_out import write_video

    written = _sequence().save(tmp_path / "motion")
    _assert_user_mode(written, umask)
    _assert_user_mode(written.with_suffix(".json"), umask)

    video = tmp_path / "clip.mp4"
    write_video(video, (np.full((64, 64, 3), 40 * i, np.uint8) for i in range(3)), 25.0)
    _assert_user_mode(video, umask)

    names = [n for n, *_ in METRICS]
    result = EvaluationResult({n: MetricResult(n, per_frame=[0.5, 0.25]) for n in names}, num_frames=2)
    result.write_json(tmp_path / "report.json")
    result.write_plot(tmp_path / "report.png", 600, 480)
    _assert_user_mode(tmp_path / "report.json", umask)
    _assert_user_mode(tmp_path / "report.png", umask)
    assert not [p.name for p in tmp_path.iterdir() if ".partial" in p.name]


def test_training_checkpoint_gets_the_umask_mode(umask, tmp_path):
    from mimaface_core.training.checkpoint import write_checkpoint
    from mimaface_core.training.models import TrainModels

    snapshot = tmp_path / "snapshot"
    for folder in ("checkpoints/image/pretrained_unet", "checkpoints/image/vision_encoder", "models/D3DFR"):
        (snapshot / folder).mkdir(parents=True)
    for folder in ("pretrained_unet", "vision_encoder"):
        (snapshot / "checkpoints/image" / folder / "config.json").write_text("{}")
    kept = snapshot / "models/D3DFR/netG_epoch_25.pth"
    kept.write_bytes(b"untouched")
    os.chmod(kept, 0o600)  # a linked snapshot file keeps its own mode
    models = TrainModels(torch.nn.Linear(2, 2), torch.nn.Linear(2, 3), torch.nn.Linear(3, 2), "image")
    out = write_checkpoint(models, snapshot, tmp_path / "run", 5, {"step": torch.tensor(5)}, {"note": "test"})
    files = [p for p in out.rglob("*") if p.is_file() and not p.is_symlink()]
    assert {p.name for p in files} >= {"diffusion_pytorch_model.safetensors", "mim.safetensors", "model.safetensors",
                                        "trainer_state.pt", "training.json"}
    for path in files:
        _assert_user_mode(path, umask)
    for folder in [out, *(p for p in out.rglob("*") if p.is_dir())]:
        assert _mode(folder) == 0o777 & ~umask, folder
    assert (out / "models/D3DFR/netG_epoch_25.pth").is_symlink() and _mode(kept) == 0o600


def test_the_cli_writes_its_image_and_motion_with_the_umask_mode(audio_root, tmp_path):
    old = os.umask(0o027)
    try:
        out, motion = tmp_path / "still.png", tmp_path / "motion"
        code = main(["animate", "--source", str(ROOT / "example_media" / "portrait_eileen_collins.jpg"),
                     "--driving", str(STILL_DRIVER), "--weights", str(audio_root), "--out", str(out),
                     "--save-motion", str(motion), *QUICK])
    finally:
        os.umask(old)
    assert code == 0
    assert Image.open(out).size[0] > 0
    for path in (out, motion.with_suffix(".safetensors"), motion.with_suffix(".json")):
        _assert_user_mode(path, 0o027)
    assert json.loads(motion.with_suffix(".json").read_text())["frames"] == 1


def test_a_source_photo_without_a_face_is_named_by_its_path(audio_root, tmp_path, capsys):
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((480, 360, 3), (180, 170, 150), np.uint8)).save(blank)
    code = main(["animate", "--source", str(blank), "--driving", str(STILL_DRIVER), "--weights", str(audio_root),
                 "--out", str(tmp_path / "out.png"), *QUICK])
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err
    assert f"--source {blank}" in err and "no face" in err, err
    assert not (tmp_path / "out.png").exists()
