"""The evaluation metrics, each against an independent computation on inputs made here (real
faces of the alignment fixture, the MIMAFace estimators of the regenerated released snapshot)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image, ImageFilter

from alignment_fixture import entries, media_path, side_file
from mimaface_core.evaluation.distribution import FIDAccumulator, fid_unavailable
from mimaface_core.evaluation.face_measures import measure_face
from mimaface_core.evaluation.pixel_metrics import PSNR_CAP_DB, lpips_unavailable, psnr, ssim, why_unavailable
from mimaface_core.evaluation.seams import seam_frames, seam_level_ratio, seam_score
from mimaface_core.morphable.coefficients import ANGLES, EXP, GAZE, TRANSLATION
from mimaface_core.motion.extract import extract_image_motion

ROOT = Path(__file__).resolve().parents[1]


def _crops() -> list[np.ndarray]:
    """The released 512 crops of the fixture's photos (real faces)."""
    out = []
    for e in entries("photo"):
        f = side_file(e["data"]["crop512"].get("file"))
        if f is not None:
            out.append(np.asarray(Image.open(f).convert("RGB")))
    assert len(out) >= 2, "the alignment fixture needs two photo crops"
    return out


def _unit(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255


def _blur(rgb: np.ndarray, radius: float) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(radius)))


@pytest.fixture(scope="module")
def crops():
    return _crops()


def test_psnr_and_ssim_match_scikit_image(crops):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    a = crops[0]
    assert psnr(_unit(a), _unit(a)) == PSNR_CAP_DB and ssim(_unit(a), _unit(a)) == pytest.approx(1.0, abs=1e-6)
    previous = (PSNR_CAP_DB, 1.0)
    for radius in (1.0, 3.0):
        b = _blur(a, radius)
        ours = psnr(_unit(b), _unit(a)), ssim(_unit(b), _unit(a))
        ref_psnr = peak_signal_noise_ratio(a.astype(np.float64) / 255, b.astype(np.float64) / 255, data_range=1.0)
        ref_ssim = structural_similarity(a.astype(np.float64) / 255, b.astype(np.float64) / 255, data_range=1.0,
                                         channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        assert ours[0] == pytest.approx(ref_psnr, abs=1e-3) and ours[1] == pytest.approx(ref_ssim, abs=1e-5)
        assert ours[0] < previous[0] and ours[1] < previous[1], "a stronger blur must lower both"
        previous = ours


def test_face_metrics_of_a_face_against_itself_and_a_shifted_copy(crops, estimators):
    a = crops[0]
    m = measure_face(a, estimators)
    assert m.found and m.landmarks.shape == (5, 2) and m.coeffs.shape == (261,) and m.embedding.shape == (512,)
    again = measure_face(a.copy(), estimators)
    np.testing.assert_array_equal(m.coeffs, again.coeffs)
    assert float(np.dot(m.embedding, again.embedding)) == pytest.approx(1.0, abs=1e-5)
    shift = 8
    shifted = np.roll(a, shift, axis=1)
    s = measure_face(shifted, estimators)
    lmd = np.linalg.norm(s.landmarks - m.landmarks, axis=1).mean()
    assert abs(lmd - shift) < 2.0, f"a {shift}-pixel shift moves the landmarks by about {shift} px, got {lmd:.2f}"
    # the coefficients are those of the pipeline's own motion extraction of the same crops
    for img, meas in ((a, m), (shifted, s)):
        ref = extract_image_motion(img, estimators.detector, estimators.d3dfr, as_crop=True).coeffs[0].numpy()
        np.testing.assert_allclose(meas.coeffs, ref, atol=1e-5)
    other = measure_face(crops[1], estimators)
    assert float(np.dot(m.embedding, other.embedding)) < 1.0 - 1e-4, "CSIM of two people is below that of one face"


def test_no_face_is_reported(estimators):
    assert not measure_face(np.zeros((512, 512, 3), np.uint8), estimators).found


class _Stats(torch.nn.Module):
    """A small fixed feature: per-channel means and standard deviations over 4x4 cells."""

    def forward(self, x):
        cells = torch.nn.functional.adaptive_avg_pool2d(x.float(), 4)
        return torch.cat([cells.flatten(1), x.float().flatten(2).std(2)], 1)


def _frechet(f1: np.ndarray, f2: np.ndarray) -> float:
    mu1, mu2 = f1.mean(0), f2.mean(0)
    c1, c2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    root = scipy.linalg.sqrtm(c1 @ c2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * root))


