"""Custom SD1.5 base checkpoints: add_difference and swap, on tiny LDM-layout checkpoints."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

import official_tiny as ot
from ldm_layout import sd15_like_unet, write_ldm_unet
from mimaface_core import BaseCheckpoint, WeightFileError, WeightMismatchError, load_mimaface
from mimaface_core.weights.base_merge import keeps_mimaface_in_swap
from mimaface_core.weights.safe_load import read_state_dict
from mimaface_core.weights.unet import official_motion_state, read_pretrained_unet


@pytest.fixture(scope="module")
def mimaface_2d(released_root):
    config, state, _ = read_pretrained_unet(released_root / "checkpoints/image/pretrained_unet")
    return config, state


@pytest.mark.parametrize("prefix", ["model.diffusion_model.", ""])
def test_swap(released_root, mimaface_2d, tmp_path, prefix):
    config, mima = mimaface_2d
    base = sd15_like_unet(config, seed=1)
    path = write_ldm_unet(base, tmp_path / "base.safetensors", prefix, config["layers_per_block"])
    model = load_mimaface(released_root, "image", base=BaseCheckpoint(path, merge="swap"))
    merged = model.denoiser.state_dict()
    kept = [k for k in merged if keeps_mimaface_in_swap(k)]
    assert any(".attn2." in k for k in kept) and "conv_in.weight" in kept
    for key, value in merged.items():
        want = mima[key] if keeps_mimaface_in_swap(key) else base[key]
        torch.testing.assert_close(value, want, atol=0, rtol=0, msg=key)


def test_add_difference(released_root, mimaface_2d, tmp_path):
    config, mima = mimaface_2d
    base, ref = sd15_like_unet(config, seed=1), sd15_like_unet(config, seed=2)
    lpb = config["layers_per_block"]
    strength = 0.7
    spec = BaseCheckpoint(write_ldm_unet(base, tmp_path / "base.safetensors", layers_per_block=lpb), "add_difference",
                          reference=write_ldm_unet(ref, tmp_path / "ref.safetensors", layers_per_block=lpb), strength=strength)
    merged = load_mimaface(released_root, "image", base=spec).denoiser.state_dict()
    assert set(merged) == set(mima)
    for key, value in merged.items():
        if key == "conv_in.weight":
            torch.testing.assert_close(value[:, :4], base[key] + strength * (mima[key][:, :4] - ref[key]), atol=1e-6, rtol=1e-6)
            torch.testing.assert_close(value[:, 4:], mima[key][:, 4:], atol=0, rtol=0)
        else:
            torch.testing.assert_close(value, base[key] + strength * (mima[key] - ref[key]), atol=1e-6, rtol=1e-6, msg=key)


def test_video_mode_keeps_motion_modules_and_conv_in_from_3dunet(released_root, mimaface_2d, tmp_path):
    config, mima = mimaface_2d
    base = sd15_like_unet(config, seed=1)
    path = write_ldm_unet(base, tmp_path / "base.safetensors", layers_per_block=config["layers_per_block"])
    merged = load_mimaface(released_root, "video", base=BaseCheckpoint(path, merge="swap")).denoiser.state_dict()
    file3d = released_root / ot.layout()["components"]["video_3dunet"]
    motion = official_motion_state(read_state_dict(file3d), file3d)
    for key, value in motion.items():
        torch.testing.assert_close(merged[key], value, atol=0, rtol=0, msg=key)
    torch.testing.assert_close(merged["down_blocks.0.resnets.0.conv1.weight"], base["down_blocks.0.resnets.0.conv1.weight"])


def test_add_difference_needs_reference(tmp_path):
    with pytest.raises(ValueError, match="reference"):
        BaseCheckpoint(tmp_path / "base.safetensors", "add_difference")


def test_unexpected_unet_keys_are_refused(released_root, mimaface_2d, tmp_path):
    config, _ = mimaface_2d
    extra = {"model.diffusion_model.input_blocks.1.2.lora_up.weight": torch.zeros(4, 4)}
    path = write_ldm_unet(sd15_like_unet(config, 1), tmp_path / "odd.safetensors", layers_per_block=config["layers_per_block"], extra=extra)
    with pytest.raises(WeightMismatchError, match="not part of an SD1.5 UNet.*lora_up"):
        load_mimaface(released_root, "image", base=BaseCheckpoint(path, merge="swap"))


def test_other_architecture_is_refused_with_its_shape(released_root, mimaface_2d, tmp_path):
    config, _ = mimaface_2d
    sd2 = sd15_like_unet(config, 1, cross_attention_dim=1024)
    path = write_ldm_unet(sd2, tmp_path / "sd2.safetensors", layers_per_block=config["layers_per_block"])
    with pytest.raises(WeightMismatchError, match=r"sd2.safetensors.*attn2.*shape"):
        load_mimaface(released_root, "image", base=BaseCheckpoint(path, merge="swap"))


def test_non_checkpoint_is_refused(released_root, tmp_path):
    path = tmp_path / "vae.safetensors"
    save_file({"encoder.conv_in.weight": torch.zeros(1)}, str(path))
    with pytest.raises(WeightFileError, match="no SD1.5 UNet.*looks like a VAE"):
        load_mimaface(released_root, "image", base=BaseCheckpoint(path, merge="swap"))
