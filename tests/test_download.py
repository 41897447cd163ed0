"""``emotrace data download`` against loopback fakes of Roboflow, Kaggle and the Hugging Face Hub.

Every test runs the real CLI in a process of its own against real HTTP servers on 127.0.0.1
(tests/download_fakes.py); nothing touches the internet. Unsafe archives are also checked directly
against :func:`emotrace.data.download.unpack`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import (
    assert_one_line_error,
    make_class_folders,
    run_emotrace,
    run_emotrace_in_process,
)
from download_fakes import COMMIT, FakeServices
from emotrace.data.download import MARKER, unpack
from emotrace.errors import ArchiveError

FER_CLASSES = {"angry": 2, "happy": 3, "neutral": 2}
AFFECTNET_CLASSES = {
    "anger": 1,
    "contempt": 2,
    "disgust": 1,
    "fear": 1,
    "happy": 2,
    "neutral": 2,
    "sad": 1,
    "surprise": 1,
}


# -- helpers ---------------------------------------------------------------------------------


def zip_tree(root: Path, prefix: str = "", extra: dict[str, bytes] | None = None) -> bytes:
    """The files under ``root`` as a zip (names under ``prefix``), plus ``extra`` members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + path.relative_to(root).as_posix())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buffer.getvalue()


def folder_export(
    tmp_path: Path, name: str, classes: dict[str, int], splits: tuple[str, ...]
) -> Path:
    return make_class_folders(tmp_path / "src" / name, classes, splits=splits, size=32)


@pytest.fixture
def services() -> Iterator[FakeServices]:
    server = FakeServices()
    yield server
    server.close()


