"""ComfyUI workflows in the UI format (what users drag onto the canvas), checked without ComfyUI.

* :func:`definitions` — node definitions: this pack's (``nodes.NODE_CLASS_MAPPINGS``) plus the core
  nodes recorded from a real ComfyUI in ``fixtures/comfy_core_nodes.json``; a raw ``/object_info``
  answer is accepted wherever definitions are.
* :func:`validate` — every problem a UI workflow has against those definitions: unknown node types,
  link types (ComfyUI's own rule, ``*`` and comma-joined types included), link slots and the nodes'
  ``inputs``/``outputs`` entries, unconnected required inputs, the widget count, combo values and
  INT/FLOAT ranges.
* :func:`to_api` — the API prompt the frontend's ``graphToPrompt`` makes from a UI workflow.
* :func:`execution_order` — a topological order of an API prompt.
* :func:`run_api` — runs an API prompt in that order without ComfyUI: this pack's nodes for real,
  the core nodes the workflows use as the small stand-ins of :class:`CoreStandIns`.

How the frontend (ComfyUI_frontend 1.27) lays out ``widgets_values``, which this module follows:
one value per widget input in INPUT_TYPES order (required, then optional); an INT input with
``control_after_generate`` (or, when that option is absent, named ``seed``/``noise_seed``) is
followed by its control value ("fixed", "increment", "decrement", "randomize"); a COMBO with
``control_after_generate`` by a control value and a filter string; a COMBO with ``image_upload`` /
``video_upload`` / ``animated_image_upload`` by the upload button's value ("image"), also for videos; a COMBO
with ``audio_upload`` (Load Audio) by the audio player's value (``audioUI``, sent in the API prompt as "")
and the upload button's. Control, filter and upload values never reach the API prompt. Inputs with ``forceInput`` are sockets, not
widgets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORE_SNAPSHOT = Path(__file__).parent / "fixtures" / "comfy_core_nodes.json"
#: /object_info entries of the VideoHelperSuite nodes the shipped VHS workflow uses (same layout).
VHS_SNAPSHOT = Path(__file__).parent / "fixtures" / "vhs_nodes.json"

WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
COMBO_CONTROL_VALUES = CONTROL_VALUES + ("increment-wrap",)
UPLOAD_OPTIONS = ("image_upload", "video_upload", "animated_image_upload", "audio_upload")
#: Input slots the frontend adds for its own widgets (upload buttons, the audio player).
UI_WIDGET_SLOTS = ("IMAGEUPLOAD", "AUDIOUPLOAD", "AUDIO_UI")
#: Node modes (LiteGraph): 0 always, 2 never (muted), 4 bypass. Muted and bypassed nodes are left
#: out of the API prompt; links through a bypassed node go to its input of the same type.
MODE_ALWAYS, MODE_NEVER, MODE_BYPASS = 0, 2, 4
#: Nodes that exist only in the frontend (no server class, never in the API prompt): their widgets.
FRONTEND_ONLY = {"Note": ("text",), "MarkdownNote": ("text",)}
#: Nodes whose frontend code stores ``widgets_values`` as an object {widget name: value}, not a list:
#: VideoHelperSuite's (its web/js adds format-dependent widgets, e.g. Video Combine's pix_fmt and
#: crf, which reach the API prompt too). NAMED_UI_ONLY: the entries that stay in the frontend.
NAMED_WIDGETS = frozenset({"VHS_LoadVideoPath", "VHS_LoadVideo", "VHS_VideoCombine", "VHS_VideoInfoLoaded"})
NAMED_UI_ONLY = frozenset({"videopreview", "choose video to upload"})
#: Combos whose options are files on the user's disk (weights, checkpoints, VAEs, saved motions,
#: uploads): any non-empty string is accepted, since the list depends on the machine.
FILE_COMBOS = frozenset({
    ("MIMAFaceLoadModel", "weights"), ("MIMAFaceLoadModel", "base_checkpoint"),
    ("MIMAFaceLoadModel", "reference_checkpoint"), ("MIMAFaceLoadModel", "vae"),
    ("MIMAFaceLoadMotion", "motion_file"), ("VAELoader", "vae_name"), ("CheckpointLoaderSimple", "ckpt_name"),
    ("MIMAFaceAudioToMotion", "audio_weights"), ("LoraLoaderModelOnly", "lora_name"),
    ("MIMAFaceFootageMotion", "audio_weights"),
})


@dataclass(frozen=True)
class InputDef:
    """One input of a node: ``type`` is "COMBO" for a list of choices (given in ``choices``)."""

    name: str
    type: str
    options: dict
    section: str  # "required" or "optional"
    choices: tuple | None = None

    @property
    def is_widget(self) -> bool:
        return self.type in WIDGET_TYPES and not self.options.get("forceInput")

    def extra_widgets(self) -> tuple[str, ...]:
        """The frontend's widgets created right after this one ("control", "filter", "upload")."""
        if not self.is_widget:
            return ()
        control = self.options.get("control_after_generate")
        if self.type == "INT":
            if control is None:
                control = self.name in ("seed", "noise_seed")
            return ("control",) if control else ()
        if self.type == "COMBO":
            extra = ("control", "filter") if control else ()
            if self.options.get("audio_upload"):
                extra += ("audioUI", "upload")  # the player widget (sent in the API prompt), then the button
            elif any(self.options.get(k) for k in UPLOAD_OPTIONS):
                extra += ("upload",)
            return extra
        return ()


