"""SadTalker checkpoint loading: both official forms strictly, decoys ignored by prefix, and a
clear error for every way a file can be wrong (missing, unexpected or mis-shaped keys, a pickle
that would run code, the wrong half of the pair)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

import audio_fixture as fx
from mimaface_core.audio.weights import EXP_FILE, POSE_FILE, find_audio_weights, load_audio_networks
from mimaface_core.errors import MissingWeightFileError, UnsafeWeightFileError, WeightFileError, WeightMismatchError


@pytest.fixture(scope="module")
def combined_state(sadtalker_combined):
    return load_file(str(sadtalker_combined))


def _write(state, path):
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata={"format": "pt"})
    return path


def test_decoys_of_other_models_are_ignored_by_prefix(combined_state, tmp_path):
    prefixes = {k.split(".", 1)[0] for k in combined_state}
    assert prefixes - {"audio2exp", "audio2pose"}, "the fixture's combined file holds decoy keys of other models"
    # a key of another model whose name merely contains "audio2exp" (the official loader's substring
    # match would take it) must not reach the network either
    state = dict(combined_state)
    state["face_3drecon.audio2exp.mapping1.weight"] = torch.zeros(3)
    nets = load_audio_networks(_write(state, tmp_path / "SadTalker_V0.0.2_256.safetensors"))
    assert torch.equal(nets.audio2exp.mapping1.weight, combined_state["audio2exp.mapping1.weight"])


def test_training_parts_are_checked_then_dropped(sadtalker_combined):
    nets = load_audio_networks(sadtalker_combined)
    assert nets.audio2pose.netD_motion is None and nets.audio2pose.netG.encoder is None
    assert not nets.audio2exp.training and not any(p.requires_grad for p in nets.audio2pose.parameters())


@pytest.mark.parametrize("change,phrase", [
    ("missing", "missing"), ("unexpected", "unexpected"), ("shape", "has shape"), ("no_exp", "holds no 'audio2exp."),
])
def test_combined_file_errors(combined_state, tmp_path, change, phrase):
    state = dict(combined_state)
    if change == "missing":
        del state["audio2pose.netD_motion.seq.3.bias"]  # a training-only key still has to be there
    elif change == "unexpected":
        state["audio2exp.mapping2.weight"] = torch.zeros(64, 30)
    elif change == "shape":
        state["audio2pose.netG.decoder.classbias"] = torch.zeros(45, 64)
    else:
        state = {k: v for k, v in state.items() if not k.startswith("audio2exp.")}
    path = _write(state, tmp_path / "SadTalker_V0.0.2_256.safetensors")
    with pytest.raises(WeightFileError, match=phrase) as info:
        load_audio_networks(path)
    assert str(path) in str(info.value)


def test_pickle_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this would run",))

    path = tmp_path / EXP_FILE
    torch.save({"model": {"mapping1.weight": Evil()}, "epoch": 300}, path)
    torch.save({"model": {}, "epoch": 140}, tmp_path / POSE_FILE)
    with pytest.raises(UnsafeWeightFileError, match="would run code"):
        load_audio_networks(path)


def test_pth_pair_errors(sadtalker_files, tmp_path):
    exp_file, pose_file = fx.files_of(sadtalker_files, "torch_cpk")
    # the halves swapped: the message says what the file looks like
    (tmp_path / EXP_FILE).symlink_to(pose_file)
    (tmp_path / POSE_FILE).symlink_to(exp_file)
    with pytest.raises(WeightMismatchError, match="looks like SadTalker's Audio2Pose"):
        load_audio_networks(tmp_path)
    # one half alone
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / EXP_FILE).symlink_to(exp_file)
    with pytest.raises(MissingWeightFileError, match="partner"):
        load_audio_networks(alone / EXP_FILE)
    # a .pth that is not {"model": ..., "epoch": ...}
    flat = tmp_path / "flat"
    flat.mkdir()
    torch.save(torch.load(exp_file, weights_only=True)["model"], flat / EXP_FILE)
    (flat / POSE_FILE).symlink_to(pose_file)
    with pytest.raises(WeightFileError, match="not a SadTalker checkpoint"):
        load_audio_networks(flat)


def test_nothing_usable_names_what_to_get(tmp_path):
    with pytest.raises(MissingWeightFileError, match="SadTalker_V0.0.2_256.safetensors"):
        find_audio_weights(tmp_path)
    with pytest.raises(MissingWeightFileError, match="releases"):
        find_audio_weights(tmp_path / "nope.safetensors")
    truncated = tmp_path / "SadTalker_V0.0.2_256.safetensors"
    truncated.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    with pytest.raises(WeightFileError, match="truncated or corrupt"):
        load_audio_networks(truncated)
