"""Several faces: time and peak memory of animating 1, 2 and 3 faces of a group photo with the
same driver (issue 18's goal: time linear in faces, memory flat in faces).

Usage: python benchmarks/faces_benchmark.py --weights FOLDER [--device cpu|cuda] [--frames 12]
       [--steps 2] [--clip-length 6] [--overlap 2]

The group photo is three real portraits side by side (example_media and tests/fixtures/media);
the driver is the two-person clip of the group workflow (example_media/driving_two_people.mp4),
track 0 driving every face (``--face-map all:0``), so only the number of faces changes. Each face
count runs in its own process (a fresh peak): the report gives seconds for the plan (detection,
tracks, motion) and for the animation, and peak memory (resident set on the CPU, allocated on
CUDA), then the ratios to one face. With ``--weights`` pointing at the tests' tiny layout (e.g. a
pytest basetemp's animate folder) it runs in a minute on a CPU; the ratios are what to read. Not
a test: a report for notes; compare figures from one run only.
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
sys.path.insert(0, str(ROOT))
PORTRAITS = (ROOT / "example_media/portrait_eileen_collins.jpg", ROOT / "example_media/driving_expression.jpg",
             ROOT / "tests/fixtures/media/chris_pratt_2018_387x512.jpg")
DRIVER = ROOT / "example_media/driving_two_people.mp4"


def group_of_three(height: int = 400):
    import numpy as np
    from PIL import Image

    parts = []
    for p in PORTRAITS:
        im = Image.open(p).convert("RGB")
        parts.append(np.asarray(im.resize((round(im.width * height / im.height), height), Image.LANCZOS)))
    return np.concatenate(parts, 1)


def one_run(args) -> dict:
    import torch

    from mimaface_core.face.detectors import make_detector
    from mimaface_core.group import FaceMap, iter_animate_faces, plan_faces
    from mimaface_core.media.video_in import iter_video_frames
    from mimaface_core.pipeline import AnimateOptions
    from mimaface_core.sampling import SamplingOptions
    from mimaface_core.weights.loader import load_mimaface

    torch.set_num_threads(args.threads)
    model = load_mimaface(args.weights, mode="video", device=args.device)
    detector = make_detector("mtcnn", device=model.device)
    photo = group_of_three()
    frames = list(iter_video_frames(DRIVER, limit=args.frames))
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    plan = plan_faces(photo, frames, detector, model.d3dfr, model.identity_encoder,
                      faces=list(range(args.faces)), face_map=FaceMap("all", 0))
    t1 = time.perf_counter()
    options = AnimateOptions(SamplingOptions(steps=args.steps, clip_length=args.clip_length, overlap=args.overlap))
    n = sum(len(c.frames) for c in iter_animate_faces(model, plan.sources, plan.drivers, photo, options))
    t2 = time.perf_counter()
    peak = (torch.cuda.max_memory_allocated() if args.device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"faces": len(plan.drivers), "frames": n, "plan_s": t1 - t0, "animate_s": t2 - t1, "peak_bytes": peak}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True, type=Path)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--clip-length", type=int, default=6)
    p.add_argument("--overlap", type=int, default=2)
    p.add_argument("--faces", type=int, default=None, help=argparse.SUPPRESS)  # one run, in a child process
    args = p.parse_args(argv)
    if args.faces is not None:
        print(json.dumps(one_run(args)))
        return
    rows = []
    for k in (1, 2, 3):
        out = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--faces", str(k)], check=True,
                             capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    what = "CUDA allocated" if args.device.startswith("cuda") else "peak RSS"
    print(f"device {args.device}, {rows[0]['frames']} frames, {args.steps} steps, clips of {args.clip_length}")
    print(f"faces  plan s  animate s  {what} MiB   animate ratio  memory ratio")
    for r in rows:
        print(f"{r['faces']:5d}  {r['plan_s']:6.1f}  {r['animate_s']:9.1f}  {r['peak_bytes'] / 2**20:12.0f}   "
              f"{r['animate_s'] / rows[0]['animate_s']:13.2f}  {r['peak_bytes'] / rows[0]['peak_bytes']:12.2f}")


if __name__ == "__main__":
    main()
