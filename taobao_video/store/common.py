"""What the repository's modules share: checks of the arguments callers hand in, id lists cut into batches, and
the one retry they need (two writers racing to insert the same new id)."""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError

from taobao_video.model import MAX_NUM_IID, MAX_PRIORITY, MIN_PRIORITY
from taobao_video.retry import retrying
from taobao_video.store.dialects import SQLITE_IN_CHUNK

T = TypeVar("T")
P = ParamSpec("P")

READ_CHUNK = SQLITE_IN_CHUNK  # ids per IN (...) list
MAX_ERROR_CHARS = 2000


def num_iid_arg(value: int) -> int:
    """``value`` if it is a valid num_iid (a positive 64-bit int); ValueError otherwise."""
    if type(value) is int and 0 < value <= MAX_NUM_IID:  # the common case first: a million ids per enqueue
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_NUM_IID:
        raise ValueError(f"num_iid must be a positive 64-bit integer, got {value!r}")
    return value


def priority_arg(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"priority must be an integer, got {value!r}")
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise ValueError(f"priority must fit in 32 bits, got {value}")
    return value


def count_arg(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    return value


def error_text(text: str) -> str:
    """``text`` cut to what ``items.last_error`` keeps."""
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def slices(values: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def chunks(ids: Iterable[int], size: int) -> Iterator[list[int]]:
    """Validated ids in lists of at most ``size``, duplicates within a chunk removed, order kept."""
    iterator = iter(ids)
    while chunk := list(dict.fromkeys(num_iid_arg(i) for i in itertools.islice(iterator, size))):
        yield chunk


# PostgreSQL's SQLSTATEs for a transaction it rolled back to break a tie with another: deadlock_detected (two
# group commits, or a commit and a lease renewal, locking the same rows in other orders), serialization_failure.
_LOST_A_TIE = frozenset({"40P01", "40001"})


def lost_a_race(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that lost to a concurrent one and is right again when simply done again."""
    if isinstance(exc, IntegrityError):
        return True
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in _LOST_A_TIE


def retry_on_race(work: Callable[P, T]) -> Callable[P, T]:
    """Two threads may both find an id absent and both insert it, or (PostgreSQL) two transactions may deadlock:
    the loser is rolled back and tries again, and now finds the other's rows.

    The package's one retry shape (``retry.py``), which imports tenacity on the first write, not with the
    module: the read-only commands never need it.
    """

    @functools.wraps(work)
    def attempt(*args: P.args, **kwargs: P.kwargs) -> T:
        race = retrying(
            "catalog",
            attempts=5,
            should_retry=lost_a_race,
            backoff_initial_s=0.01,  # a deadlock's other side finishes its transaction meanwhile
            backoff_max_s=0.2,
            log_level=logging.DEBUG,  # an expected race, not news
        )
        return race(work, *args, **kwargs)

    return attempt
