"""Issue 26, footage mode: a video as the source, its face re-performed by speech (dubbing), by
another video, or by keyframes. Real footage (example_media/driving_talking.mp4, a short cut of it,
a copy with blanked frames, the two-person clip of group_media), the shipped speech (the clip's own
sound), tiny released-layout weights and SadTalker weights from the fixture recipe."""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from mimaface_core.__main__ import main
from mimaface_core.audio import FPS, load_audio
from mimaface_core.media.video_in import iter_video_frames, video_info
from mimaface_core.media.video_out import write_video

ROOT = Path(__file__).resolve().parents[1]
TALKING = ROOT / "example_media" / "driving_talking.mp4"
PORTRAIT = ROOT / "example_media" / "portrait_eileen_collins.jpg"
FAST = ["--steps", "1", "--clip-length", "16", "--overlap", "2", "--device", "cpu"]
SHORT = 12  # frames of the short cut: the speech (1.2 s) is longer, so the footage plays ping-pong
SPEECH_SECONDS = 1.2


def _read(path):
    with av.open(str(path)) as c:
        kinds = {s.type for s in c.streams}
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return kinds, frames


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory):
    """The first SHORT frames of the talking clip, at its own rate, without sound."""
    path = tmp_path_factory.mktemp("footage") / "short.mp4"
    write_video(path, list(iter_video_frames(TALKING, limit=SHORT)), video_info(TALKING).fps)
    return path


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """The first SPEECH_SECONDS of the shipped speech (the talking clip's sound) as a 16 kHz wav."""
    import wave

    samples = load_audio(TALKING).samples[:int(SPEECH_SECONDS * 16000)]
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes())
    return path


def test_cli_dubs_short_footage_ping_pong(audio_root, short_clip, speech, tmp_path, capsys):
    out, saved = tmp_path / "dubbed.mp4", tmp_path / "motion"
    assert main(["animate", "--source", str(short_clip), "--audio", str(speech), "--weights", str(audio_root),
                 "--out", str(out), "--save-motion", str(saved), *FAST]) == 0
    printed = capsys.readouterr().out
    passes = re.search(r"UNet passes per output frame: ([0-9.]+) \(per re-performed face frame\)", printed)
    assert passes and float(passes.group(1)) > 0, printed[-500:]
    info, footage = video_info(out), video_info(short_clip)
    wanted = int(load_audio(speech).num_frames * footage.fps / FPS)
    kinds, frames = _read(out)
    assert len(frames) == wanted > SHORT
    assert (info.width, info.height) == (footage.width, footage.height) == (640, 480)
    assert info.fps == pytest.approx(footage.fps) and "audio" in kinds
    order = json.loads(saved.with_suffix(".json").read_text())["info"]["footage_frames"]
    forward, back = list(range(SHORT)), list(range(SHORT - 2, 0, -1))
    assert order == ((forward + back) * wanted)[:wanted]


N = 10  # frames of the core tests' footage


@pytest.fixture(scope="module")
def detector():
    from mimaface_core.face.mtcnn import MTCNNDetector

    return MTCNNDetector()


@pytest.fixture(scope="module")
def talking_frames():
    return list(iter_video_frames(TALKING, limit=N))


def _track_motion(frames, detector, model, faces="default", fps=None):
    from mimaface_core.face.tracks import FaceTracks
    from mimaface_core.footage.reperform import track_footage
    from mimaface_core.motion.tracks import extract_track_motions

    tracks, chosen = track_footage(frames, detector, faces=faces)
    picked = FaceTracks([tracks[t] for t in chosen], tracks.n_frames, tracks.frame_size, tracks.options)
    return tracks, chosen, extract_track_motions(frames, picked, detector, model.d3dfr, box_mode="tracked", fps=fps)


def _source(frames, motion, detector, model, track):
    """The appearance of the tracked face at its default reference frame (as the CLI takes it)."""
    from mimaface_core.footage.reference import choose_reference_frame
    from mimaface_core.footage.reperform import detection_box, reference_source
    from mimaface_core.morphable.coefficients import ID
    from mimaface_core.morphable.controls import controls_for

    choice = choose_reference_frame(motion.coeffs, motion.missing, controls_for(model.bfm), motion.fps)
    return reference_source(frames[choice.frame], detection_box(track, choice.frame), detector, model.d3dfr,
                            model.identity_encoder, motion.coeffs[~motion.missing][:, ID].median(0).values)


@pytest.fixture(scope="module")
def talking(talking_frames, detector, animate_model):
    """(track, motion, source) of the talking clip's face."""
    tracks, chosen, motions = _track_motion(talking_frames, detector, animate_model, fps=video_info(TALKING).fps)
    track = tracks[chosen[0]]
    return track, motions[0], _source(talking_frames, motions[0], detector, animate_model, track)


