"""One set of pipeline settings: ``analyze``, ``live``, ``batch`` and ``serve`` take the same
flags, with the same defaults and the same errors, into one ``PipelineOptions``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import assert_one_line_error, run_emotrace
from emotrace.cli._pipeline import pipeline_options_from
from emotrace.cli.main import build_parser
from emotrace.errors import ConfigError
from emotrace.faces.settings import DetectorSettings
from emotrace.video.options import PipelineOptions

#: Each command with what it needs besides the pipeline options.
COMMANDS = {
    "analyze": ["analyze", "clip.mp4", "-o", "out"],
    "live": ["live", "--no-window", "--record", "out"],
    "batch": ["batch", "clip.mp4", "-o", "out"],
    "serve": ["serve"],
}
SETTINGS = [
    "--model", "default-int8", "--threads", "2", "--detector", "yunet", "--min-face", "20",
    "--score-threshold", "0.8", "--nms-threshold", "0.4", "--max-side", "960",
    "--detect-every", "3", "--max-age", "0.5", "--smooth-window", "0.8",
    "--smooth-method", "window", "--hysteresis", "0.2",
]  # fmt: skip


def _parsed(command: str, *extra: str) -> argparse.Namespace:
    return build_parser().parse_args([*COMMANDS[command], *extra])


def _pipeline_actions(command: str) -> dict[str, object]:
    """Every pipeline option of a command's parser: its flag and default."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[
        command
    ]
    pipeline_dests = {f for f in vars(_parsed("analyze"))} & {f for f in vars(_parsed("serve"))}
    return {
        # Threads and the model differ by design: batch runs on every core, with `accurate`.
        "/".join(a.option_strings): (
            a.default if a.dest not in ("threads", "model") else "per command"
        )
        for a in sub._actions
        if a.dest in pipeline_dests and a.option_strings and a.dest not in {"workspace", "help"}
    }


def test_the_four_commands_offer_the_same_pipeline_options_and_defaults() -> None:
    analyze = _pipeline_actions("analyze")
    assert {"--detect-every", "--max-age", "--smooth-window", "--max-side", "--model"} <= set(
        analyze
    )
    for command in ("live", "batch", "serve"):
        assert _pipeline_actions(command) == analyze, command


def test_the_same_flags_give_the_same_options_in_every_command() -> None:
    built = {c: pipeline_options_from(_parsed(c, *SETTINGS), every=1) for c in COMMANDS}
    expected = PipelineOptions(
        model="default-int8",
        threads=2,
        detector=DetectorSettings(
            kind="yunet", min_size=20, score_threshold=0.8, nms_threshold=0.4, max_side=960
        ),
        detect_every=3,
        max_age=0.5,
        smooth_window=0.8,
        smooth_method="window",
        hysteresis=0.2,
    )
    assert all(options == expected for options in built.values()), built
    defaults = {c: pipeline_options_from(_parsed(c), threads=1) for c in COMMANDS}
    assert defaults.pop("batch") == PipelineOptions(model="accurate")
    assert all(options == PipelineOptions() for options in defaults.values()), defaults


@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        (["--detect-every", "0"], ["--detect-every", "must be at least 1, got 0"]),
        (["--hysteresis", "1"], ["--hysteresis", "must be in [0, 1), got 1.0"]),
        (["--max-side", "10"], ["--max-side", "must be 0 (never downscale) or at least 64"]),
        (
            ["--detector", "haar", "--score-threshold", "0.8"],
            ["--score-threshold tunes the yunet detector; this run uses haar"],
        ),
    ],
    ids=["detect-every", "hysteresis", "max-side", "setting-of-the-other-detector"],
)
def test_a_bad_setting_is_the_same_one_line_error_in_every_command(
    flags: list[str], fragments: list[str], tmp_path: Path
) -> None:
    for command in COMMANDS:
        args = [*COMMANDS[command], *flags, "--workspace", str(tmp_path / "ws")]
        result = run_emotrace(*args, cwd=tmp_path)
        assert_one_line_error(result, *fragments)
        assert not (tmp_path / "out").exists() and not (tmp_path / "ws").exists(), command


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"detect_every": 0}, "--detect-every must be a whole number >= 1, got 0"),
        ({"max_age": float("nan")}, "--max-age must be a finite number >= 0"),
        ({"smooth_window": 0}, "--smooth-window must be a finite number > 0"),
        ({"smooth_method": "median"}, "--smooth-method must be ema or window"),
        ({"hysteresis": 1.0}, "--hysteresis must be in [0, 1)"),
        ({"every": True}, "--every must be a whole number >= 1, got True"),
        ({"max_frames": 0}, "--max-frames must be a whole number >= 1"),
        ({"detect_evry": 2}, "unknown pipeline option(s) detect_evry"),
    ],
)
def test_options_made_in_code_are_checked_like_flags(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):  # fmt: skip
        PipelineOptions.from_dict(values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kind": "haar", "nms_threshold": 0.4}, "--nms-threshold tunes the yunet detector"),
        ({"scale_factor": 1.2}, "--scale-factor tunes the haar detector; this run uses yunet"),
        ({"kind": "haar", "scale_factor": 1.0}, "--scale-factor must be a finite number > 1"),
        ({"score_threshold": 0.0}, "--score-threshold must be in"),
        ({"min_size": -1}, "--min-face must be 0 or more"),
        ({"max_side": 32}, "--max-side: must be 0"),
        ({"kind": "retina"}, "unknown face detector 'retina'"),
    ],
)
def test_detector_settings_are_checked_when_made(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        DetectorSettings(**values)  # type: ignore[arg-type]


def test_a_haar_model_file_means_haar_and_zero_means_full_size() -> None:
    settings = DetectorSettings(model=Path("my_cascade.xml"), max_side=0)
    assert (settings.detector, settings.max_side) == ("haar", None)
    assert settings.tuning(used_only=True) == {"scale_factor": 1.1}


def test_building_the_parser_imports_no_opencv() -> None:
    # The defaults in --help come from modules without OpenCV, so `emotrace --help` stays quick.
    code = "import sys; from emotrace.cli.main import build_parser; build_parser(); "
    code += "print('cv2' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
