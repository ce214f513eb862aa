"""One exception tree for taobao-video. Each class knows whether a retry may help and which exit code it means.

    TaobaoVideoError                      exit 1
    ├── UsageError                        exit 2   bad arguments or input
    ├── ConfigError                       exit 78  settings file or environment
    │   └── CatalogDamaged                         the catalog's file is damaged: `db check`, then `db rebuild`
    ├── AuthError                         exit 77  no usable OAuth token; what to do is in the message
    │   └── OAuthError                             HTTP 400 {"error": …} from the token endpoint
    ├── LockHeldError                     exit 75  another run holds the catalog lock
    ├── Interrupted                       exit 75  Ctrl-C or SIGTERM stopped a command that has no summary to end on
    ├── QuotaExhausted                    exit 75  the local ledger has no call left today; carries reset_at
    │   └── CallCapReached                         the run's own --max-calls is used up
    ├── DownloadError                     a video could not be fetched; ``reason`` is a short code
    │   ├── UrlExpired                             403 on a signed URL: look the item up again
    │   └── DownloadStopped                        the run is stopping; the .part file is kept for resuming
    ├── GatewayUnreachable                exit 75  the circuit breaker is open: nothing more is sent this run
    ├── DiskFull                          exit 75  no room for videos (ENOSPC, EDQUOT, below download.min_free_mb)
    │   └── CatalogFull                            the catalog's own disk is full (SQLite's folder, PostgreSQL's)
    ├── StorageError                      exit 75  the object store failed or could not be reached (storage/)
    ├── TransportError                    no usable answer; ``cause`` and ``retryable`` per cause (net.py)
    │   └── NotSent                                the request provably never left this machine: never counted
    ├── BadResponseError                  the gateway answered something that is not a TOP answer
    └── ApiError                          error_response from the gateway (code, sub_code, msg, sub_msg)
        ├── QuotaExceeded                 exit 75  daily quota spent; carries reset_at; never retried
        ├── RateLimited                   retryable after ban_seconds (per-API / per-app frequency limit)
        ├── ServiceUnavailable            retryable (code 10)
        ├── RemoteServiceError            retryable (code 15 with an isp.* sub_code)
        ├── ItemNotFound                  code 15 isv.item-* : the item is gone; a normal outcome upstream
        ├── InvalidArguments              code 40/41/15 isv.*: the request is wrong
        ├── MethodUnavailable    exit 78  code 21/22/11: the app cannot call this API (fallback upstream)
        ├── SignatureError       exit 78  code 24/25
        ├── AppKeyError          exit 78  code 28/29
        ├── TimestampError       exit 78  code 30/31: host clock or zone
        ├── SessionError         exit 77  code 26/27/53: token missing, invalid or expired
        └── EncodingError                 code 47

Everything above ``net.py`` and its callers (the API client, the downloader, OAuth) catches these, never
``requests`` exceptions. Texts never contain the app
secret, the token or the signature: the client builds them from the answer, and ``redact`` scrubs anything that
echoes a request back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from taobao_video.model import format_bytes

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TEMPFAIL = 75
EXIT_NOPERM = 77
EXIT_CONFIG = 78


class TaobaoVideoError(Exception):
    """Root of every error this package raises on purpose."""

    exit_code: int = EXIT_FAILED
    retryable: bool = False

    @property
    def needs_user(self) -> bool:
        """Only the user can fix this (authorisation or configuration): a run stops and says what to do."""
        return self.exit_code in (EXIT_NOPERM, EXIT_CONFIG)


class UsageError(TaobaoVideoError):
    exit_code = EXIT_USAGE


class ConfigError(TaobaoVideoError):
    """A settings problem, named by file, key and what is wrong."""

    exit_code = EXIT_CONFIG

    def __init__(self, problem: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file, self.key, self.problem = file, key, problem
        where = ": ".join(part for part in (file, key) if part)
        super().__init__(f"{where}: {problem}" if where else problem)


class CatalogDamaged(ConfigError):
    """The database reports damage (SQLite: malformed, not a database, an I/O error): nothing a rerun fixes.

    ``where`` names the catalog (its file, or its URL with the password masked), ``reason`` is the database's own
    words.
    """

    def __init__(self, where: str, reason: str) -> None:
        self.where, self.reason = where, reason
        super().__init__(
            f"the catalog {where} is damaged ({reason}): run `taobao-video db check`, then `taobao-video db rebuild`"
        )


class AuthError(TaobaoVideoError):
    exit_code = EXIT_NOPERM


class OAuthError(AuthError):
    """The OAuth token endpoint refused (HTTP 400 with ``{"error": …, "error_description": …}``)."""

    def __init__(self, error: str, description: str = "", *, status: int | None = None) -> None:
        self.error, self.description, self.status = error, description, status
        text = f"OAuth server refused: {error}"
        if description:
            text += f" ({description})"
        super().__init__(text)


class LockHeldError(TaobaoVideoError):
    exit_code = EXIT_TEMPFAIL


class Interrupted(TaobaoVideoError):
    """The user stopped the command (Ctrl-C, SIGTERM) before it was through; what it did is kept."""

    exit_code = EXIT_TEMPFAIL


class QuotaExhausted(TaobaoVideoError):
    """No call is left in today's quota by the local ledger (or the platform banned the day)."""

    exit_code = EXIT_TEMPFAIL

    def __init__(self, message: str, *, reset_at: datetime | None = None) -> None:
        self.reset_at = reset_at
        super().__init__(message)


