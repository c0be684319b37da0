"""The audio2coeff golden fixture (SadTalker's audio-to-coefficient outputs; ``fixture_families``).

The folder is ``$MIMAFACE_AUDIO_FIXTURES_DIR`` when set, else ``tests/fixtures/audio2coeff`` (a copy
of the project's shared fixture). Every shape, length, seed and parameter is read from the folder;
see its README.md. The weights are regenerated from the recipe and written in both official forms.
"""

from __future__ import annotations

from pathlib import Path

from fixture_families import AUDIO2COEFF as FAMILY
from fixture_families import check_recipe_print, fingerprint, recipe_print  # noqa: F401

fixture_dir = FAMILY.folder
cases = FAMILY.cases
case = FAMILY.case
resolve = FAMILY.resolve
tensor = FAMILY.tensor
inp = FAMILY.inp
out = FAMILY.out
check = FAMILY.check
component = FAMILY.component
layout = FAMILY.layout
regenerate = FAMILY.regenerate
#: {path in weights/layout.json: written path} of both official forms, fingerprints checked
write_official_layout = FAMILY.write_layout_files
files_of = FAMILY.files_of


def data_file(case_name: str, name: str = "wav_file") -> Path:
    return FAMILY.data_file(case_name, name)
