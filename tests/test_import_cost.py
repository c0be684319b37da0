"""Importing the pack (what ComfyUI does at start-up) and ``python -m mimaface_core --help`` load no
diffusers, transformers or scipy module: they load when a node or command needs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("diffusers", "transformers", "scipy")

PACK_IMPORT = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("ComfyUI-MIMAFace", "__init__.py", submodule_search_locations=["."])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
assert len(module.NODE_CLASS_MAPPINGS) >= 11
for cls in module.NODE_CLASS_MAPPINGS.values():
    cls.INPUT_TYPES()  # what /object_info asks for
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in %r)))
""" % (HEAVY,)

HELP = """
import json, runpy, sys
sys.argv = ["mimaface_core", "--help"]
try:
    runpy.run_module("mimaface_core", run_name="__main__")
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in %r)))
""" % (HEAVY + ("torch",),)


def _loaded(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


def test_pack_import_and_object_info_load_no_heavy_library():
    assert _loaded(PACK_IMPORT) == []


def test_cli_help_loads_no_heavy_library_not_even_torch():
    assert _loaded(HELP) == []
