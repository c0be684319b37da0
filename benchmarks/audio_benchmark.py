"""Time and memory of audio driving (speech → SadTalker coefficients → MotionSequence) for a short
and a 10× longer recording.

Usage: python benchmarks/audio_benchmark.py [--minutes 1] [--device cpu|cuda]

Each length runs in its own subprocess: the talking clip's sound (example_media/driving_talking.mp4,
44.1 kHz stereo AAC) repeated to N and 10·N minutes and written as a 44.1 kHz stereo FLAC, then
decoded (PyAV, resampled to 16 kHz mono), turned into the mel, and run through Audio2Exp and
Audio2Pose with random weights (the official architecture; speed does not depend on the values) into
a MotionSequence. Prints seconds per stage, frames per second of audio processing and the process's
peak RSS above the baseline after imports. Memory should grow only by the 16 kHz samples, the mel
and the coefficients (about 0.12 MB per second of audio), never by whole-file float64 copies or the
complex STFT. Not a test; compare figures of one run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TALKING = ROOT / "example_media" / "driving_talking.mp4"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _write_long_flac(path: Path, seconds: float) -> None:
    import av
    import numpy as np

    with av.open(str(TALKING)) as c:
        rate = c.streams.audio[0].codec_context.sample_rate
        to_float = av.AudioResampler(format="fltp")
        clip = np.concatenate([f.to_ndarray() for fr in c.decode(audio=0) for f in to_float.resample(fr)], 1)
    total = int(seconds * rate)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("flac", rate=rate, layout="stereo")
        to_s16 = av.AudioResampler(format="s16", layout="stereo", rate=rate)
        done = 0
        while done < total:  # one clip at a time: the writer itself stays small
            n = min(clip.shape[1], total - done)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(clip[:, :n], np.float32), format="fltp",
                                               layout="stereo")
            frame.sample_rate, frame.pts = rate, done
            for f in to_s16.resample(frame):
                out.mux(stream.encode(f))
            done += n
        out.mux(stream.encode())


def worker(seconds: float, device: str) -> dict:
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT))
    from mimaface_core.audio import AudioMotionOptions, audio_motion, load_audio
    from mimaface_core.audio.audio2exp import Audio2ExpNet
    from mimaface_core.audio.audio2pose import Audio2PoseNet
    from mimaface_core.audio.weights import AudioNetworks
    from mimaface_core.motion.sequence import MotionSequence

    torch.set_grad_enabled(False)
    with tempfile.TemporaryDirectory() as tmp:
        flac = Path(tmp) / "speech.flac"
        _write_long_flac(flac, seconds)
        torch.manual_seed(0)
        nets = AudioNetworks(Audio2ExpNet().eval(), Audio2PoseNet().drop_training_parts().eval()).to(device)
        eye = np.array([[[1.0, 0, 0], [0, 1.0, 0]]])
        source = MotionSequence(torch.zeros(1, 261), eye, eye.copy(), eye.copy(), np.ones(1, np.float32),
                                np.zeros(1, bool), (512, 512), None, {}, "original")
        base = _rss_mb()
        t0 = time.perf_counter()
        speech = load_audio(flac)
        t1 = time.perf_counter()
        after_decode = _rss_mb()
        motion = audio_motion(source, speech, nets, AudioMotionOptions(seed=0))
        t2 = time.perf_counter()
        return {"seconds_audio": round(speech.duration, 1), "frames": len(motion), "decode_s": round(t1 - t0, 2),
                "motion_s": round(t2 - t1, 2), "frames_per_s": round(len(motion) / (t2 - t1), 1),
                "peak_rss_above_baseline_mb": round(_rss_mb() - base, 1),
                "rss_after_decode_mb": round(after_decode - base, 1), "device": device}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=1.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--worker", type=float, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.device)))
        return
    rows = []
    for seconds in (args.minutes * 60, args.minutes * 600):
        out = subprocess.run([sys.executable, __file__, "--worker", str(seconds), "--device", args.device],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    keys = list(rows[0])
    print(" | ".join(keys))
    for r in rows:
        print(" | ".join(str(r[k]) for k in keys))
    a, b = rows
    print(f"10x the audio: {b['motion_s'] / a['motion_s']:.1f}x the time, "
          f"{b['peak_rss_above_baseline_mb'] / max(a['peak_rss_above_baseline_mb'], 1e-3):.1f}x the memory above baseline "
          f"({b['peak_rss_above_baseline_mb'] - a['peak_rss_above_baseline_mb']:.0f} MB more for "
          f"{b['seconds_audio'] - a['seconds_audio']:.0f} s more audio)")


if __name__ == "__main__":
    main()
