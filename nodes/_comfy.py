"""The only module that touches ComfyUI (``folder_paths``, ``comfy.*``), always lazily.

Each service has a standalone fallback so that the node classes import and run where ComfyUI is
absent (tests, scripts): model folders under ``$MIMAFACE_MODELS_DIR`` (default ``<pack>/models``),
the CUDA device when there is one, no progress bar, no interrupt.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

MODEL_FOLDER = "mimaface"
#: The snapshot's folder name in ``models/mimaface`` (the workflows' ``weights`` value; README "Model files").
SNAPSHOT_NAME = "MIMAFace"
SADTALKER_FOLDER = "sadtalker"
#: Prefix of audio-weight choices that live in a MIMAFace snapshot (``<snapshot>/sadtalker/``).
SNAPSHOT_CHOICE = "mimaface/"
_WEIGHT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
MEDIAPIPE_FOLDER = "mediapipe"
MOTION_SUBFOLDER = "mimaface_motion"
_PACK_DIR = Path(__file__).resolve().parents[1]


def _folder_paths():
    try:
        import folder_paths  # ComfyUI's module

        return folder_paths
    except ImportError:
        return None


def _model_management():
    try:
        import comfy.model_management as mm

        return mm
    except ImportError:
        return None


def models_dir() -> Path:
    """ComfyUI's models folder, or ``$MIMAFACE_MODELS_DIR`` / ``<pack>/models`` standalone."""
    fp = _folder_paths()
    if fp is not None:
        return Path(fp.models_dir)
    return Path(os.environ.get("MIMAFACE_MODELS_DIR", _PACK_DIR / "models"))


def register_model_folders() -> None:
    """Register ``models/mimaface`` with folder_paths (extra_model_paths.yaml entries named
    ``mimaface`` then add more places). No-op outside ComfyUI."""
    fp = _folder_paths()
    if fp is not None:
        fp.add_model_folder_path(MODEL_FOLDER, str(Path(fp.models_dir) / MODEL_FOLDER), is_default=True)
        fp.add_model_folder_path(SADTALKER_FOLDER, str(Path(fp.models_dir) / SADTALKER_FOLDER), is_default=True)


def _model_roots() -> list[Path]:
    fp = _folder_paths()
    if fp is not None and MODEL_FOLDER in fp.folder_names_and_paths:
        return [Path(p) for p in fp.get_folder_paths(MODEL_FOLDER)]
    return [models_dir() / MODEL_FOLDER]


def weight_folders() -> list[str]:
    """Names of the MIMAFace snapshot folders (sub-folders holding ``checkpoints/``)."""
    names = set()
    for root in _model_roots():
        if root.is_dir():
            names.update(p.name for p in root.iterdir() if (p / "checkpoints").is_dir())
    return sorted(names)


def weight_folder(name: str) -> Path:
    """The path of a snapshot folder listed by :func:`weight_folders`.

    Raises:
        FileNotFoundError: naming the folders searched.
    """
    for root in _model_roots():
        if (root / name / "checkpoints").is_dir():
            return root / name
    raise FileNotFoundError(
        f"MIMAFace weights folder '{name}' not found in {', '.join(map(str, _model_roots()))}. The MIMAFace snapshot is "
        f"a folder, not one file (no single download link serves it): put it at {_model_roots()[0] / SNAPSHOT_NAME} "
        "(holding checkpoints/, models/ and sd-vae-ft-mse/), e.g. with `python -m mimaface_core download "
        f"{_model_roots()[0] / SNAPSHOT_NAME}` run in the pack's folder (it fetches MIMAFace/MIMAFace and "
        "stabilityai/sd-vae-ft-mse from Hugging Face, SadTalker's audio weights from its GitHub release), "
        f"then press R (refresh) and pick '{SNAPSHOT_NAME}'. The Load MIMAFace Model help page lists the layout.")


def _sadtalker_roots() -> list[Path]:
    fp = _folder_paths()
    if fp is not None and SADTALKER_FOLDER in fp.folder_names_and_paths:
        return [Path(p) for p in fp.get_folder_paths(SADTALKER_FOLDER)]
    return [models_dir() / SADTALKER_FOLDER]


