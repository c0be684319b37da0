"""Seconds per UNet call of the video UNet: eager, channels_last, torch.compile, and both (issue 24).

Usage: python benchmarks/compile_benchmark.py [--snapshot DIR | --random-size tiny|reduced|full]
       [--device cpu|cuda] [--dtype float32|float16] [--frames 12] [--latent 32] [--repeats 5]
       [--modes eager,channels_last,compile,compile+channels_last]

Each mode gets its own copy of the UNet of the snapshot (a random one from
``benchmarks/random_snapshot.py`` when no ``--snapshot`` is given), prepared by
``mimaface_core.sampling.compile.prepare_unet`` exactly as ``--compile`` / ``--channels-last`` do.
The first call of each mode is timed apart (for compile it includes the compilation); then the
modes run round-robin ``--repeats`` times, one batched CFG call each ((2, 13, F, h, h) sample,
(2, 264, 768) context), and the median is printed with its ratio to eager. Not a test.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
MODES = ("eager", "channels_last", "compile", "compile+channels_last")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--snapshot", type=Path, default=None)
    p.add_argument("--random-size", choices=("tiny", "reduced", "full"), default="reduced")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default=None, help="default: float16 on CUDA, float32 on the CPU")
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--latent", type=int, default=32, help="latent size (64 = 512x512 pixels)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--modes", default=",".join(MODES))
    args = p.parse_args()
    from mimaface_core.networks.denoiser import predict_noise
    from mimaface_core.sampling.compile import prepare_unet
    from mimaface_core.weights.layout import ReleasedLayout
    from mimaface_core.weights.unet import load_denoiser

    folder = args.snapshot
    if folder is None:
        from random_snapshot import write_random_snapshot

        folder = Path(tempfile.mkdtemp(prefix="mimaface-random-"))
        write_random_snapshot(folder, args.random_size, vae=False, log=lambda *_: None)
    dtype = getattr(torch, args.dtype or ("float16" if args.device.startswith("cuda") else "float32"))
    base = load_denoiser(ReleasedLayout(folder), "video", args.device, dtype)
    g = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 13, args.frames, args.latent, args.latent, generator=g).to(args.device, dtype)
    context = torch.randn(2, 264, 768, generator=g).to(args.device, dtype)

    def call(unet):
        with torch.inference_mode():
            out = predict_noise(unet, sample, torch.tensor(500.0), context)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return out

    modes = args.modes.split(",")
    unets, first, reference = {}, {}, None
    for mode in modes:
        unet = copy.deepcopy(base)
        prepare_unet(unet, compile="compile" in mode, channels_last="channels_last" in mode)
        t0 = time.perf_counter()
        out = call(unet)
        first[mode] = time.perf_counter() - t0
        reference = out if reference is None else reference
        err = float((out.float() - reference.float()).abs().max())
        print(f"{mode:22s} first call {first[mode]:8.2f} s; max |difference to {modes[0]}| {err:.2e}", flush=True)
        unets[mode] = unet
    times = {m: [] for m in modes}
    for _ in range(args.repeats):
        for mode in modes:
            t0 = time.perf_counter()
            call(unets[mode])
            times[mode].append(time.perf_counter() - t0)
    print(f"{args.device} {dtype}, video UNet of {folder.name} "
          f"({'/'.join(map(str, base.config.block_out_channels))}), sample (2, 13, {args.frames}, {args.latent}, "
          f"{args.latent}), {args.repeats} interleaved repetitions, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    eager = statistics.median(times[modes[0]])
    for mode in modes:
        med = statistics.median(times[mode])
        print(f"{mode:22s} {med:8.3f} s per call  x{med / eager:5.2f} of {modes[0]}  "
              f"(min {min(times[mode]):.3f}, max {max(times[mode]):.3f})")


if __name__ == "__main__":
    main()
