"""``emotrace batch``: many real-face videos on a local process pool and on a real Ray cluster.

One Ray cluster (2 CPUs) starts per module, in this process; the CLI joins it with ``--address``
(one test lets the CLI start its own). Videos are short clips of a real face (scikit-image's
astronaut) written with OpenCV, plus a corrupt file.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import assert_one_line_error, run_emotrace, sigint_as_in_a_terminal
from emotrace.batch import find_videos, read_manifest
from emotrace.batch.inputs import output_folders
from emotrace.errors import ConfigError
from video_helpers import BATCH_NAMES, batch_videos

ENGINES = ("local", pytest.param("ray", marks=pytest.mark.ray))
NAMES = BATCH_NAMES


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three 12-frame clips of a real face moving across the frame, and a corrupt ``.mp4``."""
    return batch_videos(tmp_path_factory.mktemp("videos"))


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A real local Ray cluster with 2 CPUs, for this module; its address for ``--address``."""
    ray = pytest.importorskip("ray", reason="ray (the ray extra) not installed")
    # address="local": a cluster of its own even while another test's (test_batch_ray's
    # Cluster, on the other xdist worker) is the machine's "current" one that ray.init would join.
    context = ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()


def engine_args(engine: str, request: pytest.FixtureRequest) -> list[str]:
    if engine == "ray":
        return ["--engine", "ray", "--address", request.getfixturevalue("ray_address")]
    return ["--engine", "local"]


def batch(*args: str | Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    # RAY_ADDRESS is set by ray.init in this process; the CLI must only join when told to.
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return run_emotrace("batch", *args, "--workers", "2", env=env, timeout=timeout)


def index_rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "index.csv").open(newline="") as handle:
        return {Path(row["video"]).name: row for row in csv.DictReader(handle)}


def frame_rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "frames.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


# Both engines ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_batch_records_every_video_and_the_corrupt_one_as_failed_then_resumes(
    engine: str, videos: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    out = tmp_path / "out"
    first = batch(videos, "-o", out, *engine_args(engine, request))
    assert first.returncode == 1, first.stderr  # some video failed
    assert "Traceback" not in first.stderr
    assert "1 of 4 video(s) failed" in first.stderr
    rows = index_rows(out)
    assert set(rows) == {*(f"{n}.avi" for n in NAMES), "corrupt.mp4"}
    assert rows["corrupt.mp4"]["status"] == "failed"
    assert "cannot open as a video" in rows["corrupt.mp4"]["error"]
    for i, name in enumerate(NAMES):
        row = rows[f"{name}.avi"]
        assert row["status"] == "complete" and row["error"] == ""
        assert int(row["frames"]) == 12 + i and int(row["faces"]) >= 10
        assert float(row["processed_fps"]) > 0
        folder = out / row["folder"]
        assert folder == out / name
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["completed"] and summary["frames"] == 12 + i
        assert len((folder / "frames.jsonl").read_text().splitlines()) == len(frame_rows(folder))
        labelled = [r for r in frame_rows(folder) if r["label"]]
        assert len(labelled) >= 10 and all(r["track_id"] for r in labelled)

    # The rerun skips the complete videos (their records stay untouched) and retries the other.
    stamps = {n: (out / n / "frames.csv").stat().st_mtime_ns for n in NAMES}
    second = batch(videos, "-o", out, *engine_args(engine, request))
    assert second.returncode == 1
    assert "skipped 3 video(s) already complete" in second.stdout
    assert {n: (out / n / "frames.csv").stat().st_mtime_ns for n in NAMES} == stamps
    again = index_rows(out)
    assert {k: v for k, v in again.items() if k != "corrupt.mp4"} == {
        k: v for k, v in rows.items() if k != "corrupt.mp4"
    }
    assert again["corrupt.mp4"]["status"] == "failed"


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_manifest_records_one_session_per_video_in_the_workspace(
    engine: str, videos: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from emotrace.sessions import SessionStore

    manifest = tmp_path / "manifest.csv"
    shutil.copy(videos / "p01_week1.avi", tmp_path / "a.avi")  # relative to the manifest
    manifest.write_text(
        f"video,patient,session\na.avi,P-001,p1-intake\n{videos / 'p02_week1.avi'},P-002,\n",
        encoding="utf-8",
    )
    out, workspace = tmp_path / "out", tmp_path / "ws"
    result = batch(
        "--manifest",
        manifest,
        "-o",
        out,
        "--session-per-video",
        "--consent",
        "--workspace",
        workspace,
        *engine_args(engine, request),
    )
    assert result.returncode == 0, result.stderr
    rows = index_rows(out)
    assert rows["a.avi"]["session"] == "p1-intake"
    assert rows["p02_week1.avi"]["session"] == "p02_week1"  # no session column: the stem
    with SessionStore(workspace, readonly=True) as store:
        sessions = {info.name: info for info in store.sessions()}
    assert set(sessions) == {"p1-intake", "p02_week1"}
    intake = sessions["p1-intake"]
    assert intake.patient == "P-001" and intake.status == "complete"
    assert intake.frames == int(rows["a.avi"]["frames"]) == 12
    assert intake.visible_frames >= 10
    assert intake.source == str((tmp_path / "a.avi").resolve())
    assert sessions["p02_week1"].patient == "P-002"


# Local engine ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_batch_records_equal_those_of_analyze(videos: Path, tmp_path: Path) -> None:
    """The batch worker runs analyze's pipeline: same options, same records (batch's default
    model is ``accurate``, analyze is given it)."""
    out = tmp_path / "out"
    assert batch(videos / "p01_week1.avi", "-o", out, "--every", "2").returncode == 0
    single = tmp_path / "single"
    analyzed = run_emotrace(
        "analyze", videos / "p01_week1.avi", "-o", single, "--every", "2", "--model", "accurate"
    )
    assert analyzed.returncode == 0, analyzed.stderr
    assert frame_rows(out / "p01_week1") == frame_rows(single)
    batch_summary = json.loads((out / "p01_week1" / "summary.json").read_text())
    single_summary = json.loads((single / "summary.json").read_text())
    assert batch_summary["settings"] == single_summary["settings"]
    assert batch_summary["frames"] == single_summary["frames"] == 6


@pytest.mark.slow
def test_patient_from_names_sessions_after_the_videos(videos: Path, tmp_path: Path) -> None:
    from emotrace.sessions import SessionStore

    workspace = tmp_path / "ws"
    result = batch(
        str(videos / "p0*_week1.avi"),  # a glob, expanded by emotrace
        "-o",
        tmp_path / "out",
        "--session-per-video",
        "--consent",
        "--patient-from",
        r"(?P<patient>p\d+)_week",
        "--workspace",
        workspace,
        "--max-frames",
        "4",
    )
    assert result.returncode == 0, result.stderr
    with SessionStore(workspace, readonly=True) as store:
        found = {(info.name, info.patient, info.frames) for info in store.sessions()}
    assert found == {("p01_week1", "p01", 4), ("p02_week1", "p02", 4)}


CTRL_C_VIDEOS = 40


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_ctrl_c_stops_cleanly_with_finished_videos_indexed(
    engine: str, videos: Path, tmp_path: Path
) -> None:
    """Ctrl+C in a terminal (SIGINT to the process group): exit 130, no traceback, finished
    videos indexed, no worker (or Ray process) left behind; a rerun does the rest."""
    if engine == "ray":
        pytest.importorskip("ray", reason="ray (the ray extra) not installed")
    inputs = tmp_path / "in"
    inputs.mkdir()
    # Far more videos than finish before the signal, even when this machine is busy.
    for i in range(CTRL_C_VIDEOS):
        shutil.copy(videos / "p01_week1.avi", inputs / f"clip{i:02d}.avi")
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    command = [sys.executable, "-m", "emotrace", "batch", str(inputs), "-o", str(out)]
    proc = subprocess.Popen(
        [*command, "--engine", engine, "--workers", "1", "--detect-every", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "OMP_NUM_THREADS": "1"},
        start_new_session=True,
        preexec_fn=sigint_as_in_a_terminal,
    )
    deadline = time.monotonic() + 60
    while not (out / "index.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr
    assert "rerun the same command to continue" in stderr
    rows = index_rows(out)
    assert 1 <= len(rows) < CTRL_C_VIDEOS
    assert all(r["status"] == "complete" for r in rows.values())
    for row in rows.values():
        assert json.loads((out / row["folder"] / "summary.json").read_text())["completed"]
    deadline = time.monotonic() + 15
    while list(session_processes(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not list(session_processes(proc.pid))

    rerun = batch(inputs, "-o", out, "--engine", engine)
    assert rerun.returncode == 0, rerun.stderr
    assert f"skipped {len(rows)} video(s)" in rerun.stdout
    assert len(index_rows(out)) == CTRL_C_VIDEOS


def session_processes(sid: int) -> Iterator[int]:
    """Live processes of session ``sid`` (the batch's workers or Ray's, if left behind)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the command name: state, ppid, pgrp, session; zombies are already gone.
        if int(fields[3]) == sid and fields[0] != "Z":
            yield int(stat.parent.name)


