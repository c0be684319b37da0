"""The pack inside real ComfyUI installs: import, /object_info, templates, blueprint, every shipped
workflow queued, and checks inside ComfyUI's own process.

Which installs: ``COMFYUI_DIR`` and ``COMFYUI_DIRS`` (a list separated by ``os.pathsep``, e.g.
``/path/to/ComfyUI-0.3.64:/path/to/ComfyUI-0.33``) together name installed ComfyUIs, each with its venv at
``<dir>/.venv`` and this pack's requirements (as the project's ComfyUI ``setup.sh`` makes them).
Each install's version comes from its ``comfyui_version.py`` and shows in the test ids
(``[comfyui-0.33.0-...]``). Without any, the module is skipped; under ``CI=true`` that is an error,
and so is a named install without a venv. ``.ci/run`` installs ComfyUI 0.3.64 and 0.33.0.

What runs where (CI time: one server with every workflow takes about 10 minutes on 2 cores):

* server-level checks on the NEWEST install only: import and /object_info, every workflow queued
  through /prompt, weight reuse between queues, POST /free, /interrupt, the subgraph blueprint
  listed by /global_subgraphs;
* the shipped workflows listed as the pack's templates by /workflow_templates, and every node's help
  page served where the frontend fetches it, on EVERY install (the newest through the server above,
  older ones through a short server start of their own: a few seconds, no prompt queued);
* the in-process checks (``tests/comfy_inprocess.py``, run with each install's python; names in
  ``INPROCESS_CHECKS``) on EVERY install.

The servers run on 127.0.0.1 with only this pack loaded, models from an ``extra_model_paths.yaml``
over a temporary folder holding the tiny released-layout weights, a full-size-architecture SD1.x VAE
with random weights (ComfyUI's VAE Loader only builds that architecture), tiny SD1.5-layout
checkpoints and SadTalker's audio weights from the audio2coeff recipe in the registered
``sadtalker`` folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from ports import free_port

PACK = Path(__file__).resolve().parents[1]
PACK_NAME = "ComfyUI-MIMAFace"
WORKFLOWS = sorted((PACK / "example_workflows").glob("*.json"))
BLUEPRINTS = sorted((PACK / "subgraphs").glob("*.json"))
CI = os.environ.get("CI") == "true"
#: ComfyUI-VideoHelperSuite (an extracted copy of the release CI proves, 1.7.9): loaded next to the pack
#: on the newest install's server, from a custom_nodes folder of the test's own (nothing is written
#: into the install); its requirements (opencv-python, imageio-ffmpeg) must be in that install's venv.
VHS_ENV = "COMFYUI_VHS_DIR"
VHS_DIR = Path(os.environ[VHS_ENV]) if os.environ.get(VHS_ENV) else None


def _needs_vhs(path: Path) -> bool:
    """Whether a shipped workflow uses VideoHelperSuite's nodes (their types start with VHS_)."""
    return any(n["type"].startswith("VHS_") for n in json.loads(path.read_text())["nodes"])


def comfyui_version(comfy: Path) -> tuple[int, ...]:
    """The install's version from its comfyui_version.py ((0,) when it has none)."""
    f = comfy / "comfyui_version.py"
    m = re.search(r'__version__\s*=\s*"([0-9.]+)', f.read_text()) if f.is_file() else None
    return tuple(int(x) for x in m.group(1).split(".") if x) if m else (0,)


def _named_installs() -> list[Path]:
    """COMFYUI_DIR then COMFYUI_DIRS, each once, oldest version first."""
    named = [os.environ.get("COMFYUI_DIR", "")] + os.environ.get("COMFYUI_DIRS", "").split(os.pathsep)
    dirs: list[Path] = []
    for d in named:
        if d.strip() and Path(d).resolve() not in [x.resolve() for x in dirs]:
            dirs.append(Path(d))
    return sorted(dirs, key=comfyui_version)


INSTALLS = _named_installs()
if CI:
    if not INSTALLS:
        raise RuntimeError("CI=true but neither COMFYUI_DIR nor COMFYUI_DIRS is set: .ci/run installs the vendored "
                           "ComfyUI versions and sets them; the ComfyUI integration tests must run in CI.")
    broken = [str(d) for d in INSTALLS if not (d / ".venv" / "bin" / "python").is_file()]
    if broken:
        raise RuntimeError(f"CI=true but these ComfyUI installs have no .venv/bin/python: {broken}")
    if VHS_DIR is None or not (VHS_DIR / "__init__.py").is_file():
        raise RuntimeError(f"CI=true but {VHS_ENV} does not name an extracted ComfyUI-VideoHelperSuite "
                           "(.ci/run extracts the vendored release and sets it)")
