"""The shipped workflows (example_workflows/*.json) and the node contract.

(a) every workflow validates against our node definitions and the core nodes recorded from a real
    ComfyUI (tests/fixtures/comfy_core_nodes.json), and broken copies are caught;
(b) every node of the pack keeps the classic-API contract (tooltips, names, FUNCTION signature);
(c) every workflow runs in its graph's order in Python: its API form (as the frontend makes it) is
    walked node by node, our nodes run for real on tiny released-layout weights and real media, and
    the core nodes are small stand-ins (``workflow_graph.CoreStandIns``: video decode, image load,
    VAE decode with the tiny VAE, video/image "save" that keeps the frames).

The VideoHelperSuite workflow (mimaface_vhs_video) is validated here against VHS's node definitions
recorded from a real ComfyUI (tests/fixtures/vhs_nodes.json), but it is not run in Python: its loader
and its Video Combine are VHS's own FFmpeg code, which stand-ins would only imitate. It runs in real
ComfyUI 0.33 with VHS 1.7.9 loaded (tests/test_comfyui_integration.py, through /prompt and through the
real frontend), where the output mp4's frames and audio are checked.
"""

from __future__ import annotations

import copy
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import workflow_graph as wg
from mimaface_core.media.video_in import video_info
from nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / "example_workflows").glob("*.json"))
VHS = wg.vhs_definitions()
DEFS = {**wg.definitions(), **VHS}
CORE = wg.core_definitions()
#: The workflow that needs VideoHelperSuite (its nodes are VHS's), and only that one.
VHS_WORKFLOW = "mimaface_vhs_video"

#: The file names the workflows load from ComfyUI's input folder → real media of the fixture.
EXAMPLES = ROOT / "example_media"
#: The files the workflows name are the pack's own example media (their own names).
MEDIA = {p.name: p for p in EXAMPLES.iterdir() if p.suffix in (".jpg", ".png", ".mp4")}
#: Driving frames decoded per video (the stand-in's limit) and the fast sampler settings.
FRAMES = 7
FAST = {"steps": 2, "clip_length": 6, "overlap": 2}


def _load(name: str) -> dict:
    return wg.load_workflow(ROOT / "example_workflows" / f"{name}.json")


def _nodes_of(wf: dict, type_: str) -> list[dict]:
    return [n for n in wf["nodes"] if n["type"] == type_]


# ---------------------------------------------------------------------------------------------
# (a) validation


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_workflow_validates(path):
    wf = wg.load_workflow(path)
    assert wg.validate(wf, DEFS) == []
    assert wf["version"] == 0.4


def test_workflow_folder_uses_only_core_nodes_and_ours():
    assert [p.stem for p in WORKFLOWS] == ["mimaface_audio_driven", "mimaface_coefficient_editing",
                                           "mimaface_custom_base_checkpoint", "mimaface_dub_video",
                                           "mimaface_expression_keyframes",
                                           "mimaface_group_photo", "mimaface_image_reenactment",
                                           VHS_WORKFLOW, "mimaface_video_reenactment"]
    used = {n["type"] for p in WORKFLOWS for n in wg.load_workflow(p)["nodes"]}
    ours = {t for t in used if t in NODE_CLASS_MAPPINGS}
    frontend_only = {t for t in used if t in wg.FRONTEND_ONLY}
    vhs = {t for t in used if t.startswith("VHS_")}
    assert vhs == set(VHS), "the VHS snapshot holds exactly the VHS nodes the workflows use"
    assert used - ours - frontend_only - vhs == set(CORE), "the snapshot holds exactly the core nodes the workflows use"
    for p in WORKFLOWS:
        types = {n["type"] for n in wg.load_workflow(p)["nodes"]}
        assert bool(types & vhs) == (p.stem == VHS_WORKFLOW), f"{p.name}: only {VHS_WORKFLOW} needs VideoHelperSuite"
    note = _node(_load(VHS_WORKFLOW), "Note")["widgets_values"][0]
    assert "VideoHelperSuite" in note and "1.7.9" in note, "the VHS workflow's note says what it needs"
    assert set(NODE_CLASS_MAPPINGS) - ours == set(), "every node of the pack appears in a shipped workflow"
    about = json.loads(wg.CORE_SNAPSHOT.read_text())["_about"]
    assert "ComfyUI 0.3.64" in about["comfyui"]


BLUEPRINTS = sorted((ROOT / "subgraphs").glob("*.json"))


def _all_nodes(wf: dict) -> list[dict]:
    """The nodes of a workflow or blueprint, those inside its subgraph definitions included."""
    return wf["nodes"] + [n for sub in wf.get("definitions", {}).get("subgraphs", []) for n in sub["nodes"]]


def _default(inp: wg.InputDef):
    """The value the frontend gives a new node's widget: the input's default, else a combo's first choice."""
    if "default" in inp.options:
        return inp.options["default"]
    return inp.choices[0] if inp.choices else None


