"""Start-up cost: seconds to import the pack as ComfyUI does (and build every node's INPUT_TYPES),
and to run ``python -m mimaface_core --help``, each in fresh processes (median of 3), with the
heavy libraries each one loaded.

Usage: python benchmarks/import_benchmark.py   (not a test; compare figures of one run)
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "diffusers", "transformers", "scipy", "av", "PIL")
PACK = """
import importlib.util, json, sys, time
t = time.perf_counter()
spec = importlib.util.spec_from_file_location("ComfyUI-MIMAFace", "__init__.py", submodule_search_locations=["."])
m = importlib.util.module_from_spec(spec); sys.modules[spec.name] = m; spec.loader.exec_module(m)
for cls in m.NODE_CLASS_MAPPINGS.values(): cls.INPUT_TYPES()
print(json.dumps([time.perf_counter() - t, sorted({k.split(".")[0] for k in sys.modules} & set(%r))]))
""" % (HEAVY,)
HELP = """
import json, runpy, sys, time, io, contextlib
t = time.perf_counter(); sys.argv = ["mimaface_core", "--help"]
with contextlib.redirect_stdout(io.StringIO()):
    try:
        runpy.run_module("mimaface_core", run_name="__main__")
    except SystemExit:
        pass
print(json.dumps([time.perf_counter() - t, sorted({k.split(".")[0] for k in sys.modules} & set(%r))]))
""" % (HEAVY,)


def measure(code: str) -> tuple[float, list[str]]:
    runs = [json.loads(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                      check=True).stdout.strip().splitlines()[-1]) for _ in range(3)]
    return statistics.median(r[0] for r in runs), runs[0][1]


if __name__ == "__main__":
    for name, code in (("import the pack + INPUT_TYPES", PACK), ("python -m mimaface_core --help", HELP)):
        seconds, loaded = measure(code)
        print(f"{name:32s} {seconds:6.2f} s   loads: {', '.join(loaded) or 'none of ' + ', '.join(HEAVY)}")