pytestmark = pytest.mark.skipif(not INSTALLS, reason="set COMFYUI_DIR / COMFYUI_DIRS to installed ComfyUIs to run")
#: The server-level checks (every workflow queued) run on this one.
NEWEST = INSTALLS[-1] if INSTALLS else None


def _label(comfy: Path) -> str:
    return "comfyui-" + ".".join(map(str, comfyui_version(comfy)))


INSTALL_IDS = [_label(d) for d in INSTALLS]


def _get(url: str, timeout: float = 10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def _post(url: str, data: dict):
    req = urllib.request.Request(url, json.dumps(data).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
            return json.loads(body) if body.strip() else {}
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"/prompt refused the workflow: {exc.read().decode()[:4000]}") from exc


def _write_models(base: Path) -> None:
    """Tiny weights in the folders the workflows name (file names taken from the workflows)."""
    import torch
    from diffusers import AutoencoderKL
    from safetensors.torch import save_file

    import official_tiny
    from ldm_layout import vae_to_ldm

    weights = base / "mimaface" / "MIMAFace"
    official_tiny.write_released_layout(weights)
    from conftest import TINY_VAE_32X

    torch.manual_seed(5)  # the snapshot's own VAE: tiny (16x16 latents), for the in-process checks
    AutoencoderKL(**TINY_VAE_32X).save_pretrained(weights / "sd-vae-ft-mse")
    torch.manual_seed(0)  # the core VAE Loader's file: ComfyUI only builds the full SD1.x architecture
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        scaling_factor=0.18215).eval()
    (base / "vae").mkdir(parents=True)
    ldm = vae_to_ldm(vae.state_dict(), num_blocks=4)
    for name in _names_in_workflows("VAELoader"):
        save_file({k: v.contiguous() for k, v in ldm.items()}, str(base / "vae" / name))
    (base / "checkpoints").mkdir(parents=True)
    from ldm_layout import sd15_like_unet, write_ldm_unet  # the tiny SD1.5 single files of the merge tests
    from mimaface_core.weights.unet import read_pretrained_unet

    config, _, _ = read_pretrained_unet(weights / "checkpoints/image/pretrained_unet")
    names = sorted(n for n in _names_in_workflows("MIMAFaceLoadModel", widget=(2, 4)) | _names_in_workflows(
        "CheckpointLoaderSimple") if not n.startswith("("))
    for seed, name in enumerate(names, 1):
        write_ldm_unet(sd15_like_unet(config, seed), base / "checkpoints" / name, layers_per_block=config["layers_per_block"])
    import audio_fixture

    written = audio_fixture.write_official_layout(base / "_sadtalker")
    (base / "sadtalker").mkdir()
    for name in _names_in_workflows("MIMAFaceAudioToMotion"):
        (base / "sadtalker" / name).symlink_to(audio_fixture.files_of(written, "safetensors_prefixed")[0])


#: VideoHelperSuite's loaders read this longer cut of the example driving clip (VHS_CLIP frames),
#: of which the VHS graphs keep VHS_KEEP frames after skipping VHS_SKIP (frame cap and skip).
VHS_CLIP, VHS_SKIP, VHS_KEEP = 5, 2, 2
VHS_SOURCE = "driving_talking.mp4"


def _write_inputs(inputs: Path, frames: int = 2) -> None:
    """The example portrait, and the example driving clip cut to its first frames (with audio);
    a longer cut of it (VHS_CLIP frames) as ``vhs_<name>`` for the VideoHelperSuite graphs."""
    from mimaface_core.media.video_in import iter_video_frames, video_info
    from mimaface_core.media.video_out import write_video

    inputs.mkdir()
    for f in (PACK / "example_media").iterdir():
        if f.suffix in (".jpg", ".png"):  # a copy: ComfyUI 0.33 refuses input links that point outside input/
            shutil.copyfile(f, inputs / f.name)
        elif f.suffix == ".mp4":
            write_video(inputs / f.name, iter_video_frames(f, limit=frames), video_info(f).fps, audio_from=f)
            if f.name == VHS_SOURCE:
                write_video(inputs / f"vhs_{f.name}", iter_video_frames(f, limit=VHS_CLIP), video_info(f).fps, audio_from=f)