def test_lower_face_keeps_eyes_brows_and_pose_and_follows_the_speech(talking, animate_model, audio_nets):
    from mimaface_core.audio import AudioMotionOptions, audio_motion
    from mimaface_core.footage.length import frame_order
    from mimaface_core.footage.motion import EYE_BROW_CONTROLS, footage_motion, resample
    from mimaface_core.morphable.coefficients import ANGLES, GAZE, TRANSLATION
    from mimaface_core.morphable.controls import controls_for

    _, talking_motion, source = talking
    fps = talking_motion.fps
    controls = controls_for(animate_model.bfm)
    speech = load_audio(TALKING)
    am = audio_motion(source.motion(), speech, audio_nets, AudioMotionOptions("still", blink="random"))
    wanted = int(speech.num_frames * fps / FPS)
    order = frame_order(len(talking_motion), wanted, "pingpong")
    perf = resample(am.coeffs, float(FPS), fps, wanted)
    m = footage_motion(talking_motion, order, perf, "audio", "lower_face", controls, animate_model.bfm)
    own = talking_motion.coeffs[order]
    got, foot, audio = controls.read(m.coeffs), controls.read(own), controls.read(perf)
    for name in EYE_BROW_CONTROLS:
        if name in controls.directions:
            assert torch.allclose(got[name], foot[name], atol=1e-4), name
    mouth = np.corrcoef(got["mouth_open"].numpy(), audio["mouth_open"].numpy())[0, 1]
    assert mouth > 0.9 and float(audio["mouth_open"].std()) > 0
    assert not torch.allclose(got["mouth_open"], foot["mouth_open"], atol=1e-3), "the speech moves the mouth"
    for part in (ANGLES, TRANSLATION, GAZE):
        assert torch.equal(m.coeffs[:, part], own[:, part])
    # face: the performance's whole expression
    whole = footage_motion(talking_motion, order, perf, "audio", "face", controls, animate_model.bfm)
    assert torch.allclose(whole.coeffs[:, 80:144], perf[:, 80:144])


def test_composite_keeps_the_footage_outside_the_mask_exactly(talking, talking_frames, animate_model):
    from mimaface_core.footage.composite import composite_uint8, region_crop_masks

    _, motion, _ = talking
    k = 3
    frames = np.stack(talking_frames[:k])
    masks = region_crop_masks(animate_model.bfm, motion.coeffs[:k], motion.m256_inv[:k], "lower_face", 24)
    crops = torch.rand(k, 512, 512, 3, generator=torch.Generator().manual_seed(0))
    passthrough = np.array([False, True, False])
    out, frame_masks = composite_uint8(frames, crops, motion.frame_to_crop()[:k], masks, passthrough=passthrough)
    assert out.dtype == np.uint8 and out.shape == frames.shape
    outside = (frame_masks == 0).numpy()
    assert outside[0].any() and not outside[0].all(), "the mask covers part of the frame"
    assert np.array_equal(out[outside], frames[outside])
    assert np.array_equal(out[1], frames[1]), "a passed-through frame is the footage's"
    assert not np.array_equal(out[0], frames[0])
    # the lower face only: the mask is 0 above the nose's middle, so it covers less than the face's
    face = region_crop_masks(animate_model.bfm, motion.coeffs[:1], motion.m256_inv[:1], "face", 24)
    assert 0 < float((masks[0] > 0).sum()) < float((face[0] > 0).sum())


def _fast_options():
    from mimaface_core.pipeline import AnimateOptions
    from mimaface_core.sampling import SamplingOptions

    return AnimateOptions(SamplingOptions(steps=1, clip_length=6, overlap=2))


def test_frames_without_the_face_pass_through(talking_frames, detector, animate_model):
    from mimaface_core.footage.length import frame_order
    from mimaface_core.footage.motion import footage_motion
    from mimaface_core.footage.reperform import iter_reperform
    from mimaface_core.morphable.controls import controls_for

    frames = [f.copy() for f in talking_frames[:8]]
    for i in (3, 4):
        frames[i][:] = 128  # the face gone
    tracks, chosen, motions = _track_motion(frames, detector, animate_model, fps=25.0)
    motion = motions[0]
    assert motion.missing.tolist() == [i in (3, 4) for i in range(8)]
    source = _source(frames, motion, detector, animate_model, tracks[chosen[0]])
    m = footage_motion(motion, frame_order(8, 8), None, "footage", "face", controls_for(animate_model.bfm),
                       animate_model.bfm)
    out = np.concatenate(list(iter_reperform(animate_model, {0: (source, m)}, iter(frames), _fast_options(),
                                             region="face")))
    assert len(out) == 8
    for i in (3, 4):
        assert np.array_equal(out[i], frames[i])
    assert not np.array_equal(out[0], frames[0])


