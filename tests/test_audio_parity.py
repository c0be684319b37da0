"""Parity with SadTalker's released audio-to-coefficient code (fixture audio2coeff): the mel and
its per-frame windows, Audio2Exp, Audio2Pose (fed the stored latents) before and after smoothing,
the coefficients with and without the reference pose, the short clip, and both checkpoint forms.
Every shape, length, seed and parameter comes from the fixture folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import audio_fixture as fx
from mimaface_core.audio.audio2pose import pose_windows
from mimaface_core.audio.blink import random_blinks
from mimaface_core.audio.coefficients import (
    SADTALKER_POSE,
    apply_reference_pose,
    predict_expression,
    predict_pose,
    sadtalker_coefficients,
    seeded_latents,
    smooth_pose,
    stored_latents,
)
from mimaface_core.audio.decode import load_audio
from mimaface_core.audio.mel import (
    MelParams,
    amplitude_to_normalized_db,
    crop_to_frames,
    frame_index,
    mel_basis,
    mel_windows,
    melspectrogram,
    preemphasize,
    stft_magnitude,
    window_starts,
)
from mimaface_core.audio.weights import load_audio_networks

MEL = fx.case("mel")


def _params() -> MelParams:
    hp = MEL["params"]["hparams"]
    assert hp["use_lws"] is False and hp["preemphasize"] and hp["signal_normalization"] and hp["symmetric_mels"]
    return MelParams(hp["sample_rate"], hp["n_fft"], hp["hop_size"], hp["win_size"], hp["num_mels"], hp["fmin"],
                     hp["fmax"], hp["preemphasis"], hp["min_level_db"], hp["ref_level_db"], hp["max_abs_value"])


@pytest.fixture(scope="session", params=["safetensors_prefixed", "torch_cpk"])
def nets(request, sadtalker_files):
    files = fx.files_of(sadtalker_files, request.param)
    return load_audio_networks(files[0])  # the partner .pth is found beside the first


def test_decoded_wav_is_the_official_load(tmp_path):
    speech = load_audio(fx.data_file("mel"), what="speech")
    assert np.array_equal(speech.samples, fx.inp("mel", "wav").numpy())
    assert speech.num_frames == MEL["params"]["num_frames"]


def test_mel_and_every_intermediate():
    p = _params()
    wav = fx.inp("mel", "wav").numpy()
    cut, t = crop_to_frames(wav)
    assert t == MEL["params"]["num_frames"]
    fx.check("mel", "wav_cropped", torch.from_numpy(cut))
    emph = preemphasize(cut, p.preemphasis)
    fx.check("mel", "preemphasized", torch.from_numpy(emph))
    mag = stft_magnitude(emph, p)
    fx.check("mel", "stft_magnitude", torch.from_numpy(mag))
    basis = mel_basis(p)
    fx.check("mel", "mel_basis", torch.from_numpy(basis))
    linear = basis.astype(np.float64) @ mag
    fx.check("mel", "mel_linear", torch.from_numpy(linear))
    db, norm = amplitude_to_normalized_db(linear, p)
    fx.check("mel", "mel_db", torch.from_numpy(db))
    fx.check("mel", "mel", torch.from_numpy(norm.T.copy()))
    mel = melspectrogram(cut, p)
    assert mel.shape == (MEL["params"]["T_mel"], p.num_mels)
    fx.check("mel", "mel", torch.from_numpy(mel))
    # chunked computation: same frames whatever the chunk size
    assert np.array_equal(melspectrogram(cut, p, chunk_rows=7), mel)
    frames = range(t)
    fx.check("mel", "start_idx", torch.from_numpy(window_starts(frames, MEL["params"]["fps"], p)))
    fx.check("mel", "frame_index", torch.from_numpy(frame_index(frames, len(mel), MEL["params"]["fps"], p)))
    fx.check("mel", "indiv_mels", mel_windows(mel, frames, MEL["params"]["fps"], p))


def _mel(case_name: str) -> tuple[np.ndarray, int]:
    cut, t = crop_to_frames(fx.inp(case_name, "wav").numpy())
    return melspectrogram(cut, _params()), t


def test_blink_pattern_from_seed():
    ratio = fx.inp("audio2exp", "ratio")
    params = fx.case("audio2exp")["params"]
    got = random_blinks(ratio.shape[1], params["blink_seed"])
    assert np.array_equal(got, ratio[0, :, 0].numpy())
    assert got.any(), "the fixture's clip is long enough to blink"
    short = fx.out("short", "ratio")
    assert np.array_equal(random_blinks(short.shape[1], params["blink_seed"]), short[0, :, 0].numpy())


def test_audio2exp(nets):
    mel, t = _mel("mel")
    ref = fx.inp("audio2exp", "ref_coeff")[0].numpy()
    ratio = fx.inp("audio2exp", "ratio")[0, :, 0].numpy()
    embs: list = []
    exp = predict_expression(nets.audio2exp, mel, t, ref[:64], ratio, chunk=fx.case("audio2exp")["params"]["chunk"],
                             embeddings=embs)
    fx.check("audio2exp", "audio_emb", torch.cat(embs))
    fx.check("audio2exp", "exp_coeff_pred", torch.from_numpy(exp)[None])
    # one batch of all frames gives the same within the tolerance
    fx.check("audio2exp", "exp_coeff_pred", torch.from_numpy(predict_expression(nets.audio2exp, mel, t, ref[:64], ratio,
                                                                                 chunk=t))[None])


def test_audio2pose_windows_and_smoothing(nets):
    c = fx.case("audio2pose")
    mel, t = _mel("mel")
    assert t == c["params"]["num_frames"]
    z = fx.inp("audio2pose", "z")
    wins = pose_windows(t, c["params"]["seq_len"])
    assert len(wins) == len(c["params"]["windows"]) == len(z)
    for w, ref_w in zip(wins, c["params"]["windows"]):
        assert [w.start, w.stop] == ref_w["mel_frames"] and w.pad == ref_w["pad_front"]
        assert [w.out_start, w.out_start + w.keep] == ref_w["out_frames"]
    ref6 = fx.inp("audio2exp", "ref_coeff")[0, SADTALKER_POSE].numpy()
    trace: list = []
    pose = predict_pose(nets.audio2pose, mel, t, ref6, c["inputs"]["class"]["value"], stored_latents(z), trace=trace)
    for k, record in enumerate(trace):
        fx.check("audio2pose", f"audio_emb_w{k}", record["audio_emb"])
        fx.check("audio2pose", f"mlp_out_w{k}", record["mlp_out"])
        fx.check("audio2pose", f"resunet_out_w{k}", record["resunet_out"])
        fx.check("audio2pose", f"motion_w{k}", record["motion"])
    fx.check("audio2pose", "pose_motion_pred", torch.from_numpy(pose - ref6)[None])
    fx.check("audio2pose", "pose_pred", torch.from_numpy(pose)[None])
    assert c["params"]["savgol"]["window_length"] == (13 if t >= 13 else int((t - 1) / 2) * 2 + 1)
    fx.check("audio2pose", "pose_pred_smooth", torch.from_numpy(smooth_pose(pose))[None])


def test_seeded_latents_are_the_official_draws():
    z = fx.inp("audio2pose", "z")
    latent = seeded_latents(fx.case("audio2pose")["params"]["torch_seed"])
    assert torch.equal(torch.cat([latent(k) for k in range(len(z))]), z)
    short = fx.inp("short", "z")
    latent = seeded_latents(fx.case("short")["params"]["torch_seed"])
    assert torch.equal(torch.cat([latent(k) for k in range(len(short))]), short)


def test_coefficients_with_and_without_reference_pose(nets):
    mel, t = _mel("mel")
    ref70 = fx.inp("audio2exp", "ref_coeff")[0].numpy()
    ratio = fx.inp("audio2exp", "ratio")[0, :, 0].numpy()
    style = fx.case("audio2pose")["inputs"]["class"]["value"]
    z = fx.inp("audio2pose", "z")
    kwargs = dict(ratio=ratio, pose_style=style, latents=stored_latents(z))
    coeffs = sadtalker_coefficients(nets.audio2exp, nets.audio2pose, mel, t, ref70, pose="audio", **kwargs)
    fx.check("coeffs", "coeffs", torch.from_numpy(coeffs))
    ref_pose = fx.inp("coeffs", "ref_pose")[:, SADTALKER_POSE].numpy()
    assert len(ref_pose) == fx.case("coeffs")["params"]["refpose_frames"]
    with_ref = sadtalker_coefficients(nets.audio2exp, nets.audio2pose, mel, t, ref70, pose="reference",
                                      reference_pose=ref_pose, **kwargs)
    fx.check("coeffs", "coeffs_refpose", torch.from_numpy(with_ref))
    assert np.allclose(apply_reference_pose(coeffs[:, SADTALKER_POSE], ref_pose), with_ref[:, SADTALKER_POSE], atol=1e-6)


def test_short_clip_whole_chain(nets):
    c = fx.case("short")
    speech = load_audio(fx.data_file("short"), what="short speech")
    assert np.array_equal(speech.samples, fx.inp("short", "wav").numpy())
    cut, t = crop_to_frames(speech.samples)
    assert t == c["params"]["num_frames"]
    mel = melspectrogram(cut, _params())
    fx.check("short", "mel", torch.from_numpy(mel))
    assert window_starts(range(t)).tolist() == c["params"]["start_idx"]
    fx.check("short", "frame_index", torch.from_numpy(frame_index(range(t), len(mel))))
    fx.check("short", "indiv_mels", mel_windows(mel, range(t)))
    ratio = random_blinks(t, 0)
    fx.check("short", "ratio", torch.from_numpy(ratio)[None, :, None])
    ref70 = fx.tensor(c["inputs"]["ref_coeff"])[0].numpy()
    exp = predict_expression(nets.audio2exp, mel, t, ref70[:64], ratio)
    fx.check("short", "exp_coeff_pred", torch.from_numpy(exp)[None])
    wins = pose_windows(t)
    assert [[w.start, w.stop, w.pad] for w in wins] == [w["mel_frames"] + [w["pad_front"]] for w in c["params"]["windows"]]
    trace: list = []
    z = fx.inp("short", "z")
    pose = predict_pose(nets.audio2pose, mel, t, ref70[SADTALKER_POSE], c["inputs"]["class"]["value"],
                        stored_latents(z), trace=trace)
    fx.check("short", "audio_emb_w0", trace[0]["audio_emb"])
    fx.check("short", "motion_w0", trace[0]["motion"])
    fx.check("short", "pose_pred", torch.from_numpy(pose)[None])
    coeffs = sadtalker_coefficients(nets.audio2exp, nets.audio2pose, mel, t, ref70, ratio=ratio, pose="audio",
                                    pose_style=c["inputs"]["class"]["value"], latents=stored_latents(z))
    fx.check("short", "coeffs", torch.from_numpy(coeffs))


def test_both_checkpoint_forms_give_the_same_networks(sadtalker_files):
    a = load_audio_networks(fx.files_of(sadtalker_files, "safetensors_prefixed")[0])
    b = load_audio_networks(fx.files_of(sadtalker_files, "torch_cpk")[1])  # the pose file finds its partner
    for x, y in ((a.audio2exp, b.audio2exp), (a.audio2pose, b.audio2pose)):
        sx, sy = x.state_dict(), y.state_dict()
        assert sx.keys() == sy.keys() and all(torch.equal(sx[k], sy[k]) for k in sx)
    folder = load_audio_networks(fx.files_of(sadtalker_files, "safetensors_prefixed")[0].parent)
    assert folder.files == a.files  # a folder with both forms prefers the combined file
