"""Load MIMAFace Model."""

from __future__ import annotations

import logging

import torch

from . import _comfy
from .model_groups import ModelHandle
from .types import CATEGORY, MODEL

log = logging.getLogger(__name__)
RELEASED_UNET = "(MIMAFace UNet)"
NO_FILE = "(none)"
WEIGHTS_VAE = "(sd-vae-ft-mse in the weights folder)"  # loaded when present; a core VAE wire can replace it
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class LoadMIMAFaceModel:
    """Loads the released MIMAFace weights (one mode) with an optional custom SD1.5 base."""

    CATEGORY = CATEGORY
    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("Every MIMAFace network of the chosen mode, for the other MIMAFace nodes.",)
    FUNCTION = "load"
    DESCRIPTION = ("Loads a released MIMAFace snapshot from models/mimaface/<folder> (UNet with motion modules, "
                   "CLIP appearance encoder, MIA module, D3DFR, CurricularFace, BFM09, VAE).")

    @classmethod
    def INPUT_TYPES(cls):
        folders = _comfy.weight_folders() or ["(no folder in models/mimaface)"]
        checkpoints = _comfy.list_files("checkpoints")
        return {"required": {
            "weights": (folders, {"tooltip": "Folder of the released snapshot in models/mimaface "
                                             "(python -m mimaface_core download models/mimaface/MIMAFace)."}),
            "mode": (["video", "image"], {"default": "video", "tooltip": "video: UNet with motion modules for "
                     "driving videos (clip sampler with ICA). image: the 2D UNet, one frame per driving image."}),
            "base_checkpoint": ([RELEASED_UNET] + checkpoints, {"tooltip": "The UNet base: the released MIMAFace "
                                "UNet, or your own SD1.5 checkpoint from models/checkpoints merged with it."}),
            "merge": (["add_difference", "swap"], {"default": "add_difference", "tooltip": "add_difference: your "
                      "checkpoint + (MIMAFace − SD1.5 reference) × strength (keeps MIMAFace's training). swap: your "
                      "checkpoint's UNet weights replace the shared ones (looser)."}),
            "reference_checkpoint": ([NO_FILE] + checkpoints, {"tooltip": "The SD1.5 checkpoint MIMAFace was trained "
                                     "from (v1-5-pruned-emaonly); needed by add_difference."}),
            "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0, "step": 0.05,
                                   "tooltip": "add_difference only: how much of the MIMAFace difference is added."}),
            "vae": ([WEIGHTS_VAE] + _comfy.list_files("vae"), {"tooltip": "VAE that encodes the renders when no core "
                    "VAE is wired into the ICA Clip Sampler (the release uses sd-vae-ft-mse). Best: one VAE Loader "
                    "wired into both the sampler and VAE Decode."}),
            "precision": (list(PRECISIONS), {"default": "auto", "tooltip": "auto: fp16 or bf16 where the GPU supports "
                          "it, fp32 on CPU. The 3DMM and identity networks always run in fp32."}),
            "detector": (["mtcnn", "mediapipe"], {"default": "mtcnn", "tooltip": "mtcnn reproduces the released crops "
                         "exactly. mediapipe (optional install) only approximates them: about 3-4% scale and 6-7 px "
                         "centre difference on photos, more on squashed non-square videos."}),
        }, "optional": {
            "base_model": ("MODEL", {"tooltip": "A custom SD1.5 base as a core MODEL (Load Checkpoint, then any LoRA "
                           "loaders): its UNet with the LoRAs applied is merged in with `merge` (instead of "
                           "base_checkpoint)."}),
            "reference_model": ("MODEL", {"tooltip": "The SD1.5 reference for add_difference as a core MODEL (instead "
                                "of reference_checkpoint)."}),
        }}

    def load(self, weights, mode, base_checkpoint, merge, reference_checkpoint, strength, vae, precision, detector,
             base_model=None, reference_model=None):
        from mimaface_core.weights.base_merge import BaseCheckpoint
        from mimaface_core.weights.loader import load_mimaface

        compute, offload = _comfy.torch_device(), _comfy.offload_device()
        dtype = _comfy.auto_dtype(compute) if precision == "auto" else _DTYPES[precision]
        base = None
        if base_model is not None and base_checkpoint != RELEASED_UNET:
            raise ValueError(f"base_model is connected and base_checkpoint is {base_checkpoint!r}: use one of them "
                             f"(set base_checkpoint to {RELEASED_UNET!r} to merge the MODEL wire).")
        if base_model is not None or base_checkpoint != RELEASED_UNET:
            if reference_model is not None:
                reference = _comfy.patched_unet_state(reference_model, "reference_model")
            elif reference_checkpoint != NO_FILE:
                reference = _comfy.file_path("checkpoints", reference_checkpoint)
            else:
                reference = None
            source = _comfy.patched_unet_state(base_model, "base_model") if base_model is not None else \
                _comfy.file_path("checkpoints", base_checkpoint)
            base = BaseCheckpoint(source, merge, reference, strength, name="base_model (MODEL wire)",
                                  reference_name="reference_model (MODEL wire)")
        vae_path = None if vae == WEIGHTS_VAE else _comfy.file_path("vae", vae)
        folder = _comfy.weight_folder(weights)
        log.info("[MIMAFace] reading the %s-mode weights from %s (%s)", mode, folder, str(dtype).replace("torch.", ""))
        operations = _comfy.layer_operations()  # ComfyUI's casting layers: partial loading / dynamic VRAM
        model = load_mimaface(folder, mode=mode, device=offload, dtype=dtype, vae=vae_path, base=base,
                              operations=operations)
        return (ModelHandle(model, detector, compute, offload, operations=operations),)