def _audio_files_in(folder: Path) -> list[str]:
    """SadTalker files of a folder: combined .safetensors files, and the audio2exp half of each
    older .pth pair (its audio2pose partner is found beside it)."""
    if not folder.is_dir():
        return []
    names = []
    for p in sorted(folder.iterdir()):
        low = p.name.lower()
        if not p.is_file() or not low.endswith(_WEIGHT_SUFFIXES):
            continue
        if low.endswith(".safetensors") or low.startswith(("auido2exp", "audio2exp")):
            names.append(p.name)
    return names


def audio_weight_choices() -> list[str]:
    """The audio-weight combo: files in ``models/sadtalker`` (extra_model_paths.yaml entries named
    ``sadtalker`` add places), then ``mimaface/<snapshot>/sadtalker/<file>`` of every snapshot."""
    choices = []
    for root in _sadtalker_roots():
        choices += [c for c in _audio_files_in(root) if c not in choices]
    for name in weight_folders():
        choices += [f"{SNAPSHOT_CHOICE}{name}/{SADTALKER_FOLDER}/{f}" for f in _audio_files_in(weight_folder(name) / SADTALKER_FOLDER)]
    return choices


def audio_weight_path(choice: str) -> Path:
    """The file behind an :func:`audio_weight_choices` entry.

    Raises:
        FileNotFoundError: naming the entry and the folders searched.
    """
    if choice.startswith(SNAPSHOT_CHOICE):
        snapshot, _, file = choice[len(SNAPSHOT_CHOICE):].partition(f"/{SADTALKER_FOLDER}/")
        path = weight_folder(snapshot) / SADTALKER_FOLDER / file
        if path.is_file():
            return path
    else:
        for root in _sadtalker_roots():
            if (root / choice).is_file():
                return root / choice
    raise FileNotFoundError(f"SadTalker audio weights '{choice}' not found; put SadTalker_V0.0.2_256.safetensors in "
                            f"{', '.join(map(str, _sadtalker_roots()))} (or <MIMAFace folder>/{SADTALKER_FOLDER}/).")


def list_files(kind: str) -> list[str]:
    """Files of a ComfyUI model folder ("checkpoints", "vae"); standalone: ``models/<kind>``."""
    fp = _folder_paths()
    if fp is not None:
        return fp.get_filename_list(kind)
    folder = models_dir() / kind
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.suffix in (".safetensors", ".ckpt", ".pt", ".pth", ".bin")) if folder.is_dir() else []


def file_path(kind: str, name: str) -> Path:
    """Full path of a listed file.

    Raises:
        FileNotFoundError: naming the file and folder kind.
    """
    fp = _folder_paths()
    path = fp.get_full_path(kind, name) if fp is not None else models_dir() / kind / name
    if path is None or not Path(path).is_file():
        raise FileNotFoundError(f"{kind} file '{name}' not found; put it in ComfyUI/models/{kind}.")
    return Path(path)


def mediapipe_dir() -> Path:
    """Where mediapipe's model files are looked for and downloaded: ``models/mediapipe``."""
    return models_dir() / MEDIAPIPE_FOLDER


def motion_dirs() -> dict[str, Path]:
    """Folders Load/Save Motion use: ``output/mimaface_motion`` and ``input/mimaface_motion``."""
    fp = _folder_paths()
    if fp is not None:
        return {"output": Path(fp.get_output_directory()) / MOTION_SUBFOLDER,
                "input": Path(fp.get_input_directory()) / MOTION_SUBFOLDER}
    base = Path(os.environ.get("MIMAFACE_OUTPUT_DIR", _PACK_DIR / "output"))
    return {"output": base / MOTION_SUBFOLDER, "input": base.parent / "input" / MOTION_SUBFOLDER}


def torch_device() -> torch.device:
    """ComfyUI's compute device; standalone: CUDA when available, else CPU."""
    mm = _model_management()
    if mm is not None:
        return mm.get_torch_device()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def offload_device() -> torch.device:
    """Where models wait between uses (ComfyUI's unet offload device; CPU standalone)."""
    mm = _model_management()
    return mm.unet_offload_device() if mm is not None else torch.device("cpu")


