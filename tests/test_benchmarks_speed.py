"""The speed tooling of issue 24: the random-weight snapshot writer (benchmarks/random_snapshot.py),
the ``--compile`` guard, and the speed-presets benchmark's printed table (benchmarks/speed_presets.py),
each run as a user runs it. No figure is asserted: benchmarks print figures, tests check the jobs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mimaface_core.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_random_snapshot_writes_a_loadable_layout(tmp_path):
    """The tiny random snapshot, written by the script's command line, loads with load_mimaface in
    both modes at the sizes the script says it wrote."""
    import random_snapshot
    from mimaface_core import load_mimaface
    from mimaface_core.networks.denoiser import IN_CHANNELS, motion_modules

    out = tmp_path / "snapshot"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "random_snapshot.py"), str(out), "--size", "tiny"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(tiny size)" in proc.stdout and "UNet widths 32/64/128/128" in proc.stdout
    sizes = random_snapshot.SIZES["tiny"]
    model = load_mimaface(out, mode="video", device="cpu", dtype=torch.float32)
    unet = model.denoiser
    assert tuple(unet.config.block_out_channels) == sizes["unet"]
    assert unet.conv_in.in_channels == IN_CHANNELS
    assert len(list(motion_modules(unet))) == 20  # the released count: every block keeps its motion modules
    layers = [n for n, _ in model.appearance_encoder.clip.named_modules() if re.fullmatch(r".*encoder\.layers\.\d+", n)]
    assert len(layers) == sizes["clip_layers"]
    assert tuple(model.vae.config.block_out_channels) == sizes["vae"]
    assert model.bfm.tri.shape[1] == 3 and model.bfm.id_base.shape == (3 * model.bfm.num_vertices, 80)
    # the motion modules came from 3dunet.pth (not left at a constructor's init): every tensor is the file's
    state = torch.load(out / "checkpoints" / "video" / "3dunet.pth", weights_only=True)
    key = next(k for k in state if "motion_modules.0.temporal_transformer.proj_in.weight" in k)
    loaded = dict(unet.named_parameters())[key.replace(".temporal_transformer", "")]
    torch.testing.assert_close(loaded, state[key], rtol=0, atol=0)
    image = load_mimaface(out, mode="image", device="cpu", dtype=torch.float32)
    assert tuple(image.denoiser.config.block_out_channels) == sizes["unet"]


def test_compile_refused_before_loading_without_a_compiler(animate_root, tmp_path, capsys, monkeypatch):
    """--compile on the CPU without a C++ compiler: a clear error naming --compile, no model loaded."""
    import mimaface_core.sampling.compile as compile_module
    import mimaface_core.weights.loader as loader

    monkeypatch.setattr(compile_module.shutil, "which", lambda name: None)
    loads = []
    monkeypatch.setattr(loader, "load_mimaface", lambda *a, **k: loads.append(a))
    code = main(["animate", "--source", str(ROOT / "example_media" / "portrait_eileen_collins.jpg"),
                 "--driving", str(ROOT / "example_media" / "driving_talking.mp4"), "--weights", str(animate_root),
                 "--out", str(tmp_path / "out.mp4"), "--device", "cpu", "--compile"])
    err = capsys.readouterr().err
    assert code != 0 and "--compile" in err and "C++ compiler" in err and "Traceback" not in err
    assert not loads
    assert not (tmp_path / "out.mp4").exists()
