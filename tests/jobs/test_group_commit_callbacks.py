"""A callback that fails on the committer thread (a listener whose stdout has gone) does not end the thread: the
files after it are still recorded and told."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from taobao_video.jobs.commit import Finished, GroupCommit
from taobao_video.store.records import VideoRow

WHEN = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)


def _row(num_iid: int) -> VideoRow:
    return VideoRow(num_iid, f"videos/{num_iid}.mp4", 1.0, 4, "ab" * 32, f"http://127.0.0.1/{num_iid}.mp4", None,
                    None, None, "taobao.item_video", WHEN)  # fmt: skip


def test_a_failing_callback_leaves_the_committer_running(tmp_path: Path) -> None:
    recorded: list[int] = []
    told: list[int] = []
    failed: list[Exception] = []

    def record(rows: Sequence[VideoRow]) -> None:
        recorded.extend(row.num_iid for row in rows)

    def broken(row: VideoRow) -> None:
        raise BrokenPipeError("the listener's stdout has gone")

    with GroupCommit(record, sync_file=lambda path: None, sync_dir=lambda path: None) as commits:
        commits.add(Finished(_row(1), tmp_path / "1.mp4", False, broken, failed.append))
        commits.add(Finished(_row(2), tmp_path / "2.mp4", False, lambda row: told.append(row.num_iid), failed.append))
    assert (sorted(recorded), told, failed) == ([1, 2], [2], [])


def test_a_failing_failure_callback_does_not_hide_the_others(tmp_path: Path) -> None:
    told: list[int] = []

    def record(rows: Sequence[VideoRow]) -> None:
        raise OSError("the catalog's disk is gone")

    def broken(exc: Exception) -> None:
        raise RuntimeError("a bug in a listener")

    with GroupCommit(record, sync_file=lambda path: None, sync_dir=lambda path: None, max_wait_s=60) as commits:
        commits.add(Finished(_row(1), tmp_path / "1.mp4", False, lambda row: None, broken))
        commits.add(Finished(_row(2), tmp_path / "2.mp4", False, lambda row: None, lambda exc: told.append(2)))
    assert told == [2]
