"""Audio driving end to end on real speech: the animate CLI with the audio track of the shipped
talking clip (and a copy in another container and sample rate), determinism, still mode, and the
audio input errors. Tiny released-layout weights and SadTalker weights from the fixture recipe."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from alignment_fixture import entries, media_path
from mimaface_core.__main__ import main
from mimaface_core.audio import AudioMotionOptions, audio_motion, load_audio, probe_audio, speech_from_waveform
from mimaface_core.audio.audio2pose import NUM_POSE_STYLES
from mimaface_core.audio.decode import SAMPLES_PER_FRAME
from mimaface_core.errors import AudioInputError
from mimaface_core.face.mtcnn import MTCNNDetector
from mimaface_core.media.video_in import video_info
from mimaface_core.morphable.coefficients import ANGLES, EXP, GAMMA, GAZE, ID, TEX, TRANSLATION
from mimaface_core.motion.extract import encode_source

ROOT = Path(__file__).resolve().parents[1]
TALKING = ROOT / "example_media" / "driving_talking.mp4"
PORTRAIT = ROOT / "example_media" / "portrait_eileen_collins.jpg"
SILENT = next(e for e in entries("video") if not video_info(media_path(e)).has_audio)
FAST = ["--steps", "2", "--clip-length", "6", "--overlap", "2", "--device", "cpu"]


def _audio_duration(path) -> float:
    """Duration of the first audio stream from its decoded samples."""
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        return sum(f.samples for f in c.decode(s)) / s.codec_context.sample_rate


def _read(path):
    with av.open(str(path)) as c:
        streams = {s.type: s for s in c.streams}
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return streams, frames


def _transcode_audio(src, dst, codec, rate, layout="mono"):
    """The audio of ``src`` re-encoded with PyAV into another container / codec / sample rate."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        fmt = stream.codec_context.format.name
        resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
        for frame in inp.decode(audio=0):
            frame.pts = None
            for f in resampler.resample(frame):
                out.mux(stream.encode(f))
        for f in resampler.resample(None):
            out.mux(stream.encode(f))
        out.mux(stream.encode())
    return dst


@pytest.fixture(scope="module")
def source_face(animate_model):
    return encode_source(Image.open(PORTRAIT), MTCNNDetector(), animate_model.d3dfr, animate_model.identity_encoder)


def test_cli_speaks_the_whole_audio_track(audio_root, tmp_path):
    out = tmp_path / "speaking.mp4"
    # every frame of the clip, in few long clips with one denoising step (the frame count is the point)
    assert main(["animate", "--source", str(PORTRAIT), "--audio", str(TALKING), "--weights", str(audio_root),
                 "--out", str(out), "--steps", "1", "--clip-length", "16", "--overlap", "2", "--device", "cpu"]) == 0
    streams, frames = _read(out)
    expected = int(_audio_duration(TALKING) * 16000) // SAMPLES_PER_FRAME
    assert expected == load_audio(TALKING).num_frames
    assert len(frames) == expected and frames[0].shape == (512, 512, 3)
    assert video_info(out).fps == pytest.approx(25) and streams["video"].codec_context.name == "h264"
    assert "audio" in streams
    assert _audio_duration(out) == pytest.approx(expected / 25, abs=0.05)


def test_cli_other_container_and_rate_with_limit(audio_root, tmp_path):
    flac = _transcode_audio(TALKING, tmp_path / "speech_22k.flac", "flac", 22050)
    assert probe_audio(flac)[1:] == (22050, 1)
    out = tmp_path / "limited.mp4"
    assert main(["animate", "--source", str(PORTRAIT), "--audio", str(flac), "--weights", str(audio_root),
                 "--out", str(out), "--limit", "8", "--still", "--blink", "none", *FAST]) == 0
    streams, frames = _read(out)
    assert len(frames) == 8 and streams["audio"].codec_context.name == "aac"  # flac is re-encoded for mp4
    assert _audio_duration(out) == pytest.approx(8 / 25, abs=0.03)


