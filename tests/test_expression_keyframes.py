"""Issue 19: named controls solved from the loaded BFM (the tiny released layout's BFM, real
coefficients of a real photo through the tiny D3DFR), the keyframe format and its application, the
CLI with keyframes (still photo alone → video and saved motion), and its early errors."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from mimaface_core.__main__ import main
from mimaface_core.face.mtcnn import MTCNNDetector
from mimaface_core.morphable import controls as C
from mimaface_core.morphable.bfm import BFM09Model
from mimaface_core.motion.extract import encode_source
from mimaface_core.motion.keyframes import (
    KeyframeError,
    apply_keyframes,
    parse_keyframes,
)
from mimaface_core.motion.sequence import MotionSequence

ROOT = Path(__file__).resolve().parents[1]
PORTRAIT = ROOT / "example_media" / "portrait_eileen_collins.jpg"
TALKING = ROOT / "example_media" / "driving_talking.mp4"
INDEPENDENT = list(C.MEASURES)
#: Controls that are sums of others: their measures move together by construction.
RELATED = {"blink": {"blink_left", "blink_right"}, "blink_left": {"blink"}, "blink_right": {"blink"},
           "jaw_left": {"jaw_right"}, "jaw_right": {"jaw_left"}}


@pytest.fixture(scope="module")
def source_face(animate_model):
    return encode_source(Image.open(PORTRAIT), MTCNNDetector(), animate_model.d3dfr, animate_model.identity_encoder)


@pytest.fixture(scope="module")
def controls(animate_model):
    return C.solve_controls(animate_model.bfm)


def _effects(bfm, controls, coeffs, name, value=1.0):
    """Each measure's change (in its own control's unit) when ``name`` is applied with ``value``."""
    before = C.measure(bfm, coeffs)
    after = C.measure(bfm, controls.apply(coeffs, {name: value}))
    return {m: float((after[m] - before[m])[0]) / controls.units[m] for m in before}


def test_each_control_moves_its_own_measure_by_one_unit_and_not_the_others(animate_model, controls, source_face):
    bfm, coeffs = animate_model.bfm, source_face.coeffs.detach().float().cpu()
    assert float(coeffs[0, C.ANGLES].abs().max()) > 0, "a posed source: the measure undoes a real rotation"
    assert set(controls.directions) == set(C.EXPRESSION_CONTROLS), controls.dropped
    table = {}
    for name in C.EXPRESSION_CONTROLS:
        eff = _effects(bfm, controls, coeffs, name)
        assert eff[name] == pytest.approx(1.0, rel=0.05), (name, eff)
        cross = max(abs(v) for m, v in eff.items() if m != name and m not in RELATED.get(name, ()))
        assert cross < 0.10, (name, eff)
        table[name] = (eff[name], cross)
        for value in (-1.0, 2.5):  # linear in the value
            scaled = _effects(bfm, controls, coeffs, name, value)
            assert scaled[name] == pytest.approx(value * eff[name], rel=1e-3, abs=1e-4)
    print("\ncontrol      own   max cross-talk\n" +
          "\n".join(f"{n:12s} {own:.4f} {cross:.2e}" for n, (own, cross) in table.items()))
    eff = _effects(bfm, controls, coeffs, "blink")
    assert eff["blink_left"] == pytest.approx(1, rel=0.05) and eff["blink_right"] == pytest.approx(1, rel=0.05)


def test_head_and_gaze_controls_in_their_units(controls, source_face):
    coeffs = source_face.coeffs.detach().float().cpu()
    before = controls.read(coeffs)
    after = controls.read(controls.apply(coeffs, {"yaw": 10.0, "pitch": -5.0, "roll": 3.0, "gaze_left": 0.2}))
    assert float(after["yaw"] - before["yaw"]) == pytest.approx(10.0, abs=1e-3)
    assert float(after["pitch"] - before["pitch"]) == pytest.approx(-5.0, abs=1e-3)
    assert float(after["roll"] - before["roll"]) == pytest.approx(3.0, abs=1e-3)
    assert float(after["gaze_left"] - before["gaze_left"]) == pytest.approx(0.2, abs=1e-5)
    absolute = controls.read(controls.apply(coeffs, {"smile": 0.4, "yaw": -7.0}, absolute={"smile", "yaw"}))
    assert float(absolute["smile"]) == pytest.approx(0.4, abs=1e-4) and float(absolute["yaw"]) == pytest.approx(-7.0)
    assert float(absolute["mouth_open"]) == pytest.approx(float(before["mouth_open"]), abs=1e-4)


def test_controls_are_solved_from_the_loaded_bfm(animate_model):
    bfm = animate_model.bfm
    twice = BFM09Model(**{**bfm.__dict__, "exp_base": bfm.exp_base * 2})
    a, b = C.solve_controls(bfm), C.solve_controls(twice)
    assert torch.allclose(b.directions["smile"], a.directions["smile"] / 2, rtol=1e-3, atol=1e-6)
    # a basis that cannot move the chin sideways: jaw controls are left out, the others stay exact
    base = bfm.exp_base.clone().reshape(-1, 3, bfm.exp_base.shape[1])
    base[bfm.keypoints[[8, 27, 28, 29, 30]], 0] = 0
    no_jaw = BFM09Model(**{**bfm.__dict__, "exp_base": base.reshape(bfm.exp_base.shape)})
    c = C.solve_controls(no_jaw)
    assert c.dropped == ("jaw_left",) and "jaw_right" not in c.names and "smile" in c.names


TRACK = """# speech with a smile and two blinks
0: smile=0, blink=0
10 smooth: smile=1
20: smile=hold
24: smile=0.5
12 step: blink=1
14: blink=0
30: blink=0
31 step: blink=1
33: blink=0
"""


def test_keyframes_exact_at_keys_monotonic_between_step_holds():
    track = parse_keyframes(TRACK)
    track.check(40, 25.0)
    curves = track.curves(40, 25.0)
    smile, blink = curves["smile"], curves["blink"]
    for f, v in ((0, 0), (10, 1), (20, 1), (24, 0.5), (39, 0.5)):
        assert smile[f] == v
    for f, v in ((0, 0), (11, 0), (12, 1), (14, 0), (30, 0), (31, 1), (33, 0)):
        assert blink[f] == v
    assert np.all(np.diff(smile[:11]) >= 0) and np.all(np.diff(smile[20:25]) <= 0)  # smooth, linear
    assert np.all(smile[10:21] == 1), "hold keeps the value"
    assert 0 < smile[2] < 0.2, "smooth eases in (below the linear ramp's 0.2)"
    linear = parse_keyframes("0: mouth_open=0\n8: mouth_open=2").curves(9, 25)["mouth_open"]
    assert np.allclose(linear, np.arange(9) / 4)
    as_json = json.dumps({"keys": [{"frame": 0, "values": {"smile": 0}},
                                   {"time": 0.4, "interpolation": "smooth", "values": {"smile": 1}}]})
    assert np.array_equal(parse_keyframes(as_json).curves(12, 25)["smile"],
                          parse_keyframes("0: smile=0\n0.4s smooth: smile=1").curves(12, 25)["smile"])


@pytest.mark.parametrize("text, line, says", [
    ("0: smile=0\n12: grin=1", 2, "allowed: mouth_open, smile"),
    ("0: smile=0\n\n# c\n400: smile=1", 4, "past the end"),
    ("0: smile=0\n5 smile=1", 2, "<frame or time>"),
    ("0: smile=0\n5 wobble: smile=1", 2, "linear, smooth, step"),
    ("2: smile=lots", 1, "finite number or 'hold'"),
])
def test_bad_keyframes_name_the_line(text, line, says):
    with pytest.raises(KeyframeError) as err:
        parse_keyframes(text).check(100, 25)
    assert f"line {line}" in str(err.value) and says in str(err.value)


def test_offsets_on_an_audio_motion_keep_its_mouth_motion(animate_model, audio_nets, source_face, controls):
    from mimaface_core.audio import audio_motion, load_audio

    motion = audio_motion(source_face.motion(), load_audio(TALKING, max_frames=40), audio_nets)
    keyed = apply_keyframes(motion, parse_keyframes(TRACK + "0: mouth_open=0\n15: mouth_open=0\n16 step: mouth_open=0.5\n"
                                                              "18 step: mouth_open=0\n"),
                            controls)
    before = C.measure(animate_model.bfm, motion.coeffs)["mouth_open"].numpy()
    after = C.measure(animate_model.bfm, keyed.coeffs)["mouth_open"].numpy()
    outside = np.ones(len(motion), bool)
    outside[16:18] = False
    assert np.allclose((after - before)[16:18] / controls.units["mouth_open"], 0.5, rtol=0.05)
    assert before[outside].std() > 0, "the speech moves the mouth"
    assert np.corrcoef(before[outside], after[outside])[0, 1] > 0.95
    blink = C.measure(animate_model.bfm, keyed.coeffs)["blink"] - C.measure(animate_model.bfm, motion.coeffs)["blink"]
    assert float(blink[12]) / controls.units["blink"] == pytest.approx(1, rel=0.05)


def test_cli_still_photo_and_keyframes_alone_make_a_video(animate_root, tmp_path, animate_model):
    keys = tmp_path / "keys.txt"
    keys.write_text("0: mouth_open=0, blink=0\n3 step: mouth_open=0.8\n4: mouth_open=0\n5 step: blink=1\n")
    out, saved = tmp_path / "still.mp4", tmp_path / "motion.json"
    assert main(["animate", "--source", str(PORTRAIT), "--keyframes", str(keys), "--frames", "6", "--fps", "12",
                 "--weights", str(animate_root), "--out", str(out), "--save-motion", str(saved),
                 "--steps", "1", "--clip-length", "3", "--overlap", "1", "--device", "cpu"]) == 0
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        frames = [f for f in c.decode(video=0)]
        assert len(frames) == 6 and float(stream.average_rate) == pytest.approx(12)
    motion = MotionSequence.load(saved)
    assert len(motion) == 6 and motion.fps == 12
    m = C.measure(animate_model.bfm, motion.coeffs)
    units = C.solve_controls(animate_model.bfm).units
    lip = (m["mouth_open"] - m["mouth_open"][0]).numpy() / units["mouth_open"]
    eye = (m["blink"] - m["blink"][0]).numpy() / units["blink"]
    assert lip[3] == pytest.approx(0.8, rel=0.05) and abs(lip[2]) < 1e-3 and abs(lip[4]) < 1e-3
    assert eye[5] == pytest.approx(1.0, rel=0.05) and abs(eye[4]) < 1e-3


@pytest.mark.parametrize("keys, extra, says", [
    ("0: smile=1\n9: frown=1\n", ["--frames", "5"], "line 2"),
    ("0: smile=1\n9: smile=0\n", ["--frames", "5"], "past the end"),
    ("0: smile=1\n", [], "--frames"),
])
def test_cli_refuses_bad_keyframes_before_any_model_loads(tmp_path, monkeypatch, capsys, animate_root, keys, extra,
                                                           says):
    import mimaface_core.weights.loader as loader

    monkeypatch.setattr(loader, "load_mimaface", lambda *a, **k: pytest.fail("a model was loaded"))
    path = tmp_path / "k.txt"
    path.write_text(keys)
    rc = main(["animate", "--source", str(PORTRAIT), "--keyframes", str(path), *extra, "--weights",
               str(animate_root), "--out", str(tmp_path / "o.mp4"), "--device", "cpu"])
    assert rc != 0 and says in capsys.readouterr().err
