"""``emotrace batch --engine ray`` on clusters as they are deployed: token authentication, nodes
that share no filesystem with the driver, a node lost mid-batch.

The authentication tests start a real head node with token authentication in a subprocess of
their own (``ray.init`` with ``RAY_AUTH_MODE=token`` and a random ``RAY_AUTH_TOKEN``) and run the
real CLI against it. The multi-node tests start ``ray.cluster_utils.Cluster`` in this process:
a head without CPUs (the driver's node) and two worker nodes of one CPU each, so every video is
analysed on a node other than the driver's.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import assert_one_line_error, run_emotrace, run_emotrace_in_process
from video_helpers import BATCH_NAMES, batch_videos

NAMES = BATCH_NAMES


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three 12-frame clips of a real face moving across the frame, and a corrupt ``.mp4``."""
    return batch_videos(tmp_path_factory.mktemp("videos"))


def index_rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "index.csv").open(newline="") as handle:
        return {Path(row["video"]).name: row for row in csv.DictReader(handle)}


def without_ray_variables() -> dict[str, str]:
    """This process's environment less Ray's address and authentication settings."""
    drop = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
    return {k: v for k, v in os.environ.items() if k not in drop}


# Token authentication ---------------------------------------------------------------------------

HEAD = """
import logging, sys, ray
context = ray.init(
    address="local", num_cpus=1, include_dashboard=False, logging_level=logging.ERROR
)
print(context.address_info["gcs_address"], flush=True)
sys.stdin.read()  # until the test closes stdin
ray.shutdown()
"""


