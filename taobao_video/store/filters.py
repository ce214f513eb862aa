"""The filters of ``catalog list`` and ``/api/videos``, parsed and checked: a :class:`VideoQuery` is validated data.

``VideoQuery.from_params`` builds one from the strings of a web request and names the bad parameter; the CLI builds
one from its options with the ``parse_*`` helpers. Standard library only: parsing a request needs no SQLAlchemy.
``query.py`` runs a query against the catalog (and re-exports these names, the public place to import them from).

What a listing returns:

* without ``states``: the ``videos`` rows, exactly the :data:`VIDEO_COLUMNS` (the design.md contract), so csv and
  json output keep stable column names;
* with ``states``: one row per *item* in those states (``items`` joined to ``videos``): the
  :data:`VIDEO_COLUMNS` (all None but ``num_iid`` for an item with no video) followed by :data:`STATE_COLUMNS`
  (``state``, ``error_kind``, ``last_error``). The duration and date filters then match only items that have a
  video (a missing value matches no range).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from taobao_video.errors import UsageError
from taobao_video.model import MAX_NUM_IID
from taobao_video.model import STATE_NAMES as STATES

VIDEO_COLUMNS: tuple[str, ...] = (
    "num_iid",
    "video_path",
    "duration",
    "size_bytes",
    "sha256",
    "video_url",
    "cover_url",
    "width",
    "height",
    "api_method",
    "downloaded_at",
    "title",
    "nick",
    "video_id",
    "cover_path",
    "cover_width",
    "cover_height",
    "cover_error",
    "codec",
    "bitrate",
    "fps",
    "has_audio",
    "container",
    "shares_file",
)
STATE_COLUMNS: tuple[str, ...] = ("state", "error_kind", "last_error")
SORT_KEYS: tuple[str, ...] = ("num_iid", "duration", "downloaded_at", "size")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class QueryError(UsageError):
    """A filter value that cannot be used (exit 2); ``field`` names the parameter, ``value`` is what was given."""

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field, self.value, self.problem = field, value, problem
        super().__init__(f"{field}: {problem} (got {value!r})")


# ------------------------------------------------------------------------------------------------ the query


@dataclasses.dataclass(frozen=True)
class VideoQuery:
    """Which rows, in which order, which page. Every field is optional; the default lists every video by id."""

    min_duration: float | None = None  # seconds, inclusive
    max_duration: float | None = None  # seconds, inclusive
    since: datetime | None = None  # aware: downloaded_at >= since
    until: datetime | None = None  # aware: downloaded_at < until
    states: tuple[str, ...] | None = None  # item states; None = the downloaded videos only
    ids: frozenset[int] | None = None
    id_prefix: str | None = None  # digits: num_iid whose decimal text starts with them
    missing: bool = False  # only rows whose file is gone
    min_height: int | None = None  # pixels, inclusive (the API's height)
    codec: str | None = None  # the media probe's codec name, e.g. "h264"
    has_audio: bool | None = None  # None: either
    video_id: str | None = None  # the items that use this stored video
    sort: str = "num_iid"
    desc: bool = False
    limit: int | None = None
    offset: int = 0

    def __post_init__(self) -> None:
        for name in ("min_duration", "max_duration"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise QueryError(name, value, "must be a number of seconds")
            if value is not None and (not math.isfinite(value) or value < 0):
                raise QueryError(name, value, "must be a number of seconds, 0 or more")
        if self.min_duration is not None and self.max_duration is not None and self.min_duration > self.max_duration:
            raise QueryError("min_duration", self.min_duration, f"is more than max_duration {self.max_duration}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
                raise QueryError(name, value, "must be a timezone-aware datetime")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise QueryError("since", self.since.isoformat(), f"is not before until {self.until.isoformat()}")
        if self.states is not None:
            if not self.states:
                raise QueryError("state", "", f"give at least one of {', '.join(STATES)}")
            for state in self.states:
                if state not in STATES:
                    raise QueryError("state", state, f"is not one of {', '.join(STATES)}")
        if self.ids is not None:
            for num_iid in self.ids:
                if isinstance(num_iid, bool) or not isinstance(num_iid, int) or not 0 < num_iid <= MAX_NUM_IID:
                    raise QueryError("ids", num_iid, "must be positive whole numbers (num_iid)")
        if self.id_prefix is not None and not re.fullmatch(r"[0-9]{1,19}", self.id_prefix):
            raise QueryError("q", self.id_prefix, "must be the first digits of a num_iid (1 to 19 digits)")
        if self.min_height is not None and (
            isinstance(self.min_height, bool) or not isinstance(self.min_height, int) or self.min_height < 0
        ):
            raise QueryError("min_height", self.min_height, "must be a whole number of pixels, 0 or more")
        if self.codec is not None and not re.fullmatch(r"[a-z0-9_]{1,32}", self.codec):
            raise QueryError("codec", self.codec, "must be a codec name as the probe records it, e.g. h264 or hevc")
        if self.video_id is not None and not re.fullmatch(r"[0-9A-Za-z_-]{1,64}", self.video_id):
            raise QueryError("video_id", self.video_id, "must be a video id as the platform gives it (digits)")
        if self.has_audio is not None and not isinstance(self.has_audio, bool):
            raise QueryError("has_audio", self.has_audio, "must be true or false")
        if self.sort not in SORT_KEYS:
            raise QueryError("sort", self.sort, f"is not one of {', '.join(SORT_KEYS)}")
        if self.limit is not None and (
            isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 0
        ):
            raise QueryError("limit", self.limit, "must be a whole number, 0 or more")
        if isinstance(self.offset, bool) or not isinstance(self.offset, int) or self.offset < 0:
            raise QueryError("offset", self.offset, "must be a whole number, 0 or more")

    @property
    def columns(self) -> tuple[str, ...]:
        """The keys of each row this query lists (see the module docstring)."""
        return VIDEO_COLUMNS + STATE_COLUMNS if self.states is not None else VIDEO_COLUMNS

    @classmethod
    def from_params(cls, params: Mapping[str, str], *, tz: tzinfo | None = None) -> VideoQuery:
        """A query from the strings of a web request (the CLI's option names with underscores).

        ``min_duration``, ``max_duration`` (seconds), ``since``, ``until`` (see :func:`parse_moment`; a bare date
        means midnight in ``tz``, default the local zone, and ``until`` then includes that whole day), ``state``
        (comma list), ``ids`` (comma list), ``q`` (the first digits of an id), ``missing`` (1/true/yes/on or
        0/false/no/off), ``min_height`` (pixels), ``codec``, ``has_audio`` (like missing; absent: either),
        ``sort``, ``desc`` (like missing), ``limit``, ``offset``. Unknown names are refused, so
        a typo does not silently list everything. Raises :class:`QueryError` naming the parameter.
        """
        known = {"min_duration", "max_duration", "since", "until", "state", "ids", "q", "missing", "sort", "desc"}
        known |= {"limit", "offset", "min_height", "codec", "has_audio", "video_id"}
        for name in params:
            if name not in known:
                raise QueryError(name, params[name], f"is not a filter; use {', '.join(sorted(known))}")

        def text(name: str) -> str | None:
            value = params.get(name)
            return None if value is None or not value.strip() else value.strip()

        states = text("state")
        ids = text("ids")
        q = text("q")
        codec = text("codec")
        return cls(
            min_duration=parse_seconds("min_duration", text("min_duration")),
            max_duration=parse_seconds("max_duration", text("max_duration")),
            since=parse_moment("since", text("since"), tz=tz),
            until=parse_moment("until", text("until"), tz=tz, end_of_day=True),
            states=None if states is None else parse_states(states),
            ids=None if ids is None else frozenset(_parse_ids(ids)),
            id_prefix=q,
            missing=parse_flag("missing", params.get("missing")),
            min_height=parse_count("min_height", text("min_height")),
            codec=None if codec is None else codec.lower(),
            has_audio=None if text("has_audio") is None else parse_flag("has_audio", params.get("has_audio")),
            video_id=text("video_id"),
            sort=text("sort") or "num_iid",
            desc=parse_flag("desc", params.get("desc")),
            limit=parse_count("limit", text("limit")),
            offset=parse_count("offset", text("offset")) or 0,
        )


# ------------------------------------------------------------------------------------------------ parsing


def parse_seconds(field: str, raw: str | None) -> float | None:
    """A number of seconds >= 0 ("12", "12.5"), or None for None."""
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise QueryError(field, raw, "must be a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise QueryError(field, raw, "must be a number of seconds, 0 or more")
    return value


def parse_moment(field: str, raw: str | None, *, tz: tzinfo | None = None, end_of_day: bool = False) -> datetime | None:
    """An aware UTC datetime from ``YYYY-MM-DD`` or an ISO 8601 datetime; None for None.

    A bare date is midnight at the start of that day in ``tz`` (default: this machine's local zone); with
    ``end_of_day`` it is the midnight that ends it, so ``--until 2026-11-30`` includes the 30th. A datetime
    without an offset is in ``tz`` too; one with an offset (``+08:00``, ``Z``) means what it says.
    """
    if raw is None:
        return None
    zone = tz if tz is not None else local_zone()
    text = raw.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            day = date.fromisoformat(text)
        except ValueError as exc:
            raise QueryError(field, raw, f"is not a date ({exc})") from None
        if end_of_day:
            if day == date.max:
                raise QueryError(field, raw, "is too far in the future")
            day += timedelta(days=1)
        try:
            return _at(datetime.combine(day, time()), zone)
        except OverflowError:
            raise QueryError(field, raw, "is out of range") from None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?", text):
        raise QueryError(field, raw, "is not a date (YYYY-MM-DD) or an ISO datetime (YYYY-MM-DDTHH:MM[:SS][+08:00])")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise QueryError(field, raw, f"is not a date or an ISO datetime ({exc})") from None
    try:
        return _at(moment, zone) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise QueryError(field, raw, "is out of range") from None


def _at(naive: datetime, zone: tzinfo) -> datetime:
    """``naive`` read as a wall-clock time in ``zone``, as aware UTC (fold 0 for an ambiguous hour)."""
    return naive.replace(tzinfo=zone).astimezone(UTC)


def local_zone() -> tzinfo:
    """This machine's time zone now: what a bare date means, and whose days the stats count downloads in."""
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone


def parse_states(raw: str | Iterable[str]) -> tuple[str, ...]:
    """States from a comma list (or several), checked, duplicates dropped, order kept."""
    parts = [raw] if isinstance(raw, str) else list(raw)
    states = [s.strip() for part in parts for s in part.split(",") if s.strip()]
    for state in states:
        if state not in STATES:
            raise QueryError("state", state, f"is not one of {', '.join(STATES)}")
    if not states:
        raise QueryError("state", ",".join(parts), f"give at least one of {', '.join(STATES)}")
    return tuple(dict.fromkeys(states))


def parse_flag(field: str, raw: str | None) -> bool:
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise QueryError(field, raw, "must be 1/true/yes/on or 0/false/no/off")


def parse_count(field: str, raw: str | None) -> int | None:
    if raw is None:
        return None
    if not re.fullmatch(r"[0-9]{1,18}", raw):
        raise QueryError(field, raw, "must be a whole number, 0 or more")
    return int(raw)


def _parse_ids(raw: str) -> list[int]:
    ids = []
    for part in raw.split(","):
        token = part.strip()
        if not token:
            continue
        if not re.fullmatch(r"[0-9]{1,19}", token) or not 0 < int(token) <= MAX_NUM_IID:
            raise QueryError("ids", token, "must be positive whole numbers (num_iid), comma separated")
        ids.append(int(token))
    return ids
