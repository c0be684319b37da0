"""A newcomer's first run (issue 20): the default weights location, ``--help`` without duplicated
defaults, download's offline message, the API's device choice, the default driving crop on the
pack's own example clip, and evaluate's landmark stability on a near-lossless re-encode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mimaface_core.__main__ import main
from mimaface_core.cli.main import build_parser
from mimaface_core.errors import MIMAFaceError, MissingWeightFileError
from mimaface_core.weights import location

PACK = Path(__file__).resolve().parents[1]
EXAMPLE_DRIVER = PACK / "example_media" / "driving_talking.mp4"


def _subcommands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict))
    return parser, sub.choices


def test_help_has_no_empty_default_and_the_top_level_has_examples():
    parser, commands = _subcommands()
    top = parser.format_help()
    assert "examples:" in top and "animate --source" in top and location.ENV_VAR in top
    for name, sub in commands.items():
        text = sub.format_help()
        assert "(default: None)" not in text, name
        assert "(default: False)" not in text, name
        for line in text.splitlines():  # a help text that gives its default is not followed by another
            assert not ("(default " in line and "(default:" in line), (name, line)


def test_weight_places_comfyui_user_and_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(location.ENV_VAR, raising=False)
    pack = tmp_path / "ComfyUI" / "custom_nodes" / "ComfyUI-MIMAFace"
    assert location.comfyui_folder(pack) == tmp_path / "ComfyUI" / "models" / "mimaface" / "MIMAFace"
    assert location.default_download_folder(pack) == location.comfyui_folder(pack)
    assert location.default_download_folder(tmp_path / "standalone") == location.USER_FOLDER.expanduser()
    monkeypatch.setenv(location.ENV_VAR, str(tmp_path / "mine"))
    assert location.default_download_folder(pack) == tmp_path / "mine"
    with pytest.raises(MissingWeightFileError) as err:
        location.find_weights("video", pack)
    message = str(err.value)
    for place in (tmp_path / "mine", location.comfyui_folder(pack), location.USER_FOLDER.expanduser()):
        assert str(place) in message, place
    assert "download" in message and "--weights" in message


def test_animate_without_weights_uses_the_environment_folder(animate_root, tmp_path, monkeypatch, capsys):
    """--weights left out: the folder comes from MIMAFACE_WEIGHTS (checked before any model loads)."""
    from mimaface_core.cli import checks

    seen = {}
    real = checks.check_weights

    def spy(weights, mode):
        seen["weights"] = weights
        real(weights, mode)
        raise MIMAFaceError("stop here")

    monkeypatch.setattr(checks, "check_weights", spy)
    monkeypatch.setenv(location.ENV_VAR, str(animate_root))
    photo = PACK / "example_media" / "portrait_eileen_collins.jpg"
    assert main(["animate", "--source", str(photo), "--driving", str(EXAMPLE_DRIVER),
                 "--out", str(tmp_path / "a.mp4")]) == 1
    assert seen["weights"] == Path(animate_root)
    monkeypatch.setenv(location.ENV_VAR, str(tmp_path / "empty"))
    monkeypatch.setattr(checks, "check_weights", real)
    assert main(["animate", "--source", str(photo), "--driving", str(EXAMPLE_DRIVER),
                 "--out", str(tmp_path / "a.mp4")]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "empty") in err and "searched" in err


def test_train_without_weights_uses_the_default_place(animate_root, tmp_path, monkeypatch):
    """train's --weights may be left out as animate's: the folder is found as animate finds it (each
    stage's files), and when no place holds them the error names every place searched."""
    from mimaface_core.cli.train import check_train_args

    parser, _ = _subcommands()
    data = PACK / "example_media"
    monkeypatch.setattr(location, "USER_FOLDER", tmp_path / "user")  # not this machine's own weights
    for stage in ("image", "video"):
        args = parser.parse_args(["train", "--stage", stage, "--data", str(data), "--out", str(tmp_path / stage),
                                  "--device", "cpu"])
        assert args.weights is None
        monkeypatch.setenv(location.ENV_VAR, str(animate_root))
        assert check_train_args(args) == "cpu" and args.weights == Path(animate_root), stage
        args.weights = None
        monkeypatch.setenv(location.ENV_VAR, str(tmp_path / "empty"))
        with pytest.raises(MissingWeightFileError) as exc:
            check_train_args(args)
        assert f"{stage} mode" in str(exc.value) and str(tmp_path / "empty") in str(exc.value)
        assert "searched" in str(exc.value)


def test_download_offline_message_is_short_then_numbered(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    def offline(*a, **k):
        raise OSError("a very long exception text from the hub " * 20)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    assert main(["download", str(tmp_path / "w")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("error: could not download") and len(lines[0]) < 120, lines[0]
    numbered = [line for line in lines if line.strip()[:2] in {"1.", "2.", "3.", "4.", "5."}]
    assert len(numbered) == 5 and all(str(tmp_path / "w") in line for line in numbered[:4]), lines


def test_api_device_defaults_and_refusals(released_root):
    from mimaface_core import load_mimaface
    from mimaface_core.networks.devices import resolve_device

    best = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device() == (torch.device(best), torch.float16 if best == "cuda" else torch.float32)
    if not torch.cuda.is_available():
        with pytest.raises(MIMAFaceError, match="device="):
            load_mimaface(released_root, mode="image", device="cuda")
        with pytest.raises(MIMAFaceError, match="dtype= float16"):
            resolve_device("cpu", torch.float16)
    with pytest.raises(MIMAFaceError, match="device= 'gpu0'"):
        load_mimaface(released_root, mode="image", device="gpu0")


def test_default_crop_keeps_every_face_of_the_example_clip(video_model, caplog):
    """first_frame loses the face on part of driving_talking.mp4; the default (auto) must not."""
    import logging

    from mimaface_core import extract_motion, iter_video_frames
    from mimaface_core.face.mtcnn import MTCNNDetector

    with caplog.at_level(logging.INFO, logger="mimaface_core.motion.extract"):
        seen = []
        seq = extract_motion(lambda: iter_video_frames(EXAMPLE_DRIVER), MTCNNDetector(), video_model.d3dfr,
                             progress=lambda done, total: seen.append((done, total)))
    assert seq.missing_count == 0, np.flatnonzero(seq.missing)
    done = [d for d, _ in seen]
    assert done == sorted(set(done)) and done[-1] >= len(seq), "progress keeps counting up (a host's bar never goes back)"
    assert seq.info["box_mode_requested"] == "auto" and seq.info["box_mode"] in ("first_frame", "tracked")
    assert any("driving crop auto" in r.getMessage() for r in caplog.records)


def test_evaluate_landmarks_are_stable_on_a_crf12_copy(released_root, tmp_path):
    """A near-lossless re-encode of real footage: LMD under 2 px on every frame."""

    from mimaface_core.evaluation.evaluate import EvaluationOptions, evaluate_frames
    from mimaface_core.evaluation.face_measures import load_estimators
    from mimaface_core.media.video_in import iter_video_frames
    from mimaface_core.media.video_out import write_video

    n = 8
    frames = list(iter_video_frames(EXAMPLE_DRIVER, limit=n))
    copy = tmp_path / "crf12.mp4"
    write_video(copy, frames, 25, crf=12)
    result = evaluate_frames(lambda: iter_video_frames(copy), lambda: iter_video_frames(EXAMPLE_DRIVER, limit=n),
                             load_estimators(released_root), options=EvaluationOptions(lpips=False, fid=False))
    lmd = result.metrics["lmd"].per_frame
    assert len(lmd) == n and None not in lmd
    assert max(lmd) < 2.0, lmd


def test_evaluate_refuses_a_faceless_clip_after_its_first_frames(released_root, monkeypatch):
    from mimaface_core.errors import FaceNotFoundError
    from mimaface_core.evaluation import evaluate as ev
    from mimaface_core.evaluation.face_measures import load_estimators
    from mimaface_core.media.video_in import iter_video_frames

    n = ev.EARLY_FACE_FRAMES + 3
    blank = np.full((512, 512, 3), 128, np.uint8)
    seen = []
    with pytest.raises(FaceNotFoundError, match=f"first {ev.EARLY_FACE_FRAMES} frames"):
        ev.evaluate_frames(lambda: iter([blank] * n), lambda: iter_video_frames(EXAMPLE_DRIVER, limit=n),
                           load_estimators(released_root), options=ev.EvaluationOptions(lpips=False, fid=False),
                           progress=lambda done, total: seen.append(done))
    assert len(seen) < ev.EARLY_FACE_FRAMES