def _speech_provenance() -> tuple[dict, Path | None]:
    """The audio fixture's record of where the speech of its ``mel`` case came from (cases.json:
    ``mel.params.audio_provenance``) and that source file when the pack holds it, else None. The
    pack's media folders are searched by the recorded file name: the shared ``media`` folder next
    to the fixture folder, the tests' copy of it, and example_media."""
    import audio_fixture as fx

    provenance = fx.case("mel")["params"]["audio_provenance"]
    name = provenance["source"]
    for folder in (fx.fixture_dir().parent / "media", ROOT / "tests" / "fixtures" / "media", ROOT / "example_media"):
        if (folder / name).is_file():
            return provenance, folder / name
    return provenance, None


def test_resampled_speech_matches_the_fixture_wav():
    """The fixture's speech wav was made from a source file by scipy resampling (its recorded
    provenance); PyAV's resampler on that same source gives the same number of frames, no delay and
    a relative RMS difference under 5e-3. Skipped when the source is not in the pack."""
    import audio_fixture as fx

    provenance, source = _speech_provenance()
    if source is None:
        pytest.skip(f"the audio fixture's speech came from {provenance['source']!r} (cases.json "
                    "mel.params.audio_provenance), which is not in the pack")
    with av.open(str(source)) as c:  # the recorded decode: stream 0's samples at the recorded rate
        stream = c.streams.audio[0]
        assert stream.codec_context.sample_rate == provenance["source_rate"], source
        assert sum(f.samples for f in c.decode(stream)) == provenance["decoded_samples"], \
            f"{source} is not the file the fixture's speech was made from (decoded sample count)"
    ours = load_audio(source).samples
    ref = load_audio(fx.data_file("mel")).samples
    n = min(len(ours), len(ref))
    assert abs(len(ours) - len(ref)) <= 2 and len(ours) // 640 == len(ref) // 640
    err = np.sqrt(np.mean((ours[:n] - ref[:n]) ** 2)) / np.sqrt(np.mean(ref[:n] ** 2))
    assert err < 5e-3, f"relative RMS difference {err:.2e}"


def test_same_seed_same_motion_other_seed_differs(audio_nets, source_face):
    speech = load_audio(TALKING, max_frames=40)
    src = source_face.motion()
    a = audio_motion(src, speech, audio_nets, AudioMotionOptions(seed=3))
    b = audio_motion(src, speech, audio_nets, AudioMotionOptions(seed=3))
    c = audio_motion(src, speech, audio_nets, AudioMotionOptions(seed=4))
    assert len(a) == 40 and a.fps == 25.0
    assert torch.equal(a.coeffs, b.coeffs)
    assert not torch.equal(a.coeffs[:, ANGLES], c.coeffs[:, ANGLES])
    for part in (ID, TEX, GAMMA, GAZE):  # the source's, on every frame
        assert torch.equal(a.coeffs[:, part], source_face.coeffs.cpu().expand(40, -1)[:, part])
    assert np.array_equal(a.m256, np.repeat(src.m256, 40, 0)) and a.m512_frame == "original"


def test_same_seed_same_frames(animate_model, audio_nets, source_face):
    from mimaface_core.pipeline import AnimateOptions, animate
    from mimaface_core.sampling import SamplingOptions

    motion = audio_motion(source_face.motion(), load_audio(TALKING, max_frames=5), audio_nets)
    options = AnimateOptions(SamplingOptions(steps=2, clip_length=6, overlap=2))
    a = animate(animate_model, source_face, motion, options)
    b = animate(animate_model, source_face, motion, options)
    assert a.shape == (5, 512, 512, 3) and torch.equal(a, b)


def test_still_mode_keeps_the_source_pose(audio_nets, source_face):
    motion = audio_motion(source_face.motion(), load_audio(TALKING, max_frames=30), audio_nets,
                          AudioMotionOptions(pose="still"))
    src = source_face.coeffs.cpu()
    for part in (ANGLES, TRANSLATION):
        assert torch.equal(motion.coeffs[:, part], src[:, part].expand(30, -1))
    assert motion.coeffs[:, EXP].std(0).max() > 0, "the expression still follows the speech"