@dataclass(frozen=True)
class NodeDef:
    """A node type as the frontend sees it: inputs in INPUT_TYPES order (required, then optional)."""

    name: str
    inputs: tuple[InputDef, ...]
    outputs: tuple[str, ...]
    output_names: tuple[str, ...] = ()
    output_node: bool = False
    display_name: str | None = None
    file_combos: frozenset = field(default_factory=frozenset)

    def input(self, name: str) -> InputDef | None:
        return next((i for i in self.inputs if i.name == name), None)

    def widget_layout(self) -> list[tuple[str, InputDef]]:
        """``widgets_values`` positions: ("value" | "control" | "filter" | "upload", input)."""
        layout = []
        for inp in self.inputs:
            if inp.is_widget:
                layout.append(("value", inp))
                layout.extend((kind, inp) for kind in inp.extra_widgets())
        return layout

    def sockets(self) -> list[InputDef]:
        """Inputs that are only sockets (no widget), in the frontend's order."""
        return [i for i in self.inputs if not i.is_widget]

    def is_file_combo(self, inp: InputDef) -> bool:
        return (self.name, inp.name) in FILE_COMBOS or inp.name in self.file_combos or any(
            inp.options.get(k) for k in UPLOAD_OPTIONS)


def _input_def(name: str, spec, section: str) -> InputDef:
    kind = spec[0] if isinstance(spec, (list, tuple)) else spec
    options = dict(spec[1]) if isinstance(spec, (list, tuple)) and len(spec) > 1 and isinstance(spec[1], dict) else {}
    if isinstance(kind, (list, tuple)):
        return InputDef(name, "COMBO", options, section, tuple(kind))
    if kind == "COMBO":
        return InputDef(name, "COMBO", options, section, tuple(options.get("options") or ()))
    return InputDef(name, str(kind), options, section)


def node_def_from_class(name: str, cls, display_name: str | None = None) -> NodeDef:
    """A classic-API node class (INPUT_TYPES, RETURN_TYPES, RETURN_NAMES, OUTPUT_NODE)."""
    spec = cls.INPUT_TYPES()
    inputs = tuple(_input_def(n, s, sec) for sec in ("required", "optional") for n, s in (spec.get(sec) or {}).items())
    outputs = tuple(cls.RETURN_TYPES)
    return NodeDef(name, inputs, outputs, tuple(getattr(cls, "RETURN_NAMES", None) or outputs),
                   bool(getattr(cls, "OUTPUT_NODE", False)), display_name)