def auto_dtype(device: torch.device) -> torch.dtype:
    """fp16 or bf16 where ComfyUI says the device supports it, else fp32 (CPU: fp32)."""
    mm = _model_management()
    if device.type == "cpu":
        return torch.float32
    if mm is not None:
        if mm.should_use_fp16(device):
            return torch.float16
        if mm.should_use_bf16(device):
            return torch.bfloat16
        return torch.float32
    return torch.float16 if device.type == "cuda" else torch.float32


def free_memory() -> None:
    """Ask ComfyUI to empty its caches after offloading (no-op standalone)."""
    mm = _model_management()
    if mm is not None:
        mm.soft_empty_cache()


def layer_operations():
    """ComfyUI's weight-casting layer classes (``comfy.ops.disable_weight_init``) to build networks
    with (``load_mimaface(operations=...)``), so that ComfyUI can load them partially (lowvram) or
    page them (dynamic VRAM, 0.33); None standalone (plain torch layers)."""
    try:
        import comfy.ops
    except ImportError:
        return None
    return comfy.ops.disable_weight_init


def model_patcher(module: torch.nn.Module, load_device: torch.device, offload_device: torch.device,
                  castable: bool = False):
    """A ComfyUI model patcher over ``module`` (ComfyUI counts, loads, offloads and frees it like
    its own models); None standalone.

    ``castable``: the module is built with :func:`layer_operations`; it gets ComfyUI's
    ``CoreModelPatcher`` (ModelPatcherDynamic when dynamic VRAM is on), else a plain
    ``ModelPatcher`` that :func:`load_models` loads whole.
    """
    try:
        import comfy.model_patcher
    except ImportError:
        return None
    kind = comfy.model_patcher.ModelPatcher
    if castable:  # CoreModelPatcher: 0.33+ (ModelPatcherDynamic under dynamic VRAM); 0.3.64 has none
        kind = getattr(comfy.model_patcher, "CoreModelPatcher", kind)
    return kind(module, load_device=load_device, offload_device=offload_device)


def is_dynamic(patcher) -> bool:
    """Whether a patcher pages its weights itself (0.33's ModelPatcherDynamic): such a patcher is
    never asked for a full load or forced weight patching (its ``load`` asserts against both)."""
    return bool(getattr(patcher, "is_dynamic", lambda: False)())


def load_models(patchers: list, partial: bool = False) -> None:
    """``comfy.model_management.load_models_gpu`` of a node's groups, in one call (so that ComfyUI
    never evicts one of them to make room for another): ComfyUI frees other models first and keeps
    these loaded until it needs the memory or the user unloads models.

    ``partial``: every group is castable (built with :func:`layer_operations`), so ComfyUI may load
    them partially (lowvram) or page them (dynamic VRAM); otherwise they are loaded whole
    (``force_full_load``, which dynamic patchers accept: it only sets the memory budget).
    """
    mm = _model_management()
    if mm is not None and patchers:
        mm.load_models_gpu(patchers, force_full_load=not partial)


def _original_weight(model, key: str) -> torch.Tensor:
    """The weight ``key`` of a core MODEL without ComfyUI's patches: a ModelPatcher that loaded the
    model with its patches written into the weights keeps the originals in ``backup`` (this patcher
    or a loaded clone sharing the same model); otherwise the stored weight is the original."""
    import comfy.utils

    mm = _model_management()
    holders = [model] + [loaded.model for loaded in getattr(mm, "current_loaded_models", [])
                         if getattr(loaded, "model", None) is not None and loaded.model.model is model.model]
    for holder in holders:
        backup = getattr(holder, "backup", {})
        if key in backup:
            return backup[key].weight
    return comfy.utils.get_attr(model.model, key)


