"""Speed, memory and quality of the sampling presets against ``exact`` (issue 24).

Usage: python benchmarks/speed_presets.py [--weights SNAPSHOT | --random-size tiny|reduced|full]
       [--snapshot-dir DIR] [--device cpu|cuda] [--dtype float32|float16] [--frames 24]
       [--repeats 2] [--presets exact,balanced,fast,draft] [--compile] [--channels-last]
       [--json OUT.json] [--source IMAGE] [--driving VIDEO]

The job is the pack's own animation (``pipeline.iter_animate``: render, VAE encode, MIA, the ICA clip
sampler, VAE decode) of ``--frames`` frames of the driving video at 512x512 output. The source is
encoded and the driver's motion extracted once, before any timing (they do not depend on the preset).
Every repetition runs exact and each preset once, round-robin in one process (after one untimed
warm-up run), so that the machine's drift affects them alike. Printed per preset: UNet passes per
output frame (the sampler's own count, in full-UNet-pass units), median seconds per output frame and
its ratio to exact, median time to the first output frame, and peak memory (CUDA:
``torch.cuda.max_memory_allocated`` per run; CPU: the process's peak RSS ``VmHWM``, reset before each
run through ``/proc/self/clear_refs`` where Linux allows it, else the peak of the whole process).

Without ``--weights`` the model is a random-weight snapshot (``benchmarks/random_snapshot.py``; written
into ``--snapshot-dir`` or a temporary folder) and the quality line reads "quality: needs the released
weights". With ``--weights`` (the released snapshot) it also prints each preset's quality: PSNR and
LPIPS of its frames to exact's frames (torchmetrics, as ``mimaface_core.evaluation``), and Exp, Pose,
Gaze error and CSIM against the driver and the source (``evaluation.evaluate_frames``).
Not a test; figures depend on the machine and on its load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
QUALITY_MISSING = "quality: needs the released weights"


# --- what the presets module offers (mimaface_core.sampling.presets) ---


def preset_names() -> list[str]:
    """The preset names of ``mimaface_core.sampling.presets``, exact first."""
    from mimaface_core.sampling.presets import PRESET_NAMES

    return ["exact"] + [n for n in PRESET_NAMES if n != "exact"]


def preset_options(name: str, **extra):
    """The SamplingOptions of preset ``name`` (``extra``: compile / channels_last). Raises ValueError
    for an unknown preset (the message lists them)."""
    from mimaface_core.sampling import SamplingOptions

    return SamplingOptions(preset=name, **extra)


# --- peak memory ---


def _reset_peak(device: torch.device) -> bool:
    """Reset the peak-memory counter; True when a per-run peak will be read (else a process peak)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return True
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux)
        return True
    except OSError:
        return False


def _peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- one run ---


def run_once(model, source, motion, options, device: torch.device) -> dict:
    """Animate once; time, first-frame time, peak memory, UNet passes per output frame (the sampler's
    ``SamplingStats``) and the frames (uint8, CPU)."""
    import numpy as np

    from mimaface_core.pipeline import iter_animate, to_uint8
    from mimaface_core.sampling.cost import SamplingStats

    per_run_peak = _reset_peak(device)
    stats = SamplingStats()
    t0 = time.perf_counter()
    first = None
    frames = []
    for chunk in iter_animate(model, source, motion, options, stats=stats):
        if first is None:
            if device.type == "cuda":
                torch.cuda.synchronize()
            first = time.perf_counter() - t0
        frames.append(to_uint8(chunk))
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return dict(seconds=seconds, first=first, peak=_peak_mib(device), per_run_peak=per_run_peak,
                frames=np.concatenate(frames), passes=stats.passes_per_output_frame)


# --- quality (released weights only) ---


def quality(model, weights: Path, source_image, driving_frames, exact_frames, frames, device) -> dict:
    """PSNR and LPIPS to exact's frames; Exp, Pose, Gaze and CSIM from ``evaluate_frames``."""
    from mimaface_core.evaluation.evaluate import EvaluationOptions, evaluate_frames
    from mimaface_core.evaluation.face_measures import Estimators
    from mimaface_core.evaluation.pixel_metrics import LPIPS, lpips_unavailable, psnr
    from mimaface_core.face.detectors import make_detector

    def unit(a):
        return torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255

    out = {"psnr": statistics.fmean(psnr(unit(g), unit(e)) for g, e in zip(frames, exact_frames))}
    if lpips_unavailable() is None:
        lp = LPIPS("cpu")
        out["lpips"] = statistics.fmean(lp(unit(g), unit(e)) for g, e in zip(frames, exact_frames))
    estimators = Estimators(make_detector("mtcnn", device=device), model.d3dfr, model.identity_encoder, device)
    result = evaluate_frames(lambda: iter(frames), lambda: iter(driving_frames), estimators, source=source_image,
                             options=EvaluationOptions(lpips=False, fid=False, require_face=False))
    for name in ("exp", "pose", "gaze", "csim"):
        out[name] = result[name].mean()
    return out


# --- main ---


def _snapshot(args) -> tuple[Path, str]:
    if args.weights is not None:
        return args.weights, f"released snapshot {args.weights.name}"
    from random_snapshot import describe, write_random_snapshot

    folder = args.snapshot_dir or Path(tempfile.mkdtemp(prefix="mimaface-random-"))
    if not (folder / "checkpoints" / "video" / "3dunet.pth").is_file():
        write_random_snapshot(folder, args.random_size, log=lambda *_: None)
    return folder, describe(args.random_size)