def _names_in_workflows(node_type: str, widget=(0,)) -> set[str]:
    names = set()
    for path in WORKFLOWS:
        for node in json.loads(path.read_text())["nodes"]:
            if node["type"] == node_type:
                names.update(node["widgets_values"][i] for i in widget)
    return names


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """models/, input/ and extra_model_paths.yaml in a temporary folder (written once)."""
    base = tmp_path_factory.mktemp("comfy")
    models, inputs = base / "models", base / "input"
    _write_models(models)
    _write_inputs(inputs)
    (base / "extra_model_paths.yaml").write_text(
        f"mimaface_test:\n  base_path: {models}\n  mimaface: mimaface/\n  checkpoints: checkpoints/\n  vae: vae/\n"
        "  sadtalker: sadtalker/\n  loras: loras/\n")
    return base


def _python(comfy: Path) -> Path:
    return comfy / ".venv" / "bin" / "python"


@contextlib.contextmanager
def _serve(comfy: Path, base: Path, other_packs: tuple[Path, ...] = ()):
    """ComfyUI of ``comfy`` on a free port with only this pack (linked into its custom_nodes) and
    ``other_packs`` (linked into a custom_nodes folder under ``base``, named by an extra
    ``extra_model_paths.yaml``), the models, input, output and user folders of ``base``; stopped and
    unlinked on exit."""
    if not _python(comfy).is_file():
        pytest.skip(f"{comfy} has no .venv/bin/python")
    inputs, outputs = base / "input", base / "output"
    log_path = base / f"server-{_label(comfy)}.log"
    user = base / f"user-{_label(comfy)}"  # the frontend's settings stay out of the install
    user.mkdir(exist_ok=True)
    link = comfy / "custom_nodes" / PACK_NAME
    if link.is_symlink():
        link.unlink(missing_ok=True)
    link.symlink_to(PACK)
    configs = [base / "extra_model_paths.yaml"]
    if other_packs:
        folder = base / f"custom_nodes-{_label(comfy)}"
        folder.mkdir(exist_ok=True)
        for pack in other_packs:
            if not (folder / pack.name).exists():
                (folder / pack.name).symlink_to(pack.resolve(), target_is_directory=True)
        configs.append(base / f"custom_nodes-{_label(comfy)}.yaml")
        configs[-1].write_text(f"other_packs:\n  custom_nodes: {folder}\n")
    port = free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [str(_python(comfy)), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
         "--disable-all-custom-nodes", "--whitelist-custom-nodes", PACK_NAME, *(p.name for p in other_packs),
         "--input-directory", str(inputs), "--output-directory", str(outputs), "--user-directory", str(user),
         "--extra-model-paths-config", *map(str, configs)],
        cwd=comfy, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
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
        assert proc.poll() is None, log_path.read_text()[-4000:]
        yield {"url": url, "log": log_path, "output": outputs, "input": inputs, "comfy": comfy,
               "packs": [PACK_NAME, *(p.name for p in other_packs)]}
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
        link.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def server(prepared):
    """The newest install's server, for the workflow runs and the other server-level checks (with
    VideoHelperSuite when COMFYUI_VHS_DIR names it)."""
    with _serve(NEWEST, prepared, (VHS_DIR,) if VHS_DIR else ()) as srv:
        if VHS_DIR:
            log = srv["log"].read_text()
            assert "VHS_VideoCombine" in _get(srv["url"] + "/object_info/VHS_VideoCombine"), log[-4000:]
        yield srv


def _skip_without_vhs(server, what: str) -> None:
    if VHS_DIR is None:
        pytest.skip(f"{what} needs ComfyUI-VideoHelperSuite: set {VHS_ENV} to an extracted copy (its "
                    "requirements in the newest install's venv); .ci/run does")


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


def _check_templates(srv) -> str:
    """/workflow_templates lists every shipped workflow under the pack's folder name, and the
    frontend's template browser can fetch each one from /api/workflow_templates/<pack>/."""
    listed = _get(srv["url"] + "/workflow_templates")
    assert sorted(listed.get(PACK_NAME, [])) == [p.stem for p in WORKFLOWS], listed
    for path in WORKFLOWS:
        served = _get(srv["url"] + f"/api/workflow_templates/{PACK_NAME}/{urllib.parse.quote(path.name)}")
        assert served == json.loads(path.read_text()), f"{path.name} is served with other contents"
    return srv["url"]


