"""The official_tiny golden fixture: cases, tensors, and the weight recipe (``fixture_families``).

The folder is ``$MIMAFACE_FIXTURES_DIR`` when set, else ``tests/fixtures/official_tiny`` (a copy of
the shared fixture). Every shape, size and parameter is read from the folder; see its README.md.
"""

from __future__ import annotations

from fixture_families import OFFICIAL_TINY as FAMILY
from fixture_families import check_recipe_print, clone_layout, fingerprint, recipe_print, regenerate, write_component  # noqa: F401

fixture_dir = FAMILY.folder
cases = FAMILY.cases
tensor = FAMILY.tensor
inp = FAMILY.inp
tolerance = FAMILY.tolerance
check = FAMILY.check
component = FAMILY.component
layout = FAMILY.layout
write_released_layout = FAMILY.write_released_layout


def source_image():
    """The fixture's 512 source crop as a PIL RGB image (file named by cases.json ``source_image``)."""
    from PIL import Image

    return Image.open(FAMILY.path(FAMILY.cases_json()["source_image"]["file"])).convert("RGB")


def bfm_file():
    """The BFM09 data file of the ``bfm`` case (the data file its ``weights`` entry is written as)."""
    weights = cases()["bfm"]["weights"][0]
    return FAMILY.path(next(src for src, dst in layout()["data_files"].items() if dst == weights))
