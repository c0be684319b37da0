"""``python -m mimaface_core batch``: a manifest of the five kinds of job plus two bad lines, run
as the README says; every output equal to its solo ``animate`` / ``evaluate`` run; resume (all
skipped without loading a network), a changed option reruns its job alone; Ray (a local cluster
of two CPU workers): the same outputs, and a killed worker's job retried and reported."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mimaface_core.__main__ import main
from mimaface_core.media.video_in import iter_video_frames

EXAMPLES = Path(__file__).resolve().parents[1] / "example_media"
PORTRAIT, TALKING = EXAMPLES / "portrait_eileen_collins.jpg", EXAMPLES / "driving_talking.mp4"
GROUP, TWO_PEOPLE = EXAMPLES / "group_photo.jpg", EXAMPLES / "driving_two_people.mp4"
TINY = {"limit": 3, "clip-length": 4, "overlap": 1}
FRAMES = 3


def _jobs(root: Path) -> list[dict]:
    """The five jobs (paths relative to the manifest in ``root``); ``_`` and ``-`` keys both used."""
    rel = str  # the shipped media by absolute path; smile.txt and frames/ relative to the manifest
    return [
        {"id": "video", "source": rel(PORTRAIT), "driving": rel(TALKING), "out": "video.mp4", **TINY},
        {"id": "speech", "source": rel(PORTRAIT), "audio": rel(TALKING), "out": "speech.mp4", "limit": 3,
         "clip_length": 4, "overlap": 1, "still": True},
        {"id": "keys", "source": rel(PORTRAIT), "keyframes": "smile.txt", "frames": 3, "out": "keys.mp4",
         "clip-length": 4, "overlap": 1},
        {"id": "group", "source": rel(GROUP), "driving": rel(TWO_PEOPLE), "faces": "all", "out": "group.mp4", **TINY},
        {"id": "metrics", "kind": "evaluate", "generated": "frames", "driving": rel(TALKING), "limit": FRAMES,
         "no_lpips": True, "no-fid": True, "out": "metrics.json"},
    ]


BAD = [{"id": "missing", "source": "no_such_photo.png", "driving": str(TALKING), "out": "missing.mp4"},
       {"id": "typo", "source": str(PORTRAIT), "driving": str(TALKING), "stepz": 2, "out": "typo.mp4"}]


def _write_manifest(root: Path, jobs: list[dict]) -> Path:
    lines = [json.dumps(j) for j in jobs[:2]] + [json.dumps(BAD[0])] + [json.dumps(j) for j in jobs[2:4]] + \
        [json.dumps(BAD[1]), json.dumps(jobs[4])]
    path = root / "jobs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path  # bad lines: 3 and 6


def _batch(manifest, out_dir, weights, *extra):
    return main(["batch", str(manifest), "--out-dir", str(out_dir), "--weights", str(weights), "--device", "cpu",
                 "--steps", "2", *extra])


def _report(out_dir) -> dict:
    with open(Path(out_dir) / "batch_report.csv", newline="") as f:
        return {row["id"]: row for row in csv.DictReader(f)}


def _frames(path) -> np.ndarray:
    return np.stack(list(iter_video_frames(path)))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch_manifest")
    (root / "smile.txt").write_text("0: smile=0\n2 smooth: smile=1\n")
    (root / "frames").mkdir()
    for i, frame in enumerate(iter_video_frames(TALKING, limit=FRAMES)):
        Image.fromarray(frame).save(root / "frames" / f"{i:04d}.png")
    return root


@pytest.fixture(scope="module")
def first_batch(workspace, audio_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch_out")
    manifest = _write_manifest(workspace, _jobs(workspace))
    code = _batch(manifest, out, audio_root)
    return manifest, out, code


def _solo_argv(job: dict, root: Path, out: Path) -> list[str]:
    """The job as the ``animate`` / ``evaluate`` command line a user would type."""
    kind = job.get("kind", "animate")
    argv = [kind]
    for key, value in job.items():
        if key in ("id", "kind", "out"):
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        else:
            path = root / str(value)
            argv += [flag, str(path) if key in ("keyframes", "generated") else str(value)]
    return argv + ["--json" if kind == "evaluate" else "--out", str(out)]


def test_batch_runs_the_good_lines_reports_the_bad_and_equals_solo_runs(first_batch, workspace, audio_root,
                                                                        tmp_path, capsys):
    manifest, out, code = first_batch
    assert code == 1  # two bad lines count as failed
    report = _report(out)
    assert {k: r["status"] for k, r in report.items()} == {
        "video": "done", "speech": "done", "keys": "done", "group": "done", "metrics": "done",
        "missing": "invalid", "typo": "invalid"}
    assert report["missing"]["line"] == "3" and "source" in report["missing"]["error"] \
        and "no_such_photo.png" in report["missing"]["error"]
    assert report["typo"]["line"] == "6" and "'stepz': not an option of animate" in report["typo"]["error"] \
        and "steps" in report["typo"]["error"]
    state = [json.loads(x) for x in (out / "batch_state.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in state) == ["group", "keys", "metrics", "speech", "video"]
    assert all(r["status"] == "done" and len(r["fingerprint"]) == 64 for r in state)
    assert int(report["video"]["frames"]) == 3 and int(report["group"]["frames"]) == 3
    for job in _jobs(workspace):
        kind = job.get("kind", "animate")
        solo = tmp_path / f"solo_{job['id']}{'.json' if kind == 'evaluate' else '.mp4'}"
        base = ["--weights", str(audio_root), "--device", "cpu"] + (["--steps", "2"] if kind == "animate" else [])
        assert main(_solo_argv(job, workspace, solo) + base) == 0, job["id"]
        if kind == "evaluate":
            assert json.loads(solo.read_text()) == json.loads((out / "metrics.json").read_text())
        else:
            batch_frames, solo_frames = _frames(out / job["out"]), _frames(solo)
            assert batch_frames.shape[0] == 3 and np.array_equal(batch_frames, solo_frames), job["id"]


def test_rerun_skips_everything_without_loading_and_a_changed_option_reruns_one(first_batch, workspace,
                                                                              audio_root, monkeypatch, capsys):
    import mimaface_core.weights.loader as loader

    manifest, out, _ = first_batch
    real = loader.load_mimaface
    monkeypatch.setattr(loader, "load_mimaface", lambda *a, **k: pytest.fail("a done job was run again"))
    capsys.readouterr()
    assert _batch(manifest, out, audio_root) == 1  # the two bad lines again
    assert "batch: 0 done, 2 failed, 5 skipped, 0 frames" in capsys.readouterr().out
    assert {r["status"] for k, r in _report(out).items() if k not in ("missing", "typo")} == {"skipped"}

    loads = []
    monkeypatch.setattr(loader, "load_mimaface", lambda *a, **k: loads.append(a) or real(*a, **k))
    jobs = _jobs(workspace)
    jobs[3]["seed"] = 1  # the group job: not one of the Ray test's, which compares with these outputs
    _write_manifest(workspace, jobs)
    assert _batch(manifest, out, audio_root) == 1
    report = _report(out)
    assert report["group"]["status"] == "done" and report["group"]["note"] == "changed"
    assert [k for k, r in report.items() if r["status"] == "done"] == ["group"] and len(loads) == 1
    assert len(_frames(out / "group.mp4")) == 3
    _write_manifest(workspace, _jobs(workspace))  # as it was, for the Ray test


def test_check_and_strict_run_nothing(workspace, audio_root, tmp_path, capsys, monkeypatch):
    import mimaface_core.weights.loader as loader

    monkeypatch.setattr(loader, "load_mimaface", lambda *a, **k: pytest.fail("a model was loaded"))
    manifest = _write_manifest(workspace, _jobs(workspace))
    assert _batch(manifest, tmp_path / "checked", audio_root, "--check") == 1  # bad lines: exit status 1
    said = capsys.readouterr()
    assert "check: 5 job(s) ok, 2 bad line(s)" in said.out and "line 3" in said.err and "line 6" in said.err
    assert not (tmp_path / "checked").exists()
    assert _batch(manifest, tmp_path / "strict", audio_root, "--strict") == 1
    assert "--strict: 2 bad line(s)" in capsys.readouterr().err and not (tmp_path / "strict" / "video.mp4").exists()


def test_csv_manifest_duplicates_and_defaults(workspace, audio_root, tmp_path):
    from mimaface_core.batch.manifest import load_manifest

    path = workspace / "jobs.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["id", "source", "driving", "out", "steps", "paste_back"])
        w.writeheader()
        w.writerow({"id": "a", "source": str(PORTRAIT), "driving": str(TALKING), "out": "a.mp4", "steps": "3",
                    "paste_back": "true"})
        w.writerow({"id": "a", "source": str(PORTRAIT), "driving": str(TALKING), "out": "b.mp4"})
        w.writerow({"id": "c", "source": str(PORTRAIT), "driving": str(TALKING), "out": "a.mp4"})
    entries = load_manifest(path, tmp_path, {"animate": ["--weights", str(audio_root), "--steps", "7"]})
    assert [e.line for e in entries] == [2, 3, 4]
    first = entries[0].job.args
    assert first.steps == 3 and first.paste_back and first.out == tmp_path.resolve() / "a.mp4"
    assert "duplicate id 'a' (first on line 2)" in entries[1].error
    assert "like line 2" in entries[2].error


# --- Ray ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="Ray is the optional extra [cluster]: pip install '.[cluster]'")
    ray.init(num_cpus=2, include_dashboard=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}})
    yield ray
    ray.shutdown()


def test_ray_two_workers_same_outputs_and_a_killed_worker_is_retried(ray_cluster, first_batch, workspace,
                                                                    audio_root, tmp_path):
    from mimaface_core.batch import run_batch
    from mimaface_core.cli.batch import DEFAULT_OPTIONS  # noqa: F401 - the batch command's defaults

    _, local_out, _ = first_batch
    jobs = [j for j in _jobs(workspace) if j["id"] in ("video", "speech", "keys", "metrics")]
    manifest = workspace / "ray.jsonl"
    manifest.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    killed = []

    def kill_first(actor, entry):
        if not killed:  # the first job sent: its worker is killed while it imports, loads and runs
            killed.append(entry.id)
            threading.Timer(1.0, ray_cluster.kill, [actor]).start()

    defaults = {"animate": ["--weights", str(audio_root), "--device", "cpu", "--steps", "2"],
                "evaluate": ["--weights", str(audio_root), "--device", "cpu"]}
    summary = run_batch(manifest, tmp_path, defaults=defaults, ray="local", workers=2, on_submit=kill_first)
    assert summary.line.startswith("batch: 4 done, 0 failed, 0 skipped")
    report = _report(tmp_path)
    assert int(report[killed[0]]["retries"]) == 1 and "retried 1 time" in report[killed[0]]["note"]
    assert sum(int(r["retries"]) for r in report.values()) == 1
    for job in jobs:
        if job.get("kind") == "evaluate":
            assert json.loads((tmp_path / job["out"]).read_text()) == json.loads((local_out / job["out"]).read_text())
        else:
            assert np.array_equal(_frames(tmp_path / job["out"]), _frames(local_out / job["out"])), job["id"]