def _get_bytes(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def _check_help_pages(srv) -> None:
    """Every node's help page where ComfyUI's frontend fetches it (NodeHelpService of frontend 1.27
    and 1.49: ``/extensions/<pack from python_module custom_nodes.<pack>>/docs/<node name>.md``
    after the locale's ``<node name>/<locale>.md``), served unchanged from the pack's WEB_DIRECTORY,
    and the pictures it links (relative to ``/extensions/<pack>/docs/``)."""
    from nodes import NODE_CLASS_MAPPINGS

    info = _get(srv["url"] + "/object_info")
    docs = PACK / "web" / "docs"
    for node_id in NODE_CLASS_MAPPINGS:
        module = info[node_id]["python_module"]
        assert module.split(".")[:2] == ["custom_nodes", PACK_NAME], module
        base = f"{srv['url']}/extensions/{urllib.parse.quote(PACK_NAME)}/docs/"
        page = _get_bytes(base + f"{node_id}.md")
        assert page == (docs / f"{node_id}.md").read_bytes(), f"{node_id}.md is served with other contents"
        for rel in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.decode()):
            assert _get_bytes(base + rel) == (docs / rel).read_bytes(), rel


@pytest.mark.parametrize("comfy", INSTALLS, ids=INSTALL_IDS)
def test_shipped_workflows_are_the_packs_templates(request, prepared, comfy):
    """The templates, and on the same server the nodes' help pages (issue 27)."""
    assert WORKFLOWS
    if comfy == NEWEST:
        _check_templates(request.getfixturevalue("server"))
        _check_help_pages(request.getfixturevalue("server"))
        return
    # Older installs get a second, short server start of their own (start-up and the pack's import,
    # about 10 s on 2 cores, no prompt queued): the template listing is a server route, so only a
    # running server proves it, and this costs far less than the workflow runs kept to the newest.
    with _serve(comfy, prepared) as srv:
        _check_templates(srv)
        _check_help_pages(srv)


def has_subgraph_blueprints(comfy: Path) -> bool:
    """Whether an install serves subgraph blueprints: its server source registers the
    ``/global_subgraphs`` route (ComfyUI's app/subgraph_manager.py; 0.3.64 has none)."""
    sources = [comfy / "server.py", *sorted((comfy / "app").rglob("*.py"))]
    return any('"/global_subgraphs"' in f.read_text(errors="replace") for f in sources if f.is_file())


def test_subgraph_blueprint_is_listed_and_served(server):
    """Where the install has the feature (ComfyUI 0.33), it lists every custom_nodes/<pack>/subgraphs/*.json
    as a subgraph blueprint of the pack (GET /global_subgraphs; the frontend's node library shows
    them); the one shipped file is served unchanged and names only node types this server knows.
    An install without the feature (0.3.64, run with COMFYUI_DIR alone) must answer 404 there, and
    that is all it is checked for."""
    assert [p.stem for p in BLUEPRINTS] == ["Animate Portrait (MIMAFace)"]
    if not has_subgraph_blueprints(NEWEST):
        with pytest.raises(urllib.error.HTTPError) as err:
            _get(server["url"] + "/global_subgraphs")
        assert err.value.code == 404
        print(f"{_label(NEWEST)} has no subgraph blueprints: /global_subgraphs answers 404")
        return
    listed = _get(server["url"] + "/global_subgraphs")
    ours = {e["name"]: key for key, e in listed.items() if e["info"]["node_pack"] == f"custom_nodes.{PACK_NAME}"}
    assert sorted(ours) == [p.stem for p in BLUEPRINTS], listed
    info = _get(server["url"] + "/object_info")
    for path in BLUEPRINTS:
        entry = _get(server["url"] + "/global_subgraphs/" + ours[path.stem])
        blueprint = json.loads(entry["data"])
        assert blueprint == json.loads(path.read_text())
        for sub in blueprint["definitions"]["subgraphs"]:
            types = {n["type"] for n in sub["nodes"]}
            assert types <= set(info), f"{path.name}: unknown node types {sorted(types - set(info))}"


