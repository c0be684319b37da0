"""Peak VRAM and seconds per output frame of the pack inside ComfyUI, by loading mode (issue 16).

Usage: python benchmarks/lowvram_benchmark.py COMFYUI_DIR WEIGHTS_FOLDER [--frames 16] [--steps 25]
       [--budget-gb 6] [--source IMAGE] [--driving VIDEO] [--modes full,lowvram,dynamic]

Run it with the python of the ComfyUI install (its venv) on a CUDA machine. Each mode runs in its
own subprocess, as ComfyUI would be started:

* ``full``: fp16, every group loaded whole (``--disable-dynamic-vram --highvram``: ComfyUI keeps
  the models on the GPU);
* ``lowvram``: fp16, ComfyUI's estimate-based partial loading with about ``--budget-gb`` of VRAM
  (``--disable-dynamic-vram --reserve-vram <total - budget>``): the casting layers of the UNet, CLIP,
  MIM and VAE that do not fit stay in RAM and are cast to the GPU layer by layer;
* ``dynamic``: fp16, dynamic VRAM (ComfyUI 0.33's ModelPatcherDynamic with comfy-aimdo, set up as
  ComfyUI's main.py does); "not available" where the install has no ModelPatcherDynamic or no
  working comfy-aimdo.

The job: Load MIMAFace Model (fp16) → Extract 3DMM Motion (source, driving) → Render Coeff Image
→ MIA Appearance Encode → ICA Clip Sampler at 512x512 (``--frames`` driving frames) → our VAE decode.
Printed per mode: peak ``torch.cuda.max_memory_allocated`` over the whole job, and seconds per output
frame of the sampler + decode. Not a test; figures depend on the GPU and the drivers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = ("full", "lowvram", "dynamic")


def _comfy_args(mode: str, budget_gb: float) -> list[str]:
    import torch

    if mode == "full":
        return ["--disable-dynamic-vram", "--highvram"]
    if mode == "lowvram":
        total = torch.cuda.get_device_properties(0).total_memory / 1024 ** 3
        return ["--disable-dynamic-vram", "--reserve-vram", f"{max(total - budget_gb, 0.0):.2f}"]
    return ["--enable-dynamic-vram"]


def _enable_dynamic_vram() -> str | None:
    """Dynamic VRAM as ComfyUI 0.33's main.py turns it on; the reason when it cannot."""
    import comfy.model_management as mm
    import comfy.model_patcher

    if not hasattr(comfy.model_patcher, "ModelPatcherDynamic"):
        return "this ComfyUI has no ModelPatcherDynamic (0.33+)"
    try:
        import comfy.memory_management
        import comfy_aimdo.control
    except ImportError as exc:
        return f"comfy-aimdo is not installed ({exc})"
    devices = mm.get_all_torch_devices()
    try:
        ok = comfy_aimdo.control.init_devices((d.index, 0) for d in devices)
    except TypeError:
        ok = comfy_aimdo.control.init_devices(d.index for d in devices)
    if not ok:
        return "comfy-aimdo found no working device"
    comfy.model_patcher.CoreModelPatcher = comfy.model_patcher.ModelPatcherDynamic
    comfy.memory_management.aimdo_enabled = True
    return None


