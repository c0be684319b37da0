"""The Table 1 protocol: pair sampling on a VoxCeleb1-style folder, and the CI-sized benchmark run
(real clips of the alignment fixture, the tiny recipe weights) printing every column."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from alignment_fixture import entries, media_path
from mimaface_core.evaluation.protocol import find_clips, sample_pairs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


@pytest.fixture(scope="module")
def vox(tmp_path_factory):
    """ROOT/<identity>/<video id>/<clip>.mp4 from the fixture's videos, one identity per video
    file stem's first word pair (the same person's clips share an identity)."""
    root = tmp_path_factory.mktemp("vox")
    for e in entries("video"):
        src = media_path(e)
        identity = "_".join(src.stem.split("_")[:3])  # e.g. intel_headpose_female / openmpf_video_01
        folder = root / identity / src.stem
        folder.mkdir(parents=True)
        os.symlink(src, folder / "00001.mp4")
    return root


def test_pairs_are_seeded_and_well_formed(vox):
    clips = find_clips(vox)
    assert len(clips) == len(entries("video"))
    pairs = sample_pairs(clips, limit=2, seed=3)
    assert pairs == sample_pairs(clips, limit=2, seed=3)
    same = [p for p in pairs if p.kind == "same"]
    cross = [p for p in pairs if p.kind == "cross"]
    assert len(same) == min(2, len(clips)) and all(p.source == p.driving for p in same)
    assert len(cross) == len(same) and all(p.source.identity != p.driving.identity for p in cross)
    assert len(sample_pairs(clips)) == 2 * len(clips)
    with pytest.raises(ValueError, match="identity folder"):
        (vox / "loose.mp4").symlink_to(clips[0].path)
        try:
            find_clips(vox)
        finally:
            (vox / "loose.mp4").unlink()


def test_ci_sized_benchmark_prints_every_column(vox, animate_root, tmp_path, capsys):
    import evaluation_protocol

    out = tmp_path / "report.json"
    report = evaluation_protocol.main(["--vox", str(vox), "--weights", str(animate_root), "--limit", "1",
                                       "--frames", "2", "--steps", "1", "--clip-length", "2", "--overlap", "0",
                                       "--device", "cpu", "--json", str(out)])
    printed = capsys.readouterr().out
    table = printed[printed.index("PSNR↑") - 15:]
    print(table)  # the CI-sized table, for the notes (pytest -s)
    for label in ("PSNR↑", "SSIM↑", "LPIPS↓", "Exp↓", "Pose↓", "Gaze↓", "CSIM↑", "LMD↓", "FID↓"):
        assert label in table.splitlines()[0]
    assert "same-identity" in table and "cross-identity" in table and "(2 pairs)" in table
    assert json.loads(out.read_text())["table"] == report["table"]
    assert [p["kind"] for p in report["pairs"]] == ["same", "cross"]
    for kind in ("same", "cross"):
        assert set(report["table"][kind]) == set(evaluation_protocol.COLUMNS)
    # what is not measured here says why: LPIPS/FID need weights (or torchvision), the tiny
    # random weights draw no faces
    for column in ("lpips", "fid"):
        assert column in report["skipped"] and "skipped" in report["skipped"][column]
    assert report["table"]["same"]["psnr"] is not None and report["table"]["same"]["ssim"] is not None
