"""A stop cuts a stalled transfer off at once; a full disk is DiskFull with the `.part` kept and no `.tmp` left;
the preflight of the videos folder (a folder, writable, with room).

ENOSPC is injected at the edge here (the ``.part`` opener, the sidecar's write); tests/cli/test_cli_disk_full.py meets
a real full file system."""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.disk import SmallDisk

from conftest import Sleeps
from taobao_video.errors import ConfigError, DiskFull, DownloadStopped
from taobao_video.fetch import space, stream
from taobao_video.fetch.downloader import Downloader
from taobao_video.fetch.partfile import PartSource
from taobao_video.sandbox import Fault, Sandbox


@pytest.fixture
def make_dl(tmp_path: Path) -> Iterator[Callable[..., Downloader]]:
    made: list[Downloader] = []

    def make(**overrides: Any) -> Downloader:
        options: dict[str, Any] = {"allowed_hosts": ("127.0.0.1",), "timeout_s": 30.0, "retries": 3}
        options.update(overrides)
        dl = Downloader(tmp_path / "videos", **options)
        made.append(dl)
        return dl

    yield make
    for dl in made:
        dl.close()


def fetch(dl: Downloader, sb: Sandbox, num_iid: int, **kw: Any) -> Any:
    url = sb.urls.video_url(sb.catalogue.item(num_iid), sb.now())
    return dl.fetch(url, num_iid=num_iid, name=f"{num_iid}.mp4", **kw)


def leftovers(folder: Path, *suffixes: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(suffixes))


# -- a stop cuts transfers off --------------------------------------------------------------------------------


def test_abort_cuts_a_stalled_read_off_at_once_and_nothing_is_retried(sb, make_dl, tmp_path):
    sb.set_faults([Fault("stall", "cdn", seconds=60)])
    num_iid = sb.catalogue.sample("video", 1)[0]
    dl, stop = make_dl(), threading.Event()
    received: list[int] = []
    failure: list[BaseException] = []

    def download() -> None:
        try:
            fetch(dl, sb, num_iid, on_progress=received.append, should_stop=stop.is_set)
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=download)
    worker.start()
    deadline = time.monotonic() + 10
    while sum(received) < 100_000 and time.monotonic() < deadline:  # the stall comes after half the body
        time.sleep(0.01)
    time.sleep(0.2)
    started = time.monotonic()
    stop.set()
    dl.abort()
    worker.join(5)
    took = time.monotonic() - started
    assert not worker.is_alive() and took < 1.0, f"the stalled read held the stop for {took:.1f} s"
    assert isinstance(failure[0], DownloadStopped)
    assert failure[0].bytes_fetched == sum(received) > 0
    assert sb.stats()["cdn"]["requests"] == 1  # no retry once stopping
    assert (tmp_path / "videos" / f"{num_iid}.mp4.part").stat().st_size == sum(received)


def test_abort_cuts_off_a_request_still_waiting_for_its_headers(make_dl):
    silent = socket.create_server(("127.0.0.1", 0))  # the kernel accepts the connection; nobody ever answers
    dl, stop = make_dl(), threading.Event()
    failure: list[BaseException] = []
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/v.mp4"

    def download() -> None:
        try:
            dl.fetch(url, num_iid=1, name="1.mp4", should_stop=stop.is_set)
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=download)
    try:
        worker.start()
        time.sleep(0.5)
        started = time.monotonic()
        stop.set()
        dl.abort()
        worker.join(5)
        took = time.monotonic() - started
    finally:
        silent.close()
    assert not worker.is_alive() and took < 1.0, f"the silent CDN held the stop for {took:.1f} s"
    assert isinstance(failure[0], DownloadStopped)


def test_a_stop_ends_the_wait_between_attempts(sb, make_dl):
    sb.set_faults([Fault("http_500", "cdn")])
    num_iid = sb.catalogue.sample("video", 1)[0]
    stop = threading.Event()
    naps = Sleeps()

    def nap(seconds: float) -> None:
        naps.append(seconds)
        stop.set()  # the stop comes during the first wait

    with pytest.raises(DownloadStopped):
        fetch(make_dl(sleep=nap, backoff_initial_s=20), sb, num_iid, should_stop=stop.is_set)
    assert len(naps) == 1 and naps[0] <= 0.25 and sb.stats()["cdn"]["requests"] == 1