@pytest.mark.parametrize("comfy", INSTALLS, ids=INSTALL_IDS)
def test_registry_metadata_as_comfyui_reads_it(comfy):
    """pyproject.toml's [tool.comfy] through ComfyUI's own parser (comfy_config): requires-comfyui
    names the oldest install CI proves, and the Icon URL is the repository's committed icon."""
    code = ("import json, sys; from comfy_config.config_parser import extract_node_configuration as x; "
            "c = x(sys.argv[1]); print(json.dumps([c.project.supported_comfyui_version, c.tool_comfy.icon]))")
    out = subprocess.run([str(_python(comfy)), "-c", code, str(PACK)], cwd=comfy, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    requires, icon = json.loads(out.stdout.strip().splitlines()[-1])
    assert requires == ">=0.3.64"
    if len(INSTALLS) > 1:
        assert requires == ">=" + ".".join(map(str, comfyui_version(INSTALLS[0]))), "not the oldest version tested"
    assert icon.endswith("/main/assets/icon.png") and (PACK / "assets" / "icon.png").is_file(), icon


FAST = {"steps": 1, "clip_length": 2, "overlap": 1}


def _shortened(server) -> dict[str, dict]:
    """The inputs the server tests shorten, by node type (set the same way on the API form by _api
    and on the UI form for the frontend check): one step, clips of 2 frames, 2 speech frames, and
    VideoHelperSuite's path loader on the longer input clip with a frame cap and a skip."""
    return {
        "MIMAFaceICAClipSampler": dict(FAST),
        "MIMAFaceAudioToMotion": {"frame_limit": 2},
        "MIMAFaceFootageMotion": {"frame_limit": 2},
        # the shipped track spans the example speech (3 s); here the speech is cut to 2 frames, so a
        # track of the same kind (a smile, a blink) inside them, and a still held for 2 frames
        "MIMAFaceExpressionKeyframes": {"keyframes": "0: smile=0, blink=0\n1 smooth: smile=0.8, blink=1\n", "frames": 2},
        "VHS_LoadVideoPath": {"video": str(server["input"] / f"vhs_{VHS_SOURCE}"),
                              "frame_load_cap": VHS_KEEP, "skip_first_frames": VHS_SKIP},
    }


def _api(server, name: str, **sampler) -> dict:
    from workflow_graph import to_api

    info = _get(server["url"] + "/object_info")
    api = to_api(json.loads((PACK / "example_workflows" / f"{name}.json").read_text()), info)
    ui = {str(n["id"]): n for n in json.loads((PACK / "example_workflows" / f"{name}.json").read_text())["nodes"]}
    dynamic_format = info["SaveVideo"]["input"]["required"]["format"][0] == "COMFY_DYNAMICCOMBO_V3"
    shortened = _shortened(server)
    for nid, node in api.items():
        if node["class_type"] == "SaveVideo" and dynamic_format:
            # ComfyUI 0.33's SaveVideo has a DynamicCombo "format" (codec nested under it), which
            # workflow_graph does not model; the real 0.33 frontend turns the stored widgets
            # [prefix, format, codec] into these inputs (checked with ui_workflow_check.mjs)
            prefix, fmt, codec = ui[nid]["widgets_values"][:3]
            node["inputs"] = {"video": node["inputs"]["video"], "filename_prefix": prefix, "format": fmt,
                              "format.codec": codec, "codec": codec}
        node["inputs"].update(shortened.get(node["class_type"], {}))
        if node["class_type"] == "MIMAFaceICAClipSampler":
            node["inputs"].update(sampler)
    for nid in [k for k, v in api.items() if v["class_type"] in ("CheckpointLoaderSimple", "LoraLoaderModelOnly")]:
        # ComfyUI's checkpoint loader only recognises full-width SD1.5 UNets, which cannot merge with the
        # tiny MIMAFace weights: here the same checkpoint goes in as a file; the MODEL + LoRA wire is
        # checked inside ComfyUI on an SD1.5-shaped UNet (test_inside_comfyui)
        name = api.pop(nid)["inputs"].get("ckpt_name")
        for node in api.values():
            if node["class_type"] == "MIMAFaceLoadModel" and name:
                node["inputs"].pop("base_model", None)
                node["inputs"]["base_checkpoint"] = name
    return api


def _queue(server, api: dict) -> str:
    reply = _post(server["url"] + "/prompt", {"prompt": api})
    assert not reply.get("node_errors"), reply
    return reply["prompt_id"]


def _wait(server, prompt_id: str, timeout: float = 1800) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        history = _get(server["url"] + f"/history/{prompt_id}")
        if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
            return history[prompt_id]
        time.sleep(1)
    raise AssertionError(f"prompt {prompt_id} did not finish in {timeout} s")


def _saved_files(entry: dict) -> list[dict]:
    """The files the prompt wrote to the output folder (previews go to temp/, text is not a file)."""
    return [f for out in entry["outputs"].values() for kind in ("images", "gifs", "videos")
            for f in out.get(kind, []) if isinstance(f, dict) and f.get("type", "output") == "output"]


#: The image workflow is queued (three times) by the reuse test below, which checks its output too.
REUSED = "mimaface_image_reenactment"


@pytest.mark.parametrize("path", [p for p in WORKFLOWS if p.stem != REUSED],
                         ids=[p.stem for p in WORKFLOWS if p.stem != REUSED])
def test_workflow_runs(server, frontend, path):
    """Every shipped workflow, shortened (_shortened), queued once: from the real frontend where it is
    installed (always in CI; the frontend checks of _queue_from_frontend), else through /prompt with
    the same API graph. The one that needs VideoHelperSuite runs where COMFYUI_VHS_DIR gives it (CI:
    always): the other workflows are core nodes and ours only, so they run on any server."""
    if _needs_vhs(path):
        _skip_without_vhs(server, path.name)
    if frontend:
        entry = _queue_from_frontend(server, frontend, path.stem, json.loads(path.read_text()))
    else:
        entry = _wait(server, _queue(server, _api(server, path.stem)))
    status = entry["status"]
    assert status["status_str"] == "success", json.dumps(status["messages"])[-4000:]
    files = _saved_files(entry)
    assert files, entry["outputs"]
    if path.stem == "mimaface_vhs_video":
        # VHS Load Video (Path) kept VHS_KEEP frames after skipping VHS_SKIP; its frame rate (through
        # Video Info) and its audio went to Video Combine: one frame per driving frame, with sound
        from mimaface_core.media.video_in import video_info

        (video,) = files
        _check_mp4(server["output"] / video.get("subfolder", "") / video["filename"], VHS_KEEP,
                   video_info(server["input"] / f"vhs_{VHS_SOURCE}").fps)
    if path.stem == "mimaface_video_reenactment":
        import av

        from mimaface_core.media.video_in import iter_video_frames

        driver = server["input"] / "driving_talking.mp4"
        expected = len(list(iter_video_frames(driver)))
        texts = [t for out in entry["outputs"].values() for t in out.get("text", [])]
        assert any(f"{expected} frames compared" in t for t in texts), texts  # Evaluate Animation's summary
        for f in files:
            video = server["output"] / f.get("subfolder", "") / f["filename"]
            with av.open(str(video)) as c:
                assert c.streams.audio, f"{video.name} has no audio"
                assert sum(1 for _ in c.decode(video=0)) == expected, video.name


def _check_mp4(path: Path, frames: int, fps: float) -> None:
    """An mp4 with ``frames`` video frames at ``fps`` and an audio stream that decodes to samples."""
    import av

    assert path.suffix == ".mp4", path.name
    with av.open(str(path)) as c:
        assert c.streams.video and c.streams.audio, f"{path.name}: streams {c.streams}"
        assert float(c.streams.video[0].average_rate) == pytest.approx(fps, rel=1e-3), path.name
        assert sum(1 for _ in c.decode(video=0)) == frames, path.name
    with av.open(str(path)) as c:
        assert sum(f.samples for f in c.decode(audio=0)) > 0, f"{path.name}: the audio stream is empty"


def _log_count(server, text: str) -> int:
    return server["log"].read_text().count(text)


def test_second_queue_reuses_weights_and_free_unloads(server):
    """ComfyUI keeps our groups loaded between queues (no reload, no second read of the weights);
    POST /free with unload_models unloads them, and the next queue loads them again from memory."""
    name = REUSED
    assert (PACK / "example_workflows" / f"{name}.json").is_file()
    loads, reads = "Requested to load MIMAFaceDenoiser", "[MIMAFace] reading the"
    before = (_log_count(server, loads), _log_count(server, reads))
    for seed in (101, 102):  # a new seed re-runs the sampler, everything upstream is cached
        entry = _wait(server, _queue(server, _api(server, name, seed=seed)))
        assert entry["status"]["status_str"] == "success", json.dumps(entry["status"]["messages"])[-4000:]
        files = _saved_files(entry)
        assert files and all((server["output"] / f.get("subfolder", "") / f["filename"]).is_file() for f in files)
    after_two = (_log_count(server, loads), _log_count(server, reads))
    assert after_two[0] - before[0] <= 1, "the UNet was loaded again for the second queue"
    assert after_two[1] - before[1] <= 1, "the weights were read from disk again"
    _post(server["url"] + "/free", {"unload_models": True})
    time.sleep(2)
    # ComfyUI's prompt worker applies the /free flag when it wakes; on a busy machine that can be
    # after the next prompt started, so the reload shows on that prompt or the one after
    for seed in (103, 104):
        assert _wait(server, _queue(server, _api(server, name, seed=seed)))["status"]["status_str"] == "success"
        if _log_count(server, loads) > after_two[0]:
            break
    assert _log_count(server, loads) == after_two[0] + 1, "after /free the UNet group is loaded again"
    assert _log_count(server, reads) == after_two[1], "and it came from memory, not from disk"


def test_interrupt_stops_the_sampler_and_the_next_queue_runs(server):
    prompt_id = _queue(server, _api(server, "mimaface_video_reenactment", seed=7, steps=200))
    deadline = time.time() + 600
    while _log_count(server, "Requested to load MIMAFaceDenoiser") == 0 or \
            prompt_id not in json.dumps(_get(server["url"] + "/queue").get("queue_running", [])):
        assert time.time() < deadline, "the sampler did not start"
        time.sleep(0.5)
    time.sleep(3)
    asked = time.time()
    _post(server["url"] + "/interrupt", {})
    entry = _wait(server, prompt_id, timeout=300)
    stopped = time.time() - asked
    assert entry["status"]["status_str"] == "error", entry["status"]
    assert any(m[0] == "execution_interrupted" for m in entry["status"]["messages"]), entry["status"]["messages"]
    assert stopped < 60, f"took {stopped:.1f} s to stop"
    entry = _wait(server, _queue(server, _api(server, "mimaface_image_reenactment", seed=8)))
    assert entry["status"]["status_str"] == "success"


INPROCESS_CHECKS = ["extract_loads_only_the_face_group", "each_node_loads_its_group",
                    "unload_all_models_empties_and_reloads_from_memory", "core_vae_encode_and_decode_equal_ours",
                    "model_wire_with_lora_merges_to_the_formula", "interrupt_during_motion_extraction",
                    "interrupt_before_and_during_the_first_clip", "fp16_nan_falls_back_without_changing_the_model",
                    "fp16_image_inputs_are_cast_for_each_network",
                    "layer_operations_equal_plain_torch_and_load_partially",
                    "nodes_equal_the_api_video_job", "nodes_equal_the_api_audio_job",
                    "nodes_equal_the_api_keyframes_job", "sampler_previews_follow_the_preview_method"]


@pytest.fixture(scope="module", params=INSTALLS, ids=INSTALL_IDS)
def install(request) -> Path:
    """Each named ComfyUI install in turn (the test id shows its version)."""
    if not _python(request.param).is_file():
        pytest.skip(f"{request.param} has no .venv/bin/python")  # under CI=true the module refused to load
    return request.param


@pytest.fixture(scope="module")
def inprocess(prepared, install):
    """The records of tests/comfy_inprocess.py run with this install's python, in its folder."""
    out = prepared / f"inprocess-{_label(install)}.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACK), str(PACK / "tests")])}
    proc = subprocess.run([str(_python(install)), str(PACK / "tests" / "comfy_inprocess.py"), str(install),
                           str(prepared / "models"), str(prepared / "input"), str(out)],
                          cwd=install, env=env, capture_output=True, text=True, timeout=1800)
    assert out.is_file(), proc.stdout[-3000:] + proc.stderr[-6000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("name", INPROCESS_CHECKS)
def test_inside_comfyui(inprocess, name):
    assert name in inprocess, f"{name} did not run: {sorted(inprocess)}"
    assert inprocess[name]["ok"], inprocess[name]["detail"]


def test_vhs_load_video_audio_drives_the_portrait(server):
    """VideoHelperSuite's Load Video (upload) -> its AUDIO (a lazy mapping, not a dict) into Audio to
    3DMM Motion -> ... -> VHS Video Combine at the motion's fps with that audio: one frame per motion
    frame (25 per second of speech; the shortened run keeps the first frame_limit) and an audio stream. Built from the shipped
    audio-driven workflow, with the VHS nodes in place of Load Audio and Create/Save Video, and the
    Video Combine settings of the shipped VHS workflow."""
    _skip_without_vhs(server, "the VHS audio graph")
    from mimaface_core.audio import load_audio

    info = _get(server["url"] + "/object_info")
    api = _api(server, "mimaface_audio_driven")
    combine = next(v for v in _api(server, "mimaface_vhs_video").values() if v["class_type"] == "VHS_VideoCombine")
    (load_audio_id,) = [k for k, v in api.items() if v["class_type"] == "LoadAudio"]
    (motion_id,) = [k for k, v in api.items() if v["class_type"] == "MIMAFaceAudioToMotion"]
    (paste_id,) = [k for k, v in api.items() if v["class_type"] == "MIMAFacePasteBack"]
    for k in [k for k, v in api.items() if v["class_type"] in ("CreateVideo", "SaveVideo")]:
        del api[k]
    clip = f"vhs_{VHS_SOURCE}"
    required = info["VHS_LoadVideo"]["input"]["required"]
    assert clip in required["video"][0], required["video"]
    api[load_audio_id] = {"class_type": "VHS_LoadVideo", "inputs": {
        **{name: spec[1]["default"] for name, spec in required.items() if name != "video"}, "video": clip}}
    api[motion_id]["inputs"]["audio"] = [load_audio_id, 2]
    frames = api[motion_id]["inputs"]["frame_limit"]  # shortened: the first frames of the clip's speech
    assert 0 < frames <= load_audio(server["input"] / clip).num_frames
    api["100"] = {"class_type": "VHS_VideoCombine", "inputs": {
        **combine["inputs"], "images": [paste_id, 0], "audio": [load_audio_id, 2], "frame_rate": [motion_id, 2],
        "filename_prefix": "MIMAFace/vhs_speaking"}}
    entry = _wait(server, _queue(server, api))
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"]["messages"])[-4000:]
    (video,) = _saved_files(entry)
    _check_mp4(server["output"] / video.get("subfolder", "") / video["filename"], frames, 25.0)


@pytest.fixture(scope="module")
def frontend(prepared, request):
    """(checker script, screenshot folder) of the real-frontend check, or None without it (an error in
    CI). Screenshots go to MIMAFACE_UI_SCREENSHOTS, else to a folder under the test's temporary folder;
    the folder is printed at the end."""
    import comfy_frontend as ui

    script = ui.checker()
    if script is None:
        assert not CI, f"CI=true but {ui.CHECKER_ENV} does not name ui_workflow_check.mjs (or node is missing)"
        yield None
        return
    folder = Path(os.environ.get("MIMAFACE_UI_SCREENSHOTS") or prepared / "ui-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    yield script, folder
    if any(folder.iterdir()):
        with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
            print(f"\nreal-frontend screenshots: {folder}")


def _queue_from_frontend(server, frontend, case: str, workflow: dict) -> dict:
    """Load the shortened UI form of ``workflow`` into ComfyUI's own frontend in headless Chromium and
    queue it from there (the checker named by COMFY_UI_CHECK): no missing node types, no load error,
    no error toast, the frontend's graphToPrompt is the API graph the /prompt runs queue (_api; for the
    blueprint graph, the subgraph's inner nodes), and the prompt completes. One screenshot of the
    loaded canvas per case. Returns the prompt's /history entry."""
    import comfy_frontend as ui

    script, folder = frontend
    info = _get(server["url"] + "/object_info")
    work = server["input"].parent / "frontend"
    work.mkdir(exist_ok=True)
    path, api_out, shot = work / f"{case}.json", work / f"{case}_api.json", folder / f"{case}.png"
    path.write_text(json.dumps(ui.shortened_ui(workflow, info, _shortened(server))))
    rc, out, prompt_id = ui.run_checker(script, server["url"], path, shot, api_out)
    assert rc == 0 and "missing node types: none" in out, out[-6000:]
    assert shot.is_file() and shot.stat().st_size > 10_000, out[-3000:]
    api = json.loads(api_out.read_text())
    if case == "blueprint":
        # the frontend flattens the subgraph: its inner nodes get ids "<instance>:<inner id>"
        (sub,) = workflow["definitions"]["subgraphs"]
        inner = sorted(v["class_type"] for k, v in api.items() if ":" in k)
        assert inner == sorted(n["type"] for n in sub["nodes"]), api
    else:
        assert ui.prompt_differences(api, _api(server, case), info) == [], json.dumps(api)[:4000]
    return _wait(server, prompt_id)


@pytest.mark.parametrize("case", [REUSED, "blueprint"])
def test_real_frontend_runs_the_image_workflow_and_the_blueprint(server, frontend, case):
    """The real-frontend check (_queue_from_frontend) for what test_workflow_runs leaves out: the
    image workflow (queued through /prompt by the reuse test) and a graph holding the subgraph
    blueprint (core loaders feeding its inputs, VAE Decode and Save Image after it)."""
    import comfy_frontend as ui

    if frontend is None:
        pytest.skip(f"set {ui.CHECKER_ENV} to the ComfyUI tools' ui_workflow_check.mjs (setup_ui.sh installs "
                    "Chromium and playwright-core) to run the real frontend")
    folder = PACK / "example_workflows"
    if case == "blueprint":
        (blueprint,) = BLUEPRINTS
        save_image = next(n for n in json.loads((folder / f"{REUSED}.json").read_text())["nodes"] if n["type"] == "SaveImage")
        workflow = ui.blueprint_graph(json.loads(blueprint.read_text()),
                                      json.loads((folder / "mimaface_video_reenactment.json").read_text()), save_image)
    else:
        workflow = json.loads((folder / f"{case}.json").read_text())
    entry = _queue_from_frontend(server, frontend, case, workflow)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"]["messages"])[-4000:]
    files = _saved_files(entry)
    assert files and all((server["output"] / f.get("subfolder", "") / f["filename"]).is_file() for f in files), entry["outputs"]
