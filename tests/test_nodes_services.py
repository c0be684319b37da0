"""Node services outside ComfyUI (model folders, device, progress) and node behaviour that the
workflow tests do not pin down: Paste Back geometry, motion files, clear input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from alignment_fixture import entries, media_path
from mimaface_core.media.video_in import iter_video_frames
from nodes import NODE_CLASS_MAPPINGS as NODES
from nodes import _comfy, motion_io
from nodes.model_groups import ModelHandle

CLIP = min(entries("video"), key=lambda e: e["data"]["source"]["frames_decoded"])


@pytest.fixture()
def handle(video_model):
    return ModelHandle(video_model, "mtcnn", torch.device("cpu"), torch.device("cpu"))


@pytest.fixture(scope="module")
def driving():
    frames = list(iter_video_frames(media_path(CLIP), limit=4))
    return torch.from_numpy(np.stack(frames)).float() / 255


def test_model_folders_standalone(tmp_path, monkeypatch):
    monkeypatch.setenv("MIMAFACE_MODELS_DIR", str(tmp_path))
    (tmp_path / "mimaface" / "MIMAFace" / "checkpoints").mkdir(parents=True)
    (tmp_path / "mimaface" / "not_a_snapshot").mkdir()
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "my_vae.safetensors").write_bytes(b"")
    assert _comfy.weight_folders() == ["MIMAFace"]
    assert _comfy.weight_folder("MIMAFace") == tmp_path / "mimaface" / "MIMAFace"
    with pytest.raises(FileNotFoundError, match="not_there"):
        _comfy.weight_folder("not_there")
    assert _comfy.list_files("vae") == ["my_vae.safetensors"]
    assert _comfy.mediapipe_dir() == tmp_path / "mediapipe"
    assert _comfy.auto_dtype(torch.device("cpu")) == torch.float32
    _comfy.Progress(3)(1, 3)  # silent outside ComfyUI


def test_loader_reports_missing_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("MIMAFACE_MODELS_DIR", str(tmp_path))
    loader = NODES["MIMAFaceLoadModel"]()
    with pytest.raises(FileNotFoundError, match="MIMAFace"):
        loader.load("MIMAFace", "video", "(MIMAFace UNet)", "add_difference", "(none)", 1.0,
                    "(sd-vae-ft-mse in the weights folder)", "auto", "mtcnn")


def test_paste_back_puts_the_crops_where_they_came_from(handle, driving):
    motion, crops = NODES["MIMAFaceExtractMotion"]().extract(handle, driving, "first_frame", 0, 9)
    pasted, mask = NODES["MIMAFacePasteBack"]().paste(driving, crops, motion, 0)
    assert pasted.shape == driving.shape and mask.shape == driving.shape[:3]
    inside = (mask > 0.99)[..., None].expand_as(pasted)
    assert inside.float().mean() > 0.02
    # the crop of a frame pasted back reproduces that frame up to two bilinear resamplings
    err = (pasted - driving).abs()[inside]
    assert err.mean() < 0.03
    shifted = NODES["MIMAFacePasteBack"]().paste(driving, crops.roll(40, dims=2), motion, 0)[0]
    assert (shifted - driving).abs()[inside].mean() > 3 * err.mean()
    feathered = NODES["MIMAFacePasteBack"]().paste(driving, crops, motion, 32)[1]
    assert ((feathered > 0) & (feathered < 1)).any() and feathered.max() <= 1


def test_paste_back_checks_frame_counts(handle, driving):
    motion, crops = NODES["MIMAFaceExtractMotion"]().extract(handle, driving, "first_frame", 0, 9)
    with pytest.raises(ValueError, match="as many"):
        NODES["MIMAFacePasteBack"]().paste(driving[:2], crops, motion, 8)


def test_save_and_load_motion(handle, driving, tmp_path, monkeypatch):
    monkeypatch.setenv("MIMAFACE_OUTPUT_DIR", str(tmp_path / "output"))
    motion, _ = NODES["MIMAFaceExtractMotion"]().extract(handle, driving, "first_frame", 0, 9)
    edited, = NODES["MIMAFaceEditMotion"]().edit(motion, 0.0, 10.0, 0.0, 1.0, 1)
    assert torch.allclose(edited.coeffs[:, 225] - motion.coeffs[:, 225], torch.tensor(np.radians(10.0)).float())
    for _ in range(2):
        NODES["MIMAFaceSaveMotion"]().save(edited, "drive/../x")
    names = motion_io.motion_files()
    assert names == ["output/drivex_00001", "output/drivex_00002"]
    loaded, frames = NODES["MIMAFaceLoadMotion"]().load(names[-1])
    assert frames == len(motion) and torch.equal(loaded.coeffs, edited.coeffs)
    with pytest.raises(ValueError, match="Save Motion"):
        NODES["MIMAFaceLoadMotion"]().load("(none saved yet)")


def test_gaze_embed_methods_and_errors(handle, driving):
    motion, _ = NODES["MIMAFaceExtractMotion"]().extract(handle, driving, "first_frame", 0, 9)
    embed = NODES["MIMAFaceGazeEmbed"]()
    per_frame, = embed.embed(handle, "per_frame", 1.0, 1, motion=motion)
    mean, = embed.embed(handle, "mean", 0.5, 1, motion=motion)
    assert torch.allclose(per_frame.gaze, motion.coeffs[:, 257:261])
    assert torch.allclose(mean.gaze, 0.5 * motion.coeffs[:, 257:261].mean(0).expand(len(motion), 4))
    with pytest.raises(ValueError, match="motion or crops"):
        embed.embed(handle, "per_frame", 1.0, 1)


def test_extract_rejects_a_non_image(handle):
    with pytest.raises(ValueError, match="images"):
        NODES["MIMAFaceExtractMotion"]().extract(handle, torch.zeros(3, 4), "first_frame", 0, 9)


def test_evaluate_animation_node_standalone(handle, driving):
    """Evaluate Animation on a real clip against itself: the same-identity metrics at their
    identical-input values, the summary on the node, the curves image; a frame-count mismatch and
    a bad clip plan are named."""
    from mimaface_core.evaluation.pixel_metrics import PSNR_CAP_DB

    node = NODES["MIMAFaceEvaluateAnimation"]
    frames = driving[:3]
    photo = torch.from_numpy(np.array(Image.open(media_path(entries("photo")[0])).convert("RGB"))).float()[None] / 255
    out = node().evaluate(handle, frames, frames, True, 2, 0, False, False, source=photo)
    summary, curves = out["result"]
    assert out["ui"]["text"] == [summary]
    lines = {line.split()[0]: line for line in summary.splitlines()}
    assert f"{PSNR_CAP_DB:.4f}" in lines["PSNR"] and "1.0000" in lines["SSIM"]
    for name in ("Exp", "Pose", "Gaze", "LMD"):
        assert lines[name].split()[2] == "0.0000", lines[name]
    assert "skipped on request" in lines["LPIPS"] and "skipped on request" in lines["FID"]
    assert "3 frames compared" in summary and "seams at frames 2" in summary
    assert curves.shape == (1, 800, 1000, 3) and curves.dtype == torch.float32
    with pytest.raises(ValueError, match="generated has 2 frames and driving 3"):
        node().evaluate(handle, frames[:2], frames, False, 0, 3, False, False)
    assert "overlap (4)" in node.VALIDATE_INPUTS(clip_length=4, overlap=4)
    assert node.VALIDATE_INPUTS(clip_length=0, overlap=3) is True


def test_as_is_crops_core_and_node_agree(handle, driving):
    """The as-is 512 batch in the core (extract_crops_motion) on real crops: every frame its own
    crop, progress per frame; the node's as_is_512 mode gives the same motion."""
    from mimaface_core import extract_crops_motion
    from mimaface_core.motion.extract import AS_IS_512

    _, crops = NODES["MIMAFaceExtractMotion"]().extract(handle, driving[:3], "first_frame", 0, 9)
    frames = list((crops * 255).round().to(torch.uint8).numpy())
    seen, calls = {}, []
    with handle.use("face") as m:
        core = extract_crops_motion(frames, m.detector, m.d3dfr, on_crop=seen.__setitem__,
                                    progress=lambda done, total: calls.append((done, total)))
    assert len(core) == 3 and core.info["box_mode"] == AS_IS_512 and core.frame_size == (512, 512)
    assert calls == [(1, 3), (2, 3), (3, 3)] and sorted(seen) == [0, 1, 2]
    node, node_crops = NODES["MIMAFaceExtractMotion"]().extract(handle, crops, AS_IS_512, 0, 9)
    assert torch.allclose(node.coeffs, core.coeffs, atol=1e-5) and np.allclose(node.m256, core.m256)
    assert node_crops.shape == crops.shape
    with pytest.raises(ValueError, match="no frames"):
        extract_crops_motion([], None, None)


