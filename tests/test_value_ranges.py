"""Issue 23 item 3: values held to their meaning. Every named control and numeric option has a
plausible range (``mimaface_core.ranges``, ``morphable.controls.CONTROL_RANGES``); a value beyond
4x it is refused naming the value, its range and where it came from (keyframe line, node, CLI flag),
before any model loads; a value inside 4x but beyond the range warns and runs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mimaface_core.morphable import controls as C
from mimaface_core.motion.keyframes import KeyframeError, keyframe_motion, parse_keyframes, still_motion
from mimaface_core.motion.sequence import MotionSequence
from mimaface_core.ranges import LIMIT_FACTOR, OPTION_RANGES, ValueRange, ValueRangeError, check_value
from nodes import NODE_CLASS_MAPPINGS as NODES

ROOT = Path(__file__).resolve().parents[1]
PORTRAIT = ROOT / "example_media" / "portrait_eileen_collins.jpg"


def test_every_control_has_a_range_containing_zero_and_the_limits_are_4x_about_zero():
    assert set(C.CONTROL_RANGES) == set(C.ALL_CONTROLS)
    for name, rng in C.CONTROL_RANGES.items():
        assert rng.low < 0 < rng.high, name  # offsets of both signs are meaningful, 0 = unchanged
        assert rng.hard == (LIMIT_FACTOR * rng.low, LIMIT_FACTOR * rng.high), name
    assert ValueRange(1.0, 10.0).hard == (1.0, 40.0)  # a lower bound ≥ 0 is a limit itself
    assert ValueRange(0, None).hard == (0, None)
    assert C.CONTROL_RANGES["yaw"].hard == (-180.0, 180.0)


def test_check_value_refuses_beyond_the_limits_and_warns_beyond_the_range(caplog):
    rng = ValueRange(-1.0, 2.0, "x")
    with caplog.at_level(logging.WARNING, logger="mimaface_core.ranges"):
        assert check_value("smile", 2.0, rng) == 2.0
        assert not caplog.records
        assert check_value("smile", 7.5, rng, "here") == 7.5
    assert len(caplog.records) == 1 and "smile=7.5" in caplog.text and "-1..2" in caplog.text
    for bad in (8.01, -4.01, float("nan"), float("inf"), "x"):
        with pytest.raises(ValueRangeError, match="smile"):
            check_value("smile", bad, rng)
    with pytest.raises(ValueRangeError, match="whole number"):
        check_value("steps", 2.5, OPTION_RANGES["steps"])


@pytest.mark.parametrize("text,line,name,value", [
    ("0: smile=0\n# a comment\n2: mouth_open=1e9\n", 3, "mouth_open", "1e+09"),
    ("0: yaw=181\n", 1, "yaw", "181"),
    ('{"keys": [{"frame": 0, "values": {"smile": 0}}, {"frame": 1, "values": {"blink": -2.5}}]}', 1, "blink", "-2.5"),
])
def test_keyframe_value_beyond_4x_is_refused_naming_control_value_range_and_line(text, line, name, value):
    with pytest.raises(KeyframeError) as err:
        parse_keyframes(text)
    msg = str(err.value)
    assert len(msg.splitlines()) == 1
    assert f"{name}={value}" in msg and C.CONTROL_RANGES[name].text() in msg, msg
    assert (f"line {line}" if not text.startswith("{") else f"JSON key {line}") in msg, msg


def _tiny_motion(frames: int) -> MotionSequence:
    g = torch.Generator().manual_seed(0)
    eye = np.repeat(np.eye(2, 3)[None], frames, 0)
    return MotionSequence(torch.randn(frames, 261, generator=g) * 0.1, eye, eye, eye.copy(),
                          np.ones(frames, np.float32), np.zeros(frames, bool), (64, 64), 25.0, {})


def test_keyframe_value_inside_4x_but_beyond_the_range_warns_and_runs(caplog, animate_model):
    controls = C.controls_for(animate_model.bfm)
    with caplog.at_level(logging.WARNING, logger="mimaface_core.ranges"):
        track = parse_keyframes("0: smile=0, yaw=0\n3: smile=5, yaw=90\n")
    assert "smile=5" in caplog.text and "yaw=90" in caplog.text and "line 2" in caplog.text
    motion = keyframe_motion(still_motion(_tiny_motion(1), 4), track, controls)
    assert torch.allclose(controls.read(motion.coeffs)["yaw"][3] - controls.read(motion.coeffs)["yaw"][0],
                          torch.tensor(90.0), atol=1e-3)


def test_expression_controls_node_refuses_a_value_beyond_4x_before_the_model(caplog):
    node = NODES["MIMAFaceExpressionControls"]()
    zero = {n: 0.0 for n in C.EXPRESSION_CONTROLS + C.HEAD_CONTROLS + tuple(C.GAZE_CONTROLS)}

    class NoModel:  # the check runs before the model is touched
        def use(self, *_):
            raise AssertionError("the model was used before the values were checked")

    with pytest.raises(ValueRangeError) as err:
        node.apply(NoModel(), _tiny_motion(1), **{**zero, "pucker": 9.0})
    assert "Expression Controls" in str(err.value) and "pucker=9" in str(err.value)
    assert C.CONTROL_RANGES["pucker"].text() in str(err.value)


#: Widgets whose 0 means "not given" rather than a value of the option.
ZERO_MEANS_OFF = {("MIMAFaceEvaluateAnimation", "clip_length")}


def test_every_numeric_widget_has_min_and_max_within_the_core_limits():
    ranges = {**OPTION_RANGES, **C.CONTROL_RANGES, "cfg": OPTION_RANGES["guidance"]}
    checked, outside = 0, []
    for key, cls in NODES.items():
        spec = cls.INPUT_TYPES()
        for group in ("required", "optional"):
            for name, value in spec.get(group, {}).items():
                if not (isinstance(value, tuple) and value and value[0] in ("INT", "FLOAT")):
                    continue
                opts = value[1] if len(value) > 1 else {}
                assert "min" in opts and "max" in opts, f"{key}.{name} has no min/max"
                assert opts["min"] <= opts.get("default", opts["min"]) <= opts["max"], f"{key}.{name}"
                if name in ranges:
                    low, high = ranges[name].hard
                    low = 0 if (key, name) in ZERO_MEANS_OFF else low
                    if opts["min"] < low or (high is not None and opts["max"] > high):
                        outside.append(f"{key}.{name}: widget {opts['min']}..{opts['max']}, core {low}..{high}")
                checked += 1
    assert not outside, outside
    assert checked > 20


def test_options_refused_in_the_core_for_the_python_api():
    from mimaface_core.audio.motion import AudioMotionOptions
    from mimaface_core.motion.edit import edit_coefficients
    from mimaface_core.pipeline import AnimateOptions
    from mimaface_core.sampling import SamplingOptions

    with pytest.raises(ValueRangeError, match="expression_scale=100"):
        AnimateOptions(expression_scale=100)
    with pytest.raises(ValueRangeError, match="roll=-200"):
        AnimateOptions(rotation=(0, 0, -200))
    with pytest.raises(ValueRangeError, match="guidance=80"):
        SamplingOptions(guidance=80)
    with pytest.raises(ValueRangeError, match="pose_style=50"):
        AudioMotionOptions(pose_style=50).check(False)
    with pytest.raises(ValueRangeError, match="smoothing=400"):
        edit_coefficients(torch.zeros(2, 261), smoothing=400)


@pytest.mark.parametrize("argv,says", [
    (["--expression-scale", "50"], "--expression-scale=50"),
    (["--yaw", "400"], "--yaw=400"),
    (["--smoothing", "1000"], "--smoothing=1000"),
    (["--steps", "5000"], "--steps=5000"),
])
def test_cli_refuses_an_out_of_range_option_before_any_weights(tmp_path, argv, says):
    """As a user runs it: ``python -m mimaface_core animate``, with no weights anywhere."""
    env = {k: v for k, v in os.environ.items() if k != "MIMAFACE_WEIGHTS"}
    cmd = [sys.executable, "-m", "mimaface_core", "animate", "--source", str(PORTRAIT), "--driving",
           str(ROOT / "example_media" / "driving_talking.mp4"), "--weights", str(tmp_path / "no_weights"),
           "--out", str(tmp_path / "out.mp4"), *argv]
    run = subprocess.run(cmd, cwd=ROOT, env={**env, "HOME": str(tmp_path)}, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert says in run.stderr and "plausible range" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and len([x for x in lines if says in x]) == 1
    assert not (tmp_path / "out.mp4").exists()


def test_cli_keyframe_value_refused_before_any_weights(tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("0: smile=0\n1: smile=100\n")
    env = {k: v for k, v in os.environ.items() if k != "MIMAFACE_WEIGHTS"}
    cmd = [sys.executable, "-m", "mimaface_core", "animate", "--source", str(PORTRAIT), "--keyframes", str(keys),
           "--frames", "4", "--weights", str(tmp_path / "no_weights"), "--out", str(tmp_path / "out.mp4")]
    run = subprocess.run(cmd, cwd=ROOT, env={**env, "HOME": str(tmp_path)}, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode != 0
    assert "keys.txt" in run.stderr and "line 2" in run.stderr and "smile=100" in run.stderr, run.stderr
    assert "no_weights" not in run.stderr, "the keyframes are checked before the weights"