def test_faces_re_performs_only_the_chosen_face(detector, animate_model):
    from group_media import two_people_frames
    from mimaface_core.footage.length import frame_order
    from mimaface_core.footage.motion import footage_motion
    from mimaface_core.footage.reperform import iter_reperform
    from mimaface_core.morphable.controls import controls_for

    frames = two_people_frames(6)
    tracks, chosen, motions = _track_motion(frames, detector, animate_model, faces=[1], fps=12.5)
    assert len(tracks) == 2 and chosen == [1]
    right = tracks[1]
    assert (right.boxes[0, 0] + right.boxes[0, 2]) / 2 > 480, "track 1 is the right-hand person"
    source = _source(frames, motions[0], detector, animate_model, right)
    m = footage_motion(motions[0], frame_order(6, 6), None, "footage", "face", controls_for(animate_model.bfm),
                       animate_model.bfm)
    out = np.concatenate(list(iter_reperform(animate_model, {1: (source, m)}, iter(frames), _fast_options(),
                                             region="face")))
    half = frames[0].shape[1] // 2
    assert all(np.array_equal(o[:, :half], f[:, :half]) for o, f in zip(out, frames)), "the left person untouched"
    assert any(not np.array_equal(o[:, half:], f[:, half:]) for o, f in zip(out, frames))


def _error(capsys, tmp_path, *args):
    out = tmp_path / "o.mp4"
    code = main(["animate", *[str(a) for a in args], "--out", str(out), "--device", "cpu"])
    assert code != 0 and not out.exists()
    return capsys.readouterr().err


def test_bad_footage_inputs_fail_early_naming_them(audio_root, short_clip, tmp_path, capsys):
    import wave

    src = ["--source", short_clip, "--weights", audio_root]
    assert "--driving" in _error(capsys, tmp_path, *src, "--driving", PORTRAIT)
    silent = tmp_path / "silent.wav"
    with wave.open(str(silent), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(16000, np.int16).tobytes())
    assert "silent" in _error(capsys, tmp_path, *src, "--audio", silent)
    assert "--reference-frame 500: past the footage's end" in _error(capsys, tmp_path, *src, "--audio", TALKING,
                                                                       "--reference-frame", "500")
    blank = tmp_path / "blank.mp4"
    write_video(blank, [np.full((64, 64, 3), 128, np.uint8)] * 4, 25.0)
    assert "no face on any" in _error(capsys, tmp_path, "--source", blank, "--weights", audio_root,
                                      "--audio", TALKING)
    with pytest.raises(SystemExit):
        main(["animate", *map(str, src), "--audio", str(TALKING), "--region", "eyes", "--out", str(tmp_path / "o.mp4")])
    assert "--region" in capsys.readouterr().err
    assert "--audio" in _error(capsys, tmp_path, *src)  # footage without a performance


def test_transfer_and_keyframe_edit_keep_the_footage_pose(talking, animate_model):
    from mimaface_core.footage.length import frame_order
    from mimaface_core.footage.motion import footage_motion
    from mimaface_core.morphable.coefficients import ANGLES, EXP, TRANSLATION
    from mimaface_core.morphable.controls import controls_for
    from mimaface_core.motion.keyframes import keyframe_motion, parse_keyframes

    _, motion, _ = talking
    controls, n = controls_for(animate_model.bfm), len(motion)
    order = frame_order(n, n)
    driver = motion.coeffs.flip(0)  # another performance: the clip played backwards
    moved = footage_motion(motion, order, driver, "transfer", "face", controls, animate_model.bfm)
    expected = motion.coeffs[:1, EXP] + driver[:, EXP] - driver[:1, EXP]
    assert torch.allclose(moved.coeffs[:, EXP], expected, atol=1e-6)
    assert torch.equal(moved.coeffs[:, ANGLES], motion.coeffs[:, ANGLES])
    assert torch.equal(moved.coeffs[:, TRANSLATION], motion.coeffs[:, TRANSLATION])
    own = footage_motion(motion, order, None, "footage", "face", controls, animate_model.bfm)
    assert torch.equal(own.coeffs[:, EXP], motion.coeffs[:, EXP]), "keyframes alone start from its own expression"
    edited = keyframe_motion(own, parse_keyframes("0: smile=0.5\n"), controls, motion.fps)
    smile = controls.read(edited.coeffs)["smile"] - controls.read(own.coeffs)["smile"]
    assert torch.allclose(smile, torch.full((n,), 0.5), atol=1e-4)
