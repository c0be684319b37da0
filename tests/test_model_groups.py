"""The model-manager groups of nodes/model_groups.py: one table, each node loads exactly the groups
the table names for it, and SadTalker's and the metrics' networks are groups like the others."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignment_fixture import entries, media_path
from mimaface_core.media.video_in import iter_video_frames
from nodes import NODE_CLASS_MAPPINGS as NODES
from nodes import _comfy, model_groups
from nodes.model_groups import CASTABLE, GROUPS, ModelHandle, NetworkHandle

CLASS_NAMES = {"face": "MIMAFaceFace", "clip": "MIMAFaceCLIP", "mim": "MIMAFaceMIM", "denoiser": "MIMAFaceDenoiser",
               "vae": "MIMAFaceVAE", "bfm": "MIMAFaceBFM", "audio": "MIMAFaceAudio", "metrics": "MIMAFaceMetrics"}


def _table_groups(node_id: str) -> set[str]:
    return {name for name, group in GROUPS.items() if node_id in group.nodes}


def test_the_table():
    """Class names (what ComfyUI shows and the in-process checks assert), castable groups, and
    node ids that exist."""
    assert {name: g.cls.__name__ for name, g in GROUPS.items()} == CLASS_NAMES
    assert CASTABLE == ("clip", "mim", "denoiser", "vae")
    for name, group in GROUPS.items():
        assert group.nodes and set(group.nodes) <= set(NODES), name
        assert group.networks, name
    assert ModelHandle.hosts == ("face", "clip", "mim", "denoiser", "vae", "bfm")


@pytest.fixture(scope="module")
def driving():
    clip = min(entries("video"), key=lambda e: e["data"]["source"]["frames_decoded"])
    return torch.from_numpy(np.stack(list(iter_video_frames(media_path(clip), limit=3)))).float() / 255


def test_each_node_loads_the_groups_of_its_table_rows(video_model, driving, sadtalker_combined, monkeypatch,
                                                      tmp_path):
    """Every model-loading node run standalone; the groups it asks for are those whose table row
    names it, and Loaded carries each group's networks."""
    used: list[str] = []
    original = model_groups._GroupHost.use

    def recording(self, *groups):
        used.extend(groups)
        return original(self, *groups)

    monkeypatch.setattr(model_groups._GroupHost, "use", recording)
    handle = ModelHandle(video_model, "mtcnn", torch.device("cpu"), torch.device("cpu"))

    def run(node_id, *args, **kwargs):
        used.clear()
        out = getattr(NODES[node_id](), NODES[node_id].FUNCTION)(*args, **kwargs)
        return out, set(used)

    (motion, crops), got = run("MIMAFaceExtractMotion", handle, driving, "first_frame", 0, 9)
    assert got == _table_groups("MIMAFaceExtractMotion") == {"face"}
    (src, src_crops), _ = run("MIMAFaceExtractMotion", handle, driving[:1], "first_frame", 0, 9)
    _, got = run("MIMAFaceGazeEmbed", handle, "per_frame", 1.0, 1, crops=crops)
    assert got == _table_groups("MIMAFaceGazeEmbed")
    (render, _, blended), got = run("MIMAFaceRenderCoeffImage", handle, src, motion, "absolute", 1.0, 1)
    assert got == _table_groups("MIMAFaceRenderCoeffImage") == {"bfm"}
    (appearance,), got = run("MIMAFaceMIAAppearanceEncode", handle, src_crops, blended, None, src)
    assert got == _table_groups("MIMAFaceMIAAppearanceEncode") == {"face", "clip"}
    class CoreVAE:  # a core VAE wire: our "vae" group is then not loaded (the test model has no VAE)
        def encode(self, images):
            return torch.zeros(len(images), 4, images.shape[1] // 8, images.shape[2] // 8)

    assert _table_groups("MIMAFaceICAClipSampler") == {"denoiser", "mim", "vae"}
    _, got = run("MIMAFaceICAClipSampler", handle, appearance, render, 0, 1, 5.0, "euler", 2, 1, "same_every_clip",
                 vae=CoreVAE())
    assert got == {"denoiser", "mim"}

    class Mean(torch.nn.Module):  # FID's feature stand-in (torchvision/torch-fidelity are not here)
        num_features = 3

        def forward(self, x):
            return x.float().mean((2, 3))

    from mimaface_core.evaluation import evaluate
    from mimaface_core.evaluation.distribution import fid_network

    monkeypatch.setattr(evaluate, "metric_networks", lambda options: {"fid": fid_network(Mean())})
    out, got = run("MIMAFaceEvaluateAnimation", handle, driving, driving, False, 0, 3, False, True)
    assert got == _table_groups("MIMAFaceEvaluateAnimation") == {"face", "metrics"}
    fid_line = next(line for line in out["result"][0].splitlines() if line.startswith("FID"))
    assert "skipped" not in fid_line, fid_line

    from nodes import audio

    monkeypatch.setattr(_comfy, "audio_weight_path", lambda choice: sadtalker_combined)
    speech = {"waveform": torch.zeros(1, 1, 16000), "sample_rate": 16000}
    _, got = run("MIMAFaceAudioToMotion", src, speech, "x", "audio", 0, "none", 0, 1.0, 5)
    assert got == _table_groups("MIMAFaceAudioToMotion") == {"audio"}
    assert isinstance(audio._networks("x"), NetworkHandle) and audio._networks("x") is audio._networks("x")


def test_sadtalker_networks_are_a_group(sadtalker_combined, monkeypatch):
    """The "audio" group: one ModuleDict over both SadTalker networks (no copy), moved to the
    compute device for the node and back to the offload device after it standalone."""
    from mimaface_core.audio.weights import load_audio_networks

    nets = load_audio_networks(sadtalker_combined)
    freed = []
    monkeypatch.setattr(_comfy, "free_memory", lambda: freed.append(1))
    handle = NetworkHandle("audio", nets, torch.device("cpu", 0), torch.device("cpu"))
    group = handle._group("audio")
    assert type(group).__name__ == "MIMAFaceAudio"
    assert group["audio2exp"] is nets.audio2exp and group["audio2pose"] is nets.audio2pose
    assert handle.patcher("audio") is None  # standalone: no ComfyUI patcher
    moves = []
    original_to = group.to
    monkeypatch.setattr(group, "to", lambda device: moves.append(torch.device(device)) or original_to(device))
    with handle.use("audio") as loaded:
        assert loaded.audio is nets and loaded.mode is None
    assert moves == [torch.device("cpu", 0), torch.device("cpu")] and freed == [1]
    with pytest.raises(KeyError, match="audio"):
        handle.use("face").__enter__()


def test_metric_networks_kept_by_the_caller_give_the_same_fid(video_model):
    """evaluate_frames with metric modules built once (the "metrics" group) gives what it gives
    building them itself, and resets them between runs."""
    from mimaface_core.evaluation.distribution import fid_network
    from mimaface_core.evaluation.evaluate import EvaluationOptions, evaluate_frames
    from mimaface_core.evaluation.face_measures import Estimators
    from mimaface_core.face.detectors import make_detector

    estimators = Estimators(make_detector("mtcnn"), video_model.d3dfr, video_model.identity_encoder,
                            torch.device("cpu"))

    class Mean(torch.nn.Module):
        num_features = 3

        def forward(self, x):
            return x.float().mean((2, 3))

    g = np.random.default_rng(0)
    frames = [g.integers(0, 255, (512, 512, 3), dtype=np.uint8) for _ in range(3)]
    other = [np.clip(f.astype(int) + 30, 0, 255).astype(np.uint8) for f in frames]
    feature = Mean()
    options = EvaluationOptions(fid_feature=feature, lpips=False, require_face=False)
    own = evaluate_frames(lambda: iter(other), lambda: iter(frames), estimators, None, options)
    kept = fid_network(feature)
    for _ in range(2):
        group = NetworkHandle("metrics", {"fid": kept}, torch.device("cpu"), torch.device("cpu"))
        with group.use("metrics") as loaded:
            again = evaluate_frames(lambda: iter(other), lambda: iter(frames), estimators, None, options,
                                    metrics=loaded.metrics)
        assert again.metrics["fid"].value == pytest.approx(own.metrics["fid"].value, rel=1e-9)
