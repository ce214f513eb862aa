"""The one network edge: ``requests``/``urllib3`` failures become our errors here, decided per cause.

The API client, the downloader and the OAuth client catch :data:`NETWORK_ERRORS` around their HTTP calls and
hand the exception to :func:`transport_error`; nothing above them sees a ``requests`` exception. What matters
about a failure is whether a retry may help and whether the request may have reached the far end (the platform
counts every call that reached it, top-protocol.md §6, so the quota ledger must too, and nothing else):

=================  ===============================================  =========  ==============================
cause              what happened                                    retried    reached the far end?
=================  ===============================================  =========  ==============================
refused            connection refused, host or network unreachable  yes        no (``NotSent``)
dns                the host name does not resolve                   yes        no
connect_timeout    no TCP connection within the connect timeout     yes        no
proxy              the proxy cannot be reached                      yes        no
tls                certificate or TLS handshake failure             no         no (a failure after the
                                                                                handshake: maybe)
invalid_url        malformed URL, missing or unsupported scheme     no         no
read_timeout       no answer within the read timeout                yes        maybe (counted)
reset              the connection broke after sending               yes        maybe
truncated          the answer was cut short                         yes        yes
redirects          too many redirects                               no         yes
=================  ===============================================  =========  ==============================

A certificate failure will not mend itself in a second, so it is not retried; it stops at one attempt and, being
provably unsent, costs no call. Anything not recognised counts as "maybe reached" and retryable: the safe side.

Also here: the connect timeout every edge uses (:func:`timeouts`), the sessions' :class:`EnvironmentOnce` and the
gateway's :class:`CircuitBreaker`. The retry policy shape is :func:`taobao_video.retry.retrying` (re-exported),
kept apart because the catalog uses it and must not import ``requests``.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import urlsplit

import requests
import urllib3

from taobao_video.errors import GatewayUnreachable, NotSent, TransportError
from taobao_video.model import utc_now
from taobao_video.retry import RETRY_LINE, is_retryable, retrying

# What an edge catches around a request or a body read: urllib3 wraps socket and http.client errors, but a body
# read may let a raw one through.
NETWORK_ERRORS: Final = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)

# A healthy connect takes well under a second; ten allow for three lost SYNs. Capping the connect phase is what
# makes a black-holed gateway end a run within about a minute (5 attempts of 10 s plus 7.5 s of backoff).
CONNECT_TIMEOUT_S: Final = 10.0

_UNSENT_TEXT: Final = {
    "refused": "cannot connect (refused or unreachable); nothing was sent",
    "dns": "the host name does not resolve; nothing was sent",
    "connect_timeout": "no connection within the timeout; nothing was sent",
    "proxy": "cannot get through the proxy; nothing was sent",
    "tls": "TLS handshake or certificate failure; nothing was sent",
    "invalid_url": "not a usable URL; nothing was sent",
}
_SENT_TEXT: Final = {
    "tls": "TLS failure after sending; the request may have arrived",
    "read_timeout": "no answer within the timeout; the request may have arrived",
    "reset": "the connection broke; the request may have arrived",
    "truncated": "the answer was cut short",
    "redirects": "too many redirects",
}
_ANSWER_TEXT: Final = {  # the headers had arrived: the failure is in the body
    "read_timeout": "no data within the timeout",
    "truncated": "the answer was cut short",
    "reset": "the connection broke mid-answer",
}
_NOT_RETRIED: Final = frozenset({"tls", "invalid_url", "redirects"})
# Frames that only run while a TLS session is being set up (ssl.py, urllib3.util.ssl_).
_HANDSHAKE_FRAMES: Final = frozenset({"do_handshake", "wrap_socket", "_ssl_wrap_socket_impl", "ssl_wrap_socket"})


def server_date(
    http: requests.Session, url: str, *, timeout_s: float, clock: Callable[[], datetime] = utc_now
) -> tuple[int, datetime | None, datetime]:
    """One GET of ``url`` for its HTTP ``Date`` header (RFC 9110 §6.6.1: the server's clock, to the second):
    (status, that time as aware UTC or None, this machine's ``clock`` halfway through the exchange, so the round
    trip does not count as skew). A network failure is a TransportError (NotSent when nothing left)."""
    before = clock()
    try:
        response = http.get(url, timeout=timeouts(timeout_s), stream=True)
        response.close()
    except NETWORK_ERRORS as exc:
        raise transport_error(exc, what=f"GET {url}") from None
    after = clock()
    stamp = response.headers.get("Date")
    try:
        server = parsedate_to_datetime(stamp).astimezone(UTC) if stamp else None
    except (TypeError, ValueError):
        server = None
    return response.status_code, server, before + (after - before) / 2


def transport_error(
    exc: BaseException,
    *,
    what: str,
    scrub: Callable[[str], str] = lambda text: text,
    answering: bool = False,
) -> TransportError:
    """The TransportError (a NotSent when nothing left this machine) for a ``requests``/``urllib3``/socket
    failure. ``what`` starts the message (``taobao.item_video``, a public URL); ``scrub`` removes secrets from
    the foreign text. ``answering``: the failure came while reading a body whose headers had arrived."""
    cause, sent, culprit = classify(exc, answering=answering)
    label = _ANSWER_TEXT[cause] if answering else _SENT_TEXT[cause] if sent else _UNSENT_TEXT[cause]
    message = scrub(f"{what}: {label} ({type(culprit).__name__}: {_text_of(culprit)})")
    kind = TransportError if sent else NotSent
    return kind(message, cause=cause, retryable=cause not in _NOT_RETRIED)


def classify(exc: BaseException, *, answering: bool = False) -> tuple[str, bool, BaseException]:
    """(cause, whether the request may have reached the far end, the exception that decided it)."""
    chain = list(_chain(exc))

    def first(*kinds: type[BaseException]) -> BaseException | None:
        """The first of ``kinds`` found in the chain (the earlier kind wins: it names the failure best)."""
        return next((e for kind in kinds for e in chain if isinstance(e, kind)), None)

    if answering:
        found = first(urllib3.exceptions.IncompleteRead, http.client.IncompleteRead)
        if found is not None:
            return "truncated", True, found
        found = first(urllib3.exceptions.ReadTimeoutError, requests.Timeout, TimeoutError)
        return ("read_timeout", True, found) if found is not None else ("reset", True, _innermost(chain))
    for kinds, cause in _UNSENT_RULES:
        found = first(*kinds)
        if found is not None:
            return cause, False, found
    found = first(requests.TooManyRedirects)
    if found is not None:
        return "redirects", True, found
    found = first(ssl.SSLError, ssl.CertificateError, urllib3.exceptions.SSLError, requests.exceptions.SSLError)
    if found is not None:
        handshake = _in_handshake(chain)
        return "tls", not handshake, _innermost([e for e in chain if isinstance(e, ssl.SSLError)] or [found])
    found = first(urllib3.exceptions.ReadTimeoutError, requests.ReadTimeout, TimeoutError)
    if found is not None:
        return "read_timeout", True, found
    found = first(
        urllib3.exceptions.IncompleteRead, http.client.IncompleteRead, requests.exceptions.ChunkedEncodingError
    )
    if found is not None:
        return "truncated", True, found
    return "reset", True, _innermost(chain)


# Order matters: a NameResolutionError is a NewConnectionError is a ConnectTimeoutError.
_UNSENT_RULES: Final[tuple[tuple[tuple[type[BaseException], ...], str], ...]] = (
    (
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.URLRequired,
            requests.exceptions.InvalidHeader,
            urllib3.exceptions.LocationValueError,
        ),
        "invalid_url",
    ),
    ((requests.exceptions.ProxyError, urllib3.exceptions.ProxyError), "proxy"),
    ((urllib3.exceptions.NameResolutionError, socket.gaierror), "dns"),
    ((urllib3.exceptions.NewConnectionError, ConnectionRefusedError), "refused"),
    ((urllib3.exceptions.ConnectTimeoutError, requests.exceptions.ConnectTimeout), "connect_timeout"),
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (requests and urllib3 keep them in ``args`` and ``reason``)."""
    seen: set[int] = set()
    queue: list[BaseException] = [exc]
    while queue:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [arg for arg in current.args if isinstance(arg, BaseException)]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            inner.append(reason)
        inner += [e for e in (current.__cause__, current.__context__) if e is not None]
        queue.extend(inner)


def _innermost(chain: list[BaseException]) -> BaseException:
    return chain[-1]


def _in_handshake(chain: list[BaseException]) -> bool:
    """Whether a TLS failure happened while the session was being set up, i.e. before any request byte left.

    A failed certificate check can only happen there; for other TLS errors the traceback says where."""
    for exc in chain:
        if isinstance(exc, (ssl.SSLCertVerificationError, ssl.CertificateError)):
            return True
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_name in _HANDSHAKE_FRAMES:
                return True
            tb = tb.tb_next
    return False


def _text_of(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


class EnvironmentOnce(requests.Session):
    """A Session that reads the proxy and CA bundle settings of the environment once per origin, not per request.

    requests looks them up (``*_proxy``, ``no_proxy``, ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``) before every
    request, walking the whole environment twice (about 90 µs); over hundreds of short downloads or calls that
    walk took more CPU than the HTTP exchange itself (issue 15's profile). A run's environment does not change,
    so each origin's answer is kept: the same settings, read once. Changing the session's own ``proxies``,
    ``verify``, ``cert`` or ``trust_env`` after its first request is not seen for an origin already asked; this
    tool never does.
    """

    def __init__(self) -> None:
        super().__init__()
        self._by_origin: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._by_origin_lock = threading.Lock()

    def merge_environment_settings(self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        if proxies:  # proxies given for this request: nothing general to keep
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, stream, verify, cert if not isinstance(cert, list) else tuple(cert))
        with self._by_origin_lock:
            found = self._by_origin.get(key)
        if found is None:
            found = super().merge_environment_settings(url, proxies, stream, verify, cert)
            with self._by_origin_lock:
                self._by_origin[key] = found
        return {**found, "proxies": dict(found["proxies"])}


def timeouts(timeout_s: float) -> tuple[float, float]:
    """(connect, read) timeouts for ``requests``: the connect phase capped at :data:`CONNECT_TIMEOUT_S`."""
    return min(timeout_s, CONNECT_TIMEOUT_S), timeout_s


class CircuitBreaker:
    """Opens after ``failures`` attempts in a row that got no answer from the gateway; then :meth:`check` raises
    GatewayUnreachable instead of letting another request go. Any answer (even an error_response or an HTTP 5xx)
    closes it. One per run, shared by every app's client: they all talk to the same gateway. Thread-safe."""

    def __init__(self, failures: int = 5, *, clock: Callable[[], datetime] = utc_now) -> None:
        if failures < 1:
            raise ValueError(f"failures must be at least 1, got {failures}")
        self.failures = failures
        self.clock = clock
        self._lock = threading.Lock()
        self._count = 0
        self._since: datetime | None = None
        self._last = ""

    def __repr__(self) -> str:
        return f"CircuitBreaker(failures={self.failures}, streak={self._count}, open={self.is_open})"

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self._count >= self.failures

    @property
    def streak(self) -> int:
        """Attempts in a row that got no answer."""
        with self._lock:
            return self._count

    def check(self) -> None:
        """Raise GatewayUnreachable when the breaker is open; nothing is sent then."""
        with self._lock:
            if self._count < self.failures:
                return
            since, last = self._since, self._last
        assert since is not None
        raise GatewayUnreachable(since, last)

    def failed(self, exc: TransportError) -> None:
        """An attempt got no answer (a TransportError without an HTTP status); an answer goes to :meth:`answered`."""
        if exc.answered:
            self.answered()
            return
        with self._lock:
            if self._count == 0:
                self._since = self.clock()
            self._count += 1
            self._last = str(exc)

    def answered(self) -> None:
        with self._lock:
            self._count, self._since, self._last = 0, None, ""


__all__ = [
    "CONNECT_TIMEOUT_S",
    "NETWORK_ERRORS",
    "RETRY_LINE",
    "CircuitBreaker",
    "classify",
    "is_retryable",
    "retrying",
    "timeouts",
    "transport_error",
]
