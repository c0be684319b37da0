"""One batch of 6 short jobs vs the same 6 as separate ``animate`` processes: the wall time of
each way, their ratio (the networks loaded once vs six times, and Python and torch started once
vs six times), and jobs per hour on this machine.

Usage:
  python benchmarks/batch_benchmark.py --weights W [--device cuda] [--limit 8] [--steps 4]
  python benchmarks/batch_benchmark.py --tiny          # the test suite's tiny weights (CPU)

The 6 jobs animate example_media/portrait_eileen_collins.jpg with example_media's driving clips
(``--limit`` frames each, ``--steps`` steps). With ``--tiny`` the weights are the tests'
regenerated tiny recipe (tests/official_tiny.py, a tiny VAE as tests/conftest.py makes), so the
figures measure what a batch saves around the networks, not real inference speed. Each way runs
as a fresh process (the batch as ``python -m mimaface_core batch``), one after the other.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "example_media"


def tiny_weights(folder: Path) -> Path:
    """The test suite's tiny released layout with a tiny VAE in ``sd-vae-ft-mse``."""
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    import torch
    from diffusers import AutoencoderKL

    import official_tiny
    from conftest import TINY_VAE_32X

    official_tiny.write_released_layout(folder)
    torch.manual_seed(5)
    AutoencoderKL(**TINY_VAE_32X).save_pretrained(folder / "sd-vae-ft-mse")
    return folder


def jobs(limit: int, steps: int) -> list[dict]:
    # one driver for every job (the two-people clip's first frames have no single face in the first-frame box)
    driver = EXAMPLES / "driving_talking.mp4"
    return [{"id": f"job{k}", "source": str(EXAMPLES / "portrait_eileen_collins.jpg"), "driving": str(driver),
             "limit": limit, "steps": steps, "clip_length": min(limit, 12), "overlap": min(3, limit - 1),
             "seed": k, "out": f"job{k}.mp4"} for k in range(6)]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, default=None, help="a MIMAFace snapshot (with sd-vae-ft-mse)")
    p.add_argument("--tiny", action="store_true", help="regenerate the test suite's tiny weights and use them")
    p.add_argument("--device", default="cpu")
    p.add_argument("--limit", type=int, default=4, help="driving frames per job")
    p.add_argument("--steps", type=int, default=2, help="denoising steps")
    args = p.parse_args(argv)
    if (args.weights is None) == (not args.tiny):
        p.error("give --weights W or --tiny")
    work = Path(tempfile.mkdtemp(prefix="mimaface_batch_bench_"))
    weights = tiny_weights(work / "weights") if args.tiny else args.weights
    todo = jobs(args.limit, args.steps)
    manifest = work / "jobs.jsonl"
    manifest.write_text("".join(json.dumps(j) + "\n" for j in todo))
    common = ["--weights", str(weights), "--device", args.device]

    start = time.perf_counter()
    for job in todo:
        cmd = [sys.executable, "-m", "mimaface_core", "animate", "--out", str(work / "solo" / job["out"]), *common]
        for key, value in job.items():
            if key not in ("id", "out"):
                cmd += ["--" + key.replace("_", "-"), str(value)]
        subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
    separate = time.perf_counter() - start

    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mimaface_core", "batch", str(manifest), "--out-dir", str(work / "batch"),
                    "--workers", "1", *common], check=True, cwd=ROOT, capture_output=True)
    batch = time.perf_counter() - start
    figures = {"jobs": len(todo), "separate_s": round(separate, 1), "batch_s": round(batch, 1),
               "ratio": round(separate / batch, 2), "jobs_per_hour_batch": round(len(todo) / batch * 3600),
               "jobs_per_hour_separate": round(len(todo) / separate * 3600), "device": args.device,
               "weights": "tiny" if args.tiny else str(weights), "limit": args.limit, "steps": args.steps}
    print(f"6 jobs: separate animate processes {separate:.1f} s, one batch {batch:.1f} s "
          f"(ratio {separate / batch:.2f}x); {figures['jobs_per_hour_batch']} jobs/hour in a batch, "
          f"{figures['jobs_per_hour_separate']} as separate processes ({args.device}, "
          f"{'tiny weights' if args.tiny else weights}, {args.limit} frames, {args.steps} steps)")
    return figures


if __name__ == "__main__":
    main()
