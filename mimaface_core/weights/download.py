"""``python -m mimaface_core download DEST``: fetch the released weights with huggingface_hub.

Downloads into DEST:

* the MIMAFace snapshot (``MIMAFace/MIMAFace``: ``checkpoints/`` and ``models/``),
* ``stabilityai/sd-vae-ft-mse`` into ``DEST/sd-vae-ft-mse/``,
* the SD1.5 ``scheduler/scheduler_config.json`` (kept for reference; the released Euler settings
  are written out in ``mimaface_core.sampling.schedulers``),
* SadTalker's ``SadTalker_V0.0.2_256.safetensors`` (its audio-to-coefficient networks, for audio
  driving) from SadTalker's GitHub release into ``DEST/sadtalker/``,
* when DEST is ``ComfyUI/models/mimaface/<name>``: the single-file sd-vae-ft-mse
  (``vae-ft-mse-840000-ema-pruned.safetensors``) that the shipped workflows' VAE Loader names, into
  ``ComfyUI/models/vae/``.

Without a network it fails fast and says what to fetch and where to put it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import MIMAFaceError
from .layout import SADTALKER_FILE as COMBINED_FILE
from .layout import SADTALKER_FOLDER as SNAPSHOT_SUBFOLDER
from .layout import SCHEDULER_CONFIG, VAE_FOLDER

MIMAFACE_REPO = "MIMAFace/MIMAFace"
VAE_REPO = "stabilityai/sd-vae-ft-mse"
SD15_REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"
#: SadTalker's official download link (scripts/download_models.sh of OpenTalker/SadTalker).
SADTALKER_URL = f"https://github.com/OpenTalker/SadTalker/releases/download/v0.0.2-rc/{COMBINED_FILE}"
#: The single-file sd-vae-ft-mse that the shipped workflows' VAE Loader names (ComfyUI/models/vae).
VAE_FILE_REPO = "stabilityai/sd-vae-ft-mse-original"
VAE_FILE = "vae-ft-mse-840000-ema-pruned.safetensors"


def comfy_vae_dir(dest: Path) -> Path | None:
    """``ComfyUI/models/vae`` when ``dest`` is ``ComfyUI/models/mimaface/<name>``, else None."""
    dest = Path(dest)
    return dest.parent.parent / "vae" if dest.parent.name == "mimaface" else None

#: (repo, allow patterns, sub-folder of DEST), in download order.
DOWNLOADS: tuple[tuple[str, list[str], str], ...] = (
    (MIMAFACE_REPO, ["checkpoints/**", "models/**"], ""),
    (VAE_REPO, ["config.json", "diffusion_pytorch_model.safetensors"], VAE_FOLDER),
    (SD15_REPO, [SCHEDULER_CONFIG], ""),
)


class DownloadError(MIMAFaceError):
    """A download failed: ``summary`` is one short line (what failed and why), ``details`` the
    numbered list of what to fetch by hand and where each goes; ``str()`` is both."""

    def __init__(self, summary: str, details: str):
        super().__init__(f"{summary}\n{details}")
        self.summary, self.details = summary, details


def _failed(what: str, exc: BaseException, dest: Path) -> DownloadError:
    reason = type(exc).__name__
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if first and len(first) <= 80:
        reason += f": {first}"
    return DownloadError(f"could not download {what} ({reason}); fetch these by hand instead:",
                         manual_instructions(dest))


def manual_instructions(dest: Path) -> str:
    """What to download by hand, and where it goes (a numbered list)."""
    return (
        f"Place them under {dest}:\n"
        f"  1. https://huggingface.co/{MIMAFACE_REPO} : the folders checkpoints/ and models/ -> {dest}/checkpoints, {dest}/models\n"
        f"  2. https://huggingface.co/{VAE_REPO} : config.json and diffusion_pytorch_model.safetensors -> {dest}/{VAE_FOLDER}/\n"
        f"  3. https://huggingface.co/{SD15_REPO} : {SCHEDULER_CONFIG} -> {dest}/{SCHEDULER_CONFIG}\n"
        f"  4. {SADTALKER_URL} -> {dest}/{SNAPSHOT_SUBFOLDER}/{COMBINED_FILE} (audio driving only)\n"
        f"  5. https://huggingface.co/{VAE_FILE_REPO} : {VAE_FILE} -> ComfyUI/models/vae/ (the workflows' VAE Loader)\n"
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
        raise DownloadError("huggingface_hub is not installed; fetch these by hand instead:",
                            manual_instructions(dest)) from exc
    for repo, patterns, sub in DOWNLOADS:
        target = dest / sub if sub else dest
        log(f"downloading {repo} -> {target}")
        try:
            snapshot_download(repo_id=repo, allow_patterns=patterns, local_dir=str(target), etag_timeout=10)
        except Exception as exc:  # huggingface_hub raises many types (offline, HTTP, connection)
            raise _failed(repo, exc, dest) from exc
    vae_dir = comfy_vae_dir(dest)
    if vae_dir is not None:
        log(f"downloading {VAE_FILE_REPO}/{VAE_FILE} -> {vae_dir}")
        try:
            from huggingface_hub import hf_hub_download

            hf_hub_download(repo_id=VAE_FILE_REPO, filename=VAE_FILE, local_dir=str(vae_dir), etag_timeout=10)
        except Exception as exc:  # huggingface_hub raises many types (offline, HTTP, connection)
            raise _failed(VAE_FILE_REPO, exc, dest) from exc
    target = dest / SNAPSHOT_SUBFOLDER / COMBINED_FILE
    log(f"downloading {SADTALKER_URL} -> {target}")
    try:
        download_url(SADTALKER_URL, target)
    except OSError as exc:
        raise _failed(SADTALKER_URL, exc, dest) from exc
    return dest


def download_url(url: str, target: Path, timeout: float = 10.0) -> Path:
    """Fetch ``url`` into ``target`` through a ``.partial`` file renamed on success (an existing
    target is kept). Raises OSError (urllib's errors) when the network or the file is unavailable."""
    import shutil
    import urllib.request

    from ..media.outputs import atomic_output

    if target.is_file():
        return target
    with urllib.request.urlopen(url, timeout=timeout) as response, atomic_output(target) as partial:
        with open(partial, "wb") as fh:
            shutil.copyfileobj(response, fh, 1 << 20)
    return target
