"""The nodes' help pages (web/docs/<node id>.md), as ComfyUI's frontend finds and renders them.

The rule (ComfyUI_frontend 1.27 in ComfyUI 0.3.64 and 1.49 in 0.33, NodeHelpService): for a node
whose python_module is ``custom_nodes.<pack>``, fetch ``/extensions/<pack>/docs/<node name>/<locale>.md``,
then ``/extensions/<pack>/docs/<node name>.md``; relative links resolve against
``/extensions/<pack>/docs/``. ComfyUI serves the pack's ``WEB_DIRECTORY`` at ``/extensions/<pack>/``.
That the server really serves them is checked in test_comfyui_integration.py.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

ROOT = Path(__file__).resolve().parents[1]
REPO = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


def _web_directory() -> Path:
    """The pack entry's WEB_DIRECTORY (read from __init__.py, which ComfyUI imports by path)."""
    m = re.search(r'^WEB_DIRECTORY = "([^"]+)"', (ROOT / "__init__.py").read_text(), re.M)
    assert m, "__init__.py sets no WEB_DIRECTORY"
    return ROOT / m.group(1)


DOCS = _web_directory() / "docs"


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return s.replace(" ", "-")


README_ANCHORS = {_slug(line.lstrip("#")) for line in (ROOT / "README.md").read_text().splitlines()
                  if re.match(r"#{1,6} ", line)}


def test_every_node_has_a_page_and_no_page_is_orphaned():
    assert DOCS.is_dir()
    assert sorted(p.stem for p in DOCS.glob("*.md")) == sorted(NODE_CLASS_MAPPINGS)


@pytest.mark.parametrize("node_id", sorted(NODE_CLASS_MAPPINGS))
def test_help_page(node_id):
    text = (DOCS / f"{node_id}.md").read_text()
    cls = NODE_CLASS_MAPPINGS[node_id]
    assert text.startswith(f"# {NODE_DISPLAY_NAME_MAPPINGS[node_id]}\n")
    spec = cls.INPUT_TYPES()
    for section in ("required", "optional"):
        for name, (kind, *opts) in (spec.get(section) or {}).items():
            row = next((line for line in text.splitlines() if line.startswith(f"| `{name}`")), None)
            assert row, f"input {name} is not in the page's table"
            o = opts[0] if opts else {}
            for bound in ("min", "max"):  # numeric ranges as the node declares them
                if bound in o:
                    assert str(o[bound]) in row, (name, bound, row)
    for name in getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES:
        assert f"| `{name}` |" in text, f"output {name} is not in the page"
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images, "no picture"
    for rel in images:
        image = (DOCS / rel).resolve()
        assert image.is_file() and DOCS in image.parents, rel
        assert image.stat().st_size < 100_000, f"{rel}: {image.stat().st_size} bytes"
        assert image.read_bytes()[:4] == b"RIFF" and image.read_bytes()[8:12] == b"WEBP", rel
    links = re.findall(re.escape(REPO) + r"#([\w\-]+)", text)
    assert links, "no link to the README"
    assert set(links) <= README_ANCHORS, sorted(set(links) - README_ANCHORS)
    assert str(ROOT.parent) not in text and "/tmp/" not in text


def test_snapshot_folder_is_named_on_the_loader_page():
    text = (DOCS / "MIMAFaceLoadModel.md").read_text()
    assert "models/mimaface/MIMAFace" in text and "python -m mimaface_core download" in text
    assert "checkpoints/" in text and "sd-vae-ft-mse/" in text
