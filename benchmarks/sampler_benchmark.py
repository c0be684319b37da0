"""Time and memory of the ICA clip sampler for N and 4N frames, tiny and full-size video UNet.

Usage: python benchmarks/sampler_benchmark.py [--device cpu|cuda] [--frames 12] [--steps 2]
       [--latent 16] [--sizes tiny,full] [--dtype float32|float16]

Each (size, frame count) runs in its own subprocess with random weights (speed and memory do not
depend on the values): the tiny UNet is official_tiny's architecture, the full-size one the
released SD1.5 + AnimateDiff v3 architecture (docs/WEIGHTS.md §4–§5). Render latents and contexts are
random; the loop, CFG and ICA are the real ones (``sample_video``). Prints seconds per denoising
step, UNet forward calls and frame evaluations per output frame, output frames per second and the
peak memory (process RSS on CPU, allocated memory on CUDA). Not a test; compare figures of one run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "tiny": ROOT / "tests" / "fixtures" / "official_tiny" / "weights" / "image_pretrained_unet.json",
    "full": ROOT / "tests" / "fixtures" / "manifests" / "pretrained_unet_config.json",
}


def _config(size: str) -> dict:
    data = json.loads(CONFIGS[size].read_text())
    return data.get("config_json", data)


def worker(args) -> dict:
    import torch

    sys.path.insert(0, str(ROOT))
    from mimaface_core.networks.denoiser import build_unet3d
    from mimaface_core.sampling import SamplingOptions, plan_clips, sample_video

    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    unet = build_unet3d(_config(args.size), device=args.device).to(dtype).eval()
    options = SamplingOptions(steps=args.steps)
    n, h = args.frames, args.latent
    width = unet.config.cross_attention_dim

    def clip_inputs(clip):
        g = torch.Generator().manual_seed(clip.index)
        return torch.randn(len(clip.frames), 4, h, h, generator=g), torch.randn(1, 264, width, generator=g)

    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    steps = []
    t0 = time.perf_counter()
    out = 0
    for clip, latents in sample_video(unet, n, clip_inputs, options, on_step=lambda d, t: steps.append(d)):
        out += len(clip.keep)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sec = time.perf_counter() - t0
    clips = plan_clips(n, options.clip_length, options.overlap, options.skip_unused_clips)
    calls = len(clips) * options.steps
    return dict(size=args.size, frames=n, out=out, clips=len(clips), sec=sec, sec_per_step=sec / len(steps),
                calls_per_frame=calls / out, frame_evals_per_frame=calls * 2 * options.clip_length / out,
                fps=out / sec, peak_mib=peak)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--frames", type=int, default=12, help="N (the second run uses 4N)")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--latent", type=int, default=16, help="latent size (16 = 128x128 pixels)")
    p.add_argument("--sizes", default="tiny,full")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--size", default="tiny", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    print(f"device {args.device}, dtype {args.dtype}, {args.steps} steps, latent {args.latent}x{args.latent}, "
          "CFG 5.0, clip 12, overlap 3")
    print(f"{'UNet':5s} {'frames':>6s} {'clips':>5s} {'s/step':>8s} {'calls/frame':>11s} {'evals/frame':>11s} "
          f"{'frames/s':>9s} {'peak MiB':>9s}")
    for size in args.sizes.split(","):
        for n in (args.frames, 4 * args.frames):
            cmd = [sys.executable, __file__, "--worker", "--size", size, "--frames", str(n), "--steps", str(args.steps),
                   "--latent", str(args.latent), "--device", args.device, "--dtype", args.dtype]
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            print(f"{size:5s} {r['frames']:6d} {r['clips']:5d} {r['sec_per_step']:8.3f} {r['calls_per_frame']:11.2f} "
                  f"{r['frame_evals_per_frame']:11.1f} {r['fps']:9.3f} {r['peak_mib']:9.0f}")


if __name__ == "__main__":
    main()
