"""End to end on real footage: source photo and driving clips → coefficients, identity features,
renders, with the tiny released-layout weights (D3DFR, IR-101, mini BFM) and our MTCNN.

Clips and photos are named by the alignment fixture's JSON files (``$MIMAFACE_ALIGNMENT_DIR``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from alignment_fixture import entries, media_path
from mimaface_core.errors import FaceNotFoundError
from mimaface_core.media.images import squash_to_512
from mimaface_core.media.video_in import iter_video_frames, video_info
from mimaface_core.morphable.coefficients import NUM_COEFFS
from mimaface_core.motion.extract import encode_source, extract_image_motion, extract_motion
from mimaface_core.morphable.render import render_motion
from mimaface_core.motion.retarget import retarget

PHOTO = entries("photo")[0]
VIDEOS = entries("video")
SHORTEST = min(VIDEOS, key=lambda e: e["data"]["source"]["frames_decoded"])


def _face_indices(entry) -> list[int]:
    """Recorded frames of a clip where the release finds a (stable) face on the first-frame crop."""
    return [f["index"] for f in entry["data"]["frames"] if "error" not in f and f["stability"]["stable"]]


# the clip with the most recorded face frames; the gaps and the motion are made by the tests
FACES = max(VIDEOS, key=lambda e: len(_face_indices(e)))
#: how many of its face frames the tests use
FACE_FRAMES = 8


def _frames_with_a_gap(entry=FACES, count=FACE_FRAMES) -> tuple[list[np.ndarray], list[int]]:
    """Up to ``count`` recorded face frames of a clip, with a run of them in the middle blanked (one
    flat colour, the frame's mean): (frames, blanked positions)."""
    wanted = _face_indices(entry)[:count]
    assert len(wanted) >= 4, f"{entry['json']}: fewer than 4 recorded frames with a face"
    frames = [f for i, f in enumerate(iter_video_frames(media_path(entry), limit=max(wanted) + 1)) if i in wanted]
    start = len(frames) // 3
    blanked = list(range(start, start + max(1, len(frames) // 4)))
    for k in blanked:
        frames[k] = np.full_like(frames[k], frames[k].reshape(-1, 3).mean(0).astype(np.uint8))
    return frames, blanked


@pytest.fixture(scope="module")
def source(video_model, mtcnn):
    return encode_source(Image.open(media_path(PHOTO)), mtcnn, video_model.d3dfr, video_model.identity_encoder)


def test_source_encoding(source):
    assert source.coeffs.shape == (1, NUM_COEFFS) and torch.isfinite(source.coeffs).all()
    assert source.identity.shape == (1, 25088) and torch.isfinite(source.identity).all()
    assert source.image512.shape == (1, 3, 512, 512)
    assert source.image512.min() >= -1 and source.image512.max() <= 1


def test_every_frame_of_a_real_clip(video_model, mtcnn, source):
    path = media_path(SHORTEST)
    info = video_info(path)
    seen = []
    seq = extract_motion(lambda: iter_video_frames(path), mtcnn, video_model.d3dfr, box_mode="first_frame",
                         fps=info.fps, progress=lambda done, total: seen.append(done))
    n = SHORTEST["data"]["source"]["frames_decoded"]
    assert len(seq) == n and seen == list(range(1, n + 1))
    assert seq.coeffs.shape == (n, NUM_COEFFS) and torch.isfinite(seq.coeffs).all()
    assert seq.frame_size == (info.width, info.height) and seq.fps == pytest.approx(info.fps)
    assert np.allclose(seq.m512, seq.m512[0])  # the released first-frame box
    blended = retarget(source.coeffs, seq.coeffs)
    renders, masks = render_motion(video_model.bfm, blended, seq.m256_inv)
    assert renders.shape == (n, 3, 512, 512) and masks.shape == (n, 1, 512, 512)
    assert renders.min() >= -1 and renders.max() <= 1
    background = masks == 0
    assert background.any() and (masks > 0).any()
    assert torch.all(renders.masked_select(background.expand_as(renders)) == -1)


def test_frames_without_a_face_are_counted(video_model, mtcnn):
    frames, blanked = _frames_with_a_gap()
    seq = extract_motion(frames, mtcnn, video_model.d3dfr, box_mode="first_frame")
    assert len(seq) == len(frames)
    assert np.flatnonzero(seq.missing).tolist() == blanked  # the release finds a face on every other one
    assert seq.missing_count == int(seq.missing.sum()) == len(blanked)
    assert torch.isfinite(seq.coeffs).all() and np.isfinite(seq.m256_inv).all()
    assert np.all(seq.scores[seq.missing] == 0) and np.all(seq.scores[~seq.missing] > 0)


def _crop_centre(m512: np.ndarray) -> np.ndarray:
    """The input point a 512 box-crop matrix maps to the crop centre."""
    return np.linalg.solve(m512[:2, :2], np.array([256.0, 256.0]) - m512[:2, 2])


def _panned(frames, blanked) -> tuple[list[np.ndarray], list[int], float]:
    """The frames squashed to 512 as the release does, shrunk and placed on a 512x512 grey canvas,
    panned right step by step up to the blanked run, by the release's first-frame box width in
    all, and still from there on: (canvases, x offsets, box width on the canvas). (The tracked box
    re-finds a face after a gap by its overlap with the last box, so the face is still across it.)"""
    (x0, _), _, (x1, _), _ = FACES["data"]["frame0_box_square_pts4"]  # in the squashed 512 frame
    box = abs(x1 - x0)
    side = int(round(512 * 512 / (512 + box)))  # shrunk so that a pan of one box fits
    pan, top = 512 - side, (512 - side) // 2
    last = max(1, blanked[0] - 1)
    offsets = [round(min(k, last) * pan / last) for k in range(len(frames))]
    panned = []
    for frame, off in zip(frames, offsets):
        canvas = np.full((512, 512, 3), 128, np.uint8)
        canvas[top:top + side, off:off + side] = np.asarray(
            Image.fromarray(squash_to_512(frame)).resize((side, side), Image.BICUBIC))
        panned.append(canvas)
    return panned, offsets, box * side / 512


def test_tracked_box_follows_the_face(video_model, mtcnn):
    """The clip's face frames (with a blanked run) panned step by step by the face box: the
    first-frame box loses the face, the tracked box follows it across the gap and the pan."""
    frames, blanked = _frames_with_a_gap(count=12)
    panned, offsets, box = _panned(frames, blanked)
    first = extract_motion(panned, mtcnn, video_model.d3dfr, box_mode="first_frame")
    tracked = extract_motion(panned, mtcnn, video_model.d3dfr, box_mode="tracked", box_smoothing=5)
    assert all(first.missing[blanked]) and all(tracked.missing[blanked])
    assert first.missing[-1], "the face left the first-frame box"
    assert tracked.missing_count < first.missing_count
    assert not np.allclose(tracked.m512, tracked.m512[0])
    # the tracked crop centre moves with the pan: its offset from the face's own motion stays small
    faces = [k for k in range(len(frames)) if k not in blanked]
    drift = np.array([_crop_centre(tracked.m512[k])[0] - offsets[k] for k in faces])
    assert np.ptp(drift) < box / 2, drift


def test_driving_image_and_source_errors(video_model, mtcnn):
    photo = Image.open(media_path(PHOTO))
    seq = extract_image_motion(photo, mtcnn, video_model.d3dfr)
    assert len(seq) == 1 and not seq.missing.any()
    for variant in (photo.convert("L"), photo.convert("RGBA")):
        assert encode_source(variant, mtcnn, video_model.d3dfr, video_model.identity_encoder).coeffs.shape == (1, NUM_COEFFS)
    blank = np.full((300, 400, 3), 128, np.uint8)
    with pytest.raises(FaceNotFoundError, match="source image"):
        encode_source(blank, mtcnn, video_model.d3dfr, video_model.identity_encoder)
    with pytest.raises(FaceNotFoundError, match="driving video"):
        extract_motion([blank, blank], mtcnn, video_model.d3dfr)
    with pytest.raises(ValueError, match="source image"):
        encode_source(np.zeros((5, 5, 3), np.uint8), mtcnn, video_model.d3dfr, video_model.identity_encoder)


def test_detector_factory(tmp_path):
    from mimaface_core.face.detectors import make_detector

    assert make_detector("mtcnn").name == "mtcnn"
    assert make_detector("mediapipe", models_dir=tmp_path).name == "mediapipe"
    with pytest.raises(ValueError, match="models_dir"):
        make_detector("mediapipe")
    with pytest.raises(ValueError, match="unknown face detector"):
        make_detector("dlib")
