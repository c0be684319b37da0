"""The paper's Table 1 protocol: animate sampled same- and cross-identity pairs of a VoxCeleb1-style
folder with chosen options, evaluate each, print a table in Table 1's columns.

Usage:
  python benchmarks/evaluation_protocol.py --vox DIR --weights W [--limit N] [--frames 32]
      [--steps 25] [--guidance 5] [--scheduler euler] [--clip-length 12] [--overlap 3]
      [--pose absolute] [--dtype float16] [--device cuda] [--seed 0] [--json FILE]
      [--out-dir D] [--ray local|auto|ADDRESS --workers N]

The animations run as one ``batch`` (mimaface_core.batch): each pair's source frame (PNG) and
driving frames (a PNG folder) are written under --out-dir, a manifest of animate jobs is built
there and run (networks loaded once; resumable: a rerun with the same --out-dir skips the pairs
already animated; with --ray on a cluster). The generated clips are then read back (H.264, as
animate writes them) and measured here, with FID pooled over every pair of a kind.

DIR: ROOT/<identity>/<video id>/<clip>.mp4 (the VoxCeleb1 test layout) or ROOT/<identity>/<clip>.mp4;
you provide the videos, nothing is downloaded. Pairs are sampled as
mimaface_core/evaluation/protocol.py documents (PIRenderer's protocol, seeded). Per pair: the
source is the first frame of the source clip, the driving frames are the next --frames frames of
the driving clip. Metrics are pooled over every frame of every pair of a kind; FID over all of a
kind's generated vs driving crops. Same-identity rows have PSNR/SSIM/LPIPS, cross-identity rows
do not (as Table 1). Metrics whose library or weights are missing are marked skipped, with why.

Paper, Table 1 (MIMAFace, VoxCeleb1, same-identity): PSNR 18.64, LPIPS 0.1907, Exp 2.21,
Pose 0.0195, Gaze 0.0482, CSIM 0.8412, FID 60.91. Its Exp/Pose/Gaze estimators are not named in
the paper; ours are the snapshot's D3DFR outputs, so absolute values are comparable only between
runs of this script.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mimaface_core.evaluation.protocol import find_clips, sample_pairs  # noqa: E402

COLUMNS = ("psnr", "ssim", "lpips", "exp", "pose", "gaze", "csim", "lmd", "fid")


def parse_args(argv=None):
    from mimaface_core.sampling.ica import CLIP_LENGTH, OVERLAP

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vox", required=True, type=Path, help="VoxCeleb1-style folder of test videos")
    p.add_argument("--weights", required=True, type=Path, help="the MIMAFace snapshot (with sd-vae-ft-mse)")
    p.add_argument("--limit", type=int, default=None, help="pairs of each kind (default: one per video)")
    p.add_argument("--frames", type=int, default=32, help="driving frames per pair")
    p.add_argument("--stride", type=int, default=1, help="keep every N-th driving frame")
    p.add_argument("--seed", type=int, default=0, help="seed of the pair sampling and of the sampler")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--guidance", type=float, default=5.0)
    p.add_argument("--scheduler", default="euler")
    p.add_argument("--clip-length", type=int, default=CLIP_LENGTH)
    p.add_argument("--overlap", type=int, default=OVERLAP)
    p.add_argument("--pose", choices=("absolute", "relative"), default="absolute")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, help="float32, float16 or bfloat16 (default: float16 on CUDA)")
    p.add_argument("--json", type=Path, default=None, help="write the table and every pair's means here")
    p.add_argument("--out-dir", type=Path, default=None, help="the pairs' frames, the manifest, the animations and the "
                   "batch state (default: a new temporary folder)")
    p.add_argument("--ray", default=None, help="run the animations on Ray: local, auto or a cluster address")
    p.add_argument("--workers", type=int, default=None, help="batch workers (Ray actors or local processes)")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    from PIL import Image

    from mimaface_core.batch import run_batch
    from mimaface_core.cli.checks import check_device
    from mimaface_core.evaluation.distribution import FIDAccumulator, fid_unavailable
    from mimaface_core.evaluation.evaluate import EvaluationOptions, evaluate_frames
    from mimaface_core.evaluation.face_measures import load_estimators
    from mimaface_core.media.video_in import iter_video_frames

    pairs = sample_pairs(find_clips(args.vox), args.limit, args.seed)
    device, _ = check_device(args.device, args.dtype)
    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="mimaface_protocol_"))
    jobs = write_pairs(pairs, out_dir, args)
    summary = run_batch(out_dir / "animate.jsonl", out_dir, defaults={"animate": _animate_defaults(args, device)},
                        ray=args.ray, workers=args.workers)
    estimators = load_estimators(args.weights, device)
    pooled = {kind: {c: [] for c in COLUMNS} for kind in ("same", "cross")}
    skipped: dict[str, str] = {}
    fid_reason = fid_unavailable()
    fids = {kind: (FIDAccumulator(device=device) if fid_reason is None else None) for kind in pooled}
    per_pair, start = [], time.perf_counter()
    for k, pair in enumerate(pairs):
        job = jobs.get(k)
        if job is None:
            print(f"pair {k}: {pair.driving.path.name} has a single frame; skipped")
            continue
        if summary.row(job["id"]).status not in ("done", "skipped"):
            print(f"pair {k}: the animation failed ({summary.row(job['id']).error}); skipped")
            continue
        source = Image.open(out_dir / job["source"]).convert("RGB")
        driving = [np.array(Image.open(f).convert("RGB")) for f in sorted((out_dir / job["driving"]).glob("*.png"))]
        generated = list(iter_video_frames(out_dir / job["out"]))
        fid = fids[pair.kind]
        on_crops = (lambda i, g, d, fid=fid: (fid.add(_unit(g), real=False), fid.add(_unit(d), real=True))) if fid else None
        result = evaluate_frames(lambda: iter(generated), lambda: iter(driving), estimators, source,
                                 EvaluationOptions(same_identity=pair.kind == "same", clip_length=args.clip_length,
                                                   overlap=args.overlap, fid=False, require_face=False),
                                 on_crops=on_crops)
        for c in COLUMNS[:-1]:
            m = result[c]
            if m.skipped:
                if pair.kind == "same" or c not in ("psnr", "ssim", "lpips"):
                    skipped.setdefault(c, m.skipped)
            else:
                pooled[pair.kind][c] += list(m.finite())
        per_pair.append({"kind": pair.kind, "source": str(pair.source.path.relative_to(args.vox)),
                         "driving": str(pair.driving.path.relative_to(args.vox)), "frames": len(driving),
                         **{c: result[c].mean for c in COLUMNS[:-1]}})
        print(f"pair {k + 1}/{len(pairs)} {pair.kind}: {per_pair[-1]['source']} <- {per_pair[-1]['driving']} "
              f"({len(driving)} frames, {time.perf_counter() - start:.0f} s)")
    table = {}
    for kind in ("same", "cross"):
        row = {c: (float(np.mean(v)) if v else None) for c, v in pooled[kind].items()}
        if kind == "cross":
            row.update(psnr=None, ssim=None, lpips=None)
        fid = fids[kind]
        try:
            row["fid"] = fid.value() if fid is not None else None
        except ValueError as exc:
            skipped.setdefault("fid", f"FID skipped: {exc}")
        table[kind] = row
    if fid_reason:
        skipped["fid"] = fid_reason
    print(format_table(table, skipped, len(pairs)))
    report = {"table": table, "skipped": skipped, "pairs": per_pair, "options": {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1))
    return report


def write_pairs(pairs, out_dir: Path, args) -> dict[int, dict]:
    """Each pair's source frame (``pairK/source.png``) and driving frames (``pairK/driving/``,
    the --frames frames after the first, every --stride-th) under ``out_dir``, and the manifest
    ``animate.jsonl`` of their animate jobs (paths relative to it). Returns {pair index: job}."""
    from PIL import Image

    from mimaface_core.media.video_in import iter_video_frames

    jobs = {}
    for k, pair in enumerate(pairs):
        folder = out_dir / f"pair{k}"
        driving = list(iter_video_frames(pair.driving.path, stride=args.stride, limit=args.frames + 1))[1:]
        if not driving:
            continue
        (folder / "driving").mkdir(parents=True, exist_ok=True)
        source = next(iter_video_frames(pair.source.path, limit=1))
        _save_unchanged(Image.fromarray(source), folder / "source.png")
        for i, frame in enumerate(driving):
            _save_unchanged(Image.fromarray(frame), folder / "driving" / f"{i:05d}.png")
        jobs[k] = {"id": f"pair{k}", "source": f"pair{k}/source.png", "driving": f"pair{k}/driving",
                   "out": f"pair{k}/generated.mp4", "steps": args.steps, "guidance": args.guidance,
                   "scheduler": args.scheduler, "seed": args.seed, "clip_length": args.clip_length,
                   "overlap": args.overlap, "pose": args.pose}
    (out_dir / "animate.jsonl").write_text("".join(json.dumps(j) + "\n" for j in jobs.values()))
    return jobs


def _save_unchanged(image, path: Path) -> None:
    """Write a PNG unless the same pixels are there (a rerun keeps the files and their times, so
    the batch skips the pairs already animated)."""
    from PIL import Image

    if path.exists():
        with Image.open(path) as old:
            if np.array_equal(np.array(old.convert("RGB")), np.array(image)):
                return
    image.save(path)


def _animate_defaults(args, device: str) -> list[str]:
    argv = ["--weights", str(args.weights), "--device", device]
    return argv + (["--dtype", args.dtype] if args.dtype else [])


def _unit(rgb):
    import torch

    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255


def format_table(table: dict, skipped: dict, pairs: int) -> str:
    """Table 1's columns (plus SSIM and LMD), one row per kind; '-' where not measured."""
    labels = {"psnr": "PSNR↑", "ssim": "SSIM↑", "lpips": "LPIPS↓", "exp": "Exp↓", "pose": "Pose↓", "gaze": "Gaze↓",
              "csim": "CSIM↑", "lmd": "LMD↓", "fid": "FID↓"}
    head = f"{'':<15}" + "".join(f"{labels[c]:>10}" for c in COLUMNS)
    rows = [head]
    for kind, name in (("same", "same-identity"), ("cross", "cross-identity")):
        cells = "".join(f"{'-':>10}" if table[kind][c] is None else f"{table[kind][c]:>10.4f}" for c in COLUMNS)
        rows.append(f"{name:<15}{cells}")
    rows.append(f"({pairs} pairs)")
    rows += [f"{labels[c]}: {why}" for c, why in skipped.items()]
    return "\n".join(rows)


if __name__ == "__main__":
    main()
