"""VAE loading: diffusers folder and ComfyUI-style single files (LDM layout), all offline."""

from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

from ldm_layout import vae_to_ldm
from mimaface_core.errors import MissingWeightFileError, WeightFileError
from mimaface_core.networks.vae import VAE_SCALING_FACTOR
from mimaface_core.weights.vae_file import load_vae

TINY = dict(block_out_channels=(32, 64), layers_per_block=1, latent_channels=4, norm_num_groups=32,
            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
            scaling_factor=VAE_SCALING_FACTOR)


@pytest.fixture(scope="module")
def tiny_vae():
    torch.manual_seed(3)
    vae = AutoencoderKL(**TINY).eval()
    with torch.no_grad():  # random non-trivial norms and biases so that a wrong mapping shows
        for p in vae.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return vae


def _same_outputs(a: AutoencoderKL, b: AutoencoderKL):
    x = torch.linspace(-1, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
    with torch.no_grad():
        za, zb = a.encode(x).latent_dist.mean, b.encode(x).latent_dist.mean
        torch.testing.assert_close(za, zb, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(a.decode(za).sample, b.decode(zb).sample, atol=1e-5, rtol=1e-5)


def test_diffusers_folder(tiny_vae, tmp_path):
    tiny_vae.save_pretrained(tmp_path / "vae")
    loaded = load_vae(tmp_path / "vae")
    assert loaded.config.scaling_factor == VAE_SCALING_FACTOR
    _same_outputs(tiny_vae, loaded)


@pytest.mark.parametrize("prefix", ["", "first_stage_model."])
def test_single_file_ldm_layout(tiny_vae, tmp_path, prefix):
    ldm = vae_to_ldm(tiny_vae.state_dict(), num_blocks=2, prefix=prefix)
    assert any(k.endswith("encoder.mid.attn_1.q.weight") for k in ldm)
    path = tmp_path / "tiny_vae.safetensors"
    save_file({k: v.contiguous() for k, v in ldm.items()}, str(path))
    loaded = load_vae(path)
    assert list(loaded.config.block_out_channels) == list(TINY["block_out_channels"])
    _same_outputs(tiny_vae, loaded)


def test_missing_and_wrong_vae(tmp_path):
    with pytest.raises(MissingWeightFileError, match="VAE not found"):
        load_vae(tmp_path / "absent.safetensors")
    path = tmp_path / "not_a_vae.safetensors"
    save_file({"foo.weight": torch.zeros(2)}, str(path))
    with pytest.raises(WeightFileError, match="does not look like an SD VAE"):
        load_vae(path)


def test_vae_found_in_the_snapshot_folder(released_root, tiny_vae, tmp_path):
    from mimaface_core import load_mimaface
    from official_tiny import clone_layout

    root = clone_layout(released_root, tmp_path / "snap")
    tiny_vae.save_pretrained(root / "sd-vae-ft-mse")
    model = load_mimaface(root, "image")
    _same_outputs(tiny_vae, model.require_vae())