def service_env(services: FakeServices, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Every service pointed at the fake; no credentials, cache or config of the real user."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {
        "ROBOFLOW_API_URL": services.url,
        "KAGGLE_API_ENDPOINT": services.url,
        "HF_ENDPOINT": services.url,
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",
        "HOME": str(home),
        "XDG_CONFIG_HOME": "",
        "ROBOFLOW_API_KEY": "",
        "KAGGLE_USERNAME": "",
        "KAGGLE_KEY": "",
        "KAGGLE_CONFIG_DIR": "",
        "HF_TOKEN": "",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    return {**env, **extra}


def download(
    services: FakeServices, tmp_path: Path, *args: str | Path, **env: str
) -> subprocess.CompletedProcess[str]:
    return run_emotrace(
        "data", "download", *args, cwd=tmp_path, env=service_env(services, tmp_path, **env)
    )


def kaggle_json(tmp_path: Path, user: str = "ana", key: str = "kg-good-key") -> Path:
    path = tmp_path / "home" / ".kaggle" / "kaggle.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"username": user, "key": key}))
    return path


def assert_no_dataset(out: Path) -> None:
    """Nothing at ``out`` that could pass for a finished download."""
    assert not (out / MARKER).exists()
    assert not out.exists() or not any(out.iterdir())


@pytest.fixture
def fer_zip(tmp_path: Path) -> bytes:
    return zip_tree(folder_export(tmp_path, "fer", FER_CLASSES, ("train", "test")))


# -- Roboflow ------------------------------------------------------------------------------


def test_roboflow_export_is_downloaded_unpacked_summarised_and_kept(
    services: FakeServices, tmp_path: Path
) -> None:
    root = folder_export(tmp_path, "rf", {"Angry": 2, "Happy": 3}, ("train", "valid", "test"))
    services.fake.add_blob("rf.zip", zip_tree(root, extra={"README.roboflow.txt": b"exported"}))
    services.fake.roboflow["team/fer-faces/3"] = "rf.zip"
    services.fake.roboflow_pending = 1  # one "still exporting" answer first
    out = tmp_path / "data" / "rf"

    result = download(
        services,
        tmp_path,
        "roboflow",
        "team/fer-faces/3",
        "-o",
        out,
        ROBOFLOW_API_KEY="rf-good-key",
    )
    assert result.returncode == 0, result.stderr
    assert "downloaded roboflow:team/fer-faces/3" in result.stdout
    assert "format: folder; 2 classes: angry, happy" in result.stdout
    assert "train: 5 images  angry=2 happy=3" in result.stdout
    assert "valid: 5 images" in result.stdout and "test: 5 images" in result.stdout
    assert "rf-good-key" not in result.stdout + result.stderr
    marker = json.loads((out / MARKER).read_text())
    assert marker["complete"] is True and marker["md5_checked"] is True
    assert marker["source"]["ref"] == "team/fer-faces/3"
    assert "rf-good-key" not in json.dumps(marker) and "signed-link-secret" not in json.dumps(
        marker
    )
    assert not (tmp_path / "data" / ".rf.emotrace-download").exists()

    before = len(services.fake.requests)
    again = download(services, tmp_path, "roboflow", "team/fer-faces/3", "-o", out)
    assert again.returncode == 0, again.stderr
    assert "already holds roboflow:team/fer-faces/3; nothing to do" in again.stdout
    assert "train: 5 images" in again.stdout
    assert len(services.fake.requests) == before  # no network at all, not even for the key


def test_roboflow_without_a_key_names_the_variable(services: FakeServices, tmp_path: Path) -> None:
    result = download(services, tmp_path, "roboflow", "team/fer-faces/3", "-o", tmp_path / "rf")
    assert_one_line_error(result, "ROBOFLOW_API_KEY", "--api-key")
    assert services.fake.requests == []


def test_roboflow_wrong_key_is_rejected_without_echoing_it(
    services: FakeServices, tmp_path: Path
) -> None:
    services.fake.roboflow["team/fer-faces/3"] = "rf.zip"
    out = tmp_path / "rf"
    result = download(
        services, tmp_path, "roboflow", "team/fer-faces/3", "-o", out, "--api-key", "wrong-key"
    )
    line = assert_one_line_error(result, "Roboflow rejected the API key from --api-key", "revoked")
    assert "wrong-key" not in line
    assert_no_dataset(out)


def test_roboflow_unknown_version_is_not_found(services: FakeServices, tmp_path: Path) -> None:
    result = download(
        services,
        tmp_path,
        "roboflow",
        "team/fer-faces/9",
        "-o",
        tmp_path / "rf",
        ROBOFLOW_API_KEY="rf-good-key",
    )
    assert_one_line_error(result, "Roboflow has no dataset version team/fer-faces/9")


def test_roboflow_reference_must_have_three_parts(services: FakeServices, tmp_path: Path) -> None:
    result = download(services, tmp_path, "roboflow", "team/fer-faces", "-o", tmp_path / "rf")
    assert_one_line_error(result, "expected WORKSPACE/PROJECT/VERSION")


# -- Kaggle --------------------------------------------------------------------------------


def test_kaggle_dataset_with_kaggle_json_follows_the_redirect_without_the_credentials(
    services: FakeServices, tmp_path: Path, fer_zip: bytes
) -> None:
    services.fake.add_blob("fer2013.zip", fer_zip)
    services.fake.kaggle["msambare/fer2013"] = "fer2013.zip"
    kaggle_json(tmp_path)
    out = tmp_path / "fer2013"

    result = download(services, tmp_path, "kaggle", "msambare/fer2013", "-o", out)
    assert result.returncode == 0, result.stderr
    assert "format: folder; 3 classes: angry, happy, neutral" in result.stdout
    assert " test: 7 images" in result.stdout
    (api,) = services.fake.seen("/api/v1/datasets/download/msambare/fer2013")
    assert api["Authorization"].startswith("Basic ")
    (storage,) = services.fake.seen("/storage/fer2013.zip")
    assert "Authorization" not in storage  # credentials stay with Kaggle, not the storage host
    assert json.loads((out / MARKER).read_text())["md5_checked"] is True


def test_kaggle_environment_variables_take_precedence(
    services: FakeServices, tmp_path: Path, fer_zip: bytes
) -> None:
    services.fake.add_blob("fer2013.zip", fer_zip)
    services.fake.kaggle["msambare/fer2013"] = "fer2013.zip"
    kaggle_json(tmp_path, key="stale-key")
    result = download(
        services,
        tmp_path,
        "kaggle",
        "msambare/fer2013",
        "-o",
        tmp_path / "fer",
        KAGGLE_USERNAME="ana",
        KAGGLE_KEY="kg-good-key",
    )
    assert result.returncode == 0, result.stderr


def test_kaggle_without_credentials_names_the_variables_and_the_file(
    services: FakeServices, tmp_path: Path
) -> None:
    result = download(services, tmp_path, "kaggle", "msambare/fer2013", "-o", tmp_path / "fer")
    assert_one_line_error(result, "KAGGLE_USERNAME", "KAGGLE_KEY", ".kaggle/kaggle.json")
    assert services.fake.requests == []


def test_kaggle_malformed_kaggle_json_is_named(services: FakeServices, tmp_path: Path) -> None:
    path = kaggle_json(tmp_path)
    path.write_text("{not json")
    result = download(services, tmp_path, "kaggle", "msambare/fer2013", "-o", tmp_path / "fer")
    assert_one_line_error(result, str(path), '"username"')


def test_kaggle_wrong_credentials_name_their_source(services: FakeServices, tmp_path: Path) -> None:
    services.fake.kaggle["msambare/fer2013"] = "fer2013.zip"
    path = kaggle_json(tmp_path, key="wrong-key")
    out = tmp_path / "fer"
    result = download(services, tmp_path, "kaggle", "msambare/fer2013", "-o", out)
    line = assert_one_line_error(result, "Kaggle rejected the credentials from", str(path))
    assert "wrong-key" not in line
    assert_no_dataset(out)


def test_kaggle_unknown_dataset_is_not_found(services: FakeServices, tmp_path: Path) -> None:
    kaggle_json(tmp_path)
    result = download(services, tmp_path, "kaggle", "nobody/nothing", "-o", tmp_path / "x")
    assert_one_line_error(result, "Kaggle has no dataset nobody/nothing")


def test_kaggle_checksum_mismatch_removes_the_download(
    services: FakeServices, tmp_path: Path, fer_zip: bytes
) -> None:
    services.fake.add_blob("fer2013.zip", fer_zip, md5="AAAAAAAAAAAAAAAAAAAAAA==")
    services.fake.kaggle["msambare/fer2013"] = "fer2013.zip"
    kaggle_json(tmp_path)
    out = tmp_path / "fer"
    result = download(services, tmp_path, "kaggle", "msambare/fer2013", "-o", out)
    assert_one_line_error(result, "checksum mismatch", "run the command again")
    assert_no_dataset(out)
    assert not list((tmp_path / ".fer.emotrace-download").glob("*.part"))


# -- Hugging Face --------------------------------------------------------------------------


def affectnet_zip(tmp_path: Path) -> bytes:
    """AffectNet's 8 classes, contempt included, wrapped in one folder as many zips are."""
    root = folder_export(tmp_path, "affectnet", AFFECTNET_CLASSES, ("train", "valid"))
    return zip_tree(root, prefix="AffectNet/", extra={"__MACOSX/._junk": b"x"})


def test_hf_file_is_downloaded_through_the_hub_cache_with_contempt(
    services: FakeServices, tmp_path: Path
) -> None:
    services.fake.add_blob("affectnet.zip", affectnet_zip(tmp_path))
    services.fake.hf["chitradrishti/AffectNet"] = {"affectnet.zip": "affectnet.zip"}
    out = tmp_path / "data" / "affectnet"

    args = ("hf", "chitradrishti/AffectNet", "--file", "affectnet.zip", "-o", out)
    result = download(services, tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert "format: affectnet; 8 classes:" in result.stdout and "contempt" in result.stdout
    assert "train: 11 images" in result.stdout
    assert (out / "train" / "contempt").is_dir()  # the wrapper folder is gone
    marker = json.loads((out / MARKER).read_text())
    assert marker["commit"] == COMMIT and marker["sha256_checked"] is True
    cached = list((tmp_path / "hf-home" / "hub").glob("datasets--chitradrishti--AffectNet/blobs/*"))
    assert len(cached) == 1

    before = len(services.fake.requests)
    again = download(services, tmp_path, *args)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert len(services.fake.requests) == before


def test_hf_without_file_takes_the_only_archive(services: FakeServices, tmp_path: Path) -> None:
    services.fake.add_blob("affectnet.zip", affectnet_zip(tmp_path))
    services.fake.hf["chitradrishti/AffectNet"] = {"affectnet.zip": "affectnet.zip"}
    out = tmp_path / "affectnet"
    result = download(services, tmp_path, "hf", "chitradrishti/AffectNet", "-o", out)
    assert result.returncode == 0, result.stderr
    assert "downloaded hf:chitradrishti/AffectNet into" in result.stdout


def test_hf_unknown_repository(services: FakeServices, tmp_path: Path) -> None:
    result = download(
        services, tmp_path, "hf", "nobody/nothing", "--file", "a.zip", "-o", tmp_path / "x"
    )
    assert_one_line_error(
        result, "Hugging Face has no dataset repository nobody/nothing", "HF_TOKEN"
    )


def test_hf_unknown_file(services: FakeServices, tmp_path: Path) -> None:
    services.fake.hf["chitradrishti/AffectNet"] = {}
    result = download(
        services,
        tmp_path,
        "hf",
        "chitradrishti/AffectNet",
        "--file",
        "nope.zip",
        "-o",
        tmp_path / "x",
    )
    assert_one_line_error(result, "chitradrishti/AffectNet has no file 'nope.zip'")


def test_hf_invalid_token_names_hf_token(services: FakeServices, tmp_path: Path) -> None:
    services.fake.hf["chitradrishti/AffectNet"] = {}
    services.fake.hf_token = "hf_good"
    result = download(
        services,
        tmp_path,
        "hf",
        "chitradrishti/AffectNet",
        "--file",
        "a.zip",
        "-o",
        tmp_path / "x",
        HF_TOKEN="hf_wrong",
    )
    line = assert_one_line_error(result, "rejected the token", "HF_TOKEN")
    assert "hf_wrong" not in line


@pytest.mark.slow  # retries, with their pauses
def test_hf_transfer_cut_halfway_is_resumed_with_range(
    services: FakeServices, tmp_path: Path
) -> None:
    # huggingface_hub writes 10 MiB chunks and resumes after the last whole one: 24 MiB, cut at 21.
    root = folder_export(tmp_path, "affectnet", AFFECTNET_CLASSES, ("train", "valid"))
    (root / "checksums.bin").write_bytes(os.urandom(24 << 20))
    data = zip_tree(root, prefix="AffectNet/")
    services.fake.add_blob("affectnet.zip", data, cuts=1, cut_at=21 << 20)
    services.fake.hf["chitradrishti/AffectNet"] = {"affectnet.zip": "affectnet.zip"}
    args = ("hf", "chitradrishti/AffectNet", "--file", "affectnet.zip", "-o", tmp_path / "an")
    result = download(services, tmp_path, *args)
    assert result.returncode == 0, result.stderr
    first, second = (h.get("Range") for h in services.fake.seen("/storage/affectnet.zip"))
    assert first is None
    assert second is not None and int(second.removeprefix("bytes=").rstrip("-")) >= 10 << 20


# -- transfers, network, disk ----------------------------------------------------------------


def kaggle_fer(services: FakeServices, tmp_path: Path, data: bytes, **blob: object) -> None:
    services.fake.add_blob("fer2013.zip", data, **blob)
    services.fake.kaggle["msambare/fer2013"] = "fer2013.zip"
    kaggle_json(tmp_path)


def test_transfer_cut_halfway_resumes_with_range_in_the_same_run(
    services: FakeServices, tmp_path: Path, fer_zip: bytes
) -> None:
    kaggle_fer(services, tmp_path, fer_zip, cuts=1)
    result = download(services, tmp_path, "kaggle", "msambare/fer2013", "-o", tmp_path / "fer")
    assert result.returncode == 0, result.stderr
    first, second = services.fake.seen("/storage/fer2013.zip")
    assert "Range" not in first
    assert second["Range"] == f"bytes={len(fer_zip) // 2}-"
    assert second["If-Range"] == services.fake.blobs["fer2013.zip"].etag


@pytest.mark.slow  # two runs of four retries, with their pauses
def test_transfer_that_keeps_breaking_resumes_on_the_next_run(
    services: FakeServices, tmp_path: Path, fer_zip: bytes
) -> None:
    # Every attempt of the first run delivers 1000 more bytes, then the connection drops.
    kaggle_fer(services, tmp_path, fer_zip, cuts=4, cut_at=1000)
    out = tmp_path / "fer"
    failed = download(services, tmp_path, "kaggle", "msambare/fer2013", "-o", out)
    assert_one_line_error(failed, "broke off after 4,000 of", "run the command again to resume")
    assert_no_dataset(out)

    resumed = download(services, tmp_path, "kaggle", "msambare/fer2013", "-o", out)
    assert resumed.returncode == 0, resumed.stderr
    assert services.fake.seen("/storage/fer2013.zip")[-1]["Range"] == "bytes=4000-"
    assert (out / MARKER).is_file()


@pytest.mark.slow  # a run of four retries, with their pauses
def test_changed_file_is_fetched_anew_instead_of_spliced(
    services: FakeServices, tmp_path: Path, fer_zip: bytes
) -> None:
    kaggle_fer(services, tmp_path, fer_zip, cuts=4, cut_at=1000)
    out = tmp_path / "fer"
    assert download(services, tmp_path, "kaggle", "msambare/fer2013", "-o", out).returncode == 2
    other = zip_tree(folder_export(tmp_path, "fer2", {"sad": 2, "fear": 2}, ("train",)))
    services.fake.add_blob("fer2013.zip", other)  # new ETag: If-Range makes the server send all
    result = download(services, tmp_path, "kaggle", "msambare/fer2013", "-o", out)
    assert result.returncode == 0, result.stderr
    assert "2 classes: fear, sad" in result.stdout


def test_no_network_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    kaggle_json(tmp_path)
    env = {"KAGGLE_API_ENDPOINT": closed, "HOME": str(tmp_path / "home"), "no_proxy": "*"}
    result = run_emotrace(
        "data", "download", "kaggle", "msambare/fer2013", "-o", tmp_path / "fer", env=env
    )
    assert_one_line_error(result, "cannot reach 127.0.0.1", "check the network connection")


def test_hf_no_network_is_one_line(services: FakeServices, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = download(
        services,
        tmp_path,
        "hf",
        "chitradrishti/AffectNet",
        "--file",
        "a.zip",
        "-o",
        tmp_path / "x",
        HF_ENDPOINT=closed,
    )
    assert_one_line_error(result, "cannot reach", "network connection")


def _can_mount_tmpfs() -> bool:
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            "mount -t tmpfs -o size=64k tmpfs /mnt",
        ],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs unshare and a tmpfs mount (Linux)")
@pytest.mark.parametrize("announce_size", [True, False], ids=["size-known", "size-unknown"])
def test_full_disk_is_one_line_and_leaves_no_dataset(
    services: FakeServices, tmp_path: Path, fer_zip: bytes, announce_size: bool
) -> None:
    """A real ENOSPC: the download folder is a 32 KiB tmpfs in a private mount namespace."""
    big = zip_tree(folder_export(tmp_path, "big", {"happy": 40, "sad": 40}, ("train",)))
    assert len(big) > 64 << 10
    kaggle_fer(services, tmp_path, big)
    disk = tmp_path / "disk"
    disk.mkdir()
    env = {**os.environ, **service_env(services, tmp_path), "OMP_NUM_THREADS": "1"}
    script = (
        f"mount -t tmpfs -o size=32k tmpfs {disk} && "
        f"{sys.executable} -m emotrace data download kaggle msambare/fer2013 -o {disk}/fer; "
        f"code=$?; ls -A {disk}; exit $code"
    )
    if not announce_size:
        services.fake.blobs["fer2013.zip"].unsized = True
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if announce_size:  # refused before writing
        assert_one_line_error(result, "not enough disk space", "fer2013.zip")
    else:  # the kernel's ENOSPC while writing
        assert_one_line_error(result, "no space left on device", "run the command again")
    assert "fer\n" not in result.stdout  # only the hidden work folder may remain


# -- archives: corrupt, unsafe, no dataset -----------------------------------------------------


def test_corrupt_archive_is_one_line_and_dropped(
    services: FakeServices, tmp_path: Path, fer_zip: bytes
) -> None:
    broken = bytearray(fer_zip)
    broken[len(broken) // 3 : len(broken) // 3 + 64] = b"\0" * 64
    kaggle_fer(services, tmp_path, bytes(broken))
    out = tmp_path / "fer"
    result = download(services, tmp_path, "kaggle", "msambare/fer2013", "-o", out)
    assert_one_line_error(result, "corrupt archive fer2013.zip")
    assert_no_dataset(out)
    assert not list((tmp_path / ".fer.emotrace-download").glob("*.part"))


def _zip_with_method(root: Path, member: str, method: int) -> bytes:
    """The files under ``root`` as a stored zip whose ``member`` claims compression ``method``
    (9: Deflate64, which 7-Zip and Windows write and Python's zipfile cannot read), patched in
    both its local header and its central-directory entry, as such an archive has it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
    data = bytearray(buffer.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo(member)
    assert data[info.header_offset : info.header_offset + 4] == b"PK\x03\x04"
    data[info.header_offset + 8 : info.header_offset + 10] = method.to_bytes(2, "little")
    entry = data.find(b"PK\x01\x02")
    while data[entry + 46 : entry + 46 + len(member)] != member.encode():
        entry = data.find(b"PK\x01\x02", entry + 4)
    data[entry + 10 : entry + 12] = method.to_bytes(2, "little")
    patched = bytes(data)
    assert zipfile.ZipFile(io.BytesIO(patched)).getinfo(member).compress_type == method
    return patched


def test_unsupported_compression_method_is_one_line_and_leaves_nothing(
    services: FakeServices, tmp_path: Path
) -> None:
    tree = folder_export(tmp_path, "fer", FER_CLASSES, ("train", "test"))
    member = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*.png"))[-1]
    kaggle_fer(services, tmp_path, _zip_with_method(tree, member, 9))
    out = tmp_path / "fer"
    result = download(services, tmp_path, "kaggle", "msambare/fer2013", "-o", out)
    assert_one_line_error(result, "fer2013.zip", member, "Deflate64", "by hand", "re-pack")
    assert_no_dataset(out)
    assert not (tmp_path / ".fer.emotrace-download").exists()


def test_unpack_refuses_an_unsupported_compression_method_by_name(tmp_path: Path) -> None:
    tree = make_class_folders(tmp_path / "src", {"happy": 2}, splits=None, size=16)
    member = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*.png"))[-1]
    archive = tmp_path / "faces.zip"
    archive.write_bytes(_zip_with_method(tree, member, 9))
    dest = tmp_path / "deep" / "dest"
    with pytest.raises(ArchiveError) as caught:
        unpack(archive, dest)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in ("faces.zip", member, "Deflate64", "method 9", "by hand", "re-pack"):
        assert fragment in message, message
    assert not dest.exists()


def test_download_that_is_no_archive(services: FakeServices, tmp_path: Path) -> None:
    kaggle_fer(services, tmp_path, b"<html>sign in</html>")
    result = download(services, tmp_path, "kaggle", "msambare/fer2013", "-o", tmp_path / "fer")
    assert_one_line_error(result, "not a zip or tar archive")


def test_path_traversal_archive_writes_nothing_outside(
    services: FakeServices, tmp_path: Path, fer_zip: bytes
) -> None:
    evil = zip_tree(
        folder_export(tmp_path, "fer", FER_CLASSES, ("train",)), extra={"../../evil.txt": b"x"}
    )
    kaggle_fer(services, tmp_path, evil)
    out = tmp_path / "a" / "fer"
    result = download(services, tmp_path, "kaggle", "msambare/fer2013", "-o", out)
    assert_one_line_error(result, "unsafe archive", "evil.txt")
    assert not list(tmp_path.rglob("evil.txt"))
    assert_no_dataset(out)


def test_symlink_in_archive_is_refused(services: FakeServices, tmp_path: Path) -> None:
    kaggle_fer(services, tmp_path, _zip_with_symlink("train/happy/link.png", "/etc/passwd"))
    result = download(services, tmp_path, "kaggle", "msambare/fer2013", "-o", tmp_path / "fer")
    assert_one_line_error(result, "unsafe archive", "symbolic link")


def test_archive_bomb_is_refused_before_unpacking(services: FakeServices, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("train/happy/zeros.png", b"\0" * (100 << 20))
    kaggle_fer(services, tmp_path, buffer.getvalue())
    out = tmp_path / "fer"
    result = download(services, tmp_path, "kaggle", "msambare/fer2013", "-o", out)
    assert_one_line_error(result, "archive bomb")
    assert_no_dataset(out)


def test_size_limit_is_enforced(services: FakeServices, tmp_path: Path, fer_zip: bytes) -> None:
    kaggle_fer(services, tmp_path, fer_zip)
    args = ("kaggle", "msambare/fer2013", "-o", tmp_path / "fer", "--max-size", "1K")
    result = download(services, tmp_path, *args)
    assert_one_line_error(result, "over the limit of 1,024 bytes", "--max-size")


def test_archive_without_a_dataset(services: FakeServices, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("notes/readme.txt", "hello")
        zf.writestr("other/readme.txt", "hello")
    kaggle_fer(services, tmp_path, buffer.getvalue())
    out = tmp_path / "fer"
    result = download(services, tmp_path, "kaggle", "msambare/fer2013", "-o", out)
    assert_one_line_error(result, "fer2013.zip holds no dataset emotrace can read")
    assert_no_dataset(out)


# -- the target folder -----------------------------------------------------------------------


def test_existing_folder_is_never_written_into(services: FakeServices, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    kaggle_json(tmp_path)
    result = download(services, tmp_path, "kaggle", "msambare/fer2013", "-o", out)
    assert_one_line_error(result, "is not a finished emotrace download")
    assert (out / "notes.txt").read_text() == "keep me"
    assert services.fake.requests == []


def test_folder_of_another_download_is_refused(
    services: FakeServices, tmp_path: Path, fer_zip: bytes
) -> None:
    kaggle_fer(services, tmp_path, fer_zip)
    out = tmp_path / "fer"
    assert download(services, tmp_path, "kaggle", "msambare/fer2013", "-o", out).returncode == 0
    result = download(services, tmp_path, "kaggle", "someone/else", "-o", out)
    assert_one_line_error(result, "already holds kaggle:msambare/fer2013", "-o")


@pytest.mark.slow
def test_train_runs_on_the_downloaded_affectnet_folder(
    services: FakeServices, tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    services.fake.add_blob("affectnet.zip", affectnet_zip(tmp_path))
    services.fake.hf["chitradrishti/AffectNet"] = {"affectnet.zip": "affectnet.zip"}
    out = tmp_path / "affectnet"
    got = download(
        services, tmp_path, "hf", "chitradrishti/AffectNet", "--file", "affectnet.zip", "-o", out
    )
    assert got.returncode == 0, got.stderr
    config = Path(__file__).resolve().parents[1] / "configs" / "mobilenet_v2_finetune.yaml"
    result = run_emotrace_in_process(
        "train",
        "--config",
        config,
        "--data",
        out,
        "--out",
        tmp_path / "run",
        "--no-progress",
        "pretrained=false",
        "epochs=1",
        "batch_size=8",
        "threads=1",
        "warmup_epochs=0",
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "train 11" in result.stdout
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert "contempt" in json.dumps(meta)


# -- unpack() directly: every unsafe member kind ---------------------------------------------


def _zip_with_symlink(name: str, target: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        info = zipfile.ZipInfo(name)
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)
    return buffer.getvalue()


def _tar(members: list[tuple[tarfile.TarInfo, bytes]], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tf:  # type: ignore[call-overload]
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buffer.getvalue()


def _tarinfo(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


UNSAFE = {
    "zip-traversal": ("a.zip", lambda: _zip({"../x.txt": b"x"}), "outside"),
    "zip-absolute": ("a.zip", lambda: _zip({"/tmp/x.txt": b"x"}), "absolute"),
    "zip-windows-traversal": ("a.zip", lambda: _zip({"..\\x.txt": b"x"}), "outside"),
    "zip-symlink": ("a.zip", lambda: _zip_with_symlink("x", "/etc/passwd"), "symbolic link"),
    "tar-traversal": ("a.tgz", lambda: _tar([(_tarinfo("a/../../x"), b"x")]), "outside"),
    "tar-absolute": ("a.tgz", lambda: _tar([(_tarinfo("/x"), b"x")]), "absolute"),
    "tar-symlink": ("a.tgz", lambda: _tar([(_tarinfo("x", tarfile.SYMTYPE, "/etc"), b"")]), "link"),
    "tar-hardlink": (
        "a.tgz",
        lambda: _tar([(_tarinfo("x", tarfile.LNKTYPE, "/etc/passwd"), b"")]),
        "link",
    ),
    "tar-device": ("a.tgz", lambda: _tar([(_tarinfo("x", tarfile.CHRTYPE), b"")]), "not a regular"),
    "tar-fifo": (
        "a.tar",
        lambda: _tar([(_tarinfo("x", tarfile.FIFOTYPE), b"")], "w"),
        "not a regular",
    ),
}


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buffer.getvalue()


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unpack_refuses_unsafe_members(tmp_path: Path, case: str) -> None:
    name, make, fragment = UNSAFE[case]
    archive = tmp_path / name
    archive.write_bytes(make())
    dest = tmp_path / "deep" / "dest"
    with pytest.raises(ArchiveError, match=fragment):
        unpack(archive, dest)
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(["deep", name])


def test_unpack_tar_bomb_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(_tar([(_tarinfo("zeros.bin"), b"\0" * (80 << 20))]))
    with pytest.raises(ArchiveError, match="archive bomb"):
        unpack(archive, tmp_path / "dest")


def test_unpack_truncated_tar_is_corrupt(tmp_path: Path) -> None:
    data = _tar([(_tarinfo("a/b.txt"), os.urandom(200_000))])
    archive = tmp_path / "cut.tar.gz"
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match=r"corrupt|not a zip or tar"):
        unpack(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_unpack_writes_regular_files_and_skips_junk(tmp_path: Path) -> None:
    archive = tmp_path / "ok.zip"
    archive.write_bytes(
        _zip({"d/a.txt": b"abc", "__MACOSX/d/._a.txt": b"junk", "d/.DS_Store": b""})
    )
    written = unpack(archive, tmp_path / "dest")
    assert written == 3
    assert sorted(
        p.relative_to(tmp_path / "dest").as_posix() for p in (tmp_path / "dest").rglob("*")
    ) == [
        "d",
        "d/a.txt",
    ]
