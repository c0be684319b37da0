"""The networks a worker keeps loaded between jobs.

Each kind of network (the MIMAFace bundle, SadTalker's audio networks, the evaluation's
estimators) has one slot, keyed by what makes it different: (weights folder, mode, device,
dtype, base checkpoint, VAE) for MIMAFace. A job asking for the same key gets the loaded networks;
a job asking for another key frees the slot first (so a worker never holds two bundles).
The loaders are looked up when called (``weights.loader.load_mimaface``,
``audio.load_audio_networks``, ``evaluation.face_measures.load_estimators``).
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def _path_key(path) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


class ModelCache:
    """Loaded networks reused across jobs; one slot per kind of network.

    Attributes:
        loads: how many times networks were loaded (a batch of jobs with one key: one per kind).
        hits: how many times loaded networks were reused.
    """

    def __init__(self):
        self._slots: dict = {}
        self.loads = 0
        self.hits = 0

    def _get(self, kind: str, key: tuple, load):
        held = self._slots.get(kind)
        if held is not None and held[0] == key:
            self.hits += 1
            return held[1]
        if held is not None:
            log.info("freeing the %s networks (the next job needs others)", kind)
            self.free(kind)
        value = load()
        self._slots[kind] = (key, value)
        self.loads += 1
        return value

    def mimaface(self, weights, mode: str = "video", device=None, dtype=None, vae=None, base=None):
        """:func:`~mimaface_core.weights.loader.load_mimaface` with these arguments, or the bundle
        loaded with the same (weights, mode, device, dtype, base checkpoint, VAE)."""
        from ..weights import loader

        key = (_path_key(weights), mode, str(device), str(dtype), repr(base), _path_key(vae))
        return self._get("mimaface", key, lambda: loader.load_mimaface(weights, mode=mode, device=device, dtype=dtype,
                                                                        vae=vae, base=base))

    def audio_networks(self, path, device="cpu"):
        """:func:`~mimaface_core.audio.weights.load_audio_networks`, or the networks of the same (file, device)."""
        from .. import audio

        return self._get("audio", (_path_key(path), str(device)),
                         lambda: audio.load_audio_networks(path, device=device))

    def estimators(self, weights, device="cpu", detector: str = "mtcnn", models_dir=None):
        """:func:`~mimaface_core.evaluation.face_measures.load_estimators`, or those of the same
        (weights, device, detector, models folder)."""
        from ..evaluation import face_measures

        key = (_path_key(weights), str(device), detector, _path_key(models_dir))
        return self._get("estimators", key,
                         lambda: face_measures.load_estimators(weights, device, detector, models_dir))

    def free(self, kind: str | None = None) -> None:
        """Drop one slot (or all) and return the memory (CUDA's cache too)."""
        for k in ([kind] if kind else list(self._slots)):
            self._slots.pop(k, None)
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover
            pass
