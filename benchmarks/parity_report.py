"""Print the largest absolute difference of every network parity case against official_tiny.

Usage: python benchmarks/parity_report.py   (MIMAFACE_FIXTURES_DIR selects another fixture folder)

Regenerates the tiny released weights into a temporary folder, loads them through load_mimaface
and runs the cases of tests/test_parity_official_tiny.py, printing max |ours − released| next to
the tolerance. Not a test: a report for notes and reviews.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import official_tiny as ot  # noqa: E402

from mimaface_core import load_mimaface  # noqa: E402
from mimaface_core.networks.appearance_encoder import clip_preprocess  # noqa: E402
from mimaface_core.networks.denoiser import predict_noise  # noqa: E402
from mimaface_core.networks.mia import clip_context  # noqa: E402


def report(case, output, got):
    ref = ot.tensor(ot.cases()[case]["outputs"][output])
    diff = float((got.detach().float() - ref).abs().max())
    tol = ot.tolerance(case, output)
    print(f"{case:16s} {output:26s} max|diff| {diff:.3e}   atol {tol['atol']:.0e} rtol {tol['rtol']:.0e}")


@torch.no_grad()
def main():
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, found in ot.write_released_layout(root).items():
            print(f"{name:22s} recipe {ot.FAMILY.check_recipe(name, found)} matches")
        video, image = load_mimaface(root, "video"), load_mimaface(root, "image")
    ctx = lambda c: torch.cat([torch.zeros_like(c), c])  # noqa: E731
    report("unet3d", "noise_pred", predict_noise(video.denoiser, ot.inp("unet3d", "sample"), ot.inp("unet3d", "timestep"), ctx(ot.inp("unet3d", "context_cond"))))
    x = ot.inp("motion_module", "x")
    b, c, f, h, w = x.shape
    mm = video.denoiser.get_submodule(ot.cases()["motion_module"]["params"]["module"])
    y = mm(x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w), num_frames=f).reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)
    report("motion_module", "y", y)
    report("unet2d", "noise_pred", predict_noise(image.denoiser, ot.inp("unet2d", "sample"), ot.inp("unet2d", "timestep"), ctx(ot.inp("unet2d", "context_cond"))))
    report("clip_preprocess", "pixel_values", clip_preprocess(ot.source_image()))
    px = ot.inp("clip", "pixel_values")
    report("clip", "last_hidden_state_video", video.appearance_encoder(px))
    report("clip", "last_hidden_state_image", image.appearance_encoder(px))
    frames = ot.cases()["mim"]["params"]["frames"]
    co = {n: ot.inp("mim", n) for n in ("gaze", "exp", "tex", "gamma", "angles", "translation")}
    tokens, ident = ot.inp("mim", "clip_tokens").repeat(frames, 1, 1), ot.inp("mim", "identity").repeat(frames, 1)
    per_frame = video.mim(tokens, ident, **co)
    report("mim", "out_video_per_frame", per_frame)
    report("mim", "out_video_mean", clip_context(per_frame))
    report("mim", "out_image_frame0", image.mim(tokens[:1], ident[:1], **{n: v[:1] for n, v in co.items()}))
    report("d3dfr", "coeffs", video.d3dfr(ot.inp("d3dfr", "crop256")))
    x112 = ot.tensor(ot.cases()["identity"]["outputs"]["input112"])
    report("identity", "deep_features", video.identity_encoder.deep_features(x112))


if __name__ == "__main__":
    main()