@pytest.mark.slow
def test_real_footage_from_shared_media(shared_dir: Path, tmp_path: Path) -> None:
    """Real recordings, one of them (``no_face.mp4``) announcing 98 frames but holding 95, which
    is within what real files do and must not count as truncated."""
    media = shared_dir / "media"
    out = tmp_path / "out"
    names = ("single_face.mp4", "face_noface.mov", "no_face.mp4")
    result = batch(*(media / n for n in names), "-o", out, "--every", "6")
    assert result.returncode == 0, result.stderr
    rows = index_rows(out)
    assert rows["single_face.mp4"]["status"] == "complete"
    assert int(rows["single_face.mp4"]["frames"]) == 12
    assert int(rows["single_face.mp4"]["faces"]) >= 10
    assert rows["face_noface.mov"]["status"] == "complete"
    assert 0 < int(rows["face_noface.mov"]["faces"]) < int(rows["face_noface.mov"]["frames"])
    assert rows["no_face.mp4"]["status"] == "complete"
    assert int(rows["no_face.mp4"]["frames"]) == 16  # 95 frames, every 6th
    assert int(rows["no_face.mp4"]["faces"]) == 0


# Ray only ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.ray
def test_ray_without_address_starts_its_own_local_cluster(videos: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="ray (the ray extra) not installed")
    out = tmp_path / "out"
    result = batch(videos / "p02_week1.avi", "-o", out, "--engine", "ray", "--max-frames", "3")
    assert result.returncode == 0, result.stderr
    assert index_rows(out)["p02_week1.avi"]["frames"] == "3"
    assert result.stderr == ""  # Ray's own start-up chatter stays out of the user's terminal


