"""Time the z-buffer renderer on a BFM-sized synthetic mesh (35,709 vertices, 70,789 triangles).

Usage: python benchmarks/renderer_benchmark.py [--device cpu|cuda] [--threads N] [--batch 4] [--repeats 5]

The mesh is a regular grid bent into an elliptic dome placed in front of the camera like a BFM face
(about 60 % of the 256 image covered), with random vertex colours; each frame of the batch gets a
small random rotation and translation. Prints milliseconds per frame of ``render_mesh`` at 256 and
512 and of the whole render step (256 render + ``composite_512``). Not a test: a report for notes.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mimaface_core.morphable.rasterizer import composite_512, render_mesh  # noqa: E402
from mimaface_core.morphable.reconstruction import rotation_matrix  # noqa: E402

NUM_VERTICES = 35709
NUM_TRIANGLES = 70789
COLUMNS = 189


def synthetic_face(batch: int, device: str, seed: int = 0):
    """(vertices (B,V,3), colours (B,V,3) 0..255, faces (T,3)) of a face-sized dome.

    A 189-column grid of 35,709 vertices (last row partial) has 70,664 cell triangles; the other
    diagonal of the first 125 cells makes up 70,789 (overlapping pairs, as in a real mesh's folds).
    """
    gen = torch.Generator().manual_seed(seed)
    rows = math.ceil(NUM_VERTICES / COLUMNS)
    idx = torch.arange(rows * COLUMNS).reshape(rows, COLUMNS)
    a, b, c, d = idx[:-1, :-1].flatten(), idx[:-1, 1:].flatten(), idx[1:, :-1].flatten(), idx[1:, 1:].flatten()
    main = torch.cat([torch.stack([a, c, b], 1), torch.stack([b, c, d], 1)])
    main = main[(main < NUM_VERTICES).all(1)]
    extra = torch.stack([a, c, d], 1)[d < NUM_VERTICES][: NUM_TRIANGLES - len(main)]
    faces = torch.cat([main, extra])
    u = torch.linspace(-1, 1, COLUMNS).repeat(rows)[:NUM_VERTICES]
    v = torch.linspace(1, -1, rows).repeat_interleave(COLUMNS)[:NUM_VERTICES]
    x, y = u * (1 - v**2 / 2).sqrt(), v * (1 - u**2 / 2).sqrt()  # square → disc
    shape = torch.stack([0.85 * x, 1.05 * y, 0.6 * (1 - x**2 - y**2).clamp(min=0)], -1)
    angles = (torch.rand(batch, 3, generator=gen) - 0.5) * 0.3
    shift = torch.cat([(torch.rand(batch, 2, generator=gen) - 0.5) * 0.1, torch.zeros(batch, 1)], 1)
    verts = shape @ rotation_matrix(angles).transpose(1, 2) + shift[:, None]
    colors = torch.rand(batch, NUM_VERTICES, 3, generator=gen) * 255
    return verts.to(device), colors.to(device), faces.to(device)


def timed(fn, device: str, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


@torch.no_grad()
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    verts, colors, faces = synthetic_face(args.batch, args.device)
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu"
    print(f"device {args.device} ({name}), threads {args.threads}, torch {torch.__version__}, batch {args.batch}, "
          f"{verts.shape[1]} vertices, {len(faces)} triangles")
    m256_inv = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]], device=args.device)
    for size in (256, 512):
        _, mask = render_mesh(verts, colors, faces, size)
        sec = timed(lambda: render_mesh(verts, colors, faces, size), args.device, args.repeats)
        print(f"render_mesh {size}: {1000 * sec / args.batch:8.1f} ms/frame   (coverage {float(mask.mean()):.0%})")
    sec = timed(lambda: composite_512(*render_mesh(verts, colors, faces, 256), m256_inv), args.device, args.repeats)
    print(f"render 256 + composite_512: {1000 * sec / args.batch:8.1f} ms/frame")


if __name__ == "__main__":
    main()
