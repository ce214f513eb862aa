"""The group commit (jobs/commit.py): every sync before the batch's one transaction, batches bounded, failures told."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.rows import video_row

from taobao_video.jobs.commit import Finished, GroupCommit
from taobao_video.store.catalog import Catalog
from taobao_video.store.records import VideoRow

WHEN = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


class Journal:
    """Records, in order, every sync, transaction and report the committer makes."""

    def __init__(self) -> None:
        self.log: list[tuple[str, object]] = []
        self.lock = threading.Lock()

    def note(self, kind: str, what: object) -> None:
        with self.lock:
            self.log.append((kind, what))

    def record(self, rows: Sequence[VideoRow]) -> None:
        self.note("record", tuple(r.num_iid for r in rows))

    def finished(self, path: Path, num_iid: int, *, durable: bool = False) -> Finished:
        return Finished(
            video_row(num_iid, downloaded_at=WHEN),
            path,
            durable,
            lambda row: self.note("committed", row.num_iid),
            lambda exc: self.note("failed", (num_iid, str(exc))),
        )

    def of(self, kind: str) -> list[object]:
        return [what for k, what in self.log if k == kind]


class Held:
    """A ``record`` that holds its first batch until released, so that the files added meanwhile queue up."""

    def __init__(self, journal: Journal) -> None:
        self.journal, self.inside, self.gate = journal, threading.Event(), threading.Event()

    def __call__(self, rows: Sequence[VideoRow]) -> None:
        self.inside.set()
        self.gate.wait(5)
        self.journal.record(rows)

    def queue_behind_first(self, commits: GroupCommit, items: list[Finished]) -> None:
        commits.add(items[0])
        assert self.inside.wait(5)
        for item in items[1:]:
            commits.add(item)
        self.gate.set()


def files(folder: Path, ids: range) -> dict[int, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {num_iid: folder / f"{num_iid}.mp4" for num_iid in ids}
    for path in paths.values():
        path.write_bytes(b"data")
    return paths


def test_files_and_folders_are_synced_before_the_one_transaction_then_reported(tmp_path):
    journal = Journal()
    paths = {**files(tmp_path / "a", range(1, 4)), **files(tmp_path / "b", range(4, 6))}
    held = Held(journal)
    commits = GroupCommit(
        held,
        sync_file=lambda p: journal.note("sync_file", p.name),
        sync_dir=lambda p: journal.note("sync_dir", p.name),
    )
    held.queue_behind_first(commits, [journal.finished(p, n, durable=n == 5) for n, p in paths.items()])
    commits.close()
    assert journal.of("record") == [(1,), (2, 3, 4, 5)]
    assert commits.batches == [1, 4]
    second = journal.log[journal.log.index(("record", (1,))) + 2 :]  # after the first batch and its report
    kinds = [kind for kind, _ in second]
    assert kinds == ["sync_file"] * 3 + ["sync_dir"] * 2 + ["record"] + ["committed"] * 4
    assert [what for kind, what in second if kind == "sync_file"] == ["2.mp4", "3.mp4", "4.mp4"]  # 5 was durable
    assert {what for kind, what in second if kind == "sync_dir"} == {"a", "b"}  # each folder once


def test_a_batch_takes_at_most_max_files(tmp_path):
    journal, paths = Journal(), files(tmp_path, range(10))
    held = Held(journal)
    commits = GroupCommit(held, max_files=4, sync_file=lambda p: None, sync_dir=lambda p: None)
    held.queue_behind_first(commits, [journal.finished(p, n) for n, p in paths.items()])
    commits.close()
    assert commits.batches == [1, 4, 4, 1]
    assert sorted(journal.of("committed")) == list(range(10))  # type: ignore[type-var]


def test_a_batch_stops_taking_files_once_its_syncs_took_max_wait(tmp_path):
    journal, paths = Journal(), files(tmp_path, range(6))
    now = [0.0]

    def slow_sync(path: Path) -> None:
        now[0] += 0.2  # each sync "takes" 0.2 s on the injected clock

    held = Held(journal)
    commits = GroupCommit(held, max_wait_s=0.5, monotonic=lambda: now[0], sync_file=slow_sync, sync_dir=lambda p: None)
    held.queue_behind_first(commits, [journal.finished(p, n) for n, p in paths.items()])
    commits.close()
    assert commits.batches == [1, 3, 2]  # 0.6 s of syncs ends a batch


def test_a_file_that_fails_to_sync_gets_no_row_and_is_removed(tmp_path):
    journal, paths = Journal(), files(tmp_path, range(3))

    def sync(path: Path) -> None:
        if path.name == "1.mp4":
            raise OSError(5, "Input/output error")

    with GroupCommit(journal.record, sync_file=sync, sync_dir=lambda p: None) as commits:
        for num_iid in range(3):
            commits.add(journal.finished(paths[num_iid], num_iid))
    assert [ids for ids in journal.of("record")] and 1 not in sum(journal.of("record"), ())  # type: ignore[arg-type]
    assert journal.of("failed") == [(1, "[Errno 5] Input/output error")]
    assert not paths[1].exists() and paths[0].exists() and paths[2].exists()
    assert sorted(journal.of("committed")) == [0, 2]  # type: ignore[type-var]


def test_a_failed_transaction_is_told_to_every_item_of_the_batch(tmp_path):
    journal, paths = Journal(), files(tmp_path, range(2))

    def record(rows: Sequence[VideoRow]) -> None:
        raise RuntimeError("database is locked")

    with GroupCommit(record, sync_file=lambda p: None, sync_dir=lambda p: None) as commits:
        for num_iid in range(2):
            commits.add(journal.finished(paths[num_iid], num_iid))
    assert sorted(journal.of("failed")) == [(0, "database is locked"), (1, "database is locked")]  # type: ignore[type-var]
    assert journal.of("committed") == []


def test_a_file_added_after_close_is_committed_at_once(tmp_path):
    journal, paths = Journal(), files(tmp_path, range(1))
    commits = GroupCommit(
        journal.record, sync_file=lambda p: journal.note("sync_file", p.name), sync_dir=lambda p: None
    )
    commits.close()
    commits.close()  # idempotent
    commits.add(journal.finished(paths[0], 0))
    assert [kind for kind, _ in journal.log] == ["sync_file", "record", "committed"]


def test_real_syncs_and_a_real_catalog(tmp_path, catalog_url):
    paths = files(tmp_path / "videos", range(1, 9))
    journal = Journal()
    with Catalog.open(catalog_url) as catalog:
        with GroupCommit(lambda rows: catalog.record_videos(rows, now=WHEN)) as commits:
            for num_iid, path in paths.items():
                commits.add(journal.finished(path, num_iid))
        assert sorted(catalog.videos(range(1, 9))) == list(range(1, 9))
    assert sorted(journal.of("committed")) == list(range(1, 9))  # type: ignore[type-var]


def test_max_files_must_be_positive():
    with pytest.raises(ValueError, match="max_files"):
        GroupCommit(lambda rows: None, max_files=0)