def node_def_from_object_info(name: str, info: dict) -> NodeDef:
    """One entry of ComfyUI's ``/object_info`` (classic or V3 nodes; ``input_order`` respected)."""
    order = info.get("input_order") or {}
    inputs = []
    for sec in ("required", "optional"):
        section = (info.get("input") or {}).get(sec) or {}
        for n in order.get(sec, list(section)):
            inputs.append(_input_def(n, section[n], sec))
    outputs = tuple(info.get("output") or ())
    return NodeDef(name, tuple(inputs), outputs, tuple(info.get("output_name") or outputs),
                   bool(info.get("output_node")), info.get("display_name"))


def core_definitions(snapshot: Path = CORE_SNAPSHOT) -> dict[str, NodeDef]:
    """The core nodes recorded from a real ComfyUI (keys starting with "_" are notes)."""
    data = json.loads(Path(snapshot).read_text())
    return {k: node_def_from_object_info(k, v) for k, v in data.items() if not k.startswith("_")}


def vhs_definitions(snapshot: Path = VHS_SNAPSHOT) -> dict[str, NodeDef]:
    """The VideoHelperSuite nodes recorded from a real ComfyUI with VHS loaded."""
    return core_definitions(snapshot)


def pack_definitions() -> dict[str, NodeDef]:
    """This pack's nodes, from their classes."""
    from nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    return {k: node_def_from_class(k, c, NODE_DISPLAY_NAME_MAPPINGS.get(k)) for k, c in NODE_CLASS_MAPPINGS.items()}


def definitions(snapshot: Path = CORE_SNAPSHOT) -> dict[str, NodeDef]:
    """This pack's nodes plus the recorded core nodes."""
    return {**core_definitions(snapshot), **pack_definitions()}


def as_definitions(defs: Mapping) -> dict[str, NodeDef]:
    """Definitions from :func:`definitions` or a raw ``/object_info`` answer."""
    return {k: v if isinstance(v, NodeDef) else node_def_from_object_info(k, v) for k, v in defs.items()
            if not k.startswith("_")}


