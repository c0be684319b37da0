"""Print the largest difference of every audio2coeff parity output (SadTalker's released audio path).

Usage: python benchmarks/audio_parity_report.py   (MIMAFACE_AUDIO_FIXTURES_DIR selects another folder)

Regenerates SadTalker's audio weights from the fixture's recipe in both official forms, loads each
with load_audio_networks and runs the cases of tests/test_audio_parity.py, printing max |ours − SadTalker|
next to the tolerance. Not a test: a report for notes and reviews.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import audio_fixture as fx  # noqa: E402

from mimaface_core.audio.coefficients import (  # noqa: E402
    SADTALKER_POSE, predict_expression, predict_pose, sadtalker_coefficients, smooth_pose, stored_latents)
from mimaface_core.audio.decode import load_audio  # noqa: E402
from mimaface_core.audio.mel import (  # noqa: E402
    amplitude_to_normalized_db, crop_to_frames, frame_index, mel_basis, mel_windows, melspectrogram, preemphasize,
    stft_magnitude, window_starts)
from mimaface_core.audio.weights import load_audio_networks  # noqa: E402


def report(form, case, output, got):
    ref = fx.out(case, output)
    got = torch.as_tensor(np.asarray(got) if not torch.is_tensor(got) else got)
    diff = float((got.double().reshape(ref.shape) - ref.double()).abs().max())
    tol = fx.case(case)["tolerance"][output]
    print(f"{form:8s} {case:10s} {output:18s} max|diff| {diff:.3e}   atol {tol['atol']:.0e} rtol {tol['rtol']:.0e}")


@torch.no_grad()
def main():
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        written = fx.write_official_layout(Path(tmp))
        forms = {"combined": load_audio_networks(fx.files_of(written, "safetensors_prefixed")[0]),
                 "pth": load_audio_networks(fx.files_of(written, "torch_cpk")[0])}
    wav = load_audio(fx.data_file("mel")).samples
    cut, t = crop_to_frames(wav)
    emph = preemphasize(cut)
    mag = stft_magnitude(emph)
    linear = mel_basis().astype(np.float64) @ mag
    db, norm = amplitude_to_normalized_db(linear)
    mel = melspectrogram(cut)
    for name, got in (("wav_cropped", cut), ("preemphasized", emph), ("stft_magnitude", mag),
                      ("mel_basis", mel_basis()), ("mel_linear", linear), ("mel_db", db), ("mel", mel),
                      ("start_idx", window_starts(range(t))), ("frame_index", frame_index(range(t), len(mel))),
                      ("indiv_mels", mel_windows(mel, range(t)))):
        report("-", "mel", name, got)
    ref70 = fx.inp("audio2exp", "ref_coeff")[0].numpy()
    ratio = fx.inp("audio2exp", "ratio")[0, :, 0].numpy()
    z = fx.inp("audio2pose", "z")
    style = fx.case("audio2pose")["inputs"]["class"]["value"]
    ref_pose = fx.inp("coeffs", "ref_pose")[:, SADTALKER_POSE].numpy()
    short_wav, ts = crop_to_frames(load_audio(fx.data_file("short")).samples)
    short_mel = melspectrogram(short_wav)
    for form, nets in forms.items():
        embs: list = []
        report(form, "audio2exp", "exp_coeff_pred",
               predict_expression(nets.audio2exp, mel, t, ref70[:64], ratio, chunk=10, embeddings=embs)[None])
        report(form, "audio2exp", "audio_emb", torch.cat(embs))
        trace: list = []
        pose = predict_pose(nets.audio2pose, mel, t, ref70[SADTALKER_POSE], style, stored_latents(z), trace=trace)
        for k, rec in enumerate(trace):
            for key in ("audio_emb", "mlp_out", "resunet_out", "motion"):
                report(form, "audio2pose", f"{key}_w{k}", rec[key])
        report(form, "audio2pose", "pose_motion_pred", (pose - ref70[SADTALKER_POSE])[None])
        report(form, "audio2pose", "pose_pred", pose[None])
        report(form, "audio2pose", "pose_pred_smooth", smooth_pose(pose)[None])
        kw = dict(ratio=ratio, pose_style=style, latents=stored_latents(z))
        report(form, "coeffs", "coeffs", sadtalker_coefficients(nets.audio2exp, nets.audio2pose, mel, t, ref70, **kw))
        report(form, "coeffs", "coeffs_refpose", sadtalker_coefficients(
            nets.audio2exp, nets.audio2pose, mel, t, ref70, pose="reference", reference_pose=ref_pose, **kw))
        zs = fx.inp("short", "z")
        sratio = np.zeros(ts, np.float32)
        strace: list = []
        spose = predict_pose(nets.audio2pose, short_mel, ts, ref70[SADTALKER_POSE], style, stored_latents(zs), trace=strace)
        if form == "combined":
            report("-", "short", "mel", short_mel)
            report("-", "short", "frame_index", frame_index(range(ts), len(short_mel)))
            report("-", "short", "indiv_mels", mel_windows(short_mel, range(ts)))
        report(form, "short", "exp_coeff_pred", predict_expression(nets.audio2exp, short_mel, ts, ref70[:64], sratio)[None])
        report(form, "short", "audio_emb_w0", strace[0]["audio_emb"])
        report(form, "short", "motion_w0", strace[0]["motion"])
        report(form, "short", "pose_pred", spose[None])
        report(form, "short", "coeffs", sadtalker_coefficients(nets.audio2exp, nets.audio2pose, short_mel, ts, ref70,
                                                               ratio=sratio, pose_style=style, latents=stored_latents(zs)))


if __name__ == "__main__":
    main()
