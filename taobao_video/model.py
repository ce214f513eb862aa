"""The domain vocabulary, written once: item states, outcomes, stop and failure reasons, limits, clock helpers,
and the one way sizes are written for people.

Standard library only, so the CLI's fast paths, the catalog, the jobs and the web page all import it without
pulling in anything heavy, and none of them keeps a copy.
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

# -- limits ----------------------------------------------------------------------------------------------------

MAX_NUM_IID = 2**63 - 1  # the catalog stores ids as BIGINT
MIN_PRIORITY, MAX_PRIORITY = -(2**31), 2**31 - 1  # queue priorities are INTEGER

# -- sizes -----------------------------------------------------------------------------------------------------


def format_bytes(count: int | float) -> str:
    """1536 → '1.5 KiB': every size shown to people (item lines, summaries, tables, the progress bar) in binary
    units, one spelling; the JSON keeps the exact number of bytes."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# -- time ------------------------------------------------------------------------------------------------------

# The gateway reads every `timestamp` as Beijing time whatever the host's zone (top-protocol.md §2); the quota
# day's zone is a setting (`quota.timezone`) that defaults to the same.
BEIJING = ZoneInfo("Asia/Shanghai")
DEFAULT_QUOTA_TIMEZONE = "Asia/Shanghai"


def utc_now() -> datetime:
    """The current instant, aware, in UTC: the default clock everywhere a clock is injectable."""
    return datetime.now(UTC)


def next_midnight(now: datetime, tz: ZoneInfo) -> datetime:
    """The next 00:00 in ``tz`` after ``now``, as an aware datetime in ``tz``."""
    local = now.astimezone(tz)
    tomorrow = (local + timedelta(days=1)).date()
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=tz)


def zone_label(tz: ZoneInfo) -> str:
    """How a message names a quota zone: "Beijing" for China's zone, else its IANA name."""
    return "Beijing" if tz.key in ("Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "PRC") else tz.key


# -- items -----------------------------------------------------------------------------------------------------


class ItemState(enum.StrEnum):
    """Where an item stands in the catalog. pending, resolved and failed are *waiting* (work left)."""

    PENDING = "pending"  # known, never looked up
    RESOLVED = "resolved"  # the API gave a video URL; not downloaded yet
    NO_VIDEO = "no_video"  # the item has no main-image video
    NOT_FOUND = "not_found"  # the item is gone
    NOT_VISIBLE = "not_visible"  # the seller channel left it out: another shop's item, or unknown
    DONE = "done"  # downloaded, verified, in ``videos``
    FAILED = "failed"  # the last download or lookup failed; ``error_kind`` says how


WAITING_STATES = (ItemState.PENDING, ItemState.RESOLVED, ItemState.FAILED)
# The order listings, `queue stats` and the page show the states in: the queue's way from first to last.
STATE_NAMES: tuple[str, ...] = ("pending", "resolved", "done", "no_video", "not_found", "not_visible", "failed")
assert sorted(STATE_NAMES) == sorted(ItemState), "STATE_NAMES names every state once"


class LookupOutcome(enum.StrEnum):
    """What one lookup learnt about an item."""

    VIDEO = "video"
    NO_VIDEO = "no_video"
    NOT_FOUND = "not_found"
    NOT_VISIBLE = "not_visible"  # the seller channel left it out of its answer (another shop's, or unknown)


class Outcome(enum.StrEnum):
    """What a run did with one id: the ``outcome`` of an ``item`` event and a counter of the summary."""

    DOWNLOADED = "downloaded"
    SKIPPED = "skipped"
    NO_VIDEO = "no_video"
    NOT_FOUND = "not_found"
    NOT_VISIBLE = "not_visible"
    FAILED = "failed"
    DEFERRED = "deferred"


class StopReason(enum.StrEnum):
    """Why a run stopped taking new work before its list was done (the summary's ``stopped``)."""

    QUOTA = "quota"  # every app's daily quota is spent (ledger or platform)
    MAX_CALLS = "max_calls"  # the run's own --max-calls
    RATE_LIMITED = "rate_limited"  # a frequency ban longer than taobao.max_ban_wait_s
    UNREACHABLE = "gateway_unreachable"  # the circuit breaker opened: the gateway cannot be reached
    SIGNAL = "signal"  # Ctrl-C or SIGTERM
    DISK_FULL = "disk_full"  # the videos folder's file system is full (or below download.min_free_mb)
    STORAGE = "storage_failed"  # the object storage (download.dir = "s3://…") failed or cannot be reached
    FATAL = "fatal"  # an error that needs the user: authorisation or configuration

    @property
    def try_later(self) -> bool:
        """Stopped for a reason that passes by itself: what is left is deferred, exit 75."""
        return self is not StopReason.FATAL


# The call log's outcome of a gateway attempt that provably never left this machine (connection refused, DNS,
# connect timeout, TLS handshake): the platform did not count it, so neither do the ledger nor any call figure.
UNSENT_CALL = "unsent"
# The call log's outcome prefix (``uncharged:4002``) of an item-data gateway attempt the vendor says it did not
# charge (its codes 4000-4002): the ledger gives the call back, as for an unsent one.
UNCHARGED_CALL = "uncharged"


class FailureKind(enum.StrEnum):
    """Why an item failed (``items.error_kind``, the ``error_kind`` of an item event). Download failures carry
    the downloader's own reason (``DownloadError.reason``); these are the ones the jobs decide on."""

    LOOKUP = "lookup"  # the lookup failed with an error that says nothing about the item
    URL_EXPIRED = "url_expired"  # the CDN refused the signed URL: look the item up again
    UNREADABLE_MP4 = "unreadable_mp4"  # the bytes arrived but do not parse as an MP4
    INTERNAL = "internal"  # a bug or a database failure in a download thread


@dataclasses.dataclass(frozen=True)
class QuotaStatus:
    """Where today's quota stands. ``remaining`` is 0 while the platform's ban lasts."""

    day: str
    used: int
    daily_limit: int
    reserve: int
    remaining: int
    resets_at: datetime  # next 00:00 in the quota time zone (aware)
    banned_until: datetime | None  # aware UTC, only while the ban is in force