def test_reference_pose_and_blinks_from_a_motion(audio_nets, source_face, animate_model):
    from mimaface_core.media.video_in import iter_video_frames
    from mimaface_core.motion.extract import extract_motion

    entry = SILENT
    reference = extract_motion(list(iter_video_frames(media_path(entry), limit=6)), MTCNNDetector(),
                               animate_model.d3dfr, fps=25.0)
    speech = load_audio(TALKING, max_frames=12)
    only = audio_motion(source_face.motion(), speech, audio_nets,
                        AudioMotionOptions(pose="reference_only", blink="reference"), reference)
    ref = reference.coeffs
    src = source_face.coeffs.cpu()[0]
    tiled = torch.cat([ref, ref])[:12]
    torch.testing.assert_close(only.coeffs[:, ANGLES], src[ANGLES] + tiled[:, ANGLES] - ref[0, ANGLES])
    with pytest.raises(ValueError, match="reference motion"):
        audio_motion(source_face.motion(), speech, audio_nets, AudioMotionOptions(pose="reference"))


def test_comfy_audio_wire_is_resampled_like_a_file():
    with av.open(str(TALKING)) as c:
        rate = c.streams.audio[0].codec_context.sample_rate
        to_float = av.AudioResampler(format="fltp")
        wave = np.concatenate([f.to_ndarray() for fr in c.decode(audio=0) for f in to_float.resample(fr)], 1)
    wire = speech_from_waveform(torch.from_numpy(wave)[None], rate)
    from_file = load_audio(TALKING)
    n = min(len(wire.samples), len(from_file.samples))
    assert wire.num_frames == from_file.num_frames
    np.testing.assert_allclose(wire.samples[:n], from_file.samples[:n], atol=1e-5)


# ---------------------------------------------------------------------------------------------
# bad inputs: each error names the input and says what to do, before any model is loaded


def _wav(path, samples: np.ndarray, rate=16000, fmt_tag=1):
    data = np.asarray(samples, np.int16).tobytes()
    fmt = struct.pack("<HHIIHH", fmt_tag, 1, rate, rate * 2, 2, 16)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE" + b"fmt "
                     + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)
    return path


def _cli_error(audio, audio_root, tmp_path, capsys, *extra):
    code = main(["animate", "--source", str(PORTRAIT), "--audio", str(audio), "--weights", str(audio_root),
                 "--out", str(tmp_path / "o.mp4"), *extra])
    assert code == 1 and not (tmp_path / "o.mp4").exists()
    return capsys.readouterr().err


def test_file_without_audio_stream(audio_root, tmp_path, capsys):
    err = _cli_error(media_path(SILENT), audio_root, tmp_path, capsys)
    assert "--audio" in err and "no audio stream" in err and media_path(SILENT).name in err


def test_audio_shorter_than_one_frame(audio_root, tmp_path, capsys):
    short = _wav(tmp_path / "blip.wav", np.full(SAMPLES_PER_FRAME - 1, 1000))
    err = _cli_error(short, audio_root, tmp_path, capsys)
    assert "--audio" in err and "blip.wav" in err and "shorter than one video frame" in err


def test_corrupt_file(audio_root, tmp_path, capsys):
    bad = tmp_path / "speech.mp3"
    bad.write_bytes(b"\x00not audio" * 500)
    err = _cli_error(bad, audio_root, tmp_path, capsys)
    assert "--audio" in err and "speech.mp3" in err and "corrupt" in err


def test_unreadable_sample_format(audio_root, tmp_path, capsys):
    odd = _wav(tmp_path / "odd_format.wav", np.zeros(16000), fmt_tag=0x1234)
    err = _cli_error(odd, audio_root, tmp_path, capsys)
    assert "--audio" in err and "odd_format.wav" in err and "cannot decode" in err


def _decode_as_ffmpeg_does(path) -> tuple[list[tuple[int | None, int]], int | None]:
    """PyAV's own decode of a file's first audio stream: ([(pts, samples) per decoded frame],
    samples decoded before FFmpeg raised an error, or None when it decoded to the end)."""
    frames = []
    with av.open(str(path)) as c:
        try:
            for f in c.decode(c.streams.audio[0]):
                frames.append((f.pts, f.samples))
        except av.error.FFmpegError:
            return frames, sum(n for _, n in frames)
    return frames, None


