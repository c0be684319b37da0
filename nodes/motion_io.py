"""Save Motion and Load Motion: coefficient sequences as safetensors + JSON for reuse and editing."""

from __future__ import annotations

from mimaface_core.motion.sequence import MotionSequence

from . import _comfy
from .types import CATEGORY, MOTION


def motion_files() -> list[str]:
    """Saved motions as "output/<name>" and "input/<name>" (a .safetensors with a .json beside it)."""
    names = []
    for where, folder in _comfy.motion_dirs().items():
        if folder.is_dir():
            names += [f"{where}/{p.stem}" for p in sorted(folder.glob("*.safetensors")) if p.with_suffix(".json").is_file()]
    return names


class SaveMotion:
    """Writes a motion sequence to output/mimaface_motion/<prefix>_NNNNN.safetensors + .json."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "save"
    DESCRIPTION = ("Saves per-frame coefficients, crop matrices, scores and missing-face flags (safetensors + a "
                   "readable JSON). Load it again with Load Motion; copy it to input/mimaface_motion to share it.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "motion": (MOTION, {"tooltip": "Any MIMAFace motion (driving, source or blended)."}),
            "filename_prefix": ("STRING", {"default": "motion", "tooltip": "File name start; a counter is added."}),
        }}

    def save(self, motion, filename_prefix):
        folder = _comfy.motion_dirs()["output"]
        folder.mkdir(parents=True, exist_ok=True)
        prefix = "".join(c for c in filename_prefix if c.isalnum() or c in "-_") or "motion"
        counter = 1 + max([int(p.stem.rsplit("_", 1)[-1]) for p in folder.glob(f"{prefix}_*.safetensors")
                           if p.stem.rsplit("_", 1)[-1].isdigit()] or [0])
        path = motion.save(folder / f"{prefix}_{counter:05d}")
        return {"ui": {"text": [f"saved {len(motion)} frames to {path.name}"]}}


class LoadMotion:
    """Reads a motion saved by Save Motion (from output/ or input/mimaface_motion)."""

    CATEGORY = CATEGORY
    RETURN_TYPES = (MOTION, "INT")
    RETURN_NAMES = ("motion", "frames")
    OUTPUT_TOOLTIPS = ("The saved motion sequence.", "Its number of frames.")
    FUNCTION = "load"
    DESCRIPTION = "Loads a saved MIMAFace motion (never a pickle: safetensors + JSON)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "motion_file": (motion_files() or ["(none saved yet)"], {"tooltip": "A motion in output/mimaface_motion "
                            "or input/mimaface_motion."}),
        }}

    @classmethod
    def IS_CHANGED(cls, motion_file):
        path = cls._path(motion_file)
        return path.stat().st_mtime if path.is_file() else motion_file

    @staticmethod
    def _path(motion_file):
        where, _, name = motion_file.partition("/")
        folder = _comfy.motion_dirs().get(where)
        if folder is None or not name:
            raise ValueError(f"motion_file '{motion_file}': save a motion with Save Motion first.")
        return (folder / name).with_suffix(".safetensors")

    def load(self, motion_file):
        motion = MotionSequence.load(self._path(motion_file))
        return (motion, len(motion))