# -- a full disk ----------------------------------------------------------------------------------------------


def test_enospc_writing_the_part_is_disk_full_and_the_part_resumes(sb, make_dl, tmp_path, monkeypatch):
    num_iid = sb.catalogue.sample("video", 1)[0]
    size = sb.video(num_iid).size
    room = size // 3
    monkeypatch.setattr(stream, "open", SmallDisk(room).open, raising=False)
    with pytest.raises(DiskFull) as full:
        fetch(make_dl(), sb, num_iid)
    folder = tmp_path / "videos"
    assert str(full.value).startswith("disk full: ") and f" free on {folder}" in str(full.value)
    assert full.value.exit_code == 75 and full.value.bytes_fetched >= room
    assert sb.stats()["cdn"]["requests"] == 1  # a full disk is not retried
    assert leftovers(folder, ".tmp") == [] and (folder / f"{num_iid}.mp4.part").stat().st_size == room

    monkeypatch.undo()  # space freed: the next fetch resumes the .part
    result = fetch(make_dl(), sb, num_iid)
    assert result.resumed_from == room and result.size == size and result.sha256 == sb.video(num_iid).sha256()
    assert leftovers(folder, ".part", ".json", ".tmp") == []


def test_enospc_before_anything_useful_leaves_nothing(sb, make_dl, tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "open", SmallDisk(0).open, raising=False)
    with pytest.raises(DiskFull):
        fetch(make_dl(), sb, sb.catalogue.sample("video", 1)[0])
    assert leftovers(tmp_path / "videos", "") == []  # a .part too short to resume is not kept


def test_a_sidecar_that_cannot_be_written_leaves_no_tmp(tmp_path, monkeypatch):
    real = Path.write_text

    def full(self: Path, text: str, **kw: Any) -> int:
        real(self, "", **kw)  # the file is created, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    sidecar = tmp_path / "1.mp4.part.json"
    with pytest.raises(OSError):
        PartSource(1, "http://x/1.mp4", 10, '"e"', "").save(sidecar)
    assert list(tmp_path.iterdir()) == []


# -- the preflight --------------------------------------------------------------------------------------------


def test_preflight_makes_the_folder(tmp_path):
    space.preflight(tmp_path / "a" / "videos", 0)
    assert (tmp_path / "a" / "videos").is_dir() and list((tmp_path / "a" / "videos").iterdir()) == []


def test_preflight_refuses_a_file(tmp_path):
    (tmp_path / "videos").write_text("not a folder")
    with pytest.raises(ConfigError, match=r"download.dir: .*videos is not a folder") as refused:
        space.preflight(tmp_path / "videos", 0)
    assert refused.value.exit_code == 78


def test_preflight_refuses_a_folder_under_a_file(tmp_path):
    (tmp_path / "data").write_text("")
    with pytest.raises(ConfigError, match="cannot create the folder"):
        space.preflight(tmp_path / "data" / "videos", 0)


def test_preflight_refuses_a_folder_it_cannot_write(tmp_path, monkeypatch):
    def refuse(**kw: Any) -> Any:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(space.tempfile, "mkstemp", refuse)
    with pytest.raises(ConfigError, match=r"cannot write in .*: Read-only file system"):
        space.preflight(tmp_path, 0)


def test_preflight_wants_room(tmp_path, monkeypatch):
    monkeypatch.setattr(space, "free_bytes", lambda folder: 3_000_000)
    with pytest.raises(DiskFull, match=r"disk full: 2.9 MiB free on .* \(download.min_free_mb asks for 64 MB\)"):
        space.preflight(tmp_path, 64_000_000)
    space.preflight(tmp_path, 2_000_000)
    assert list(tmp_path.iterdir()) == []  # the write test left nothing


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_enospc_and_edquot_are_a_full_disk(code):
    assert space.is_disk_full(OSError(code, "full")) and not space.is_disk_full(OSError(errno.EACCES, "denied"))