class CallCapReached(QuotaExhausted):
    """The run spent the calls it was allowed (``--max-calls``); the day's quota may have more."""


class DownloadError(TaobaoVideoError):
    """A video download failed. ``reason`` is a short machine-readable code (e.g. ``not_mp4``, ``truncated``)."""

    bytes_fetched: int = 0  # bytes this fetch transferred before it failed (kept in the .part when resumable)

    def __init__(self, reason: str, message: str, *, retryable: bool = False, url: str = "") -> None:
        self.reason, self.url = reason, url
        self.retryable = retryable
        super().__init__(message)


class UrlExpired(DownloadError):
    """The CDN refused a signed URL (HTTP 403): the URL expired, the video is not necessarily gone."""

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__("url_expired", message, retryable=False, url=url)


class DownloadStopped(DownloadError):
    """The run was asked to stop mid-download; the partial file is kept and resumed next time."""

    def __init__(self, message: str = "stopped; partial file kept", *, url: str = "") -> None:
        super().__init__("stopped", message, retryable=False, url=url)


class TransportError(TaobaoVideoError):
    """The request got no usable answer: a network failure (``status`` None) or a non-200 HTTP status.

    ``cause`` names the failure (``net.py`` decides it per cause: ``refused``, ``dns``, ``read_timeout``, …);
    ``reached`` is True when the request may have reached the far end, which the platform then counted.
    """

    retryable = True
    reached = True

    def __init__(
        self, message: str, *, status: int | None = None, cause: str = "", retryable: bool | None = None
    ) -> None:
        self.status, self.cause = status, cause or ("http_status" if status is not None else "other")
        if retryable is not None:
            self.retryable = retryable
        super().__init__(message)

    @property
    def answered(self) -> bool:
        """Whether the far end answered at all (an HTTP status), however unhelpfully."""
        return self.status is not None


class NotSent(TransportError):
    """The request provably never left this machine (connection refused, DNS, connect timeout, TLS handshake,
    an invalid URL): the platform cannot have counted it, so the quota ledger gives its reservation back."""

    reached = False


class GatewayUnreachable(TaobaoVideoError):
    """The circuit breaker is open: the last attempts in a row all failed to reach the gateway, so the run sends
    nothing more. Nothing is lost: what is not done waits for the next run."""

    exit_code = EXIT_TEMPFAIL
    retryable = False

    def __init__(self, since: datetime, cause: str) -> None:
        self.since, self.cause = since, cause
        when = since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        super().__init__(f"gateway unreachable since {when}: {cause}; nothing lost, run again later")