def patched_unet_state(model, what: str) -> dict[str, torch.Tensor]:
    """The SD1.5 UNet weights of a core MODEL wire with ComfyUI's patches (LoRAs...) applied, as an
    LDM-layout state dict of float32 CPU tensors.

    Computed key by key on the CPU, as ComfyUI computes a patched weight when it saves a
    checkpoint: the original weight (see :func:`_original_weight`), ComfyUI's ``convert_*`` hook of
    its layer if any, then ``comfy.lora.calculate_weight`` over the patcher's patch list, in float32.
    The model is never loaded to the GPU, never patched in place and never changed, so this works on
    every patcher kind: ``ModelPatcher`` (0.3.64+), and ``ModelPatcherDynamic`` (0.33 dynamic VRAM,
    whose ``load`` refuses ``force_patch_weights`` and whose weights stay unpatched in memory). Peak
    extra memory: the float32 state dict returned, plus one weight.

    Raises:
        ValueError: the wire is not an SD1.5 model (names its type), or not a ComfyUI MODEL.
    """
    config = getattr(getattr(model, "model", None), "model_config", None)
    if config is None:
        raise ValueError(f"{what}: expected a core MODEL (Load Checkpoint, LoRA loaders), got {type(model).__name__}.")
    kind = type(config).__name__
    if kind != "SD15":
        raise ValueError(f"{what}: the MODEL is {kind} ({type(config).__module__}.{kind}); MIMAFace merges only "
                         "SD1.5 UNets (SD2, SDXL and other architectures cannot be combined with it).")
    state = model.model.diffusion_model.state_dict()
    if _model_management() is None:  # standalone (tests' stand-ins): no ComfyUI patches to apply
        return {k: v.detach().to("cpu", torch.float32, copy=True) for k, v in state.items()}
    import comfy.lora
    import comfy.model_patcher

    prefix = "diffusion_model."
    out = {}
    for name in state:
        key = prefix + name
        weight = _original_weight(model, key).detach().to("cpu", torch.float32, copy=True)
        patches = getattr(model, "patches", {}).get(key)
        if patches:
            _, _, convert = comfy.model_patcher.get_key_weight(model.model, key)
            if convert is not None:
                weight = convert(weight, inplace=True)
            weight = comfy.lora.calculate_weight(patches, weight, key, intermediate_dtype=torch.float32)
        out[name] = weight
    return out


def interrupted() -> bool:
    """Whether the user pressed Cancel (False standalone)."""
    mm = _model_management()
    return bool(mm is not None and mm.processing_interrupted())


def check_interrupt() -> None:
    """Raise ComfyUI's interrupt exception when the user pressed Cancel (no-op standalone)."""
    mm = _model_management()
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()


def latent_previewer():
    """The latent previewer ComfyUI's own samplers use, for SD1.5 latents, following the user's
    preview method (``--preview-method``, or the per-prompt setting of 0.33's frontend): latent2rgb
    for ``auto``/``latent2rgb``, TAESD for ``taesd`` when ``models/vae_approx`` holds
    ``taesd_decoder`` (else ComfyUI warns and uses latent2rgb).

    Feature check: ``latent_preview.get_previewer(device, latent_format)`` and
    ``comfy.latent_formats.SD15`` (both in 0.3.64 and 0.33). Its
    ``decode_latent_to_preview_image(format, x0)`` takes (1, 4, h, w) latents × 0.18215.

    Returns:
        The previewer, or None: preview method ``none``, standalone, or a ComfyUI without them.
    """
    try:
        import comfy.latent_formats
        import latent_preview  # ComfyUI's module
    except ImportError:
        return None
    get_previewer = getattr(latent_preview, "get_previewer", None)
    sd15 = getattr(comfy.latent_formats, "SD15", None)
    if get_previewer is None or sd15 is None:
        return None
    return get_previewer(torch_device(), sd15())


class Progress:
    """A ComfyUI progress bar (its update is also the cancel point); silent standalone.

    With a ``previewer`` (:func:`latent_previewer`), :meth:`preview` decodes latents into the image
    that the next update carries to the frontend (the node's live preview).
    """

    def __init__(self, total: int, previewer=None):
        try:
            import comfy.utils

            self._bar = comfy.utils.ProgressBar(total)
        except ImportError:
            self._bar = None
        self._previewer = previewer if self._bar is not None else None
        self._preview = None

    @property
    def previewing(self) -> bool:
        """Whether :meth:`preview` shows anything (False: preview method none, or standalone)."""
        return self._previewer is not None

    def preview(self, latents: torch.Tensor) -> None:
        """Decode (1, 4, h, w) latents (× 0.18215) with the previewer for the next update."""
        if self._previewer is not None:
            self._preview = self._previewer.decode_latent_to_preview_image("JPEG", latents)

    def __call__(self, done: int, total: int | None = None) -> None:
        if self._bar is not None:
            preview, self._preview = self._preview, None
            self._bar.update_absolute(done, total, preview)
        check_interrupt()
