"""Frame sources on real files, folders and a local MJPEG stream; every bad input is one error."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from emotrace.errors import VideoError
from emotrace.video import open_source
from video_helpers import background, moving_head_video, stalling_mjpeg_server, write_video

# FFmpeg's own messages are noise here: the errors under test are the exceptions.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def numbered_frames(n: int, size: tuple[int, int] = (160, 120)) -> list[np.ndarray]:
    frames = []
    for i in range(n):
        frame = background(*size, seed=i)
        cv2.putText(frame, str(i), (20, 80), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
        frames.append(frame)
    return frames


@pytest.mark.parametrize(("codec", "suffix"), [("MJPG", ".avi"), ("mp4v", ".mp4")])
def test_file_source_reads_every_frame_with_timestamps(
    tmp_path: Path, codec: str, suffix: str
) -> None:
    path = write_video(tmp_path / f"clip{suffix}", numbered_frames(12), fps=10, codec=codec)
    with open_source(path) as source:
        info = source.info
        frames = list(source)
    assert (info.kind, info.live, info.fps, info.frame_count) == ("file", False, 10.0, 12)
    assert (info.width, info.height) == (160, 120)
    assert [f.index for f in frames] == list(range(12))
    np.testing.assert_allclose([f.time_s for f in frames], np.arange(12) / 10, atol=1e-6)
    assert all(f.image.shape == (120, 160, 3) and f.image.dtype == np.uint8 for f in frames)
    assert source.stop_reason == "end" and source.dropped == 0

    sparse = list(open_source(path, every=5))
    assert [f.index for f in sparse] == [0, 5, 10]
    np.testing.assert_allclose([f.time_s for f in sparse], [0.0, 0.5, 1.0], atol=1e-6)


def test_image_and_folder_sources(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for name, frame in zip(["f10.png", "f2.png", "f1.png"], numbered_frames(3), strict=True):
        cv2.imwrite(str(folder / name), frame)
    (folder / "f3.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (folder / "notes.txt").write_text("not an image")
    source = open_source(folder, image_fps=2.0)
    frames = list(source)
    assert source.info.kind == "folder" and source.info.frame_count == 4
    assert [f.index for f in frames] == [0, 1, 3]  # f1, f2, (f3 unreadable), f10
    assert [f.time_s for f in frames] == [0.0, 0.5, 1.5]
    assert source.skipped == 1
    single = list(open_source(folder / "f2.png"))
    assert len(single) == 1 and single[0].time_s == 0.0


def _truncated_mp4(tmp_path: Path) -> Path:
    path = write_video(tmp_path / "full.mp4", numbered_frames(10), codec="mp4v")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # the index is at the end
    return cut


def _unknown_codec(tmp_path: Path) -> Path:
    """A valid AVI whose codec tag no decoder knows (MJPG renamed to ZZZZ)."""
    path = write_video(tmp_path / "clip.avi", numbered_frames(3))
    path.write_bytes(path.read_bytes().replace(b"MJPG", b"ZZZZ"))
    return path


def _write(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        (tmp_path / name).write_bytes(data)
        return tmp_path / name

    return make


def _empty_folder(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda tmp: tmp / "missing.mp4", "no such file"),
        (_write("zero.mp4", b""), "empty file (0 bytes)"),
        (_write("garbage.avi", os.urandom(4096)), "cannot open as a video"),
        (_truncated_mp4, "cannot open as a video"),
        (_unknown_codec, "unsupported format or codec"),
        (_write("broken.png", b"\x89PNG\r\n\x1a\n truncated"), "not a readable image"),
        (_empty_folder, "no image files"),
        (lambda tmp: 99, "camera 99 cannot be opened"),
        (lambda tmp: "rtsp://127.0.0.1:9/none", "cannot connect to the stream"),
        (lambda tmp: "ftp://127.0.0.1/clip.mp4", "unsupported stream scheme"),
    ],
    ids=["missing", "zero-byte", "garbage", "truncated-mp4", "unknown-codec", "bad-image",
         "empty-folder", "camera-99", "unreachable-rtsp", "ftp"],
)  # fmt: skip
def test_bad_sources_raise_one_clear_video_error(
    tmp_path: Path, make: Callable[[Path], object], fragment: str
) -> None:
    with pytest.raises(VideoError) as info:
        open_source(make(tmp_path), timeout_s=2.0)  # type: ignore[arg-type]
    message = str(info.value)
    assert fragment in message and "\n" not in message


def test_truncated_avi_yields_its_good_frames_then_raises(tmp_path: Path) -> None:
    full = write_video(tmp_path / "full.avi", numbered_frames(40))
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    seen = []
    with pytest.raises(VideoError, match=r"ended after \d+ of 40 frames \(truncated"):
        for frame in open_source(cut):
            seen.append(frame.index)
    assert 10 < len(seen) < 40 and seen == list(range(len(seen)))


@pytest.fixture
def stalling_mjpeg_stream() -> Iterator[str]:
    with stalling_mjpeg_server(numbered_frames(8)) as url:
        yield url


@pytest.mark.slow
def test_stalled_live_stream_reconnects_a_bounded_number_of_times_then_stops(
    stalling_mjpeg_stream: str,
) -> None:
    started = time.monotonic()
    source = open_source(stalling_mjpeg_stream, timeout_s=1.0, reconnects=1)
    assert source.info.kind == "stream" and source.info.live
    frames = list(source)
    assert source.stop_reason == "stalled" and source.reconnects == 1
    assert len(frames) + source.dropped >= 9, "frames from both connections arrived"
    assert all(b.index > a.index and b.time_s >= a.time_s for a, b in itertools.pairwise(frames))
    assert time.monotonic() - started < 10


def test_closing_a_source_early_stops_its_capture_thread(tmp_path: Path) -> None:
    path = moving_head_video(tmp_path / "clip.avi", n=20)
    source = open_source(path)
    frames = iter(source)
    assert next(frames).index == 0
    source.close()
    assert source.stop_reason == "closed"
    assert source._thread is not None and not source._thread.is_alive()
    with pytest.raises(VideoError, match="only once"):
        iter(source)
