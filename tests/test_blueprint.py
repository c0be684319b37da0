"""The subgraph blueprint shipped in subgraphs/ (ComfyUI 0.33 lists custom_nodes/<pack>/subgraphs/*.json
as the pack's blueprints), checked without ComfyUI: its inner graph is a sound UI workflow against our
node definitions, the boundary slots match the inner sockets they feed, and the proxied widgets exist.
The server listing runs in tests/test_comfyui_integration.py (0.33)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import workflow_graph as wg

ROOT = Path(__file__).resolve().parents[1]
BLUEPRINT = ROOT / "subgraphs" / "Animate Portrait (MIMAFace).json"
DEFS = wg.definitions()


def _blueprint():
    data = json.loads(BLUEPRINT.read_text())
    (sub,) = data["definitions"]["subgraphs"]
    return data, sub


def _flattened(sub: dict) -> dict:
    """The inner graph as a plain UI workflow: boundary links dropped (inputs fed from the subgraph's
    input node count as connected through a stand-in link from a node that is not checked)."""
    nodes = copy.deepcopy(sub["nodes"])
    inner = [[l["id"], l["origin_id"], l["origin_slot"], l["target_id"], l["target_slot"], l["type"]]
             for l in sub["links"] if l["origin_id"] > 0 and l["target_id"] > 0]
    boundary = {l["id"] for l in sub["links"] if l["origin_id"] < 0 or l["target_id"] < 0}
    for n in nodes:
        for out in n.get("outputs") or []:
            if out.get("links"):
                out["links"] = [i for i in out["links"] if i not in boundary] or None
    return {"nodes": nodes, "links": inner, "last_node_id": max(n["id"] for n in nodes),
            "last_link_id": max((l[0] for l in inner), default=0), "version": 0.4}


def test_inner_graph_validates_except_the_inputs_fed_from_outside():
    _, sub = _blueprint()
    assert sorted(n["type"] for n in sub["nodes"]) == sorted([
        "MIMAFaceLoadModel", "MIMAFaceExtractMotion", "MIMAFaceExtractMotion", "MIMAFaceRenderCoeffImage",
        "MIMAFaceMIAAppearanceEncode", "MIMAFaceICAClipSampler"])
    # the only problems: the inputs fed by the blueprint's own inputs name links of the subgraph's
    # input node, which a plain workflow does not have (source image, driving frames, optional VAE)
    fed = []
    for link in sub["links"]:
        if link["origin_id"] == -10:
            node = _node(sub, link["target_id"])
            name = node["inputs"][link["target_slot"]]["name"]
            fed.append(f"node {node['id']} ({node['type']}): input {name!r} names link {link['id']}, "
                       "which is not in links")
    assert len(fed) == 3
    assert sorted(wg.validate(_flattened(sub), DEFS)) == sorted(fed)


def _node(sub, node_id):
    return next(n for n in sub["nodes"] if n["id"] == node_id)


def test_boundary_slots_match_the_sockets_they_feed():
    data, sub = _blueprint()
    (outer,) = data["nodes"]
    assert outer["type"] == sub["id"] and sub["name"] == BLUEPRINT.stem == outer["title"]
    for k, slot in enumerate(sub["inputs"]):
        for link_id in slot["linkIds"]:
            link = next(l for l in sub["links"] if l["id"] == link_id)
            assert (link["origin_id"], link["origin_slot"]) == (-10, k)
            target = _node(sub, link["target_id"])["inputs"][link["target_slot"]]
            assert target["type"] == slot["type"] == link["type"] == outer["inputs"][k]["type"], slot["name"]
    for k, slot in enumerate(sub["outputs"]):
        (link_id,) = slot["linkIds"]
        link = next(l for l in sub["links"] if l["id"] == link_id)
        assert (link["target_id"], link["target_slot"]) == (-20, k)
        source = _node(sub, link["origin_id"])["outputs"][link["origin_slot"]]
        assert source["type"] == slot["type"] == outer["outputs"][k]["type"]
    assert [s["type"] for s in sub["outputs"]] == ["LATENT", "IMAGE"]


def test_proxied_widgets_exist_on_the_inner_nodes():
    data, sub = _blueprint()
    for node_id, widget in data["nodes"][0]["properties"]["proxyWidgets"]:
        d = DEFS[_node(sub, int(node_id))["type"]]
        inp = d.input(widget)
        assert inp is not None and inp.is_widget, (node_id, widget)
