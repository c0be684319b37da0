"""The real ComfyUI frontend in the integration tests: the project's ComfyUI tools' checker
(``ui_workflow_check.mjs``: headless Chromium through playwright-core) run on the shipped workflows,
shortened the way the server tests shorten them, and on a small graph holding the subgraph blueprint.

Where the tools are: ``COMFY_UI_CHECK`` names ``ui_workflow_check.mjs``; ``PLAYWRIGHT_NODE_MODULES``
and ``CHROMIUM`` (read by the checker) name playwright-core's node_modules and the browser. The
project's ``setup_ui.sh`` installs both (``.ci/run`` runs it and sets the variables).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path

import workflow_graph as wg

CHECKER_ENV = "COMFY_UI_CHECK"


def checker() -> Path | None:
    """The checker script named by COMFY_UI_CHECK, or None when unset or when node is missing."""
    path = os.environ.get(CHECKER_ENV, "")
    if not path or not shutil.which("node"):
        return None
    return Path(path)


def set_widget(node: dict, node_def: wg.NodeDef, name: str, value) -> None:
    """Set one widget value of a UI node by input name (list or named widgets_values).

    Raises KeyError when the node has no widget of that name."""
    values = node["widgets_values"]
    if isinstance(values, dict):
        if name not in values:
            raise KeyError(f"{node['type']} has no widget {name!r}")
        values[name] = value
        return
    layout = node_def.widget_layout()
    index = next((i for i, (kind, inp) in enumerate(layout) if kind == "value" and inp.name == name), None)
    if index is None:
        raise KeyError(f"{node['type']} has no widget {name!r}")
    values[index] = value


def shortened_ui(workflow: dict, defs, inputs_by_type: dict[str, dict], checkpoint_as_file: bool = True) -> dict:
    """A copy of a UI workflow with the widget values of ``inputs_by_type`` ({node type: {widget:
    value}}) set on every node of that type (inner subgraph nodes too). With ``checkpoint_as_file``,
    core checkpoint and LoRA loaders are muted and the checkpoint goes to Load MIMAFace Model's
    ``base_checkpoint`` instead (ComfyUI's loader only builds full-size SD1.5 UNets; the server
    tests do the same on the API form)."""
    defs = wg.as_definitions(defs)
    wf = copy.deepcopy(workflow)
    graphs = [wf] + list((wf.get("definitions") or {}).get("subgraphs") or [])
    for graph in graphs:
        nodes = graph["nodes"]
        for node in nodes:
            for name, value in inputs_by_type.get(node["type"], {}).items():
                set_widget(node, defs[node["type"]], name, value)
        if not checkpoint_as_file:
            continue
        ckpts = [n for n in nodes if n["type"] == "CheckpointLoaderSimple"]
        for n in nodes:
            if n["type"] in ("CheckpointLoaderSimple", "LoraLoaderModelOnly"):
                n["mode"] = wg.MODE_NEVER
        for n in nodes:
            if n["type"] == "MIMAFaceLoadModel" and ckpts:
                name = wg.widget_values(ckpts[0], defs["CheckpointLoaderSimple"])["ckpt_name"]
                set_widget(n, defs["MIMAFaceLoadModel"], "base_checkpoint", name)
    return wf


def blueprint_graph(blueprint: dict, donor: dict, save_image: dict) -> dict:
    """A UI workflow holding one instance of ``blueprint`` (a subgraph blueprint file: one top-level
    node whose type is the subgraph's id, and ``definitions.subgraphs``), fed like the video
    workflow feeds it: Load Image -> source_image, Load Video -> Get Video Components -> driving_images,
    VAE Loader -> vae; its latent goes through VAE Decode to Save Image. ``donor`` is the shipped
    video workflow (the core nodes are copied from it, widgets included), ``save_image`` a Save
    Image node of another shipped workflow."""
    wf = copy.deepcopy(blueprint)
    (instance,) = wf["nodes"]
    by_type = {n["type"]: copy.deepcopy(n) for n in donor["nodes"]}
    load_image, load_video, components = by_type["LoadImage"], by_type["LoadVideo"], by_type["GetVideoComponents"]
    vae_loader, decode, save = by_type["VAELoader"], by_type["VAEDecode"], copy.deepcopy(save_image)
    core = [load_image, load_video, components, vae_loader, decode, save]
    places = [[20, 20], [20, 450], [400, 450], [400, 300], [1300, 20], [1300, 150]]
    for k, (node, pos) in enumerate(zip(core, places)):
        node["id"] = instance["id"] + 1 + k
        node["pos"] = pos
        node["order"] = k
        node.pop("title", None)
        for slot in node.get("inputs") or []:
            slot["link"] = None
        for out in node.get("outputs") or []:
            out["links"] = []
    instance["pos"] = [800, 20]
    instance["order"] = len(core)
    slot_of = {s["name"]: i for i, s in enumerate(instance["inputs"])}
    out_of = {o["name"]: i for i, o in enumerate(instance["outputs"])}
    links = []

    def link(src, src_slot, dst, dst_slot, kind):
        lid = len(links) + 1
        links.append([lid, src["id"], src_slot, dst["id"], dst_slot, kind])
        src["outputs"][src_slot].setdefault("links", [])
        src["outputs"][src_slot]["links"] = (src["outputs"][src_slot]["links"] or []) + [lid]
        dst["inputs"][dst_slot]["link"] = lid

    link(load_image, 0, instance, slot_of["source_image"], "IMAGE")
    link(load_video, 0, components, 0, "VIDEO")
    link(components, 0, instance, slot_of["driving_images"], "IMAGE")
    link(vae_loader, 0, instance, slot_of["vae"], "VAE")
    link(instance, out_of["latent"], decode, 0, "LATENT")
    link(vae_loader, 0, decode, 1, "VAE")
    link(decode, 0, save, 0, "IMAGE")
    for out in components["outputs"] + instance["outputs"]:
        out["links"] = out.get("links") or None
    wf["nodes"] = core + [instance]
    wf["links"] = links
    wf["last_node_id"] = max(n["id"] for n in wf["nodes"])
    wf["last_link_id"] = len(links)
    return wf


def run_checker(script: Path, url: str, workflow: Path, screenshot: Path, api_out: Path, timeout: int = 900):
    """Run the checker with --queue on ``workflow`` against the server at ``url``; returns
    (exit status, its output, the prompt id it queued or None). Exit 0 means: no missing node
    types, no load error, no error or schema toast, no validation errors, execution succeeded."""
    proc = subprocess.run(["node", str(script), "--workflow", str(workflow), "--url", url, "--api-out", str(api_out),
                           "--screenshot", str(screenshot), "--queue", "--timeout", str(timeout)],
                          capture_output=True, text=True, timeout=timeout + 180)
    out = proc.stdout + proc.stderr
    m = re.search(r"prompt_id=([0-9a-f-]+)", out)
    return proc.returncode, out, m.group(1) if m else None


def prompt_differences(frontend: dict, expected: dict, info: dict) -> list[str]:
    """Where the frontend's graphToPrompt differs from the expected API graph, leaving out what the
    frontend version decides on its own: inputs of the node that the stored workflow predates, which
    the frontend fills with their default from /object_info (e.g. 0.33's Create Video ``bit_depth``),
    and values of its own widgets that are no inputs of the node (frontend 1.49 sends Load Video's
    empty ``video-preview``, 1.27 sent Load Audio's empty ``audioUI``)."""
    problems = []
    for nid in sorted(set(frontend) | set(expected)):
        got, want = frontend.get(nid), expected.get(nid)
        if got is None or want is None:
            problems.append(f"node {nid}: only in the {'expected graph' if got is None else 'frontend'}")
            continue
        if got["class_type"] != want["class_type"] or got.get("_meta") != want.get("_meta"):
            problems.append(f"node {nid}: {got['class_type']} {got.get('_meta')} != {want['class_type']} {want.get('_meta')}")
            continue
        spec = info[got["class_type"]]["input"]
        declared = {n: s for sec in ("required", "optional") for n, s in (spec.get(sec) or {}).items()}
        for name in sorted(set(got["inputs"]) | set(want["inputs"])):
            a, b = got["inputs"].get(name, "<absent>"), want["inputs"].get(name, "<absent>")
            if a == b:
                continue
            if name not in declared and "" in (a, b) and "<absent>" in (a, b):
                continue  # a frontend widget's empty value
            options = declared.get(name, [None, {}])
            if b == "<absent>" and len(options) > 1 and isinstance(options[1], dict) and options[1].get("default") == a:
                continue  # an input the stored workflow predates, at its default
            problems.append(f"node {nid} ({got['class_type']}) {name}: frontend {a!r}, expected {b!r}")
    return problems