@pytest.fixture(scope="module")
def token_cluster() -> Iterator[tuple[str, str]]:
    """A real one-CPU Ray head with token authentication; ``(address, token)``."""
    pytest.importorskip("ray", reason="ray (the ray extra) not installed")
    token = secrets.token_hex(16)
    env = {**without_ray_variables(), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    head = subprocess.Popen(
        [sys.executable, "-c", HEAD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert head.stdout is not None
        address = head.stdout.readline().strip()
        assert address, "the head node did not start"
        yield address, token
    finally:
        assert head.stdin is not None
        head.stdin.close()
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            head.kill()


@pytest.mark.ray
@pytest.mark.parametrize(
    ("settings", "fragments"),
    [
        ({}, ("uses token authentication", "RAY_AUTH_MODE is not set", "RAY_AUTH_MODE=token")),
        (
            {"RAY_AUTH_MODE": "disabled"},
            ("uses token authentication", "RAY_AUTH_MODE is 'disabled'", "RAY_AUTH_TOKEN"),
        ),
        (
            {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "not-the-token"},
            ("refused this token", "RAY_AUTH_TOKEN", "~/.ray/auth_token"),
        ),
    ],
    ids=["mode-unset", "mode-disabled", "wrong-token"],
)
def test_a_cluster_refusing_the_driver_says_what_to_set_in_one_line_at_once(
    token_cluster: tuple[str, str],
    videos: Path,
    tmp_path: Path,
    settings: dict[str, str],
    fragments: tuple[str, ...],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    address, _ = token_cluster
    # run_emotrace starts from os.environ, where a test that called ray.init in this process
    # (test_batch.py's local cluster) left RAY_AUTH_MODE=token: "unset" must really be unset.
    for name in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    started = time.monotonic()
    result = run_emotrace(
        "batch", videos, "-o", tmp_path / "out", "--engine", "ray", "--address", address,
        env={**without_ray_variables(), **settings}, timeout=60,
    )  # fmt: skip
    took = time.monotonic() - started
    assert_one_line_error(result, f"--address {address}", *fragments)
    assert took < 15, took  # Ray alone retries for 20 s, printing warnings
    assert not (tmp_path / "out" / "index.csv").exists()


@pytest.mark.ray
@pytest.mark.slow
def test_the_clusters_token_in_the_environment_joins_it(
    token_cluster: tuple[str, str], videos: Path, tmp_path: Path
) -> None:
    address, token = token_cluster
    out = tmp_path / "out"
    env = {**without_ray_variables(), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    result = run_emotrace(
        "batch", videos / "p01_week1.avi", videos / "corrupt.mp4", "-o", out, "--engine", "ray",
        "--address", address, "--workers", "1", env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr  # the corrupt video
    rows = index_rows(out)
    assert rows["p01_week1.avi"]["status"] == "complete"
    assert rows["p01_week1.avi"]["frames"] == "12"
    assert rows["corrupt.mp4"]["status"] == "failed"


# Several nodes, no shared filesystem ------------------------------------------------------------


@pytest.fixture
def cluster() -> Iterator[tuple[Any, list[Any]]]:
    """A head node without CPUs (the driver's) and two worker nodes of one CPU each, joined by
    this process; ``(cluster, worker nodes)``."""
    ray = pytest.importorskip("ray", reason="ray (the ray extra) not installed")
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "include_dashboard": False,
            # A lost node is known within about 3 s (3 missed checks 1 s apart), not the 12 s
            # Ray's defaults took here: the lost-node test waits for that before its rerun.
            "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 3},
        },
    )
    try:
        nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
        yield cluster, nodes
    finally:
        ray.shutdown()
        cluster.shutdown()


def inbox(videos: Path, folder: Path, count: int = 1) -> Path:
    """``count`` copies of the three clips (``clipNN_<name>.avi``) and the corrupt file."""
    folder.mkdir()
    for i in range(count):
        for name in NAMES:
            shutil.copy(videos / f"{name}.avi", folder / f"c{i:02d}_{name}.avi")
    shutil.copy(videos / "corrupt.mp4", folder / "corrupt.mp4")
    return folder


@pytest.fixture
def vanishing_inputs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The driver's read of each video it sends, after which the file moves away from its path:
    a worker that opened the driver's path would find nothing there. The paths read, in order."""
    from emotrace.batch import engines

    read: list[str] = []
    gone = tmp_path / "gone"
    gone.mkdir()
    original = engines.read_chunks

    def read_then_move(path: str) -> Iterator[bytes]:
        yield from original(path)
        read.append(path)
        os.replace(path, gone / f"{len(read)}-{Path(path).name}")

    monkeypatch.setattr(engines, "read_chunks", read_then_move)
    return read


@pytest.mark.ray
@pytest.mark.slow
def test_two_worker_nodes_without_the_drivers_folders_index_every_video(
    cluster: tuple[Any, list[Any]], videos: Path, tmp_path: Path, vanishing_inputs: list[str]
) -> None:
    """``send``: each video reaches its worker node through the object store after leaving the
    driver's folder, and the records come back to the driver, which alone writes OUT_DIR."""
    from emotrace.batch import find_videos, pipeline_options, run_batch

    folder = inbox(videos, tmp_path / "inbox")
    out = tmp_path / "out"
    entries = find_videos([folder])
    report = run_batch(
        entries, out, pipeline_options(threads=1), engine="ray", workers=2, transfer="send",
        log=lambda line: None,
    )  # fmt: skip
    assert sorted(vanishing_inputs) == sorted(map(str, entries))
    assert list(folder.iterdir()) == []  # no worker could have read the driver's copies
    assert len(report.complete) == 3 and len(report.failed) == 1
    rows = index_rows(out)
    assert rows["corrupt.mp4"]["status"] == "failed"
    assert "cannot open as a video" in rows["corrupt.mp4"]["error"]
    for i, name in enumerate(NAMES):
        row = rows[f"c00_{name}.avi"]
        assert row["status"] == "complete" and int(row["frames"]) == 12 + i
        records = out / row["folder"]
        summary = json.loads((records / "summary.json").read_text())
        assert summary["completed"] and summary["frames"] == 12 + i
        assert summary["source"]["name"] == row["video"]  # the driver's name, not a temp file
        lines = (records / "frames.jsonl").read_text().splitlines()
        assert len(lines) == 12 + i
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.ray
@pytest.mark.slow
def test_losing_a_worker_node_mid_batch_keeps_finished_videos_and_a_rerun_completes(
    cluster: tuple[Any, list[Any]], videos: Path, tmp_path: Path
) -> None:
    from emotrace.batch import find_videos, pipeline_options, run_batch

    head, nodes = cluster
    folder = inbox(videos, tmp_path / "inbox", count=3)  # 9 clips and the corrupt file
    out = tmp_path / "out"
    entries = find_videos([folder])
    finished: list[str] = []

    def log(line: str) -> None:
        finished.append(line)
        if len(finished) == 1:  # one video done: a worker node goes away
            head.remove_node(nodes[0], allow_graceful=False)

    options = pipeline_options(threads=1)
    report = run_batch(entries, out, options, engine="ray", workers=2, transfer="send", log=log)
    rows = index_rows(out)
    assert len(rows) == len(entries)  # every video indexed, none lost
    complete = {name for name, row in rows.items() if row["status"] == "complete"}
    assert len(complete) >= 1
    for name in complete:
        assert json.loads((out / rows[name]["folder"] / "summary.json").read_text())["completed"]
    died = [r for r in rows.values() if "the Ray worker died" in r["error"]]
    assert len(died) <= 1, finished  # the video in flight on the lost node, if any
    assert len(report.complete) == len(complete)
    stamps = {n: (out / rows[n]["folder"] / "frames.csv").stat().st_mtime_ns for n in complete}

    # The rerun, once the cluster knows the node is gone (as a user's later rerun finds it), on
    # the one node left, completes the rest and leaves the finished videos alone.
    import ray

    deadline = time.monotonic() + 60
    while ray.cluster_resources().get("CPU", 0) > 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    rerun = run_batch(
        entries, out, options, engine="ray", workers=1, transfer="send", log=lambda line: None
    )
    assert rerun.skipped == len(complete)
    rows = index_rows(out)
    failed = {n: r["error"] for n, r in rows.items() if r["status"] != "complete"}
    assert set(failed) == {"corrupt.mp4"}, failed
    assert {n: (out / rows[n]["folder"] / "frames.csv").stat().st_mtime_ns for n in complete} == (
        stamps
    )


@pytest.mark.ray
@pytest.mark.slow
def test_send_and_shared_transfers_write_the_same_records(
    cluster: tuple[Any, list[Any]], videos: Path, tmp_path: Path
) -> None:
    from emotrace.batch import pipeline_options, run_batch

    options = pipeline_options(threads=1)
    video = videos / "p02_week1.avi"
    outs = {}
    for transfer in ("send", "shared"):
        outs[transfer] = tmp_path / transfer
        report = run_batch(
            [video], outs[transfer], options, engine="ray", workers=1, transfer=transfer,
            log=lambda line: None,
        )  # fmt: skip
        assert report.complete == [str(video)]
    for name in ("frames.csv", "frames.jsonl"):
        assert (outs["send"] / "p02_week1" / name).read_bytes() == (
            outs["shared"] / "p02_week1" / name
        ).read_bytes()
    summaries = [json.loads((outs[t] / "p02_week1" / "summary.json").read_text()) for t in outs]
    assert summaries[0]["source"] == summaries[1]["source"]
    assert summaries[0]["settings"] == summaries[1]["settings"]


# Without a cluster -------------------------------------------------------------------------------


def test_a_video_over_the_send_limit_is_refused_before_sending(tmp_path: Path) -> None:
    """The size limit (``--max-send-mb``) is the driver's, checked before anything is sent."""
    from emotrace.batch.engines import RayEngine
    from emotrace.errors import ConfigError

    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (2 * 2**20 + 1))
    engine = RayEngine.__new__(RayEngine)  # no cluster: only the check runs
    engine.max_send_bytes = 2 * 2**20
    with pytest.raises(ConfigError, match=r"2 MiB is over the 2 MiB .*--max-send-mb"):
        engine._send(str(big))


def test_a_sent_video_is_decoded_from_a_private_file_that_is_removed(
    videos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's copy of a sent video: mode 0600 in a 0700 folder, gone afterwards."""
    import tempfile

    from emotrace.batch import VideoAnalyzer, pipeline_options
    from emotrace.batch.worker import VideoJob

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    analyzer = VideoAnalyzer(pipeline_options(threads=1))
    seen: list[tuple[int, int]] = []
    original = analyzer.analyze

    def spy(job: VideoJob, progress: Any = None) -> Any:
        video = Path(job.video)
        seen.append((video.stat().st_mode & 0o777, video.parent.stat().st_mode & 0o777))
        return original(job, progress)

    monkeypatch.setattr(analyzer, "analyze", spy)
    data = (videos / "p01_week1.avi").read_bytes()
    chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    result = analyzer.analyze_sent(VideoJob("clinic/p01_week1.avi", ""), chunks)
    assert result.status == "complete" and result.frames == 12
    assert seen == [(0o600, 0o700)]
    assert result.files is not None and set(result.files) == {
        "frames.csv",
        "frames.jsonl",
        "summary.json",
    }
    assert json.loads(result.files["summary.json"])["source"]["name"] == "clinic/p01_week1.avi"
    assert [p for p in tmp_path.iterdir() if p.name.startswith("emotrace-batch-")] == []


def test_copies_left_by_killed_workers_are_removed_by_the_next_worker(tmp_path: Path) -> None:
    """A worker killed mid-video (its node lost) cannot remove its private copy; the next
    worker on that machine does, and never one of a worker still running."""
    from emotrace.batch.worker import TEMP_PREFIX, sweep_stale_copies

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = tmp_path / f"{TEMP_PREFIX}{gone.pid}-abc"
    running = tmp_path / f"{TEMP_PREFIX}{os.getpid()}-def"
    other = tmp_path / "emotrace-batch-notes"
    for folder in (stale, running, other):
        folder.mkdir(mode=0o700)
        (folder / "video.mp4").write_bytes(b"patient")
    assert sweep_stale_copies(str(tmp_path)) == [stale]
    assert not stale.exists() and running.exists() and other.exists()


def test_transfer_needs_the_ray_engine(videos: Path, tmp_path: Path) -> None:
    result = run_emotrace_in_process("batch", videos, "-o", tmp_path / "out", "--transfer", "send")
    assert_one_line_error(result, "--transfer needs --engine ray")


def test_cli_and_worker_agree_on_the_send_limit() -> None:
    from emotrace.batch.worker import MAX_SEND_MB
    from emotrace.cli import batch_cmd

    assert batch_cmd.MAX_SEND_MB == MAX_SEND_MB


# Videos given as URLs ----------------------------------------------------------------------------


@pytest.fixture
def http_videos(videos: Path) -> Iterator[str]:
    """The clips served over HTTP on a free local port; the base URL."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(videos))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_videos_given_as_http_urls_are_read_by_their_workers(
    http_videos: str, tmp_path: Path
) -> None:
    from emotrace.batch import find_videos, pipeline_options, run_batch

    urls = [f"{http_videos}/p01_week2.avi", f"{http_videos}/missing.avi"]
    entries = find_videos(urls)
    assert [str(e) for e in entries] == urls
    out = tmp_path / "out"
    report = run_batch(entries, out, pipeline_options(threads=1), workers=1, log=lambda _: None)
    assert report.complete == [urls[0]] and report.failed == [urls[1]]
    rows = {row["video"]: row for row in csv.DictReader((out / "index.csv").open())}
    assert rows[urls[0]]["folder"] == "p01_week2" and rows[urls[0]]["frames"] == "13"
    summary = json.loads((out / "p01_week2" / "summary.json").read_text())
    assert summary["source"]["name"] == urls[0] and summary["completed"]
    assert "404" in rows[urls[1]]["error"]
    # A rerun skips the complete URL and retries the other.
    again = run_batch(entries, out, pipeline_options(threads=1), workers=1, log=lambda _: None)
    assert again.skipped == 1 and again.failed == [urls[1]]


def test_object_store_urls_are_read_through_pyarrow_filesystems(
    videos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``s3://`` (and ``gs://``, ``abfs://``, ``hdfs://``) go through ``pyarrow.fs`` as Ray's
    own storage does; here the bucket is a local folder (a pyarrow ``LocalFileSystem``) behind
    the URL, so no store is reached: this checks emotrace's side, not S3's."""
    fs = pytest.importorskip("pyarrow.fs")
    from emotrace.batch import worker
    from emotrace.batch.inputs import VideoURL, find_videos

    asked: list[str] = []

    def from_uri(uri: str) -> tuple[Any, str]:
        asked.append(uri)
        return fs.LocalFileSystem(), str(videos / uri.rsplit("/", 1)[-1])

    monkeypatch.setattr(worker, "filesystem_for", from_uri)
    url = "s3://clinic-bucket/2024/p01_week1.avi?versionId=3"
    (found,) = find_videos([url])
    assert isinstance(found, VideoURL) and found.stem == "p01_week1"
    data = b"".join(worker.read_url("s3://clinic-bucket/2024/p01_week1.avi"))
    assert data == (videos / "p01_week1.avi").read_bytes()
    assert asked == ["s3://clinic-bucket/2024/p01_week1.avi"]
