"""Every full-size component, built on the meta device, matches the released state-dict manifests.

Manifests: tests/fixtures/manifests (a copy of spec/manifests; ``MIMAFACE_MANIFESTS_DIR`` overrides).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers

from mimaface_core.networks.appearance_encoder import build_clip_vision, normalise_clip_keys
from mimaface_core.networks.denoiser import PerFrameGroupNorm, build_unet2d, build_unet3d, motion_modules
from mimaface_core.networks.identity_encoder import IR101
from mimaface_core.networks.mia import MIMModule
from mimaface_core.morphable.d3dfr import D3DFRRegressor
from mimaface_core.weights.unet import official_motion_state

MANIFESTS = Path(os.environ.get("MIMAFACE_MANIFESTS_DIR", Path(__file__).parent / "fixtures" / "manifests"))


def manifest(name: str) -> dict:
    return json.loads((MANIFESTS / name).read_text())


def shapes(name: str) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v["shape"]) for k, v in manifest(name)["tensors"].items()}


def model_shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def meta_state(spec: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(s, device="meta") for k, s in spec.items()}


def assert_same(got: dict, want: dict, what: str):
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    assert not missing and not extra, f"{what}: missing {missing[:5]}, unexpected {extra[:5]}"
    bad = [k for k in want if got[k] != want[k]]
    assert not bad, f"{what}: shape differs for {bad[:5]}"


@pytest.fixture(scope="module")
def unet_config():
    return manifest("pretrained_unet_config.json")


def test_pretrained_unet_2d(unet_config):
    assert_same(model_shapes(build_unet2d(unet_config, "meta")), shapes("pretrained_unet_2d.json"), "2D UNet")


def test_unet3d_matches_diffusers_manifest(unet_config):
    unet = build_unet3d(unet_config, "meta")
    want = shapes("diffusers_0_42_1_UNetMotionModel_in13.json")
    assert_same(model_shapes(unet), want, "UNetMotionModel")
    modules = {".".join(k.split(".")[:4]) for k in want if ".motion_modules." in k}
    norms = {prefix: type(module.norm) for prefix, module in motion_modules(unet)}
    assert set(norms) == modules and set(norms.values()) == {PerFrameGroupNorm}


def test_unet3d_official_keys_through_the_documented_conversion(unet_config):
    """Official 3dunet.pth keys → our model: every motion key renamed as the key map says, 2D keys unchanged."""
    model = model_shapes(build_unet3d(unet_config, "meta"))
    official = shapes("unet3d_full.json")
    mapping = manifest("key_mapping_official_unet3d_to_diffusers_0_42_1.json")["mapping"]
    assert set(mapping) == set(official)
    converted = convert_animatediff_checkpoint_to_diffusers(meta_state(official))
    for key, shape in official.items():
        target = mapping[key]["diffusers_UNetMotionModel"]
        assert model[target] == shape, key
        if "pos_encoder" in key:
            assert key not in converted and target.endswith("pos_embed.pe")
        else:
            assert converted[target].shape == shape, key
    # everything our model has is covered by the official file
    assert set(model) == {m["diffusers_UNetMotionModel"] for m in mapping.values()}


def test_unet3d_loaded_subset(unet_config):
    """The video loader takes exactly the 562 motion_modules.* / conv_in.* tensors of 3dunet.pth."""
    subset = shapes("unet3d_3dunet_pth_loaded_subset.json")
    motion_only = shapes("unet3d_motion_modules_only.json")
    used = official_motion_state(meta_state(shapes("unet3d_full.json")), "3dunet.pth")
    expected = convert_animatediff_checkpoint_to_diffusers(meta_state(subset))
    assert set(used) == set(expected)
    assert len([k for k in subset if "pos_encoder" not in k]) == len(used)
    assert set(motion_only) <= set(subset) and set(subset) - set(motion_only) == {"conv_in.weight", "conv_in.bias"}


def test_mim():
    with torch.device("meta"):
        module = MIMModule()
    assert_same(model_shapes(module), shapes("mim_postfuse_module.json"), "MIM")
    assert sum(p.numel() for p in module.parameters()) == manifest("mim_postfuse_module.json")["num_elements"]


def test_d3dfr():
    with torch.device("meta"):
        net = D3DFRRegressor()
    assert_same(model_shapes(net), shapes("d3dfr_resnet50_nofc.json"), "D3DFR")


def test_curricularface():
    with torch.device("meta"):
        net = IR101()
    assert_same(model_shapes(net), shapes("curricularface_ir101.json"), "IR-101")


def test_clip_vision():
    spec = manifest("clip_vit_l14_vision_model.json")
    clip = build_clip_vision(spec["config"], "meta")
    file_keys = normalise_clip_keys(meta_state(shapes("clip_vit_l14_vision_model.json")), clip)
    assert_same(model_shapes(clip), {k: tuple(v.shape) for k, v in file_keys.items()}, "CLIP vision")