def test_damaged_in_the_middle(tmp_path, caplog):
    """Which of three things FFmpeg does with the damaged bytes is found out first, by decoding the
    file with PyAV directly; load_audio must then do the matching thing: refuse naming the time,
    fill the lost packets with silence and say where, or (nothing lost) pass the audio on."""
    import re

    flac = _transcode_audio(TALKING, tmp_path / "speech.flac", "flac", 16000)
    data = bytearray(flac.read_bytes())
    data[len(data) // 2: len(data) // 2 + 4000] = b"\xff" * 4000  # damage the middle
    bad = tmp_path / "damaged.flac"
    bad.write_bytes(bytes(data))
    good = load_audio(flac)
    good_frames, error = _decode_as_ffmpeg_does(flac)
    assert error is None
    frames, failed_after = _decode_as_ffmpeg_does(bad)
    lost = sum(n for _, n in good_frames) - sum(n for _, n in frames)
    if failed_after is not None:  # FFmpeg refuses the damaged part: so must we, saying where
        with pytest.raises(AudioInputError) as exc:
            load_audio(bad)
        assert "damaged.flac" in str(exc.value) and f"after {failed_after / 16000:.2f} s" in str(exc.value)
        return
    with caplog.at_level(logging.WARNING):
        speech = load_audio(bad)
    damaged = [r.getMessage() for r in caplog.records if "damaged.flac is damaged at" in r.getMessage()]
    assert len(speech.samples) == len(good.samples), "the timing after the damage is kept"
    n = len(good.samples) // 8
    np.testing.assert_array_equal(speech.samples[-n:], good.samples[-n:])
    if lost == 0:  # FFmpeg decoded every packet (garbage or not): nothing to fill, nothing to report
        assert not damaged, damaged
        return
    # FFmpeg skipped damaged packets: the hole is filled with silence and reported where it is
    assert lost > 0 and damaged, "the lost packets are reported"
    intact = [i for i, (pts, _) in enumerate(frames) if pts is not None]
    before = next(i for i in intact if i + 1 >= len(frames) or frames[i + 1][0] != frames[i][0] + frames[i][1])
    after = next(i for i in intact if i > before)
    start = float(re.search(r"damaged at ([0-9.]+) s", damaged[0]).group(1))
    assert (frames[before][0] + frames[before][1]) / 16000 - 0.01 <= start <= frames[after][0] / 16000, damaged[0]
    silent = speech.samples[int(start * 16000) + 100: frames[after][0] - 16]  # %.2f s: ±80 samples
    assert not np.any(silent), "the hole is silence"


def test_silence_is_allowed_and_logged(audio_nets, source_face, caplog):
    silent = np.zeros((1, 2, 48000), np.float32)
    with caplog.at_level(logging.WARNING):
        speech = speech_from_waveform(torch.from_numpy(silent), 48000, "audio")
    assert speech.is_silent and speech.num_frames == 25
    assert any("silent" in r.getMessage() for r in caplog.records)
    motion = audio_motion(source_face.motion(), speech, audio_nets, AudioMotionOptions(blink="none", pose="still"))
    assert len(motion) == 25 and motion.info["silent"] and torch.isfinite(motion.coeffs).all()


def test_missing_weights_and_bad_options_fail_before_models(audio_root, tmp_path, capsys):
    err = _cli_error(TALKING, audio_root, tmp_path, capsys, "--audio-weights", str(tmp_path / "none.safetensors"))
    assert "--audio-weights" in err and "none.safetensors" in err and "SadTalker" in err
    err = _cli_error(TALKING, audio_root, tmp_path, capsys, "--pose-style", str(NUM_POSE_STYLES))
    assert "--pose-style" in err and f"0..{NUM_POSE_STYLES - 1}" in err
    err = _cli_error(TALKING, audio_root, tmp_path, capsys, "--blink", "reference")
    assert "--ref-blink" in err
    err = _cli_error(TALKING, audio_root, tmp_path, capsys, "--stride", "2")
    assert "--stride" in err
    err = _cli_error(TALKING, audio_root, tmp_path, capsys, "--ref-pose", str(tmp_path / "none.mp4"))
    assert "--ref-pose" in err and "none.mp4" in err