#: Widget values of the shipped workflows and blueprint that deliberately differ from the node's
#: default: (node type, input) → (where: workflow/blueprint stems, or None for every file; reason).
#: Everything else a shipped file saves must be today's default (issue 27: the workflows had kept
#: crop_mode first_frame after the default became auto).
DELIBERATE = {
    ("MIMAFaceExtractMotion", "single_image"): (None, "the driving extraction of one image uses the release's "
                                               "driving-image recipe (a 512 crop is used as is); the default is "
                                               "the source photo's"),
    ("MIMAFaceLoadModel", "mode"): ({"mimaface_image_reenactment"}, "image reenactment runs the image-mode weights"),
    ("MIMAFaceEditMotion", "yaw"): ({"mimaface_coefficient_editing"}, "the editing example turns the head 10°"),
    ("MIMAFaceEditMotion", "expression_scale"): ({"mimaface_coefficient_editing"}, "and exaggerates the expression"),
    ("MIMAFaceEditMotion", "smoothing"): ({"mimaface_coefficient_editing"}, "and smooths the edited motion"),
    ("MIMAFaceExpressionKeyframes", "keyframes"): ({"mimaface_expression_keyframes"}, "a track timed to the "
                                                   "example speech (3 s) instead of the default's 2 s demo"),
    ("MIMAFaceExpressionControls", "smile"): ({"mimaface_expression_keyframes"}, "the single-expression preview "
                                              "shows a smile"),
    ("MIMAFaceEvaluateAnimation", "clip_length"): ({"mimaface_video_reenactment"}, "the sampler's clip length (12), "
                                                   "so the evaluation reports the clip seams"),
    ("CreateVideo", "fps"): ({"mimaface_audio_driven", "mimaface_expression_keyframes", "mimaface_dub_video"},
                             "Audio to 3DMM Motion makes 25 fps motion (one frame per 40 ms of audio); the dubbing "
                             "example's footage is 25 fps"),
    ("VHS_LoadVideoPath", "video"): ({"mimaface_vhs_video"}, "the example driving clip, by path (VHS's loader takes a "
                                     "path, no upload)"),
    ("VHS_LoadVideoPath", "frame_load_cap"): ({"mimaface_vhs_video"}, "60 frames: a short first run"),
    ("VHS_LoadVideoPath", "skip_first_frames"): ({"mimaface_vhs_video"}, "shows VHS's skip feeding our nodes"),
    ("VHS_LoadVideoPath", "format"): ({"mimaface_vhs_video"}, "None keeps the frames' size; VHS's default AnimateDiff "
                                      "resizes them to multiples of 8"),
    ("VHS_VideoCombine", "filename_prefix"): ({"mimaface_vhs_video"}, "each output is named after its workflow"),
    ("VHS_VideoCombine", "format"): ({"mimaface_vhs_video"}, "an H.264 mp4 with the audio, not VHS's default GIF"),
    ("MIMAFacePasteBack", "colour_match"): ({"mimaface_dub_video"}, "re-performed footage follows each frame's "
                                            "lighting (off by default: Paste Back's released behaviour)"),
    ("MIMAFacePasteBack", "pass_through"): ({"mimaface_dub_video"}, "frames where the footage's face is absent pass "
                                            "through unchanged"),
    ("SaveVideo", "filename_prefix"): (None, "each output is named after its workflow"),
    ("SaveImage", "filename_prefix"): (None, "each output is named after its workflow"),
    ("MIMAFaceSaveMotion", "filename_prefix"): (None, "named for the Load Motion node of the same workflow"),
}


def _differences(path: Path) -> list[tuple[str, str, object, object]]:
    """(node type, input, saved value, default) of every widget of ``path`` that is not its default;
    file choices (weights, VAEs, checkpoints, uploads, saved motions) are the machine's files, not
    defaults, and are left out (the files are checked by test_every_file_the_workflows_load_has_real_media
    and the workflows' ``models`` list)."""
    out = []
    for node in _all_nodes(wg.load_workflow(path)):
        d = DEFS.get(node["type"])
        if d is None:
            continue  # Note / MarkdownNote (frontend only)
        for name, value in wg.widget_values(node, d).items():
            inp = d.input(name)
            if inp is None or d.is_file_combo(inp):
                continue  # a frontend-only widget (VHS's video preview) or a file choice
            default = _default(inp)
            same = value == default or (isinstance(value, (int, float)) and isinstance(default, (int, float))
                                        and float(value) == float(default))
            if not same:
                out.append((node["type"], name, value, default))
    return out


@pytest.mark.parametrize("path", WORKFLOWS + BLUEPRINTS, ids=[p.stem for p in WORKFLOWS + BLUEPRINTS])
def test_shipped_widget_values_are_todays_defaults(path):
    unlisted = []
    for type_, name, value, default in _differences(path):
        where, _reason = DELIBERATE.get((type_, name), (set(), ""))
        if where is not None and path.stem not in where:
            unlisted.append(f"{type_}.{name}={value!r} (default {default!r})")
    assert not unlisted, f"{path.name} saves non-default values not listed in DELIBERATE: {unlisted}"


