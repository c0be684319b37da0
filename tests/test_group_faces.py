"""Several faces (issue 18): tracks in a two-person driving clip (two real clips side by side, one
face blanked in the middle), every face of a group photo (two real portraits side by side), the
face map, per-face animation equal to the single-face run, and compositing that leaves the photo
untouched outside the masks."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from group_media import group_photo, two_people_frames
from mimaface_core.errors import MIMAFaceError
from mimaface_core.face.mtcnn import MTCNNDetector
from mimaface_core.face.paste_faces import paste_faces
from mimaface_core.face.tracks import TrackingOptions, track_faces
from mimaface_core.group import FaceMap, assign_tracks, iter_animate_faces, parse_faces, plan_faces
from mimaface_core.motion.extract import encode_source
from mimaface_core.pipeline import AnimateOptions, animate
from mimaface_core.sampling import SamplingOptions

N, BLANK = 12, (5, 8)  # frames of the clip; the left face is gone on frames 5, 6, 7
FAST = SamplingOptions(steps=2, clip_length=6, overlap=2)


class CachedDetector:
    """The real MTCNN, each image detected once per session (the tracking tests reuse frames)."""

    def __init__(self):
        self.inner, self.cache, self.name = MTCNNDetector(), {}, "mtcnn"

    def detect(self, rgb):
        key = hashlib.sha1(np.ascontiguousarray(rgb).tobytes()).hexdigest()
        if key not in self.cache:
            self.cache[key] = self.inner.detect(rgb)
        return self.cache[key]


@pytest.fixture(scope="module")
def detector():
    return CachedDetector()


@pytest.fixture(scope="module")
def clip():
    return two_people_frames(N, BLANK, side=0)


@pytest.fixture(scope="module")
def photo():
    return group_photo()


def test_tracks_keep_their_ids_across_the_gap(clip, detector, animate_model):
    tracks = track_faces(clip, detector, animate_model.identity_encoder)
    assert len(tracks) == 2
    left, right = tracks.tracks
    assert (left.boxes[0, 0] + left.boxes[0, 2]) / 2 < 480 < (right.boxes[0, 0] + right.boxes[0, 2]) / 2
    assert left.missing_frames(N) == list(range(*BLANK)) and right.missing_frames(N) == []
    assert "missing: 5-7" in tracks.summary()
    # box overlap and motion alone (no identity term) give the same tracks
    plain = track_faces(clip, detector, None)
    assert [t.frames.tolist() for t in plain.tracks] == [t.frames.tolist() for t in tracks.tracks]


def test_reidentification_after_a_gap_longer_than_max_gap(clip, detector, animate_model):
    short = TrackingOptions(max_gap=1)
    by_identity = track_faces(clip, detector, animate_model.identity_encoder, short)
    assert len(by_identity) == 2, "the left face came back into its ended track by identity"
    assert by_identity[0].missing_frames(N) == list(range(*BLANK))
    boxes_only = track_faces(clip, detector, None, short)
    assert len(boxes_only) == 3, "without identities a face back after the gap starts a new track"
    assert boxes_only[2].first_frame == BLANK[1]


def test_face_map_and_faces_parse_and_check():
    assert parse_faces("all") is None and parse_faces("2,0") == [0, 2]
    for bad in ("x", "0,0", "-1"):
        with pytest.raises(MIMAFaceError, match="--faces"):
            parse_faces(bad)
    assert FaceMap.parse("auto") == FaceMap() and FaceMap.parse("all:1") == FaceMap("all", 1)
    assert FaceMap.parse("0:1, 1:0").pairs == {0: 1, 1: 0}
    for bad in ("0-1", "all:0,1:1", "0:1,0:0"):
        with pytest.raises(MIMAFaceError, match="--face-map"):
            FaceMap.parse(bad)
    with pytest.raises(MIMAFaceError, match="--face-map: face 3 does not exist; the source has 2"):
        FaceMap.parse("3:0").check_faces(2)
    with pytest.raises(MIMAFaceError, match="--face-map: track 4 does not exist; the driver has 2"):
        FaceMap.parse("all:4").check_tracks(2)


def test_assignment_auto_explicit_and_one_track(clip, detector):
    tracks = track_faces(clip, detector, None)
    assert assign_tracks(FaceMap(), 2, tracks) == {0: 0, 1: 1}
    assert assign_tracks(FaceMap.parse("0:1,1:0"), 2, tracks) == {0: 1, 1: 0}
    assert assign_tracks(FaceMap.parse("all:1"), 3, tracks) == {0: 1, 1: 1, 2: 1}
    assert assign_tracks(FaceMap(), 3, tracks, faces=[1, 2]) == {1: 1}  # face 2 has no driver


def test_source_faces_left_to_right_equal_single_face_encoding(photo, detector, animate_model):
    from mimaface_core.motion.sources import encode_source_faces

    m = animate_model
    faces = encode_source_faces(photo, detector, m.d3dfr, m.identity_encoder)
    assert len(faces) == 2
    assert faces[0].alignment.box[0] < faces[1].alignment.box[0]
    by_area = np.argsort([-(f.alignment.box[2] - f.alignment.box[0]) * (f.alignment.box[3] - f.alignment.box[1])
                          for f in faces])
    for k, f in enumerate(faces):
        alone = encode_source(photo, detector, m.d3dfr, m.identity_encoder, int(np.flatnonzero(by_area == k)[0]))
        torch.testing.assert_close(f.coeffs, alone.coeffs, rtol=0, atol=0)
        assert np.array_equal(f.alignment.crop512, alone.alignment.crop512)


def test_paste_faces_larger_on_top_and_untouched_outside():
    base = torch.rand(1, 64, 96, 3)
    small = np.array([[[4.0, 0, -100], [0, 4.0, -40]]])   # a face ~ 128/4 px: crop 512 -> 128 in the frame
    large = np.array([[[2.0, 0, -120], [0, 2.0, -20]]])
    red, blue = torch.zeros(1, 512, 512, 3), torch.zeros(1, 512, 512, 3)
    red[..., 0], blue[..., 2] = 1, 1
    out, mask = paste_faces(base, [blue, red], [large, small], feather=0)
    inside_both = (40, 70)  # (row, column) covered by both squares: the larger (blue) is on top
    assert out[0, inside_both[0], inside_both[1]].tolist() == [0.0, 0.0, 1.0]
    assert torch.equal(out[0][mask[0] == 0], base[0][mask[0] == 0])


@pytest.fixture(scope="module")
def group_run(photo, clip, detector, animate_model):
    m = animate_model
    plan = plan_faces(photo, clip, detector, m.d3dfr, m.identity_encoder)
    options = AnimateOptions(FAST)
    chunks = list(iter_animate_faces(m, plan.sources, plan.drivers, photo, options, feather=24))
    return plan, options, chunks


def test_group_photo_output_size_frames_and_photo_outside_masks(group_run, photo):
    plan, _, chunks = group_run
    assert plan.assignment == {0: 0, 1: 1}
    assert "face 0 <- track 0" in plan.describe() and "missing: 5-7" in plan.describe()
    frames = torch.cat([c.frames for c in chunks])
    assert frames.shape == (N, *photo.shape)
    from mimaface_core.face.paste_back import paste_back

    mask = torch.zeros(photo.shape[:2])
    for f in plan.drivers:
        mat = plan.sources[f].motion().frame_to_crop()
        _, m = paste_back(torch.zeros(1, *photo.shape), torch.zeros(1, 512, 512, 3), mat, 24)
        mask = torch.maximum(mask, m[0])
    outside = mask == 0
    assert outside.float().mean() > 0.3
    ref = torch.from_numpy(photo).float() / 255
    out_u8 = (frames.clamp(0, 1) * 255).to(torch.uint8)
    for i in range(N):
        assert torch.equal(frames[i][outside], ref[outside])
        assert torch.equal(out_u8[i][outside], torch.from_numpy(photo)[outside])
    assert (frames[:, ~outside] != ref[~outside]).any(), "the faces were animated"


def test_each_face_equals_the_single_face_run(group_run, photo, detector, animate_model):
    plan, options, chunks = group_run
    m = animate_model
    for f in plan.drivers:
        box = plan.sources[f].alignment.box
        areas = (plan.face_boxes[:, 2] - plan.face_boxes[:, 0]) * (plan.face_boxes[:, 3] - plan.face_boxes[:, 1])
        rank = int(np.flatnonzero(np.argsort(-areas, kind="stable") == f)[0])
        alone = encode_source(photo, detector, m.d3dfr, m.identity_encoder, rank)
        assert np.array_equal(alone.alignment.box, box)
        single = animate(m, alone, plan.drivers[f], options)
        group = torch.cat([c.crops[f] for c in chunks])
        assert group.shape == single.shape == (N, 512, 512, 3)
        assert (group - single).abs().max().item() <= 1e-5


def test_absent_track_holds_last_pose_and_photo_pose_before_first(group_run):
    plan, _, _ = group_run
    left = plan.drivers[0]
    assert left.missing[list(range(*BLANK))].all() and left.missing_count == BLANK[1] - BLANK[0]
    for i in range(*BLANK):
        assert torch.equal(left.coeffs[i], left.coeffs[BLANK[0] - 1])


# --- the animate command ---------------------------------------------------------------------

EXAMPLES = __import__("pathlib").Path(__file__).resolve().parents[1] / "example_media"


def _animate(animate_root, tmp_path, *extra, source=EXAMPLES / "group_photo.jpg"):
    from mimaface_core.__main__ import main

    return main(["animate", "--source", str(source), "--driving", str(EXAMPLES / "driving_two_people.mp4"),
                 "--weights", str(animate_root), "--out", str(tmp_path / "group.mp4"), "--device", "cpu",
                 "--steps", "2", "--clip-length", "6", "--overlap", "2", *extra])


@pytest.mark.parametrize("extra,phrase", [
    (["--faces", "0,5"], "--faces: face 5 does not exist; the source has 2 face(s)"),
    (["--face-map", "2:0"], "--face-map: face 2 does not exist; the source has 2 face(s)"),
    (["--face-map", "0-1"], "--face-map '0-1': use auto"),
    (["--faces", "x"], "--faces 'x'"),
])
def test_cli_face_errors_name_the_option_before_any_model_loads(animate_root, tmp_path, capsys, monkeypatch,
                                                                extra, phrase):
    import mimaface_core.weights.loader as loader

    monkeypatch.setattr(loader, "load_mimaface", lambda *a, **k: pytest.fail("a model was loaded"))
    assert _animate(animate_root, tmp_path, *extra) == 1
    assert phrase in capsys.readouterr().err


def test_cli_one_face_source_is_a_note_and_track_map_error(animate_root, tmp_path, caplog, capsys):
    import logging
    from types import SimpleNamespace

    from mimaface_core.cli.faces import check_face_args
    from mimaface_core.media.images import load_image

    args = SimpleNamespace(faces="all", face_map=None, track_gap=12, identity_weight=0.3, audio=None, driving="v.mp4",
                           source=EXAMPLES / "portrait_eileen_collins.jpg", detector="mtcnn",
                           mediapipe_models=None)
    checked = SimpleNamespace(source=load_image(EXAMPLES / "portrait_eileen_collins.jpg"), driver_kind="video")
    with caplog.at_level(logging.INFO):
        faces, _, boxes, _ = check_face_args(args, checked)
    assert faces is None and len(boxes) == 1 and "the source has one face" in caplog.text
    from mimaface_core.cli.faces import IDENTITY_WEIGHT, TRACK_GAP

    assert (TRACK_GAP, IDENTITY_WEIGHT) == (TrackingOptions().max_gap, TrackingOptions().identity_weight)
    # a track that does not exist is known once the driver is tracked (after loading the model)
    assert _animate(animate_root, tmp_path, "--face-map", "all:7", "--limit", "4") == 1
    assert "--face-map: track 7 does not exist; the driver has 2 face track(s)" in capsys.readouterr().err


def test_cli_group_photo_writes_the_photo_size_one_frame_per_driving_frame(animate_root, tmp_path, caplog):
    import logging

    from mimaface_core.media.video_in import iter_video_frames

    with caplog.at_level(logging.INFO):
        assert _animate(animate_root, tmp_path, "--faces", "all", "--limit", "6") == 0
    frames = list(iter_video_frames(tmp_path / "group.mp4"))
    assert len(frames) == 6 and frames[0].shape == group_photo().shape
    assert "source: 2 face(s)" in caplog.text and "face 1 <- track 1" in caplog.text