class DiskFull(TaobaoVideoError):
    """The videos folder's file system is full (ENOSPC, EDQUOT) or has less free space than a run needs. Nothing
    is lost: what is not done (``.part`` files included) waits for a run after space is freed."""

    exit_code = EXIT_TEMPFAIL
    retryable = False
    bytes_fetched: int = 0  # a download's bytes before the disk filled (kept in its .part)

    def __init__(self, path: str, free_bytes: int, *, needed_bytes: int | None = None) -> None:
        self.path, self.free_bytes, self.needed_bytes = path, free_bytes, needed_bytes
        text = f"disk full: {format_bytes(free_bytes)} free on {path}"
        if needed_bytes is not None:
            text += f" (download.min_free_mb asks for {needed_bytes / 1e6:g} MB)"
        super().__init__(text)

    def __reduce__(self) -> tuple[Any, ...]:  # copy and pickle (a report is copied) rebuild from the fields
        return type(self), (self.path, self.free_bytes), {**self.__dict__}


class CatalogFull(DiskFull):
    """The catalog's own disk is full: SQLite's folder (SQLITE_FULL) or the PostgreSQL server's (SQLSTATE 53100).
    The statement that met it was rolled back; what was committed before stays. ``free_bytes`` None: not known
    here (a remote server)."""

    def __init__(self, path: str, free_bytes: int | None = None) -> None:
        self.path, self.free_bytes, self.needed_bytes = path, free_bytes or 0, None
        self.free_known = free_bytes
        free = f", {format_bytes(free_bytes)} free" if free_bytes is not None else ""
        TaobaoVideoError.__init__(
            self,
            f"the catalog's disk is full ({path}{free}): free space there and run again; what was recorded is kept",
        )

    def __reduce__(self) -> tuple[Any, ...]:  # rebuilt from what was known: a copy must not claim "0 B free"
        return type(self), (self.path, self.free_known), {**self.__dict__}


class StorageError(TaobaoVideoError):
    """The object store (``download.dir = "s3://…"``) failed: unreachable, a 5xx, an upload cut off. Nothing is
    lost: the file waits in the local spool and the next run uploads it. ``reason`` is a short code."""

    exit_code = EXIT_TEMPFAIL

    def __init__(self, reason: str, message: str, *, retryable: bool = True) -> None:
        self.reason, self.retryable = reason, retryable
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:  # copy and pickle (a report is copied) rebuild from the fields
        return type(self), (self.reason, str(self)), {**self.__dict__}


class BadResponseError(TaobaoVideoError):
    """HTTP 200 but the body is not a TOP answer (HTML, empty, not JSON, too large, wrong shape)."""


class ApiError(TaobaoVideoError):
    """An ``error_response`` from the gateway."""

    def __init__(
        self,
        code: int | None,
        msg: str = "",
        sub_code: str = "",
        sub_msg: str = "",
        request_id: str = "",
        method: str = "",
    ) -> None:
        self.code, self.msg, self.sub_code, self.sub_msg = code, msg, sub_code, sub_msg
        self.request_id, self.method = request_id, method
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = f"TOP error {self.code}"
        if self.msg:
            text += f" {self.msg}"
        if self.sub_code:
            text += f" [{self.sub_code}]"
        if self.sub_msg:
            text += f": {self.sub_msg}"
        if self.method:
            text += f" (method {self.method}"
            text += f", request_id {self.request_id})" if self.request_id else ")"
        elif self.request_id:
            text += f" (request_id {self.request_id})"
        return text


class QuotaExceeded(ApiError):
    """The app's daily call quota is spent. ``reset_at`` is when calls are accepted again (aware datetime)."""

    exit_code = EXIT_TEMPFAIL
    reset_at: datetime | None = None
    ban_seconds: int | None = None


class RateLimited(ApiError):
    """A frequency limit; the gateway says how long the ban lasts (``ban_seconds``)."""

    retryable = True
    ban_seconds: int | None = None


class ServiceUnavailable(ApiError):
    retryable = True


class RemoteServiceError(ApiError):
    retryable = True


class ItemNotFound(ApiError):
    pass


class InvalidArguments(ApiError):
    pass