def test_deliberate_differences_are_still_used():
    used = {(t, n) for p in WORKFLOWS + BLUEPRINTS for t, n, _, _ in _differences(p)}
    assert set(DELIBERATE) <= used, f"stale DELIBERATE entries: {sorted(set(DELIBERATE) - used)}"


def test_every_driver_extraction_uses_the_default_crop_mode():
    modes = {(p.stem, n.get("title")): wg.widget_values(n, DEFS[n["type"]])["crop_mode"]
             for p in WORKFLOWS + BLUEPRINTS for n in _all_nodes(wg.load_workflow(p))
             if n["type"] == "MIMAFaceExtractMotion"}
    default = _default(DEFS["MIMAFaceExtractMotion"].input("crop_mode"))
    assert default == "auto" and len(modes) >= 2 * len(BLUEPRINTS) + len(WORKFLOWS)
    assert set(modes.values()) == {"auto"}, modes


#: The models folder each model-file widget loads from (the frontend's missing-model hints match a
#: workflow's ``models`` entries to these widget values by name and directory).
MODEL_DIRECTORIES = {
    ("VAELoader", "vae_name"): "vae", ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
    ("LoraLoaderModelOnly", "lora_name"): "loras", ("MIMAFaceLoadModel", "base_checkpoint"): "checkpoints",
    ("MIMAFaceLoadModel", "reference_checkpoint"): "checkpoints", ("MIMAFaceLoadModel", "vae"): "vae",
    ("MIMAFaceAudioToMotion", "audio_weights"): "sadtalker", ("MIMAFaceFootageMotion", "audio_weights"): "sadtalker",
}
#: Model files the workflows name that no public URL serves: the user's own, named as placeholders.
OWN_FILES = {"my_sd15_checkpoint.safetensors": "your own SD1.5 checkpoint (the custom-base example)",
             "my_style_lora.safetensors": "your own LoRA (the custom-base example)"}
MODEL_SUFFIXES = (".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin")


def _model_sources() -> dict[str, str]:
    """Each downloadable single file → its URL, from the download command's own sources."""
    from mimaface_core.weights import download as dl

    return {dl.VAE_FILE: f"https://huggingface.co/{dl.VAE_FILE_REPO}/resolve/main/{dl.VAE_FILE}",
            "v1-5-pruned-emaonly.safetensors": f"https://huggingface.co/{dl.SD15_REPO}/resolve/main/"
                                               "v1-5-pruned-emaonly.safetensors",
            dl.COMBINED_FILE: dl.SADTALKER_URL}


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_workflow_lists_the_model_files_it_needs(path):
    """The workflow's ``models`` (name, url, directory), as ComfyUI's frontend reads them (0.33's
    schema: url a URL, directory a string; a missing file named by a combo widget is offered for
    download from the entry of the same name and directory, https Hugging Face / Civitai URLs of
    .safetensors/.ckpt/.pt/.pth files): exactly the single files its loaders name, except the user's
    own; the MIMAFace snapshot folder is no single file (see Load MIMAFace Model's help page)."""
    wf = wg.load_workflow(path)
    named = set()
    for node in _all_nodes(wf):
        d = DEFS.get(node["type"])
        for name, value in (wg.widget_values(node, d) if d else {}).items():
            if isinstance(value, str) and value.lower().endswith(MODEL_SUFFIXES):
                named.add((value, MODEL_DIRECTORIES[(node["type"], name)]))
    listed = [(m["name"], m["directory"]) for m in wf.get("models", [])]
    assert len(listed) == len(set(listed)), listed
    assert set(listed) == {n for n in named if n[0] not in OWN_FILES}, (listed, named)
    sources = _model_sources()
    for m in wf["models"]:
        assert set(m) == {"name", "url", "directory"}, m
        assert m["url"] == sources[m["name"]] and m["url"].startswith("https://") and m["url"].endswith("/" + m["name"])


def test_models_hints_cover_the_first_run_files():
    """The VAE Loader's sd-vae-ft-mse file is offered by every workflow that loads it; the SD1.5
    reference by the custom-base example."""
    for path in WORKFLOWS:
        wf = wg.load_workflow(path)
        if _nodes_of(wf, "VAELoader"):
            assert ("vae-ft-mse-840000-ema-pruned.safetensors", "vae") in {(m["name"], m["directory"]) for m in wf["models"]}
    custom = _load("mimaface_custom_base_checkpoint")
    assert "v1-5-pruned-emaonly.safetensors" in {m["name"] for m in custom["models"]}


