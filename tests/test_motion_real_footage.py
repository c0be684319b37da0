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
from mimaface_core.media.video_in import iter_video_frames, video_info
from mimaface_core.morphable.coefficients import NUM_COEFFS
from mimaface_core.motion.extract import encode_source, extract_image_motion, extract_motion
from mimaface_core.morphable.render import render_motion
from mimaface_core.motion.retarget import retarget

PHOTO = entries("photo")[0]
VIDEOS = entries("video")
SHORTEST = min(VIDEOS, key=lambda e: e["data"]["source"]["frames_decoded"])
# the clip whose recorded frames include crops where the release finds no face
WITH_GAPS = max(VIDEOS, key=lambda e: sum("error" in f and f["stability"]["stable"] for f in e["data"]["frames"]))


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
    data = WITH_GAPS["data"]
    indices = data["frame_selection"]["indices"]
    frames = [f for i, f in enumerate(iter_video_frames(media_path(WITH_GAPS), limit=max(indices) + 1)) if i in indices]
    seq = extract_motion(frames, mtcnn, video_model.d3dfr, box_mode="first_frame")
    assert len(seq) == len(indices)
    expected_gaps = [k for k, f in enumerate(data["frames"]) if "error" in f and f["stability"]["stable"]]
    expected_faces = [k for k, f in enumerate(data["frames"]) if "error" not in f and f["stability"]["stable"]]
    assert expected_gaps and all(seq.missing[k] for k in expected_gaps)
    assert not any(seq.missing[k] for k in expected_faces)
    assert seq.missing_count == int(seq.missing.sum()) >= len(expected_gaps)
    assert torch.isfinite(seq.coeffs).all() and np.isfinite(seq.m256_inv).all()
    assert np.all(seq.scores[seq.missing] == 0)


def test_tracked_box_follows_the_face(video_model, mtcnn):
    data = WITH_GAPS["data"]
    indices = data["frame_selection"]["indices"]
    frames = [f for i, f in enumerate(iter_video_frames(media_path(WITH_GAPS), limit=max(indices) + 1)) if i in indices]
    first = extract_motion(frames, mtcnn, video_model.d3dfr, box_mode="first_frame")
    tracked = extract_motion(frames, mtcnn, video_model.d3dfr, box_mode="tracked", box_smoothing=5)
    assert tracked.missing_count < first.missing_count
    assert not np.allclose(tracked.m512, tracked.m512[0])


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