def _fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, default=None, help="the released snapshot (enables the quality figures)")
    p.add_argument("--random-size", choices=("tiny", "reduced", "full"), default="reduced",
                   help="size of the random snapshot used without --weights")
    p.add_argument("--snapshot-dir", type=Path, default=None, help="where the random snapshot is (or is written)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default=None,
                   help="default: float16 on CUDA, float32 on the CPU")
    p.add_argument("--frames", type=int, default=24, help="driving frames = output frames")
    p.add_argument("--repeats", type=int, default=2, help="round-robin repetitions (median reported)")
    p.add_argument("--presets", default=None, help="comma-separated, default: every preset (exact first)")
    p.add_argument("--compile", action="store_true", help="torch.compile the UNet (SamplingOptions.compile)")
    p.add_argument("--channels-last", action="store_true", help="channels_last UNet (SamplingOptions.channels_last)")
    p.add_argument("--json", type=Path, default=None, help="also write the table's rows here (gpu_suite.sh)")
    p.add_argument("--source", type=Path, default=ROOT / "example_media" / "portrait_eileen_collins.jpg")
    p.add_argument("--driving", type=Path, default=ROOT / "example_media" / "driving_talking.mp4")
    args = p.parse_args()
    if args.frames < 1 or args.repeats < 1:
        p.error("--frames and --repeats must be at least 1")
    names = preset_names() if args.presets is None else args.presets.split(",")
    if names[0] != "exact":
        names = ["exact"] + [n for n in names if n != "exact"]
    from PIL import Image

    from mimaface_core.face.detectors import make_detector
    from mimaface_core.media.video_in import iter_video_frames
    from mimaface_core.motion.extract import encode_source, extract_motion
    from mimaface_core.pipeline import AnimateOptions
    from mimaface_core.weights.loader import load_mimaface

    device = torch.device(args.device)
    dtype = args.dtype or ("float16" if device.type == "cuda" else "float32")
    extra = dict(compile=args.compile, channels_last=args.channels_last)
    if args.compile:
        from mimaface_core.sampling.compile import check_compile

        check_compile(device, "--compile")
    try:
        options = {n: AnimateOptions(sampling=preset_options(n, **extra)) for n in names}
    except ValueError as exc:
        p.error(f"--presets: {exc}")
    folder, what = _snapshot(args)
    model = load_mimaface(folder, "video", device=device, dtype=dtype)
    detector = make_detector("mtcnn", device=model.device)
    source_image = Image.open(args.source).convert("RGB")
    driving = list(iter_video_frames(args.driving, limit=args.frames))
    source = encode_source(source_image, detector, model.d3dfr, model.identity_encoder)
    motion = extract_motion(driving, detector, model.d3dfr)
    setup = (f"{what}; {device.type} {dtype}; {len(driving)} frames at 512x512; {args.repeats} interleaved "
             f"repetition(s) of {', '.join(names)}" + ("; compiled UNet" if args.compile else "")
             + ("; channels_last" if args.channels_last else ""))
    print(setup)
    run_once(model, source, motion, options[names[-1]], device)  # warm-up: lazy set-up, compilation
    runs = {n: [] for n in names}
    for rep in range(args.repeats):
        for n in names:
            runs[n].append(run_once(model, source, motion, options[n], device))
            print(f"  repetition {rep + 1}: {n} {runs[n][-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
    exact_spf = statistics.median(r["seconds"] for r in runs["exact"]) / len(driving)
    peak_kind = "CUDA max allocated" if device.type == "cuda" else (
        "RSS peak per run" if all(r["per_run_peak"] for rs in runs.values() for r in rs) else "RSS peak of the process")
    print(f"{'preset':9s} {'passes/frame':>12s} {'s/frame':>9s} {'x exact':>8s} {'first frame s':>13s} "
          f"{'peak MiB':>9s}  ({peak_kind})")
    rows = []
    for n in names:
        spf = statistics.median(r["seconds"] for r in runs[n]) / len(driving)
        rows.append(dict(preset=n, passes=runs[n][0]["passes"], seconds_per_frame=spf, ratio=spf / exact_spf,
                         first_frame_s=statistics.median(r["first"] for r in runs[n]),
                         peak_mib=max(r["peak"] for r in runs[n])))
        r = rows[-1]
        print(f"{n:9s} {_fmt(r['passes'], '12.1f')} {spf:9.3f} {r['ratio']:8.2f} {r['first_frame_s']:13.2f} "
              f"{r['peak_mib']:9.0f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"setup": setup, "peak": peak_kind, "rows": rows}, indent=1))
    if args.weights is None:
        print(QUALITY_MISSING)
        return
    exact_frames = runs["exact"][0]["frames"]
    print(f"{'preset':9s} {'PSNR→exact':>10s} {'LPIPS→exact':>11s} {'Exp':>7s} {'Pose':>7s} {'Gaze':>7s} {'CSIM':>6s}")
    for n in names:
        q = quality(model, args.weights, source_image, driving, exact_frames, runs[n][0]["frames"], model.device)
        print(f"{n:9s} {_fmt(q.get('psnr'), '10.2f')} {_fmt(q.get('lpips'), '11.4f')} {_fmt(q['exp'], '7.3f')} "
              f"{_fmt(q['pose'], '7.3f')} {_fmt(q['gaze'], '7.3f')} {_fmt(q['csim'], '6.3f')}")


if __name__ == "__main__":
    main()
