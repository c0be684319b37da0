"""The pack inside a real ComfyUI: import, /object_info, and every shipped workflow queued.

Runs only when ``COMFYUI_DIR`` points to an installed ComfyUI whose venv is ``$COMFYUI_DIR/.venv``
(as the project's ComfyUI setup script makes it); skipped otherwise (CI). The server runs on
127.0.0.1 with only this pack loaded, models from an ``extra_model_paths.yaml`` over a temporary
folder holding the tiny released-layout weights, a full-size-architecture SD1.x VAE with random
weights (ComfyUI's VAE Loader only builds that architecture), tiny SD1.5-layout checkpoints and
SadTalker's audio weights from the audio2coeff recipe in the registered ``sadtalker`` folder.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

COMFYUI_DIR = os.environ.get("COMFYUI_DIR")
pytestmark = pytest.mark.skipif(not COMFYUI_DIR, reason="set COMFYUI_DIR to an installed ComfyUI to run")
PACK = Path(__file__).resolve().parents[1]
PACK_NAME = "ComfyUI-MIMAFace"
WORKFLOWS = sorted((PACK / "workflows").glob("*.json"))


def _get(url: str, timeout: float = 10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def _post(url: str, data: dict):
    req = urllib.request.Request(url, json.dumps(data).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"/prompt refused the workflow: {exc.read().decode()[:4000]}") from exc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_models(base: Path) -> None:
    """Tiny weights in the folders the workflows name (file names taken from the workflows)."""
    import torch
    from diffusers import AutoencoderKL
    from safetensors.torch import save_file

    import official_tiny
    from ldm_layout import vae_to_ldm

    weights = base / "mimaface" / "MIMAFace"
    official_tiny.write_released_layout(weights)
    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        scaling_factor=0.18215).eval()
    vae.save_pretrained(weights / "sd-vae-ft-mse")
    (base / "vae").mkdir(parents=True)
    ldm = vae_to_ldm(vae.state_dict(), num_blocks=4)
    for name in _names_in_workflows("VAELoader"):
        save_file({k: v.contiguous() for k, v in ldm.items()}, str(base / "vae" / name))
    (base / "checkpoints").mkdir(parents=True)
    from mimaface_core.weights.unet import read_pretrained_unet
    from test_base_merge import _sd15_like, _write_ldm  # the tiny SD1.5 single files of the merge tests

    config, _, _ = read_pretrained_unet(weights / "checkpoints/image/pretrained_unet")
    names = sorted(n for n in _names_in_workflows("MIMAFaceLoadModel", widget=(2, 4)) if not n.startswith("("))
    for seed, name in enumerate(names, 1):
        _write_ldm(_sd15_like(config, seed), base / "checkpoints" / name, layers_per_block=config["layers_per_block"])
    import audio_fixture

    written = audio_fixture.write_official_layout(base / "_sadtalker")
    (base / "sadtalker").mkdir()
    for name in _names_in_workflows("MIMAFaceAudioToMotion"):
        (base / "sadtalker" / name).symlink_to(audio_fixture.files_of(written, "safetensors_prefixed")[0])


def _write_inputs(inputs: Path, frames: int = 8) -> None:
    """The example portrait, and the example driving clip cut to its first frames (with audio)."""
    from mimaface_core.media import iter_video_frames, video_info
    from mimaface_core.video_out import write_video

    inputs.mkdir()
    for f in (PACK / "example_media").iterdir():
        if f.suffix in (".jpg", ".png"):
            (inputs / f.name).symlink_to(f)
        elif f.suffix == ".mp4":
            write_video(inputs / f.name, iter_video_frames(f, limit=frames), video_info(f).fps, audio_from=f)


def _names_in_workflows(node_type: str, widget=(0,)) -> set[str]:
    names = set()
    for path in WORKFLOWS:
        for node in json.loads(path.read_text())["nodes"]:
            if node["type"] == node_type:
                names.update(node["widgets_values"][i] for i in widget)
    return names


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    comfy = Path(COMFYUI_DIR)
    python = comfy / ".venv" / "bin" / "python"
    base = tmp_path_factory.mktemp("comfy")
    models, inputs, outputs = base / "models", base / "input", base / "output"
    _write_models(models)
    _write_inputs(inputs)
    (base / "extra_model_paths.yaml").write_text(
        f"mimaface_test:\n  base_path: {models}\n  mimaface: mimaface/\n  checkpoints: checkpoints/\n  vae: vae/\n"
        "  sadtalker: sadtalker/\n")
    link = comfy / "custom_nodes" / PACK_NAME
    if link.is_symlink():
        link.unlink()
    link.symlink_to(PACK)
    port = _free_port()
    log = open(base / "server.log", "w")
    proc = subprocess.Popen(
        [str(python), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
         "--disable-all-custom-nodes", "--whitelist-custom-nodes", PACK_NAME,
         "--input-directory", str(inputs), "--output-directory", str(outputs),
         "--extra-model-paths-config", str(base / "extra_model_paths.yaml")],
        cwd=comfy, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                _get(url + "/system_stats", timeout=2)
                break
            except Exception:
                if proc.poll() is not None:
                    break
                time.sleep(0.5)
        else:
            raise AssertionError("ComfyUI did not start")
        assert proc.poll() is None, (base / "server.log").read_text()[-4000:]
        yield {"url": url, "log": base / "server.log", "output": outputs}
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
        link.unlink()


def test_pack_imports_and_lists_every_node(server):
    sys.path.insert(0, str(PACK))
    import nodes

    info = _get(server["url"] + "/object_info")
    log = server["log"].read_text()
    assert "IMPORT FAILED" not in "\n".join(line for line in log.splitlines() if PACK_NAME in line), log[-4000:]
    for node_id, cls in nodes.NODE_CLASS_MAPPINGS.items():
        assert node_id in info, f"{node_id} missing from /object_info"
        d = info[node_id]
        assert d["category"] == "MIMAFace"
        for section in ("required", "optional"):
            for name, spec in d["input"].get(section, {}).items():
                assert len(spec) > 1 and spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"
        if cls.RETURN_TYPES:
            assert len(d.get("output_tooltips") or []) == len(cls.RETURN_TYPES), node_id
    # the registered model folder lists the weights put there through extra_model_paths.yaml
    weights = info["MIMAFaceLoadModel"]["input"]["required"]["weights"][0]
    assert "MIMAFace" in weights
    audio_weights = info["MIMAFaceAudioToMotion"]["input"]["required"]["audio_weights"][0]
    assert _names_in_workflows("MIMAFaceAudioToMotion") <= set(audio_weights)


FAST = {"steps": 2, "clip_length": 6, "overlap": 2}


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_workflow_runs(server, path):
    from workflow_graph import to_api

    info = _get(server["url"] + "/object_info")
    api = to_api(json.loads(path.read_text()), info)
    for node in api.values():
        if node["class_type"] == "MIMAFaceICAClipSampler":
            node["inputs"].update(FAST)
        if node["class_type"] == "MIMAFaceAudioToMotion":
            node["inputs"]["frame_limit"] = 6
    reply = _post(server["url"] + "/prompt", {"prompt": api})
    assert not reply.get("node_errors"), reply
    prompt_id = reply["prompt_id"]
    deadline = time.time() + 1800
    while time.time() < deadline:
        history = _get(server["url"] + f"/history/{prompt_id}")
        if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
            break
        time.sleep(2)
    entry = history[prompt_id]
    status = entry["status"]
    assert status["status_str"] == "success", json.dumps(status["messages"])[-4000:]
    outputs = entry["outputs"]
    assert outputs, "the workflow produced no output"
    files = [f for out in outputs.values() for kind in ("images", "gifs", "videos", "text") for f in out.get(kind, [])]
    assert files, outputs