def test_fid_accumulates_to_the_frechet_distance(crops):
    rng = np.random.default_rng(0)
    real = [_blur(crops[i % len(crops)], float(r)) for i, r in enumerate(rng.uniform(0, 4, 60))]
    fake = [np.clip(r.astype(np.int16) + 25, 0, 255).astype(np.uint8) for r in real]  # brighter
    same = FIDAccumulator(_Stats())
    for r in real:
        same.add(_unit(r), real=True)
        same.add(_unit(r), real=False)
    assert same.value() == pytest.approx(0.0, abs=1e-6)
    acc = FIDAccumulator(_Stats())
    for r, f in zip(real, fake):
        acc.add(_unit(r), real=True)
        acc.add(_unit(f), real=False)
    feats = lambda xs: torch.cat([_Stats()(_unit(x)) for x in xs]).double().numpy()  # noqa: E731
    assert acc.value() == pytest.approx(_frechet(feats(real), feats(fake)), rel=1e-4)
    assert acc.value() > 1e-3
    with pytest.raises(ValueError, match="at least 2 frames"):
        one = FIDAccumulator(_Stats())
        one.add(_unit(real[0]), True)
        one.value()


def test_missing_standard_weights_are_named(tmp_path, monkeypatch):
    """With an empty torch.hub folder each metric is skipped, and the reason names what is missing:
    the weight file and where it goes when the library imports, else the library to install."""
    import importlib

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoints = tmp_path / "hub" / "checkpoints"
    inception = "weights-inception-2015-12-05-6726825d.pth"
    for reason, library, install, name in (
            (lpips_unavailable(), "torchvision", "torchvision", "alexnet-owt-7be5be79.pth"),
            (fid_unavailable(), "torch_fidelity", "pip install torch-fidelity", inception)):
        assert reason is not None and "skipped" in reason
        try:
            importlib.import_module(library)
        except Exception:  # noqa: BLE001 - as why_unavailable: the library is what is missing
            assert install in reason and "does not import" in reason, reason
        else:
            assert name in reason and str(checkpoints / name) in reason, reason
    # the file-name branch, whichever libraries this machine has: a library that always imports
    x = ("X", "json", "json", "", "X's weights", "x-1234.pth", "https://example.org/x-1234.pth")
    reason = why_unavailable(*x)
    assert reason == (f"X skipped: X's weights are not on this machine; put x-1234.pth "
                      f"(https://example.org/x-1234.pth) at {checkpoints / 'x-1234.pth'}.")
    checkpoints.mkdir(parents=True)
    (checkpoints / "x-1234.pth").write_bytes(b"")
    assert why_unavailable(*x) is None


def test_seam_frames_and_scores():
    for n, length, overlap in ((20, 8, 2), (31, 12, 3), (12, 12, 3), (9, 4, 0)):
        expected = [s + overlap for s in range(length - overlap, n, length - overlap) if s + overlap < n]
        assert seam_frames(n, length, overlap) == expected
    n, seams = 30, seam_frames(30, 8, 2)
    rng = np.random.default_rng(1)
    smooth = np.cumsum(rng.uniform(0.9, 1.1, n))
    assert seam_score(smooth, seams) == pytest.approx(1.0, abs=0.15)
    stepped = smooth.copy()
    for t in seams:
        stepped[t:] += 4.0
    steps = np.abs(np.diff(stepped))
    at = np.mean([steps[t - 1] for t in seams])
    inside = np.mean([steps[t - 1] for t in range(1, n) if t not in seams])
    assert seam_score(stepped, seams) == pytest.approx(at / inside) and seam_score(stepped, seams) > 3
    diff = np.full(n, 0.01)
    diff[0] = np.nan
    diff[seams] = 0.05
    assert seam_level_ratio(diff, seams) == pytest.approx(5.0)
    assert seam_score(smooth, []) is None