@pytest.mark.ray
def test_more_ray_workers_than_cluster_cpus_is_refused(
    videos: Path, tmp_path: Path, ray_address: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    result = run_emotrace(
        "batch", videos, "-o", tmp_path / "out", "--engine", "ray", "--address", ray_address,
        "--workers", "3", env=env,
    )  # fmt: skip
    assert_one_line_error(result, "--workers 3", "needs 3 CPUs", "has 2")
    assert not (tmp_path / "out" / "index.csv").exists()


def test_missing_ray_names_the_extra(videos: Path, tmp_path: Path) -> None:
    """Where ray is not installed (here: an empty module that fails to import, first on the path),
    --engine ray says which extra to install."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "ray.py").write_text("raise ImportError('No module named ray')\n")
    result = run_emotrace(
        "batch", videos, "-o", tmp_path / "out", "--engine", "ray",
        env={"PYTHONPATH": f"{blocker}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
    )  # fmt: skip
    assert_one_line_error(result, "pip install 'emotrace[ray]'")


# Bad input --------------------------------------------------------------------------------------


def _manifest(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "manifest.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("make_args", "fragments"),
    [
        (lambda v, t: [t], ["no videos matched"]),
        (lambda v, t: [str(t / "*.mp4")], ["no videos matched"]),
        (lambda v, t: [t / "missing.mp4"], ["missing.mp4: no such file or folder"]),
        (lambda v, t: [], ["give videos"]),
        (lambda v, t: [v, "--manifest", _manifest(t, "video\n")], ["not both"]),
        (lambda v, t: ["--manifest", t / "none.csv"], ["no such manifest"]),
        (lambda v, t: ["--manifest", _manifest(t, "path,who\nx,y\n")], ["header row"]),
        (lambda v, t: ["--manifest", _manifest(t, "video,patient\nnope.avi,P1\n")],
         ["line 2", "nope.avi: no such file"]),
        (lambda v, t: ["--manifest", _manifest(t, "video\n")], ["lists no videos"]),
        (lambda v, t: ["--manifest", _manifest(t, f"video\n{v / 'p01_week1.avi'}\n"),
                       "--session-per-video"], ["needs a 'patient' column"]),
        (lambda v, t: ["--manifest", _manifest(t, f"video,patient\n{v / 'p01_week1.avi'},\n"),
                       "--session-per-video"], ["line 2", "no patient"]),
        (lambda v, t: ["--manifest", _manifest(t, f"video,patient\n{v / 'p01_week1.avi'},Dr X\n"),
                       "--session-per-video"], ["patient pseudonym", "'Dr X' is not valid"]),
        (lambda v, t: [v, "--workers", "0"], ["--workers must be at least 1, got 0"]),
        (lambda v, t: [v, "--workers", "two"], ["--workers must be a whole number"]),
        (lambda v, t: [v, "--every", "0"], ["--every", "must be at least 1, got 0"]),
        (lambda v, t: [v, "--engine", "ray", "--address", "127.0.0.1:9"],
         ["--address 127.0.0.1:9", "no Ray cluster reachable"]),
        (lambda v, t: [v, "--engine", "ray", "--address", "nowhere"], ["expected HOST:PORT"]),
        (lambda v, t: [v, "--address", "127.0.0.1:9"], ["--address needs --engine ray"]),
        (lambda v, t: [v, "--session-per-video"], ["--patient-from REGEX or --manifest"]),
        (lambda v, t: [v, "--session-per-video", "--patient-from", "(p\\d+)"],
         ["--session-per-video needs --consent"]),
        (lambda v, t: [v, "--consent"], ["--consent needs --session-per-video"]),
        (lambda v, t: [v, "--patient-from", "p(\\d+)"], ["--patient-from needs --session"]),
        (lambda v, t: [v, "--session-per-video", "--patient-from", "(p\\d+)_"],
         ["does not match", "corrupt.mp4"]),
        (lambda v, t: [v, "--session-per-video", "--patient-from", "(p"],
         ["not a regular expression"]),
        (lambda v, t: [v / "p01_week1.avi", "--model", t / "missing.onnx"], ["missing.onnx"]),
    ],
    ids=[
        "empty-folder", "glob-matches-nothing", "missing-file", "no-input", "input-and-manifest",
        "manifest-missing", "manifest-no-header", "manifest-missing-video", "manifest-empty",
        "manifest-no-patient-column", "manifest-empty-patient", "manifest-bad-pseudonym",
        "workers-0", "workers-text", "every-0", "address-unreachable", "address-malformed",
        "address-without-ray", "sessions-without-patients", "sessions-without-consent",
        "consent-without-sessions", "patient-from-without-sessions",
        "patient-from-no-match", "patient-from-bad-regex", "bad-model",
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2(
    make_args: object, fragments: list[str], videos: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    args = make_args(videos, empty)  # type: ignore[operator]
    out = tmp_path / "out"
    assert_one_line_error(run_emotrace("batch", *args, "-o", out), *fragments)
    assert not (out / "index.csv").exists()


def test_output_that_is_a_file_or_a_foreign_index_is_refused(videos: Path, tmp_path: Path) -> None:
    clip = videos / "p01_week1.avi"
    taken = tmp_path / "taken"
    taken.write_text("mine")
    assert_one_line_error(run_emotrace("batch", clip, "-o", taken), "not a folder")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "index.csv").write_text("name,score\nx,1\n")
    result = run_emotrace("batch", clip, "-o", foreign)
    assert_one_line_error(result, "not an emotrace batch index")
    assert (foreign / "index.csv").read_text() == "name,score\nx,1\n"


def test_sessions_already_in_the_workspace_are_refused_before_any_work(
    videos: Path, tmp_path: Path
) -> None:
    from emotrace.sessions import record_session

    workspace = tmp_path / "ws"
    record_session([], "p01_week1", "P-1", ("happy", "sad"), workspace=workspace)
    result = run_emotrace(
        "batch", videos / "p01_week1.avi", "-o", tmp_path / "out", "--session-per-video",
        "--consent", "--patient-from", "(p01)", "--workspace", workspace,
    )  # fmt: skip
    assert_one_line_error(result, "p01_week1 already exist")
    assert not (tmp_path / "out" / "index.csv").exists()


# Inputs (no processes) --------------------------------------------------------------------------


def test_folders_are_searched_for_videos_and_duplicates_dropped(videos: Path) -> None:
    found = find_videos([videos, videos / "p01_week1.avi", str(videos / "*.avi")])
    assert [p.name for p in found] == ["corrupt.mp4", *(f"{n}.avi" for n in NAMES)]


def test_output_folders_of_videos_sharing_a_stem_differ_and_are_stable(tmp_path: Path) -> None:
    a, b, c = tmp_path / "p1" / "s1.mp4", tmp_path / "p2" / "s1.mp4", tmp_path / "s2.mp4"
    names = output_folders([a, b, c])
    assert names[c] == "s2"
    assert names[a] != names[b] and names[a].startswith("s1-") and names[b].startswith("s1-")
    assert output_folders([b, a]) == {a: names[a], b: names[b]}
    # Folders of earlier runs' videos (OUT_DIR's index) are kept, and given to no other video.
    earlier = output_folders([b, c], {a: "s1", c: "s2-old"})
    assert earlier[b].startswith("s1-") and earlier[c] == "s2-old"
    # A video named index.csv.mp4 does not get the index's own path as its folder.
    index_like = tmp_path / "index.csv.mp4"
    assert output_folders([index_like])[index_like].startswith("index.csv-")


@pytest.mark.slow
def test_a_later_batch_of_other_videos_keeps_the_earlier_records(
    videos: Path, tmp_path: Path
) -> None:
    # Two archives with a week1.avi each, analysed one after the other into one OUT_DIR: the
    # second wrote its records into the first's folder (index.csv named the same folder twice).
    first, second = tmp_path / "p01" / "week1.avi", tmp_path / "p02" / "week1.avi"
    first.parent.mkdir(), second.parent.mkdir()
    shutil.copy(videos / "p01_week1.avi", first)  # 12 frames
    shutil.copy(videos / "p02_week1.avi", second)  # 14 frames
    out = tmp_path / "out"
    assert batch(first, "-o", out).returncode == 0
    earlier = (out / "week1" / "frames.csv").read_bytes()
    assert batch(second, "-o", out).returncode == 0
    with (out / "index.csv").open(newline="") as handle:
        rows = {row["video"]: row for row in csv.DictReader(handle)}
    assert rows[str(first.resolve())]["folder"] == "week1"
    later = rows[str(second.resolve())]["folder"]
    assert later.startswith("week1-")
    assert (out / "week1" / "frames.csv").read_bytes() == earlier
    assert len(frame_rows(out / later)) == 14
    # Both together again: both complete where they are.
    assert "skipped 2 video(s)" in batch(first, second, "-o", out).stdout


def test_manifest_listing_a_video_twice_is_a_config_error(videos: Path, tmp_path: Path) -> None:
    clip = videos / "p01_week1.avi"
    with pytest.raises(ConfigError, match="listed twice"):
        read_manifest(_manifest(tmp_path, f"video\n{clip}\n{clip}\n"), need_patient=False)