def test_vhs_workflow_wires_vhs_outputs_into_ours():
    """VHS Load Video (Path) (with a frame cap and a skip) feeds the driving Extract and Paste Back;
    its VIDEOINFO gives Video Combine the loaded frame rate and its AUDIO the sound track; Video
    Combine writes the pasted-back frames as an H.264 mp4. (Run in real ComfyUI: the integration test.)"""
    api = wg.to_api(_load(VHS_WORKFLOW), DEFS)
    (load,) = [k for k, v in api.items() if v["class_type"] == "VHS_LoadVideoPath"]
    (info,) = [k for k, v in api.items() if v["class_type"] == "VHS_VideoInfoLoaded"]
    (combine,) = [v["inputs"] for v in api.values() if v["class_type"] == "VHS_VideoCombine"]
    (paste,) = [k for k, v in api.items() if v["class_type"] == "MIMAFacePasteBack"]
    outputs = VHS["VHS_LoadVideoPath"].output_names
    assert api[load]["inputs"]["frame_load_cap"] > 0 and api[load]["inputs"]["skip_first_frames"] > 0
    assert api[info]["inputs"]["video_info"] == [load, outputs.index("video_info")]
    driving = api[_by_title(api, "Extract 3DMM Motion (driving)")]["inputs"]
    assert driving["images"] == [load, outputs.index("IMAGE")] and driving["crop_mode"] == "auto"
    assert api[paste]["inputs"]["driving_frames"] == [load, outputs.index("IMAGE")]
    assert combine["images"] == [paste, 0] and combine["audio"] == [load, outputs.index("audio")]
    assert combine["frame_rate"] == [info, VHS["VHS_VideoInfoLoaded"].output_names.index("fps🟦")]
    assert combine["format"] == "video/h264-mp4"


def _link(wf, link_id):
    return next(link for link in wf["links"] if link[0] == link_id)


def _node(wf, title_or_type):
    return next(n for n in wf["nodes"] if n.get("title") == title_or_type or n["type"] == title_or_type)


def _broken_copies():
    """(name, workflow, a phrase the validator must report)."""
    base = _load("mimaface_video_reenactment")
    out = []

    wf = copy.deepcopy(base)  # the link says IMAGE where a motion flows
    render = _node(wf, "MIMAFaceRenderCoeffImage")
    _link(wf, render["inputs"][1]["link"])[5] = "IMAGE"
    out.append(("link type field", wf, "type 'IMAGE' but node"))

    wf = copy.deepcopy(base)  # rewired: the source crops (IMAGE) into source_motion
    link = _link(wf, render["inputs"][1]["link"])
    src = next(n for n in wf["nodes"] if n["id"] == link[1])
    src["outputs"][0]["links"].remove(link[0])
    src["outputs"][1]["links"].append(link[0])
    link[2], link[5] = 1, "IMAGE"
    out.append(("IMAGE into a motion input", wf, "IMAGE into node"))

    wf = copy.deepcopy(base)  # a widget value missing (the sampler's preset)
    _node(wf, "MIMAFaceICAClipSampler")["widgets_values"].pop()
    out.append(("missing widget", wf, "8 widgets_values for 9 widgets"))

    wf = copy.deepcopy(base)  # the seed's control value left out: every later value shifts
    _node(wf, "MIMAFaceICAClipSampler")["widgets_values"].remove("fixed")
    out.append(("no control value after seed", wf, "widgets_values for 9 widgets"))

    wf = copy.deepcopy(base)
    _node(wf, "MIMAFaceICAClipSampler")["widgets_values"][2] = 0  # steps
    out.append(("steps below minimum", wf, "steps=0 is below its minimum 1"))

    wf = copy.deepcopy(base)
    _node(wf, "MIMAFaceICAClipSampler")["widgets_values"][3] = 50.0  # cfg
    out.append(("cfg above maximum", wf, "cfg=50.0 is above its maximum 20.0"))

    wf = copy.deepcopy(base)
    _node(wf, "MIMAFaceICAClipSampler")["widgets_values"][4] = "heun"
    out.append(("unknown scheduler", wf, "scheduler='heun' is not one of"))

    wf = copy.deepcopy(base)
    _node(wf, "MIMAFaceGazeEmbed")["widgets_values"][2] = 4  # smoothing windows are odd (min 1, step 2)
    out.append(("INT off its step", wf, "smoothing=4 is not 1 plus a multiple of its step 2"))

    wf = copy.deepcopy(base)
    _node(wf, "CreateVideo")["widgets_values"][0] = 500.0
    out.append(("core widget out of range", wf, "fps=500.0 is above its maximum"))

    wf = copy.deepcopy(base)
    _node(wf, "MIMAFaceGazeEmbed")["type"] = "MIMAFaceGazeEmbedV2"
    out.append(("unknown node type", wf, "unknown node type 'MIMAFaceGazeEmbedV2'"))

    wf = copy.deepcopy(base)  # a required socket left unconnected
    mia = _node(wf, "MIMAFaceMIAAppearanceEncode")
    lid = mia["inputs"][1]["link"]
    mia["inputs"][1]["link"] = None
    wf["links"] = [link for link in wf["links"] if link[0] != lid]
    for n in wf["nodes"]:
        for o in n["outputs"]:
            if o["links"] and lid in o["links"]:
                o["links"].remove(lid)
    out.append(("unconnected required input", wf, "required input 'source_crop' (IMAGE) is not connected"))

    wf = copy.deepcopy(base)  # a link whose slot points past the node's inputs
    _link(wf, render["inputs"][1]["link"])[4] = 42
    out.append(("link slot out of range", wf, "has no input slot 42"))
    return out