def worker(args) -> dict:
    sys.path.insert(0, str(args.comfy))
    sys.argv = [sys.argv[0]] + _comfy_args(args.mode, args.budget_gb)
    import comfy.options

    comfy.options.enable_args_parsing()
    import numpy as np
    import torch
    from PIL import Image

    if args.mode == "dynamic":
        why = _enable_dynamic_vram()
        if why is not None:
            return {"mode": args.mode, "available": False, "why": why}
    import comfy.model_management as mm
    import folder_paths

    sys.path.insert(0, str(ROOT / "tests"))
    from comfy_inprocess import load_pack

    weights = Path(args.weights).resolve()
    folder_paths.add_model_folder_path("mimaface", str(weights.parent), is_default=True)
    N = load_pack()
    from mimaface_core.media.video_in import iter_video_frames
    from mimaface_core.networks.vae import decode_latents

    source = torch.from_numpy(np.asarray(Image.open(args.source).convert("RGB"))).float()[None] / 255
    driving = torch.from_numpy(np.stack(list(iter_video_frames(args.driving, limit=args.frames)))).float() / 255
    torch.cuda.reset_peak_memory_stats()
    (handle,) = N["MIMAFaceLoadModel"]().load(
        weights=weights.name, mode="video", base_checkpoint="(MIMAFace UNet)", merge="add_difference",
        reference_checkpoint="(none)", strength=1.0, vae="(sd-vae-ft-mse in the weights folder)",
        precision="fp16", detector="mtcnn")
    src, crops = N["MIMAFaceExtractMotion"]().extract(handle, source, "first_frame", 0, 9)
    drv, _ = N["MIMAFaceExtractMotion"]().extract(handle, driving, "first_frame", 0, 9)
    render, _, blended = N["MIMAFaceRenderCoeffImage"]().render(handle, src, drv, "absolute", 1.0, 1)
    (app,) = N["MIMAFaceMIAAppearanceEncode"]().encode(handle, crops, blended, None, src)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    (lat,) = N["MIMAFaceICAClipSampler"]().sample(handle, app, render, seed=0, steps=args.steps, cfg=3.5,
                                                  scheduler="ddim", clip_length=16, overlap=4,
                                                  noise="same_every_clip")
    with handle.use("vae") as m:
        frames = decode_latents(m.vae, lat["samples"] * 0.18215)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    kinds = {type(p).__name__ for p in handle._patchers.values()}
    return {"mode": args.mode, "available": True, "frames": len(frames), "size": list(frames.shape[1:3]),
            "peak_vram_gib": torch.cuda.max_memory_allocated() / 1024 ** 3, "seconds_per_frame": seconds / len(frames),
            "patchers": sorted(kinds), "vram_state": str(mm.vram_state)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("comfy", type=Path, help="the ComfyUI folder (run with its python)")
    parser.add_argument("weights", type=Path, help="the MIMAFace snapshot folder (checkpoints/, models/, sd-vae-ft-mse/)")
    parser.add_argument("--frames", type=int, default=16, help="driving frames = output frames")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--budget-gb", type=float, default=6.0, help="VRAM budget of the lowvram mode")
    parser.add_argument("--source", type=Path, default=ROOT / "example_media" / "portrait_eileen_collins.jpg")
    parser.add_argument("--driving", type=Path, default=ROOT / "example_media" / "driving_talking.mp4")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--mode", help=argparse.SUPPRESS)  # one mode, in the worker subprocess
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        sys.exit("lowvram_benchmark: no CUDA GPU here (torch.cuda.is_available() is False); peak VRAM and the "
                 "loading modes are only meaningful on a CUDA machine. Run it there with the ComfyUI's python.")
    if args.mode:
        print(json.dumps(worker(args)))
        return
    for mode in args.modes.split(","):
        cmd = [sys.executable, __file__, str(args.comfy), str(args.weights), "--mode", mode, "--frames",
               str(args.frames), "--steps", str(args.steps), "--budget-gb", str(args.budget_gb), "--source",
               str(args.source), "--driving", str(args.driving)]
        proc = subprocess.run(cmd, cwd=args.comfy, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            print(f"{mode:8s} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
            continue
        r = json.loads(lines[-1])
        if not r["available"]:
            print(f"{mode:8s} not available: {r['why']}")
        else:
            print(f"{mode:8s} peak VRAM {r['peak_vram_gib']:.2f} GiB, {r['seconds_per_frame']:.2f} s per output frame "
                  f"({r['frames']} frames {r['size'][0]}x{r['size'][1]}; {', '.join(r['patchers'])}; {r['vram_state']})")


if __name__ == "__main__":
    main()