class MethodUnavailable(ApiError):
    exit_code = EXIT_CONFIG


class SignatureError(ApiError):
    exit_code = EXIT_CONFIG


class AppKeyError(ApiError):
    exit_code = EXIT_CONFIG


class TimestampError(ApiError):
    exit_code = EXIT_CONFIG


class SessionError(ApiError):
    exit_code = EXIT_NOPERM


class EncodingError(ApiError):
    pass


_BAN_SECONDS = re.compile(r"ban will last for\s+(\d+)\s+more seconds", re.IGNORECASE)


def ban_seconds(sub_msg: str) -> int | None:
    """The N of ``This ban will last for N more seconds``, or None when the text does not say."""
    match = _BAN_SECONDS.search(sub_msg or "")
    return int(match.group(1)) if match else None


def _sub(*prefixes: str) -> Callable[[str], bool]:
    return lambda sub_code: any(sub_code.startswith(p) for p in prefixes)


def _any(_: str) -> bool:
    return True


def _not_found(sub_code: str) -> bool:
    return sub_code.startswith(("isv.item-is-delete", "isv.item-not-exist")) or "ITEM_NOT_FOUND" in sub_code


# (codes, sub_code test, class): the first matching row wins; the last row catches everything else.
# Quota codes carry "accesscontrol." sub_codes (top-protocol.md §6); `access_control_exceeded` is what some
# TOP-compatible gateways send for the daily quota, seen both as a sub_code and as the code itself.
_RULES: tuple[tuple[frozenset[int | str] | None, Callable[[str], bool], type[ApiError]], ...] = (
    (None, lambda s: s == "access_control_exceeded", QuotaExceeded),
    (frozenset({"access_control_exceeded"}), _any, QuotaExceeded),
    (frozenset({7}), _sub("accesscontrol.limited-by-app-access-count"), QuotaExceeded),
    (
        frozenset({7}),
        _sub("accesscontrol.limited-by-api-access-count", "accesscontrol.limited-by-app-api-access-count"),
        RateLimited,
    ),
    (frozenset({7}), _any, RateLimited),
    (frozenset({10}), _any, ServiceUnavailable),
    (frozenset({11, 21, 22}), _any, MethodUnavailable),
    (frozenset({15}), _not_found, ItemNotFound),
    (frozenset({15}), _sub("isp."), RemoteServiceError),
    (frozenset({15}), _any, InvalidArguments),
    (frozenset({24, 25}), _any, SignatureError),
    (frozenset({26, 27, 53}), _any, SessionError),
    (frozenset({28, 29}), _any, AppKeyError),
    (frozenset({30, 31}), _any, TimestampError),
    (frozenset({40, 41, 43}), _any, InvalidArguments),
    (frozenset({47}), _any, EncodingError),
    (None, _sub("isp."), RemoteServiceError),
    (None, _any, ApiError),
)


def _normalise_code(raw: Any) -> int | str | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    text = str(raw).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def api_error_from_response(body: Mapping[str, Any], *, method: str = "", now: datetime | None = None) -> ApiError:
    """Turn an ``error_response`` object (the inner mapping) into the right ApiError subclass.

    ``now`` (aware) dates ``reset_at`` for QuotaExceeded when the answer states the ban length.
    """
    code = _normalise_code(body.get("code"))
    sub_code = str(body.get("sub_code") or "")
    sub_msg = str(body.get("sub_msg") or "")
    cls = next(cls for codes, test, cls in _RULES if (codes is None or code in codes) and test(sub_code))
    error = cls(
        code if isinstance(code, int) else None,
        msg=str(body.get("msg") or (code if isinstance(code, str) else "")),
        sub_code=sub_code,
        sub_msg=sub_msg,
        request_id=str(body.get("request_id") or ""),
        method=method,
    )
    if isinstance(error, (QuotaExceeded, RateLimited)):
        error.ban_seconds = ban_seconds(sub_msg)
    if isinstance(error, QuotaExceeded) and now is not None and error.ban_seconds is not None:
        error.reset_at = now + timedelta(seconds=error.ban_seconds)
    return error


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-trivial secret replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
