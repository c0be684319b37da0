"""Cost of the ICA Clip Sampler's live previews against a denoising step (issue 27).

Usage: python benchmarks/preview_benchmark.py [--comfyui DIR] [--size tiny|full] [--frames 12]
       [--latent 64] [--steps 3] [--device cpu]

Runs the real clip loop (``sample_video``, CFG 5.0, the released clip length 12) on a video UNet
with random weights (tiny: official_tiny's architecture, the one the tests use; full: the released
architecture) twice: without previews, and with the node's preview path after every step (the
denoised estimate, ``latent_grid`` and latent2rgb decoding to a PIL image). With ``--comfyui`` the
decoder is ComfyUI's own (``latent_preview.get_previewer`` with ``--preview-method latent2rgb``,
run this with that install's python); without it, the same linear map with the SD1.5 latent2rgb
factors of ``comfy.latent_formats.SD15`` written out below. Also times the JPEG encoding that
ComfyUI's server does when it sends the image (off the sampler's thread). Prints seconds per step
with and without previews and the preview's share of a step. Not a test; figures vary with load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "tiny": ROOT / "tests" / "fixtures" / "official_tiny" / "weights" / "image_pretrained_unet.json",
    "full": ROOT / "tests" / "fixtures" / "manifests" / "pretrained_unet_config.json",
}
#: comfy.latent_formats.SD15.latent_rgb_factors (rows: latent channels; columns: R, G, B).
SD15_RGB = [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350], [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]]


def _previewer(comfyui: str | None, device):
    """(label, decode(latents (1, 4, H, W)) -> PIL image)."""
    if comfyui:
        sys.path.insert(0, comfyui)
        import comfy.cli_args
        import comfy.latent_formats
        import latent_preview

        comfy.cli_args.args.preview_method = comfy.cli_args.LatentPreviewMethod.Latent2RGB
        previewer = latent_preview.get_previewer(device, comfy.latent_formats.SD15())
        return "ComfyUI latent2rgb", lambda x0: previewer.decode_latent_to_preview_image("JPEG", x0)[1]
    import torch
    from PIL import Image

    factors = torch.tensor(SD15_RGB).T

    def decode(x0):
        rgb = torch.nn.functional.linear(x0[0].movedim(0, -1), factors.to(x0))
        return Image.fromarray(((rgb + 1) / 2).clamp(0, 1).mul(255).to("cpu", torch.uint8).numpy())

    return "latent2rgb (SD1.5 factors, standalone)", decode


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--comfyui", help="a ComfyUI folder: use its latent_preview (run with its python)")
    p.add_argument("--size", default="tiny", choices=sorted(CONFIGS))
    p.add_argument("--frames", type=int, default=12, help="driving frames (12 = one released clip)")
    p.add_argument("--latent", type=int, default=64, help="latent size (64 = the released 512x512)")
    p.add_argument("--steps", type=int, default=3, help="steps per run (the first step of a run is left out)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    import torch

    import mimaface_core.sampling.sampler as core_sampler
    from mimaface_core.networks.denoiser import build_unet3d
    from mimaface_core.sampling import SamplingOptions, sample_video
    from mimaface_core.sampling.preview import latent_grid

    device = torch.device(args.device)
    label, decode = _previewer(args.comfyui, device)
    data = json.loads(CONFIGS[args.size].read_text())
    torch.manual_seed(0)
    unet = build_unet3d(data.get("config_json", data), device=device).eval()
    options = SamplingOptions(steps=args.steps)
    h = args.latent

    def clip_inputs(clip):
        g = torch.Generator().manual_seed(clip.index)
        return torch.randn(len(clip.frames), 4, h, h, generator=g), torch.randn(1, 264, 768, generator=g)

    def run(on_denoised, options=options):
        stamps = []
        start = time.perf_counter()
        for _ in sample_video(unet, args.frames, clip_inputs, options, on_denoised=on_denoised,
                              on_step=lambda d, t: stamps.append(time.perf_counter())):
            pass
        return [b - a for a, b in zip(stamps[:-1], stamps[1:])]  # from the second step: no clip set-up

    preview_s, jpeg_s, images = [], [], []
    estimate = core_sampler.denoised_estimate

    def timed_estimate(*a):  # the estimate is computed in the core, only when previews are on
        t0 = time.perf_counter()
        out = estimate(*a)
        preview_s.append(time.perf_counter() - t0)
        return out

    core_sampler.denoised_estimate = timed_estimate

    def preview(x0):
        t0 = time.perf_counter()
        image = decode(latent_grid(x0))
        preview_s[-1] += time.perf_counter() - t0
        t1 = time.perf_counter()
        image.save(BytesIO(), format="JPEG", quality=95)
        jpeg_s.append(time.perf_counter() - t1)
        images.append(image.size)

    run(None, SamplingOptions(steps=1))  # warm-up
    plain = run(None)
    with_preview = run(preview)
    step = statistics.median(plain)
    cost = statistics.median(preview_s)
    print(f"{args.size} UNet (random weights), {args.device}, {torch.get_num_threads()} threads, clip {options.clip_length}"
          f" frames, latent {h}x{h}, CFG {options.guidance}, {len(plain)} timed steps per run; previewer: {label}")
    print(f"step without previews: {step * 1e3:9.1f} ms (median)")
    print(f"step with previews:    {statistics.median(with_preview) * 1e3:9.1f} ms (median)")
    print(f"preview per step:      {cost * 1e3:9.2f} ms (estimate + grid + latent2rgb to a {images[0][0]}x{images[0][1]} "
          f"image) = {100 * cost / step:.2f} % of a step")
    print(f"JPEG encoding:         {statistics.median(jpeg_s) * 1e3:9.2f} ms (ComfyUI's server, when it sends the image)")


if __name__ == "__main__":
    main()
