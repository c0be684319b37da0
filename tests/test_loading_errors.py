"""Loading refuses unsafe, missing, misplaced and mismatching files with clear errors."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import official_tiny as ot
from official_tiny import clone_layout
from mimaface_core import (
    MissingWeightFileError,
    UnsafeWeightFileError,
    WeightFileError,
    WeightMismatchError,
    load_mimaface,
)
from mimaface_core.__main__ import main as cli_main
from mimaface_core.weights.safe_load import read_state_dict


def released_path(name: str) -> str:
    return ot.layout()["components"][name]


def replace(root: Path, rel: str, writer) -> Path:
    path = root / rel
    path.unlink()
    writer(path)
    return path


class NotATensor:
    """Any object a pickle would have to construct by running code."""

    def __reduce__(self):
        return (print, ("this would have run",))


def test_pickle_that_would_run_code_is_refused(released_root, tmp_path):
    root = clone_layout(released_root, tmp_path / "snap")
    replace(root, released_path("video_mim"), lambda p: torch.save({"evil": NotATensor()}, p))
    with pytest.raises(UnsafeWeightFileError, match=r"mim\.pth.*would run code"):
        load_mimaface(root, "video")


def test_missing_file_is_named(released_root, tmp_path):
    root = clone_layout(released_root, tmp_path / "snap")
    (root / released_path("video_3dunet")).unlink()
    with pytest.raises(MissingWeightFileError, match=r"incomplete for video mode; missing: checkpoints/video/3dunet\.pth"):
        load_mimaface(root, "video")
    load_mimaface(root, "image")  # the image stage does not need it


def test_missing_folder():
    with pytest.raises(MissingWeightFileError, match="weights folder not found"):
        load_mimaface(Path("does/not/exist"), "video")


def test_wrong_stage_unet_is_detected(released_root, tmp_path):
    """The image-stage 2D UNet where the video 3dunet.pth belongs: no motion modules."""
    root = clone_layout(released_root, tmp_path / "snap")
    unet2d = read_state_dict(root / released_path("image_pretrained_unet") / "diffusion_pytorch_model.safetensors")
    replace(root, released_path("video_3dunet"), lambda p: torch.save(unet2d, p))
    with pytest.raises(WeightMismatchError, match=r"3dunet\.pth holds no motion modules.*image-stage 2D UNet.*image stage"):
        load_mimaface(root, "video")


def test_file_in_the_wrong_place_is_identified(released_root, tmp_path):
    root = clone_layout(released_root, tmp_path / "snap")
    d3dfr = released_root / released_path("d3dfr")
    replace(root, released_path("video_mim"), lambda p: shutil.copyfile(d3dfr, p))
    with pytest.raises(WeightMismatchError, match=r"mim\.pth does not match the MIM.*missing.*looks like the D3DFR regressor"):
        load_mimaface(root, "video")


def _wrong_shape(state):
    state["transform_dim_gaze.weight"] = torch.zeros(768, 6)


def _drop_key(state):
    state.pop("layer_norm.weight")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (_wrong_shape, r"'transform_dim_gaze.weight' has shape \(768, 6\), expected \(768, 4\)"),
        (_drop_key, r"missing \(first: layer_norm.weight\).*incomplete"),
    ],
    ids=["shape_mismatch", "incomplete_file"],
)
def test_mismatching_mim_is_explained(released_root, tmp_path, mutate, message):
    root = clone_layout(released_root, tmp_path / "snap")
    state = read_state_dict(released_root / released_path("video_mim"))
    mutate(state)
    replace(root, released_path("video_mim"), lambda p: torch.save(state, p))
    with pytest.raises(WeightMismatchError, match=message):
        load_mimaface(root, "video")


def test_truncated_safetensors(released_root, tmp_path):
    root = clone_layout(released_root, tmp_path / "snap")
    rel = released_path("video_vision_encoder") + "/model.safetensors"
    data = (released_root / rel).read_bytes()
    replace(root, rel, lambda p: p.write_bytes(data[: len(data) // 2]))
    with pytest.raises(WeightFileError, match="truncated or corrupt"):
        load_mimaface(root, "video")


def test_convert_cli_leaves_no_pickles_and_loads_identically(released_root, video_model, tmp_path):
    dst = tmp_path / "converted"
    assert cli_main(["convert", str(released_root), str(dst)]) == 0
    suffixes = collections.Counter(p.suffix for p in dst.rglob("*") if p.is_file())
    assert not {".pth", ".bin", ".ckpt", ".pt"} & set(suffixes)
    assert (dst / released_path("video_3dunet")).with_suffix(".safetensors").is_file()
    converted = load_mimaface(dst, "video")
    for part in ("denoiser", "appearance_encoder", "mim", "d3dfr", "identity_encoder"):
        a, b = getattr(video_model, part).state_dict(), getattr(converted, part).state_dict()
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], atol=0, rtol=0, msg=f"{part}.{key}")


def test_download_fails_fast_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cli_main(["download", str(tmp_path / "dest")]) == 1
    err = capsys.readouterr().err
    assert "MIMAFace/MIMAFace" in err and "sd-vae-ft-mse" in err and "scheduler_config.json" in err


def test_safetensors_named_pth_is_read_as_safetensors(released_root, tmp_path):
    path = tmp_path / "mim.pth"
    shutil.copyfile(released_root / released_path("video_vision_encoder") / "model.safetensors", path)
    assert "embeddings.patch_embedding.weight" in {k.removeprefix("vision_model.") for k in read_state_dict(path)}


def test_garbage_pth_is_corrupt_not_unsafe(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"\x80\x02garbage that is no pickle")
    with pytest.raises(WeightFileError, match="corrupt") as info:
        read_state_dict(path)
    assert not isinstance(info.value, UnsafeWeightFileError)


def test_unknown_suffix(tmp_path):
    path = tmp_path / "weights.npz"
    path.write_bytes(b"x")
    with pytest.raises(WeightFileError, match="unknown file type"):
        read_state_dict(path)


def test_safetensors_is_preferred_over_pth(released_root, tmp_path):
    """A .safetensors beside a .pth wins: a broken .safetensors proves it was the one read."""
    root = clone_layout(released_root, tmp_path / "snap")
    save_file({"x": torch.zeros(1)}, str((root / released_path("video_mim")).with_suffix(".safetensors")))
    with pytest.raises(WeightMismatchError, match=r"mim\.safetensors"):
        load_mimaface(root, "video")