def _comfy_python() -> Path | None:
    d = os.environ.get("COMFYUI_DIR")
    py = Path(d) / ".venv" / "bin" / "python" if d else None
    return py if py is not None and py.is_file() else None


LPIPS_SCRIPT = r'''
import sys, torch, numpy as np, torchvision
from PIL import Image, ImageFilter
sys.path.insert(0, sys.argv[1])
from mimaface_core.evaluation.pixel_metrics import LPIPS, lpips_unavailable, hub_checkpoint, ALEXNET_FILE
assert "alexnet-owt-7be5be79.pth" in lpips_unavailable()
torch.manual_seed(3)
hub_checkpoint(ALEXNET_FILE).parent.mkdir(parents=True)
torch.save(torchvision.models.alexnet(weights=None).state_dict(), hub_checkpoint(ALEXNET_FILE))
assert lpips_unavailable() is None
metric = LPIPS()
a = np.array(Image.open(sys.argv[2]).convert("RGB"))
unit = lambda x: torch.from_numpy(np.asarray(x)).permute(2, 0, 1)[None].float() / 255
blurred = [np.asarray(Image.fromarray(a).filter(ImageFilter.GaussianBlur(r))) for r in (1.0, 3.0)]
values = [metric(unit(a), unit(a))] + [metric(unit(b), unit(a)) for b in blurred]
# by hand: AlexNet's five ReLU outputs, unit-normalised channels, squared difference, the
# shipped v0.1 linear weights, spatial mean, summed over layers (Zhang et al. 2018, eq. 1)
import torchmetrics.functional.image.lpips as tl, os
feats = torch.load(hub_checkpoint(ALEXNET_FILE), map_location="cpu", weights_only=True)
net = torchvision.models.alexnet(weights=None).features.eval()
net.load_state_dict({k[len("features."):]: v for k, v in feats.items() if k.startswith("features.")})
lin = torch.load(os.path.join(os.path.dirname(tl.__file__), "lpips_models", "alex.pth"), map_location="cpu", weights_only=True)
shift = torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1); scale = torch.tensor([.458, .448, .450]).view(1, 3, 1, 1)
def layers(x):
    x = ((x * 2 - 1) - shift) / scale
    out = []
    for i, layer in enumerate(net):
        x = layer(x)
        if i in (1, 4, 7, 9, 11):
            out.append(x)
    return out
def by_hand(x, y):
    total = 0.0
    for k, (f, g) in enumerate(zip(layers(x), layers(y))):
        f = f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10); g = g / (g.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        w = lin[f"lin{k}.model.1.weight"]
        total += float(torch.nn.functional.conv2d((f - g) ** 2, w).mean())
    return total
with torch.no_grad():
    ref = [by_hand(unit(a), unit(a))] + [by_hand(unit(b), unit(a)) for b in blurred]
print("LPIPS", values, ref)
assert values[0] == 0.0 and 0 < values[1] < values[2]
assert np.allclose(values, ref, rtol=1e-4, atol=1e-6), (values, ref)
'''


def test_lpips_in_comfyui_python_against_a_by_hand_computation(crops, tmp_path):
    """LPIPS needs torchvision, which ComfyUI has and this test environment cannot install beside
    torch 2.13; it runs in ComfyUI's python (CI installs it). The AlexNet weights are seeded random
    ones in a private TORCH_HOME (nothing is downloaded)."""
    py = _comfy_python()
    if py is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but COMFYUI_DIR has no ComfyUI venv: .ci/run installs it")
        pytest.skip("COMFYUI_DIR not set: LPIPS runs in ComfyUI's python (torchvision)")
    crop = tmp_path / "crop.png"
    Image.fromarray(crops[0]).save(crop)
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch_home")}
    run = subprocess.run([str(py), "-c", LPIPS_SCRIPT, str(ROOT), str(crop)], capture_output=True, text=True,
                         env=env, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert "LPIPS" in run.stdout