@pytest.mark.parametrize("name,wf,phrase", _broken_copies(), ids=[c[0] for c in _broken_copies()])
def test_validator_catches_broken_copies(name, wf, phrase):
    problems = wg.validate(wf, DEFS)
    assert any(phrase in p for p in problems), problems


def test_control_values_and_file_combos():
    d = DEFS["MIMAFaceICAClipSampler"]
    assert [(k, i.name) for k, i in d.widget_layout()][:3] == [("value", "seed"), ("control", "seed"), ("value", "steps")]
    assert [k for k, _ in DEFS["LoadVideo"].widget_layout()] == ["value", "upload"]
    wf = _load("mimaface_video_reenactment")
    _node(wf, "MIMAFaceICAClipSampler")["widgets_values"][1] = "sometimes"
    _node(wf, "MIMAFaceLoadModel")["widgets_values"][0] = "any_folder_name"  # files on disk: any name
    (problem,) = wg.validate(wf, DEFS)
    assert "(MIMAFaceICAClipSampler): control value after seed is 'sometimes'" in problem


def test_types_match_like_comfyui():
    assert wg.types_match("IMAGE", "IMAGE") and wg.types_match("*", "LATENT") and wg.types_match("IMAGE", "*")
    assert wg.types_match("IMAGE,MASK", "MASK") and not wg.types_match("IMAGE", "MASK")


def test_to_api_muted_nodes_and_raw_object_info():
    wf = _load("mimaface_coefficient_editing")
    api = wg.to_api(wf, DEFS)
    muted = {str(n["id"]) for n in wf["nodes"] if n["mode"] == wg.MODE_NEVER}
    assert muted and not muted & set(api) and "1" not in api  # muted nodes and the Note left out
    raw = json.loads(wg.CORE_SNAPSHOT.read_text())  # /object_info entries are accepted as definitions
    pack = {k: v for k, v in DEFS.items() if k.startswith("MIMAFace")}
    assert wg.to_api(wf, {**raw, **pack}) == api
    for n in wf["nodes"]:
        n["mode"] = wg.MODE_ALWAYS
    unmuted = wg.to_api(wf, DEFS)
    assert muted <= set(unmuted)
    load = next(k for k, v in unmuted.items() if v["class_type"] == "MIMAFaceLoadMotion")
    assert unmuted[load]["inputs"] == {"motion_file": "output/edited_motion_00001"}
    order = wg.execution_order(unmuted)
    for nid, node in unmuted.items():
        for value in node["inputs"].values():
            if isinstance(value, list):
                assert order.index(value[0]) < order.index(nid)


def test_bypassed_node_passes_its_input_through():
    wf = _load("mimaface_video_reenactment")
    gaze = _node(wf, "MIMAFaceGazeEmbed")
    _node(wf, "MIMAFacePasteBack")["mode"] = wg.MODE_BYPASS  # IMAGE out <- its IMAGE input (driving frames)
    api = wg.to_api(wf, DEFS)
    comps = _node(wf, "GetVideoComponents")["id"]
    pasted_video = next(v for v in api.values() if v["_meta"]["title"] == "Create Video (pasted back)")
    assert pasted_video["inputs"]["images"] == [str(comps), 0]
    gaze["mode"] = wg.MODE_NEVER  # MIA's optional gaze input disappears
    mia = next(v for v in wg.to_api(wf, DEFS).values() if v["class_type"] == "MIMAFaceMIAAppearanceEncode")
    assert "gaze" not in mia["inputs"]


def test_execution_order_refuses_cycles():
    with pytest.raises(ValueError, match="cycle"):
        wg.execution_order({"1": {"inputs": {"a": ["2", 0]}}, "2": {"inputs": {"b": ["1", 0]}}})


# ---------------------------------------------------------------------------------------------
# (b) node contract


