"""How far the MediaPipe (BlazeFace) 512 crop lies from the released MTCNN crop, over every face of
the fixture media and example_media, and a least-squares refit of the BlazeFace → MTCNN box offsets.

Usage: python benchmarks/mediapipe_crop_error.py [FOLDER ...]
    (default: tests/fixtures/media and example_media; photos at their size, every 10th video frame)

For each image, MTCNN (our port of the release, parity-tested in tests/test_alignment_fixture.py)
gives the reference boxes; each MTCNN face is paired with the BlazeFace face of largest overlap
(IoU >= 0.3). Per face: the M512 centre error (px at 512: how far the BlazeFace crop puts the
point the reference crop centres) and the scale ratio − 1 (alignment_fixture.m512_errors, the
quantities tests/test_mediapipe_detector.py checks). Prints the distribution with the current
offsets (mediapipe_detector.BLAZE_BOX_OFFSETS), the least-squares offsets fitted on all faces, and
a two-fold check (fit on half the sources, measure on the other half). Not a test: a report.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from alignment_fixture import m512_errors  # noqa: E402

from mimaface_core.face import mediapipe_detector as mpd  # noqa: E402
from mimaface_core.face.crops import box_crop_matrix  # noqa: E402

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv"}
FRAME_STEP = 10


def images(folders):
    """(source name, (H, W, 3) uint8 RGB) of every photo at its size, and every 10th frame of every
    video squashed to 512x512 as the video recipe detects on it (docs/ALIGNMENT.md §6.2)."""
    from mimaface_core.media.images import load_image, squash_to_512
    from mimaface_core.media.video_in import iter_video_frames

    for folder in folders:
        for path in sorted(Path(folder).iterdir()):
            if path.suffix.lower() in PHOTO_SUFFIXES:
                yield path.name, np.asarray(load_image(path).convert("RGB"))
            elif path.suffix.lower() in VIDEO_SUFFIXES:
                for i, frame in enumerate(iter_video_frames(path, FRAME_STEP)):
                    yield f"{path.name}#{i * FRAME_STEP}", squash_to_512(frame)


def raw_xywh(box) -> np.ndarray:
    """The BlazeFace (x, y, w, h) a mapped box came from (inverts blazeface_to_mtcnn's box)."""
    ox1, oy1, ox2, oy2 = mpd.BLAZE_BOX_OFFSETS
    x1, y1, x2, y2 = box
    w, h = (x2 - x1) / (1 + ox2 - ox1), (y2 - y1) / (1 + oy2 - oy1)
    return np.array([x1 - ox1 * w, y1 - oy1 * h, w, h])


def mapped(xywh, offsets) -> np.ndarray:
    x, y, w, h = xywh
    ox1, oy1, ox2, oy2 = offsets
    return np.array([x + ox1 * w, y + oy1 * h, x + w + ox2 * w, y + h + oy2 * h])


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def fit(pairs) -> tuple[float, float, float, float]:
    """Least-squares offsets: each box side's offset, as a fraction of the BlazeFace width/height."""
    x, y, w, h = np.array([p[1] for p in pairs]).T
    t = np.array([p[2] for p in pairs])
    return (float(np.mean((t[:, 0] - x) / w)), float(np.mean((t[:, 1] - y) / h)),
            float(np.mean((t[:, 2] - x - w) / w)), float(np.mean((t[:, 3] - y - h) / h)))


def errors(pairs, offsets) -> np.ndarray:
    """(N, 2): centre error px at 512, scale ratio − 1."""
    out = []
    for _, xywh, ref in pairs:
        scale, centre = m512_errors(box_crop_matrix(mapped(xywh, offsets)), box_crop_matrix(ref))
        out.append((centre, scale))
    return np.array(out)


def describe(name, e) -> None:
    c, s = e[:, 0], np.abs(e[:, 1])
    q = lambda x, p: float(np.percentile(x, p))  # noqa: E731
    print(f"{name:34s} centre px: median {q(c, 50):5.1f}  p90 {q(c, 90):5.1f}  p95 {q(c, 95):5.1f}  max {c.max():5.1f}"
          f"   |scale-1| %: median {100 * q(s, 50):4.1f}  p90 {100 * q(s, 90):4.1f}  max {100 * s.max():4.1f}"
          f"   (scale-1 mean {100 * e[:, 1].mean():+.1f}%)")


def main(argv: list[str]) -> None:
    from mimaface_core.face.mtcnn import MTCNNDetector

    folders = argv or [ROOT / "tests" / "fixtures" / "media", ROOT / "example_media"]
    mtcnn = MTCNNDetector()
    blaze = mpd.MediaPipeDetector(ROOT / "tests" / "fixtures" / "mediapipe", allow_download=False).load()
    pairs, unmatched, sources, missed = [], 0, [], {}
    for name, rgb in images(folders):
        ref = mtcnn.detect(rgb)
        ours = blaze.detect(rgb)
        source = name.split("#")[0]
        for box in ref.boxes:
            scores = [iou(box, b) for b in ours.boxes]
            if not scores or max(scores) < 0.3:
                unmatched += 1
                side = float(max(box[2] - box[0], box[3] - box[1]))
                missed.setdefault(source, []).append(side / max(rgb.shape[:2]))
                continue
            pairs.append((name, raw_xywh(ours.boxes[int(np.argmax(scores))]), np.asarray(box, np.float64)))
            sources.append(source)
    names = sorted(set(sources))
    print(f"{len(pairs)} faces from {len(names)} sources ({', '.join(names)}); "
          f"{unmatched} MTCNN face(s) without a BlazeFace match")
    for source, sides in sorted(missed.items()):
        print(f"  no BlazeFace match: {source}: {len(sides)} face(s), MTCNN box side {min(sides):.2f}-{max(sides):.2f} "
              "of the image's longer side")
    current = mpd.BLAZE_BOX_OFFSETS
    for source in names:
        describe(f"  {source[:32]}", errors([p for p in pairs if p[0].split("#")[0] == source], current))
    describe(f"current offsets {current}", errors(pairs, current))
    photos = [p for p in pairs if "#" not in p[0]]
    if photos:
        describe("  photos only", errors(photos, current))
    frames = [p for p in pairs if "#" in p[0]]
    if frames:
        describe("  video frames only", errors(frames, current))
    refit = tuple(round(v, 4) for v in fit(pairs))
    describe(f"refit on all faces {refit}", errors(pairs, refit))
    half = {n for i, n in enumerate(names) if i % 2 == 0}
    a = [p for p in pairs if p[0].split("#")[0] in half]
    b = [p for p in pairs if p[0].split("#")[0] not in half]
    if a and b:
        held = np.concatenate([errors(b, fit(a)), errors(a, fit(b))])
        describe("two-fold (fit on other sources)", held)


if __name__ == "__main__":
    main(sys.argv[1:])