def test_edit_motion_and_gaze_nodes_give_the_core(handle, driving):
    from mimaface_core import edit_motion, gaze_by_method
    from mimaface_core.motion.gaze import gaze_of, measure_gaze

    motion, crops = NODES["MIMAFaceExtractMotion"]().extract(handle, driving[:3], "first_frame", 0, 9)
    node, = NODES["MIMAFaceEditMotion"]().edit(motion, 5.0, -3.0, 1.0, 0.7, 3)
    assert torch.equal(node.coeffs, edit_motion(motion, 5.0, -3.0, 1.0, 0.7, 3).coeffs)
    embed = NODES["MIMAFaceGazeEmbed"]()
    for method in ("per_frame", "first_frame", "mean", "zero"):
        got, = embed.embed(handle, method, 0.8, 3, motion=motion)
        assert torch.equal(got.gaze, gaze_by_method(gaze_of(motion.coeffs), method, 0.8, 3)) and got.method == method
    from_crops, = embed.embed(handle, "per_frame", 1.0, 1, crops=crops)
    with handle.use("face") as m:
        measured = measure_gaze(list(crops.numpy()), m.detector, m.d3dfr)
    assert torch.allclose(from_crops.gaze, measured)


def test_paste_back_checks_live_in_the_core(handle, driving):
    """The node's errors come from the core's checks, naming the node's inputs."""
    from mimaface_core import paste_back

    motion, crops = NODES["MIMAFaceExtractMotion"]().extract(handle, driving, "first_frame", 0, 9)
    with pytest.raises(ValueError, match="driving_frames .* generated .* driving_motion"):
        NODES["MIMAFacePasteBack"]().paste(driving[:2], crops, motion, 8)
    with pytest.raises(ValueError, match="driving_frames are 32x24"):
        NODES["MIMAFacePasteBack"]().paste(torch.zeros(1, 24, 32, 3), crops, motion, 8)
    with pytest.raises(ValueError, match="frames are 32x24 but the matrices"):
        paste_back(torch.zeros(1, 24, 32, 3), crops, motion.frame_to_crop(), frame_size=motion.frame_size)
    calls = []
    node = NODES["MIMAFacePasteBack"]().paste(driving, crops, motion, 16)
    core = paste_back(driving, crops, motion.frame_to_crop(), 16, progress=lambda d, t: calls.append(d))
    whole = paste_back(driving, crops, motion.frame_to_crop(), 16)
    assert calls == list(range(1, len(crops) + 1))
    assert torch.equal(node[0], core[0]) and torch.allclose(core[0], whole[0], atol=1e-6)