@pytest.mark.parametrize("node_id", sorted(NODE_CLASS_MAPPINGS))
def test_node_contract(node_id):
    cls = NODE_CLASS_MAPPINGS[node_id]
    assert node_id.startswith("MIMAFace")
    assert cls.CATEGORY == "MIMAFace"
    assert isinstance(cls.DESCRIPTION, str) and cls.DESCRIPTION.strip()
    assert NODE_DISPLAY_NAME_MAPPINGS[node_id] and NODE_DISPLAY_NAME_MAPPINGS[node_id] != node_id
    spec = cls.INPUT_TYPES()
    assert set(spec) <= {"required", "optional", "hidden"} and isinstance(spec["required"], dict)
    names = []
    for section in ("required", "optional"):
        for name, entry in (spec.get(section) or {}).items():
            assert isinstance(entry, tuple) and len(entry) == 2, f"{name}: (type, options)"
            kind, options = entry
            assert isinstance(options, dict) and isinstance(options.get("tooltip"), str) and options["tooltip"].strip(), name
            if isinstance(kind, list):
                assert kind and all(isinstance(c, str) for c in kind), name
                assert options.get("default", kind[0]) in kind, name
            else:
                assert isinstance(kind, str) and kind, name
            if kind in ("INT", "FLOAT"):
                assert options["min"] <= options["default"] <= options["max"], name
            names.append(name)
    assert isinstance(cls.RETURN_TYPES, tuple)
    if cls.RETURN_TYPES:
        assert len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES) == len(cls.OUTPUT_TOOLTIPS)
    else:
        assert cls.OUTPUT_NODE is True
    params = inspect.signature(getattr(cls, cls.FUNCTION)).parameters
    assert list(params)[0] == "self"
    assert sorted(list(params)[1:]) == sorted(names), "FUNCTION's parameters are exactly the input names"
    optional = set(spec.get("optional") or {})
    for name in names:
        has_default = params[name].default is not inspect.Parameter.empty
        assert has_default == (name in optional), f"{name}: optional inputs default, required ones do not"


# ---------------------------------------------------------------------------------------------
# (c) execution in graph order


def fast(api: dict) -> dict:
    for node in api.values():
        if node["class_type"] == "MIMAFaceICAClipSampler":
            node["inputs"].update(FAST)
        if node["class_type"] in ("MIMAFaceAudioToMotion", "MIMAFaceFootageMotion"):
            node["inputs"]["frame_limit"] = FRAMES
        if node["class_type"] == "MIMAFaceEvaluateAnimation":
            node["inputs"].update({k: FAST[k] for k in ("clip_length", "overlap")})
    return api


@pytest.fixture(scope="module")
def models_dir(animate_root, released_root, sadtalker_combined, tmp_path_factory):
    """models/ as ComfyUI has it: mimaface/MIMAFace (tiny released layout with a tiny VAE), tiny
    SD1.5-layout checkpoints under every name the workflows give base/reference checkpoints, and
    SadTalker's audio weights (recipe weights) in models/sadtalker under the name the workflows use."""
    from ldm_layout import sd15_like_unet, write_ldm_unet
    from mimaface_core.weights.unet import read_pretrained_unet

    models = tmp_path_factory.mktemp("models")
    (models / "mimaface").mkdir()
    (models / "mimaface" / "MIMAFace").symlink_to(animate_root, target_is_directory=True)
    (models / "checkpoints").mkdir()
    config, _, _ = read_pretrained_unet(released_root / "checkpoints/image/pretrained_unet")
    names = sorted({v for p in WORKFLOWS for t in ("MIMAFaceLoadModel", "CheckpointLoaderSimple")
                    for n in _nodes_of(wg.load_workflow(p), t)
                    for v in wg.widget_values(n, DEFS[t]).values()
                    if isinstance(v, str) and v.endswith(".safetensors")})
    assert names == ["my_sd15_checkpoint.safetensors", "v1-5-pruned-emaonly.safetensors"]
    for seed, name in enumerate(names, 1):
        write_ldm_unet(sd15_like_unet(config, seed), models / "checkpoints" / name, layers_per_block=config["layers_per_block"])
    (models / "sadtalker").mkdir()
    audio_files = {wg.widget_values(n, DEFS["MIMAFaceAudioToMotion"])["audio_weights"] for p in WORKFLOWS
                   for n in _nodes_of(wg.load_workflow(p), "MIMAFaceAudioToMotion")}
    for name in audio_files:
        (models / "sadtalker" / name).symlink_to(sadtalker_combined)
    return models


