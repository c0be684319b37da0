"""``python -m mimaface_core download DEST``: fetch the released weights with huggingface_hub.

Downloads into DEST:

* the MIMAFace snapshot (``MIMAFace/MIMAFace``: ``checkpoints/`` and ``models/``),
* ``stabilityai/sd-vae-ft-mse`` into ``DEST/sd-vae-ft-mse/``,
* the SD1.5 ``scheduler/scheduler_config.json`` (kept for reference; the released Euler settings
  are written out in ``mimaface_core.schedulers``).

Without a network it fails fast and says what to fetch and where to put it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import MIMAFaceError
from .layout import SCHEDULER_CONFIG, VAE_FOLDER

MIMAFACE_REPO = "MIMAFace/MIMAFace"
VAE_REPO = "stabilityai/sd-vae-ft-mse"
SD15_REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"

#: (repo, allow patterns, sub-folder of DEST), in download order.
DOWNLOADS: tuple[tuple[str, list[str], str], ...] = (
    (MIMAFACE_REPO, ["checkpoints/**", "models/**"], ""),
    (VAE_REPO, ["config.json", "diffusion_pytorch_model.safetensors"], VAE_FOLDER),
    (SD15_REPO, [SCHEDULER_CONFIG], ""),
)


def manual_instructions(dest: Path) -> str:
    """What to download by hand, and where it goes."""
    return (
        f"Download these by hand and place them under {dest}:\n"
        f"  1. https://huggingface.co/{MIMAFACE_REPO} : the folders checkpoints/ and models/ -> {dest}/checkpoints, {dest}/models\n"
        f"  2. https://huggingface.co/{VAE_REPO} : config.json and diffusion_pytorch_model.safetensors -> {dest}/{VAE_FOLDER}/\n"
        f"  3. https://huggingface.co/{SD15_REPO} : {SCHEDULER_CONFIG} -> {dest}/{SCHEDULER_CONFIG}\n"
        "In ComfyUI, DEST is ComfyUI/models/mimaface/<name>."
    )


def download_weights(dest: str | Path, log: Callable[[str], None] = print) -> Path:
    """Download everything into ``dest``; return ``dest``.

    Raises:
        MIMAFaceError: huggingface_hub is missing or the hub cannot be reached (offline, no
            network); the message lists what to download by hand and where to put it.
    """
    dest = Path(dest)
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - huggingface_hub ships with diffusers
        raise MIMAFaceError("huggingface_hub is not installed.\n" + manual_instructions(dest)) from exc
    for repo, patterns, sub in DOWNLOADS:
        target = dest / sub if sub else dest
        log(f"downloading {repo} -> {target}")
        try:
            snapshot_download(repo_id=repo, allow_patterns=patterns, local_dir=str(target), etag_timeout=10)
        except Exception as exc:  # huggingface_hub raises many types (offline, HTTP, connection)
            raise MIMAFaceError(
                f"Could not download {repo}: {type(exc).__name__}: {exc}\n" + manual_instructions(dest)
            ) from exc
    return dest