def load_workflow(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def types_match(received: str, expected: str) -> bool:
    """ComfyUI's link rule (comfy_execution.validation, non-strict) with the "*" wildcard."""
    if received == expected:
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    a = {t.strip() for t in received.split(",")}
    b = {t.strip() for t in expected.split(",")}
    return "*" in a or "*" in b or bool(a & b)


def _links(workflow: dict) -> dict[int, list]:
    return {link[0]: link for link in workflow.get("links") or [] if isinstance(link, list) and link}


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_value(where: str, node_def: NodeDef, inp: InputDef, value) -> list[str]:
    o = inp.options
    if inp.type == "INT":
        if not _is_number(value) or float(value) != int(value):
            return [f"{where}: {inp.name}={value!r} is not an integer"]
    elif inp.type == "FLOAT":
        if not _is_number(value):
            return [f"{where}: {inp.name}={value!r} is not a number"]
    elif inp.type == "BOOLEAN":
        return [] if isinstance(value, bool) else [f"{where}: {inp.name}={value!r} is not a boolean"]
    elif inp.type == "STRING":
        return [] if isinstance(value, str) else [f"{where}: {inp.name}={value!r} is not a string"]
    elif inp.type == "COMBO":
        if node_def.is_file_combo(inp):
            return [] if isinstance(value, str) and value else [f"{where}: {inp.name}={value!r} is not a file name"]
        if value not in (inp.choices or ()):
            return [f"{where}: {inp.name}={value!r} is not one of {list(inp.choices or ())}"]
        return []
    if "min" in o and value < o["min"]:
        return [f"{where}: {inp.name}={value} is below its minimum {o['min']}"]
    if "max" in o and value > o["max"]:
        return [f"{where}: {inp.name}={value} is above its maximum {o['max']}"]
    step = o.get("step", 1)
    if inp.type == "INT" and step > 1 and (value - o.get("min", 0)) % step:
        # the frontend only lets users enter min + k * step (e.g. odd smoothing windows)
        return [f"{where}: {inp.name}={value} is not {o.get('min', 0)} plus a multiple of its step {step}"]
    return []


def _check_widgets(where: str, node: dict, node_def: NodeDef) -> list[str]:
    layout = node_def.widget_layout()
    values = node.get("widgets_values")
    if values is None:
        values = []
    if isinstance(values, dict):
        if node_def.name not in NAMED_WIDGETS:
            return [f"{where}: widgets_values must be a list (positional), got an object"]
        missing = [inp.name for kind, inp in layout if kind == "value" and inp.name not in values]
        if missing:
            return [f"{where}: widgets_values has no value for {missing}"]
        return [p for kind, inp in layout if kind == "value" for p in _check_value(where, node_def, inp, values[inp.name])]
    if len(values) != len(layout):
        names = [inp.name if kind == "value" else f"{inp.name}:{kind}" for kind, inp in layout]
        return [f"{where}: {len(values)} widgets_values for {len(layout)} widgets {names}"]
    problems = []
    for (kind, inp), value in zip(layout, values):
        if kind == "value":
            problems += _check_value(where, node_def, inp, value)
        elif kind == "control":
            allowed = COMBO_CONTROL_VALUES if inp.type == "COMBO" else CONTROL_VALUES
            if value not in allowed:
                problems.append(f"{where}: control value after {inp.name} is {value!r}, not one of {list(allowed)}")
    return problems


def validate(workflow: dict, defs: Mapping) -> list[str]:
    """Every problem of a UI-format workflow against node definitions; [] when it is sound."""
    defs = as_definitions(defs)
    problems: list[str] = []
    nodes = workflow.get("nodes")
    if not isinstance(nodes, list):
        return ["no nodes list (not a UI-format workflow)"]
    by_id: dict[int, dict] = {}
    for n in nodes:
        if n.get("id") in by_id:
            problems.append(f"node id {n.get('id')} is used twice")
        by_id[n.get("id")] = n
    links = _links(workflow)
    if len(links) != len(workflow.get("links") or []):
        problems.append("links: malformed entries or repeated link ids")
    if workflow.get("last_node_id", 0) < max((i for i in by_id if isinstance(i, int)), default=0):
        problems.append("last_node_id is below the largest node id")
    if links and workflow.get("last_link_id", 0) < max(links):
        problems.append("last_link_id is below the largest link id")

    for n in nodes:
        where = f"node {n.get('id')} ({n.get('type')})"
        for key in ("pos", "size"):
            v = n.get(key)
            if not (isinstance(v, list) and len(v) == 2 and all(_is_number(x) for x in v)):
                problems.append(f"{where}: {key} must be two numbers")
        if n.get("mode", 0) not in (MODE_ALWAYS, MODE_NEVER, MODE_BYPASS):
            problems.append(f"{where}: mode {n.get('mode')} is not 0, 2 or 4")
        if n.get("type") in FRONTEND_ONLY:
            values = n.get("widgets_values") or []
            if len(values) != len(FRONTEND_ONLY[n["type"]]) or not all(isinstance(v, str) for v in values):
                problems.append(f"{where}: a note holds one text widget")
            continue
        d = defs.get(n.get("type"))
        if d is None:
            problems.append(f"{where}: unknown node type {n.get('type')!r}")
            continue
        problems += _check_widgets(where, n, d)
        slots = n.get("inputs") or []
        for k, slot in enumerate(slots):
            inp = d.input(slot.get("name"))
            frontend_widget = (d.name in NAMED_WIDGETS and slot.get("widget")  # e.g. Video Combine's crf
                               and slot["widget"].get("name") in (n.get("widgets_values") or {}))
            if inp is None and frontend_widget:
                continue
            if inp is None and slot.get("type") not in UI_WIDGET_SLOTS:
                problems.append(f"{where}: input slot {k} {slot.get('name')!r} is not an input of {d.name}")
                continue
            if inp is not None and bool(slot.get("widget")) != inp.is_widget:
                problems.append(f"{where}: input slot {k} {inp.name!r} "
                                + ("is a socket, not a widget" if slot.get("widget") else "is a widget: give it widget.name"))
            combo_slot = inp is not None and inp.type == "COMBO" and isinstance(slot.get("type"), str)
            if inp is not None and slot.get("type") != inp.type and not combo_slot:
                problems.append(f"{where}: input slot {k} {inp.name!r} has type {slot.get('type')!r}, "
                                f"the node says {inp.type!r}")
            link_id = slot.get("link")
            if link_id is not None:
                link = links.get(link_id)
                if link is None:
                    problems.append(f"{where}: input {slot.get('name')!r} names link {link_id}, which is not in links")
                elif link[3] != n["id"] or link[4] != k:
                    problems.append(f"{where}: input {slot.get('name')!r} names link {link_id}, "
                                    f"which ends at node {link[3]} slot {link[4]}")
        connected = {s.get("name") for s in slots if s.get("link") is not None}
        for inp in d.inputs:
            if inp.section == "required" and not inp.is_widget and inp.name not in connected:
                problems.append(f"{where}: required input {inp.name!r} ({inp.type}) is not connected")
        names = [s.get("name") for s in slots]
        for inp in d.sockets():
            if inp.name not in names:
                problems.append(f"{where}: no input slot for {inp.name!r}")
        outs = n.get("outputs") or []
        if len(outs) != len(d.outputs):
            problems.append(f"{where}: {len(outs)} outputs, the node has {len(d.outputs)}")
        for k, (out, kind) in enumerate(zip(outs, d.outputs)):
            if out.get("type") != kind:
                problems.append(f"{where}: output {k} has type {out.get('type')!r}, the node says {kind!r}")
            for link_id in out.get("links") or []:
                link = links.get(link_id)
                if link is None or link[1] != n["id"] or link[2] != k:
                    problems.append(f"{where}: output {k} lists link {link_id}, which does not start here")

    for link_id, link in links.items():
        where = f"link {link_id}"
        if len(link) != 6:
            problems.append(f"{where}: must be [id, from_node, from_slot, to_node, to_slot, type]")
            continue
        _, src, src_slot, dst, dst_slot, kind = link
        if src not in by_id or dst not in by_id:
            problems.append(f"{where}: joins missing node {src if src not in by_id else dst}")
            continue
        src_node, dst_node = by_id[src], by_id[dst]
        src_def, dst_def = defs.get(src_node.get("type")), defs.get(dst_node.get("type"))
        outs, ins = src_node.get("outputs") or [], dst_node.get("inputs") or []
        if not 0 <= src_slot < len(outs):
            problems.append(f"{where}: node {src} has no output slot {src_slot}")
            continue
        if not 0 <= dst_slot < len(ins):
            problems.append(f"{where}: node {dst} has no input slot {dst_slot}")
            continue
        if link_id not in (outs[src_slot].get("links") or []):
            problems.append(f"{where}: not listed by node {src} output {src_slot}")
        if ins[dst_slot].get("link") != link_id:
            problems.append(f"{where}: node {dst} input {dst_slot} names link {ins[dst_slot].get('link')}")
        if src_def is None or dst_def is None:
            continue
        if src_slot >= len(src_def.outputs):
            continue
        out_type = src_def.outputs[src_slot]
        if kind != out_type:
            problems.append(f"{where}: type {kind!r} but node {src} output {src_slot} is {out_type!r}")
        inp = dst_def.input(ins[dst_slot].get("name"))
        if inp is not None and not types_match(out_type, inp.type):
            problems.append(f"{where}: {out_type} into node {dst} input {inp.name!r} of type {inp.type}")

    api_like = {str(n["id"]): {"inputs": {s["name"]: [str(links[s["link"]][1]), 0] for s in n.get("inputs") or []
                                          if s.get("link") in links}} for n in nodes}
    try:
        execution_order(api_like)
    except ValueError as exc:
        problems.append(str(exc))
    return problems


def widget_values(node: dict, node_def: NodeDef) -> dict[str, Any]:
    """A UI node's widget values by input name (control, filter and upload values left out)."""
    values = node.get("widgets_values") or []
    if isinstance(values, dict):  # NAMED_WIDGETS: the node's own frontend code names its values
        named = {inp.name: values[inp.name] for kind, inp in node_def.widget_layout() if kind == "value" and inp.name in values}
        return {**named, **{k: v for k, v in values.items() if k not in named and k not in NAMED_UI_ONLY}}
    return {inp.name: v for (kind, inp), v in zip(node_def.widget_layout(), values) if kind == "value"}


def _ui_api_values(node: dict, node_def: NodeDef) -> dict[str, Any]:
    """Frontend widgets that are not inputs but still reach the API prompt: Load Audio's player
    (``audioUI``, sent as "" when empty)."""
    values = node.get("widgets_values") or []
    return {"audioUI": "" if v is None else v for (kind, _), v in zip(node_def.widget_layout(), values)
            if kind == "audioUI"}


def _source(by_id: dict, links: dict, link_id: int, want_type: str):
    """(node id, slot) a link really comes from, through bypassed nodes; None if it comes from
    a muted node or leads nowhere."""
    seen = set()
    link = links.get(link_id)
    while link is not None:
        node = by_id.get(link[1])
        if node is None or node.get("mode", 0) == MODE_NEVER or node.get("type") in FRONTEND_ONLY:
            return None
        if node.get("mode", 0) != MODE_BYPASS:
            return link[1], link[2]
        if link[1] in seen:
            return None
        seen.add(link[1])
        ins = node.get("inputs") or []
        # the frontend's bypass: the input at the same slot if its type matches, else the first match
        order = ([link[2]] if link[2] < len(ins) else []) + list(range(len(ins)))
        nxt = next((ins[i].get("link") for i in order if ins[i].get("link") is not None
                    and types_match(ins[i].get("type"), want_type)), None)
        link = links.get(nxt) if nxt is not None else None
    return None


def to_api(workflow: dict, defs: Mapping) -> dict[str, dict]:
    """The API prompt of a UI workflow, as the frontend's ``graphToPrompt`` makes it:
    ``{id: {"class_type", "inputs": {name: value or [source_id, slot]}, "_meta": {"title"}}}``.

    Widget values are mapped to input names (control/upload values skipped), linked inputs
    (sockets and widgets converted to inputs) become ``[source id, slot]``; muted, bypassed and
    frontend-only nodes are left out, links through bypassed nodes are followed, and inputs whose
    source is not in the prompt are dropped (as the frontend does).
    """
    defs = as_definitions(defs)
    by_id = {n["id"]: n for n in workflow["nodes"]}
    links = _links(workflow)
    api: dict[str, dict] = {}
    for n in sorted(workflow["nodes"], key=lambda n: n.get("order", 0)):
        if n.get("type") in FRONTEND_ONLY or n.get("mode", 0) in (MODE_NEVER, MODE_BYPASS):
            continue
        d = defs.get(n["type"])
        if d is None:
            raise KeyError(f"node {n['id']}: unknown node type {n['type']!r}")
        inputs: dict[str, Any] = dict(widget_values(n, d))
        inputs.update(_ui_api_values(n, d))
        for slot in n.get("inputs") or []:
            if slot.get("link") is None:
                continue
            src = _source(by_id, links, slot["link"], slot.get("type"))
            if src is not None:
                inputs[slot["name"]] = [str(src[0]), src[1]]
            else:  # from a muted node: the frontend drops the input, widget value included
                inputs.pop(slot["name"], None)
        api[str(n["id"])] = {"inputs": inputs, "class_type": n["type"],
                             "_meta": {"title": n.get("title") or d.display_name or n["type"]}}
    for node in api.values():
        for name, value in list(node["inputs"].items()):
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and value[0] not in api:
                del node["inputs"][name]
    return api


def execution_order(api: Mapping[str, dict]) -> list[str]:
    """Node ids of an API prompt so that every node comes after the nodes it takes inputs from
    (ties broken by numeric id). Raises ValueError on a cycle or a link to a missing node."""
    deps: dict[str, set[str]] = {}
    for nid, node in api.items():
        deps[nid] = set()
        for name, value in (node.get("inputs") or {}).items():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                if value[0] not in api:
                    raise ValueError(f"node {nid} input {name!r} comes from missing node {value[0]}")
                deps[nid].add(value[0])
    key = lambda i: (int(i) if i.isdigit() else float("inf"), i)  # noqa: E731
    order, done = [], set()
    while len(order) < len(deps):
        ready = sorted((i for i in deps if i not in done and deps[i] <= done), key=key)
        if not ready:
            raise ValueError(f"the graph has a cycle through nodes {sorted(set(deps) - done, key=key)}")
        order.append(ready[0])
        done.add(ready[0])
    return order


# ---------------------------------------------------------------------------------------------
# Running an API prompt without ComfyUI: our nodes for real, the core nodes as small stand-ins


class _Video:
    def __init__(self, path):
        self.path = Path(path)


class _StandInModel:
    """The parts of a ComfyUI ModelPatcher that Load MIMAFace Model reads from a MODEL wire."""

    def __init__(self, unet_state):
        state = unet_state

        class SD15:  # the name ComfyUI's model_config class has for SD1.5
            pass

        class DiffusionModel:
            def state_dict(self):
                return state

        class Model:
            model_config = SD15()
            diffusion_model = DiffusionModel()

        self.model = Model()


class _StandInVAE:
    """ComfyUI's VAE interface over the tiny diffusers VAE: encode takes IMAGE pixels in [0, 1] and
    gives the UNSCALED posterior mean, decode takes unscaled latents (as ComfyUI's VAE does)."""

    def __init__(self, vae):
        self.vae = vae

    def encode(self, pixels):
        import torch

        with torch.inference_mode():
            x = pixels[..., :3].movedim(-1, 1).to(self.vae.dtype) * 2 - 1
            return self.vae.encode(x).latent_dist.mean.float()

    def decode(self, latents):
        import torch

        with torch.inference_mode():
            x = self.vae.decode(latents.to(self.vae.dtype)).sample
        return ((x.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1)


class CoreStandIns:
    """The core nodes the workflows use, small enough for tests; what the "save" nodes received is
    kept in ``saved`` (node id → dict)."""

    def __init__(self, vae_folder: Path, frames: int, media: Mapping[str, Path], models: Path | None = None):
        self.vae_folder, self.frames, self.saved, self.models = vae_folder, frames, {}, models
        self.media = media
        self.previewed = []
        self._vae = None

    def LoadImage(self, image):
        import numpy as np
        import torch
        from PIL import Image

        rgb = np.asarray(Image.open(self.media[image]).convert("RGB"))
        t = torch.from_numpy(rgb).float()[None] / 255
        return t, torch.zeros(t.shape[:3])

    def LoadVideo(self, file):
        return (_Video(self.media[file]),)

    def LoadAudio(self, audio, audioUI=None):
        import av
        import numpy as np
        import torch

        with av.open(str(self.media[audio])) as c:
            stream = c.streams.audio[0]
            rate = stream.codec_context.sample_rate
            to_float = av.AudioResampler(format="fltp")
            parts = [f.to_ndarray() for frame in c.decode(stream) for f in to_float.resample(frame)]
        return ({"waveform": torch.from_numpy(np.concatenate(parts, 1))[None], "sample_rate": rate},)

    def GetVideoComponents(self, video):
        import numpy as np
        import torch

        from mimaface_core.media.video_in import iter_video_frames, video_info

        frames = list(iter_video_frames(video.path, limit=self.frames))
        info = video_info(video.path)
        audio = {"source": video.path} if info.has_audio else None
        return torch.from_numpy(np.stack(frames)).float() / 255, audio, info.fps

    def VAELoader(self, vae_name):
        from mimaface_core.weights.vae_file import load_vae

        if self._vae is None:
            self._vae = _StandInVAE(load_vae(self.vae_folder))
        return (self._vae,)

    def VAEDecode(self, samples, vae):
        return (vae.decode(samples["samples"]),)

    def CreateVideo(self, images, fps, audio=None):
        return ({"images": images, "fps": fps, "audio": audio},)

    def SaveVideo(self, video, filename_prefix, format, codec, _id=None):
        self.saved[_id] = {**video, "prefix": filename_prefix}
        return ()

    def CheckpointLoaderSimple(self, ckpt_name):
        """A MODEL-like object over the UNet of a checkpoint in models/checkpoints (ComfyUI's real
        loader and LoRA patching run in the ComfyUI integration tests)."""
        from safetensors.torch import load_file

        state = load_file(str(self.models / "checkpoints" / ckpt_name))
        prefix = "model.diffusion_model."
        unet = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        return (_StandInModel(unet), None, None)

    def LoraLoaderModelOnly(self, model, lora_name, strength_model):
        return (model,)  # stand-in: no LoRA file in these tests

    def PreviewImage(self, images):
        self.previewed.append(images)
        return ()

    def SaveImage(self, images, filename_prefix, _id=None):
        self.saved[_id] = {"images": images, "prefix": filename_prefix}
        return ()


def run_api(api: dict, core: CoreStandIns, cache: dict | None = None) -> dict[str, tuple]:
    """Runs an API prompt in execution order: our node classes for real, core nodes as stand-ins.
    ``cache`` (signature → outputs) skips nodes whose class and inputs did not change, as ComfyUI's
    cache does between runs."""
    from nodes import NODE_CLASS_MAPPINGS

    cache = {} if cache is None else cache
    results, sigs = {}, {}
    for nid in execution_order(api):
        node = api[nid]
        linked = {k: v for k, v in node["inputs"].items() if isinstance(v, list)}
        sigs[nid] = json.dumps([node["class_type"], {k: [sigs[v[0]], v[1]] if k in linked else v
                                                     for k, v in sorted(node["inputs"].items())}])
        if sigs[nid] in cache:
            results[nid] = cache[sigs[nid]]
            continue
        kwargs = {k: results[v[0]][v[1]] if k in linked else v for k, v in node["inputs"].items()}
        cls = NODE_CLASS_MAPPINGS.get(node["class_type"])
        if cls is not None:
            def fn(**kw):
                out = getattr(cls(), cls.FUNCTION)(**kw)
                return out.get("result", ()) if isinstance(out, dict) else out
        else:
            core_fn = getattr(core, node["class_type"])
            fn = (lambda **kw: core_fn(**kw, _id=nid)) if node["class_type"].startswith("Save") else core_fn
        results[nid] = cache[sigs[nid]] = run_listed(fn, kwargs, getattr(cls, "INPUT_IS_LIST", False),
                                                     getattr(cls, "OUTPUT_IS_LIST", ()))
    return results


class ListOutput(list):
    """An output holding one value per item (ComfyUI's list execution): from an OUTPUT_IS_LIST
    output, or from a node run once per item of a list input."""


def run_listed(fn, kwargs: dict, input_is_list: bool, output_is_list: tuple) -> tuple:
    """One node call with ComfyUI's list semantics: an INPUT_IS_LIST node gets every input as a
    list; any other node runs once per item when an input is a list (shorter lists repeat their
    last item) and each output becomes the list of the runs' values (flattened where the output
    is itself a list)."""
    flags = lambda n: [bool(output_is_list[j]) if j < len(output_is_list) else False for j in range(n)]  # noqa: E731
    if input_is_list:
        out = tuple(fn(**{k: list(v) if isinstance(v, ListOutput) else [v] for k, v in kwargs.items()}))
        return tuple(ListOutput(o) if f else o for o, f in zip(out, flags(len(out))))
    lists = {k: v for k, v in kwargs.items() if isinstance(v, ListOutput)}
    if not lists:
        out = tuple(fn(**kwargs))
        return tuple(ListOutput(o) if f else o for o, f in zip(out, flags(len(out))))
    runs = [tuple(fn(**{k: v[min(i, len(v) - 1)] if k in lists else v for k, v in kwargs.items()}))
            for i in range(max(len(v) for v in lists.values()))]
    return tuple(ListOutput([x for r in runs for x in r[j]] if f else [r[j] for r in runs])
                 for j, f in enumerate(flags(len(runs[0]))))