@pytest.fixture()
def comfy_env(models_dir, tmp_path, monkeypatch, animate_root):
    monkeypatch.setenv("MIMAFACE_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("MIMAFACE_OUTPUT_DIR", str(tmp_path / "output"))
    return wg.CoreStandIns(animate_root / "sd-vae-ft-mse", FRAMES, MEDIA, models_dir)


def _by_title(api: dict, title: str) -> str:
    return next(k for k, v in api.items() if v["_meta"]["title"] == title)


def test_every_file_the_workflows_load_has_real_media():
    for p in WORKFLOWS:
        for n in wg.load_workflow(p)["nodes"]:
            if n["type"] in ("LoadImage", "LoadVideo", "LoadAudio"):
                assert n["widgets_values"][0] in MEDIA, f"{p.name}: map {n['widgets_values'][0]} to real media"
            if n["type"] == "VHS_LoadVideoPath":  # a path: ComfyUI's input folder, from ComfyUI's folder
                path = wg.widget_values(n, DEFS[n["type"]])["video"]
                assert path.startswith("input/") and Path(path).name in MEDIA, f"{p.name}: {path}"


def test_video_reenactment_runs(comfy_env):
    api = fast(wg.to_api(_load("mimaface_video_reenactment"), DEFS))
    results = wg.run_api(api, comfy_env)
    driver = MEDIA["driving_talking.mp4"]
    info = video_info(driver)
    crops = comfy_env.saved[_by_title(api, "Save Video")]
    pasted = comfy_env.saved[_by_title(api, "Save Video (pasted back)")]
    assert crops["images"].shape == (FRAMES, 512, 512, 3)
    assert 0 <= crops["images"].min() and crops["images"].max() <= 1 and crops["images"].std() > 0
    assert pasted["images"].shape == (FRAMES, info.height, info.width, 3)
    for video in (crops, pasted):
        assert video["fps"] == pytest.approx(info.fps) and video["audio"] == {"source": driver}
    sampler = _by_title(api, "ICA Clip Sampler")
    assert results[sampler][0]["samples"].shape[0] == FRAMES
    summary, curves = results[_by_title(api, "Evaluate Animation (MIMAFace)")]
    assert f"{FRAMES} frames compared" in summary and "Exp" in summary and "seams at frames" in summary
    assert curves.shape == (1, 800, 1000, 3)


def test_image_reenactment_runs(comfy_env):
    api = fast(wg.to_api(_load("mimaface_image_reenactment"), DEFS))
    wg.run_api(api, comfy_env)
    (saved,) = comfy_env.saved.values()
    assert saved["images"].shape == (1, 512, 512, 3) and saved["prefix"] == "MIMAFace/reenacted"


def test_custom_base_checkpoint_runs(comfy_env, animate_model):
    api = fast(wg.to_api(_load("mimaface_custom_base_checkpoint"), DEFS))
    results = wg.run_api(api, comfy_env)
    (saved,) = comfy_env.saved.values()
    assert saved["images"].shape == (FRAMES, 512, 512, 3)
    merged = results[_by_title(api, "Load MIMAFace Model")][0].model.denoiser.state_dict()
    released = animate_model.denoiser.state_dict()
    key = "down_blocks.0.resnets.0.conv1.weight"
    assert not torch.equal(merged[key], released[key]), "the SD1.5 base was merged in"


def test_coefficient_editing_saves_and_reuses_motion(comfy_env, tmp_path):
    wf = _load("mimaface_coefficient_editing")
    cache: dict = {}
    api = fast(wg.to_api(wf, DEFS))
    first = wg.run_api(api, comfy_env, cache)
    (saved,) = comfy_env.saved.values()
    assert saved["images"].shape == (FRAMES, 512, 512, 3)
    motion_dir = tmp_path / "output" / "mimaface_motion"
    assert sorted(p.name for p in motion_dir.iterdir()) == ["edited_motion_00001.json", "edited_motion_00001.safetensors"]
    edit = _by_title(api, "Edit Motion (MIMAFace)")
    edited = first[edit][0]

    for n in wf["nodes"]:  # part 2, un-muted after the first run, reads the saved motion
        n["mode"] = wg.MODE_ALWAYS
    api = fast(wg.to_api(wf, DEFS))
    comfy_env.saved.clear()
    second = wg.run_api(api, comfy_env, cache)
    (reused,) = comfy_env.saved.values()
    assert reused["images"].shape == (FRAMES, 512, 512, 3) and reused["prefix"] == "MIMAFace/from_saved_motion"
    load = _by_title(api, "Load Motion (MIMAFace)")
    torch.testing.assert_close(second[load][0].coeffs, edited.coeffs)
    assert second[load][1] == FRAMES
    assert len(list(motion_dir.iterdir())) == 2, "Save Motion did not run again (cached like in ComfyUI)"


def test_audio_driven_runs(comfy_env):
    from nodes import _comfy

    api = fast(wg.to_api(_load("mimaface_audio_driven"), DEFS))
    assert _comfy.audio_weight_choices()[0] == "SadTalker_V0.0.2_256.safetensors"
    assert "mimaface/MIMAFace/sadtalker/SadTalker_V0.0.2_256.safetensors" not in _comfy.audio_weight_choices()
    results = wg.run_api(api, comfy_env)
    audio_node = _by_title(api, "Audio to 3DMM Motion (MIMAFace)")
    motion, count, fps = results[audio_node]
    assert len(motion) == count == FRAMES and fps == 25.0 and motion.fps == 25.0
    load_audio = results[_by_title(api, "Load Audio (speech)")][0]
    source = Image.open(MEDIA["portrait_eileen_collins.jpg"])
    crops = comfy_env.saved[_by_title(api, "Save Video")]
    pasted = comfy_env.saved[_by_title(api, "Save Video (pasted back)")]
    assert crops["images"].shape == (FRAMES, 512, 512, 3) and crops["images"].std() > 0
    assert pasted["images"].shape == (FRAMES, source.height, source.width, 3)
    for video in (crops, pasted):
        assert video["fps"] == 25.0 and video["audio"] is load_audio
    # the source photo outside the pasted crop is untouched
    photo = torch.from_numpy(np.asarray(source.convert("RGB"))).float() / 255
    assert torch.allclose(pasted["images"][0, :4, :4], photo[:4, :4], atol=1e-6)


def test_expression_keyframes_workflow_runs(comfy_env, animate_root):
    from mimaface_core.audio import load_audio
    from mimaface_core.morphable.bfm import load_bfm09
    from mimaface_core.morphable.controls import solve_controls
    from mimaface_core.motion.keyframes import parse_keyframes

    api = fast(wg.to_api(_load("mimaface_expression_keyframes"), DEFS))
    keys = _by_title(api, "Expression Keyframes (MIMAFace)")
    shipped = parse_keyframes(api[keys]["inputs"]["keyframes"])
    shipped.check(load_audio(MEDIA["driving_talking.mp4"]).num_frames, 25.0)  # fits the example speech
    assert {"smile", "blink"} == set(shipped.controls)
    # the same kind of track (a smile ramp, a blink) inside the FRAMES frames the fast run makes
    api[keys]["inputs"]["keyframes"] = "0: smile=0, blink=0\n3 smooth: smile=0.8\n4 step: blink=1\n5: blink=0\n"
    results = wg.run_api(api, comfy_env)
    speech = results[_by_title(api, "Audio to 3DMM Motion (MIMAFace)")][0]
    keyed, count, fps = results[keys]
    assert len(keyed) == count == FRAMES and fps == 25.0
    controls = solve_controls(load_bfm09(animate_root / "models/D3DFR/BFM09_model_info.mat"))
    delta = {k: controls.read(keyed.coeffs)[k] - controls.read(speech.coeffs)[k] for k in ("smile", "blink")}
    assert float(delta["smile"][3]) == pytest.approx(0.8, abs=1e-3) and float(delta["blink"][4]) == pytest.approx(1, abs=1e-3)
    assert float(delta["blink"][3]) == pytest.approx(0, abs=1e-4)
    crops = comfy_env.saved[_by_title(api, "Save Video")]
    assert crops["images"].shape == (FRAMES, 512, 512, 3) and crops["fps"] == 25.0
    preview = results[_by_title(api, "Render Coeff Image (preview)")][0]
    assert preview.shape == (1, 512, 512, 3) and preview.std() > 0


def test_group_photo_runs_one_chain_per_face(comfy_env):
    """Source Faces and Face Tracks Motion give lists; Render, MIA, the sampler and VAE Decode run
    once per face; Paste Back Faces makes one video of the photo's size."""
    api = fast(wg.to_api(_load("mimaface_group_photo"), DEFS))
    results = wg.run_api(api, comfy_env)
    photo = Image.open(MEDIA["group_photo.jpg"])
    motions, crops = results[_by_title(api, "Source Faces (MIMAFace)")]
    assert len(motions) == len(crops) == 2
    driving, report = results[_by_title(api, "Face Tracks Motion (MIMAFace)")]
    assert len(driving) == 2 and all(len(m) == FRAMES for m in driving)
    assert "face 0 <- track 0" in report and "face 1 <- track 1" in report
    latents = results[_by_title(api, "ICA Clip Sampler")][0]
    assert len(latents) == 2 and all(lat["samples"].shape[0] == FRAMES for lat in latents)
    video = comfy_env.saved[_by_title(api, "Save Video")]
    assert video["images"].shape == (FRAMES, photo.height, photo.width, 3)
    _, mask = results[_by_title(api, "Paste Back Faces (MIMAFace)")]
    ref = torch.from_numpy(np.asarray(photo.convert("RGB"))).float() / 255
    outside = mask[0] == 0
    assert outside.float().mean() > 0.3
    assert torch.equal(video["images"][0][outside], ref[outside])


def test_dub_video_runs(comfy_env):
    """The dubbing workflow: the footage's frames (the stand-in's first FRAMES) with the face
    re-performed by the speech, the footage's size and rate, the new AUDIO, and the footage's
    pixels exactly outside Paste Back's region mask."""
    api = fast(wg.to_api(_load("mimaface_dub_video"), DEFS))
    results = wg.run_api(api, comfy_env)
    footage_node = _by_title(api, "Footage Motion (MIMAFace)")
    motion, source_motion, crop, masks, frames, fps = results[footage_node]
    speech = results[_by_title(api, "Load Audio (new speech)")][0]
    assert len(motion) == len(masks) == len(frames) == FRAMES and len(source_motion) == 1
    assert crop.shape == (1, 512, 512, 3) and masks.shape == (FRAMES, 512, 512) and float(masks.max()) > 0
    assert fps == pytest.approx(30000 / 1001) and motion.info["region"] == "lower_face"
    pasted, mask = results[_by_title(api, "Paste Back (MIMAFace)")]
    assert pasted.shape == (FRAMES, 480, 640, 3)
    outside = mask == 0
    assert outside.any() and (~outside).any()
    assert torch.equal(pasted[outside], frames[outside]), "outside the mask: the footage as decoded"
    video = comfy_env.saved[_by_title(api, "Save Video")]
    assert video["fps"] == fps and video["audio"] is speech and video["images"].shape == pasted.shape
