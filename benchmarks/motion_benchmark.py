"""Motion extraction frames per second on a real clip, and the renderer's milliseconds per frame.

Usage: python benchmarks/motion_benchmark.py [--device cpu|cuda] [--threads N] [--frames 30]
       [--clip tests/fixtures/media/<clip>.mp4]

Motion extraction runs our MTCNN and a full-size D3DFR (ResNet-50, random weights: speed does not
depend on the values) on the first ``--frames`` frames of a real clip, in the released first-frame
box mode and in the tracked mode; detection alone and D3DFR alone are timed too. The renderer is
timed on a BFM-sized synthetic mesh (35,709 vertices, 70,789 triangles) at 256 and 512, using
renderer_benchmark.py's mesh. Not a test: a report for notes; compare figures from one run only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from renderer_benchmark import synthetic_face, timed  # noqa: E402

from mimaface_core.face.align import warp_crop_512  # noqa: E402
from mimaface_core.face.mtcnn import MTCNNDetector  # noqa: E402
from mimaface_core.media.images import squash_to_512, to_signed_tensor  # noqa: E402
from mimaface_core.media.video_in import iter_video_frames  # noqa: E402
from mimaface_core.morphable.d3dfr import D3DFRRegressor  # noqa: E402
from mimaface_core.morphable.rasterizer import composite_512, render_mesh  # noqa: E402
from mimaface_core.motion.extract import extract_motion, regress_coefficients  # noqa: E402

DEFAULT_CLIP = ROOT / "tests" / "fixtures" / "media" / "openmpf_video_01_talking_640x480_3s.mp4"


def _sync(device: str):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--batch", type=int, default=4, help="frames per renderer call")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dev = args.device
    name = torch.cuda.get_device_name(dev) if dev.startswith("cuda") else "cpu"
    print(f"device {dev} ({name}), threads {args.threads}, torch {torch.__version__}")

    frames = list(iter_video_frames(args.clip, limit=args.frames))
    h, w = frames[0].shape[:2]
    print(f"clip {args.clip.name}: {len(frames)} frames of {w}x{h}")
    mtcnn = MTCNNDetector(device=dev)
    d3dfr = D3DFRRegressor().eval().to(dev)

    squashed = [squash_to_512(f) for f in frames]
    mtcnn.detect(squashed[0])
    t0 = time.perf_counter()
    for s in squashed:
        mtcnn.detect(s)
    _sync(dev)
    det = (time.perf_counter() - t0) / len(squashed)
    print(f"MTCNN on a 512x512 frame: {1000 * det:8.1f} ms/frame")

    crops = torch.cat([to_signed_tensor(warp_crop_512(s, torch.eye(2, 3, dtype=torch.float64).numpy())) for s in squashed[:8]])
    m256 = torch.tensor([[0.5, 0, 0], [0, 0.5, 0]]).expand(len(crops), 2, 3)
    sec = timed(lambda: regress_coefficients(d3dfr, crops, m256), dev, 3)
    print(f"D3DFR (batch {len(crops)}):        {1000 * sec / len(crops):8.1f} ms/frame")

    for mode in ("first_frame", "tracked"):
        t0 = time.perf_counter()
        seq = extract_motion(frames, mtcnn, d3dfr, box_mode=mode)
        _sync(dev)
        sec = time.perf_counter() - t0
        print(f"extract_motion {mode:11s}: {len(frames) / sec:8.2f} frames/s  ({seq.missing_count} frames without a face)")

    verts, colors, faces = synthetic_face(args.batch, dev)
    print(f"renderer: {verts.shape[1]} vertices, {len(faces)} triangles, batch {args.batch}")
    for size in (256, 512):
        sec = timed(lambda: render_mesh(verts, colors, faces, size), dev, 3)
        print(f"render_mesh {size}:           {1000 * sec / args.batch:8.1f} ms/frame")
    m256_inv = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]], device=dev)
    sec = timed(lambda: composite_512(*render_mesh(verts, colors, faces, 256), m256_inv), dev, 3)
    print(f"render 256 + composite_512:{1000 * sec / args.batch:8.1f} ms/frame")


if __name__ == "__main__":
    with torch.inference_mode():
        main()
