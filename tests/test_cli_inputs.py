"""The animate command against bad and unusual inputs, as a hostile but honest user gives them.

Every case asserts the exit code, that no Python traceback is printed, and that the message names
the input; the errors that need no model are raised before any weight is loaded (the loader is
watched). Phone media (16-bit, CMYK, palette and EXIF-rotated photos, a rotation-tagged video, a
GIF, a folder of frames) must animate. Outputs never appear half-written under the final name.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import audio_fixture
from alignment_fixture import entries, media_path
from mimaface_core.__main__ import main
from mimaface_core.media.video_in import iter_video_frames, video_info

ROOT = Path(__file__).resolve().parents[1]
PORTRAIT = ROOT / "example_media" / "portrait_eileen_collins.jpg"
TALKING = ROOT / "example_media" / "driving_talking.mp4"
CLIP = media_path(min(entries("video"), key=lambda e: e["data"]["source"]["frames_decoded"]))
QUICK = ["--steps", "1", "--clip-length", "2", "--overlap", "1", "--device", "cpu"]


@pytest.fixture
def loads(monkeypatch):
    """Records every call of the model loader (the CLI imports it when it runs)."""
    import mimaface_core.weights.loader as loader

    calls = []
    real = loader.load_mimaface
    monkeypatch.setattr(loader, "load_mimaface", lambda *a, **k: calls.append(a) or real(*a, **k))
    return calls


def _run(capsys, *argv):
    code = main(["animate", *map(str, argv)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return code, captured.err


def _fails_early(capsys, loads, phrase, *argv, names):
    code, err = _run(capsys, *argv)
    assert code != 0, err
    for name in (names if isinstance(names, tuple) else (names,)):
        assert name in err, err
    assert phrase in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not loads, "the error came after a model was loaded"
    return err


def _base(audio_root, tmp_path, **over):
    args = {"--source": PORTRAIT, "--driving": CLIP, "--weights": audio_root, "--out": tmp_path / "out.mp4"}
    args.update(over)
    return [x for k, v in args.items() if v is not None for x in (k, v)]


# ---------------------------------------------------------------------------------------------
# sources


@pytest.mark.parametrize("kind", ["truncated", "empty", "text", "folder"])
def test_bad_source(audio_root, tmp_path, capsys, loads, kind):
    bad = tmp_path / "face.jpg"
    if kind == "truncated":
        data = PORTRAIT.read_bytes()
        bad.write_bytes(data[: len(data) // 3])
    elif kind == "empty":
        bad.write_bytes(b"")
    elif kind == "text":
        bad.write_text("this is not a photo")
    else:
        bad.mkdir()
    phrase = {"truncated": "truncated", "empty": "empty", "text": "not an image", "folder": "is a folder"}[kind]
    _fails_early(capsys, loads, phrase, *_base(audio_root, tmp_path, **{"--source": bad}), names=("--source",))


def _variant(kind: str, tmp_path: Path) -> Path:
    rgb = Image.open(PORTRAIT).convert("RGB")
    if kind == "16bit":
        gray = np.asarray(rgb.convert("L")).astype(np.uint16) * 257
        path = tmp_path / "face16.png"
        Image.fromarray(gray).save(path)
        assert Image.open(path).mode.startswith("I")
    elif kind == "cmyk":
        path = tmp_path / "face_cmyk.jpg"
        rgb.convert("CMYK").save(path)
    elif kind == "palette":
        path = tmp_path / "face_palette.png"
        rgb.quantize(256).save(path)
    else:  # stored sideways with EXIF orientation 6: viewers rotate it 90° clockwise
        path = tmp_path / "face_exif.jpg"
        exif = Image.Exif()
        exif[0x0112] = 6
        rgb.rotate(90, expand=True).save(path, exif=exif)
    return path


@pytest.mark.parametrize("kind", ["16bit", "cmyk", "palette", "exif"])
def test_phone_photos_animate(audio_root, tmp_path, capsys, kind):
    from mimaface_core.face.mtcnn import MTCNNDetector
    from mimaface_core.face.align import align_source
    from mimaface_core.media.images import load_image, to_rgb_uint8

    path = _variant(kind, tmp_path)
    detector = MTCNNDetector()
    reference = align_source(detector, to_rgb_uint8(load_image(PORTRAIT)))
    found = align_source(detector, to_rgb_uint8(load_image(path)))
    assert np.abs(found.box - reference.box).max() < 12, (found.box, reference.box)  # upright, same face
    out = tmp_path / "still.png"
    code, err = _run(capsys, "--source", path, "--driving", PORTRAIT, "--weights", audio_root, "--out", out, *QUICK)
    assert code == 0, err
    assert Image.open(out).size == (512, 512)


# ---------------------------------------------------------------------------------------------
# drivers


def _rotated_copy(src: Path, dst: Path, frames: int = 3) -> Path:
    """The first frames stored turned 90° clockwise, tagged to be shown turned back (as phones do)."""
    with av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.pix_fmt = "yuv420p"
        for i, rgb in enumerate(iter_video_frames(src, limit=frames)):
            stored = np.ascontiguousarray(np.rot90(rgb, -1))
            if i == 0:
                stream.height, stream.width = stored.shape[:2]
                stream.set_display_rotation(90)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")))
        out.mux(stream.encode())
    return dst


def test_rotation_tagged_video_is_decoded_upright(audio_root, tmp_path, capsys):
    rotated = _rotated_copy(CLIP, tmp_path / "phone.mp4")
    info, original = video_info(rotated), video_info(CLIP)
    assert info.rotation == 90 and (info.width, info.height) == (original.width, original.height)
    upright = next(iter_video_frames(rotated))
    reference = next(iter_video_frames(CLIP))
    assert upright.shape == reference.shape
    assert np.abs(upright.astype(float) - reference).mean() < 8  # H.264 loss only
    code, err = _run(capsys, *_base(audio_root, tmp_path, **{"--driving": rotated}), "--limit", "2", *QUICK)
    assert code == 0, err


def _cut(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def _header_only(dst: Path) -> Path:
    """An mp4 whose header (ftyp + moov, written first) is whole but whose media data is gone."""
    import struct

    full = dst.with_name("full.mp4")
    with av.open(str(full), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for _ in range(3):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")))
        out.mux(stream.encode())
    data, pos = full.read_bytes(), 0
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"mdat":
            break
        pos += size
    dst.write_bytes(data[:pos + 8])
    return dst


@pytest.mark.parametrize("kind", ["cut_in_half", "header_only", "audio_only", "missing"])
def test_bad_driver(audio_root, tmp_path, capsys, loads, kind):
    if kind == "cut_in_half":
        driver, phrase = _cut(CLIP, tmp_path / "half.mp4", 0.5), "damaged"
    elif kind == "header_only":
        driver, phrase = _header_only(tmp_path / "empty_video.mp4"), "no frame"
    elif kind == "audio_only":
        driver, phrase = audio_fixture.data_file("mel"), "no video stream"
    else:
        driver, phrase = tmp_path / "nothing.mp4", "not found"
    _fails_early(capsys, loads, phrase, *_base(audio_root, tmp_path, **{"--driving": driver}),
                 names=("--driving", Path(driver).name))


def test_gif_and_frame_folder_drive(audio_root, tmp_path, capsys):
    frames = list(iter_video_frames(CLIP, limit=3))
    gif = tmp_path / "driver.gif"
    images = [Image.fromarray(f) for f in frames]
    images[0].save(gif, save_all=True, append_images=images[1:], duration=40, loop=0)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, im in enumerate(images):  # numbers without padding: 10 sorts after 9
        im.save(folder / f"frame_{i + 1}.png")
    for driver in (gif, folder):
        out = tmp_path / f"{driver.stem}.mp4"
        code, err = _run(capsys, *_base(audio_root, tmp_path, **{"--driving": driver, "--out": out}), *QUICK)
        assert code == 0, err
        with av.open(str(out)) as c:
            assert sum(1 for _ in c.decode(video=0)) == 3


# ---------------------------------------------------------------------------------------------
# options and outputs


@pytest.mark.parametrize("argv,names,phrase", [
    (["--stride", "0"], ("--stride=0",), "outside 1.."),
    (["--limit", "0"], ("--limit=0",), "outside 1.."),
    (["--steps", "0"], ("--steps=0",), "outside 1..400"),
    (["--clip-length", "40"], ("--clip-length=40",), "outside 2..32"),
    (["--clip-length", "6", "--overlap", "6"], ("--overlap", "--clip-length"), "smaller"),
    (["--guidance", "0.5"], ("--guidance=0.5",), "outside 1..40"),
    (["--device", "tpu"], ("--device",), "tpu"),
    (["--device", "cpu", "--dtype", "float16"], ("--dtype",), "needs a GPU"),
    (["--vae", "missing_vae.safetensors"], ("--vae",), "not found"),
])
def test_bad_options(audio_root, tmp_path, capsys, loads, argv, names, phrase):
    _fails_early(capsys, loads, phrase, *_base(audio_root, tmp_path), *argv, names=names)


def test_cuda_requested_without_cuda(audio_root, tmp_path, capsys, loads):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _fails_early(capsys, loads, "CUDA is not available", *_base(audio_root, tmp_path), "--device", "cuda",
                 names=("--device", "--device cpu"))


@pytest.mark.parametrize("kind", ["no_extension", "unknown_extension", "folder_is_a_file", "read_only"])
def test_bad_output(audio_root, tmp_path, capsys, loads, kind, monkeypatch):
    import os

    if kind == "no_extension":
        out, phrase = tmp_path / "animation", "add an extension"
    elif kind == "unknown_extension":
        out, phrase = tmp_path / "animation.avi", "not a format"
    elif kind == "folder_is_a_file":
        (tmp_path / "notes.txt").write_text("x")
        out, phrase = tmp_path / "notes.txt" / "animation.mp4", "cannot be written"
    else:
        if os.geteuid() == 0:  # root may write anywhere: answer access() from the mode bits, as for a user
            real_access = os.access
            monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: real_access(p, mode, *a, **k) and not (
                mode & os.W_OK and not os.stat(p).st_mode & 0o222))
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        out, phrase = locked / "animation.mp4", "cannot be written"
    _fails_early(capsys, loads, phrase, *_base(audio_root, tmp_path, **{"--out": out}), names=("--out",))


def test_no_vae_is_reported_with_the_option_that_exists(audio_root, tmp_path, capsys, loads):
    import official_tiny

    bare = official_tiny.clone_layout(audio_root, tmp_path / "no_vae")
    shutil.rmtree(bare / "sd-vae-ft-mse")
    err = _fails_early(capsys, loads, "--vae FILE", *_base(bare, tmp_path), names=("sd-vae-ft-mse",))
    assert "download" in err


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError])
def test_interrupted_or_failed_write_leaves_nothing(audio_root, tmp_path, capsys, monkeypatch, failure):
    import mimaface_core.pipeline as animate

    real = animate.iter_animate

    def breaks_after_one_clip(*args, **kwargs):
        chunks = real(*args, **kwargs)
        yield next(chunks)
        raise failure("stopped mid-write")

    monkeypatch.setattr(animate, "iter_animate", breaks_after_one_clip)
    out = tmp_path / "result" / "animation.mp4"
    code, err = _run(capsys, *_base(audio_root, tmp_path, **{"--out": out}), "--limit", "4", *QUICK)
    assert code == (130 if failure is KeyboardInterrupt else 1), err
    messages = [line for line in err.splitlines() if line.startswith(("error:", "interrupted:"))]
    assert len(messages) == 1, err  # one line besides the progress bars
    assert not out.exists() and not list(out.parent.glob("*")), list(out.parent.glob("*"))


def test_debug_shows_the_traceback(audio_root, tmp_path, capsys):
    code = main(["animate", *map(str, _base(audio_root, tmp_path)), "--stride", "0", "--debug"])
    assert code == 1 and "Traceback" in capsys.readouterr().err


def test_reports_missing_faces_and_the_plan(audio_root, tmp_path, caplog):
    import logging

    frames = list(iter_video_frames(CLIP, limit=4))
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        g = f.copy()
        if i == 2:
            g[:] = 128  # no face on this one
        Image.fromarray(g).save(folder / f"{i:03d}.png")
    with caplog.at_level(logging.INFO):
        assert main(["animate", *map(str, _base(audio_root, tmp_path, **{"--driving": folder})), *QUICK]) == 0
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "1 of 4 driving frames had no face" in text and "frames 2)" in text
    assert "3 clips of 2 frames overlapping by 1" in text
