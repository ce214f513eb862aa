"""The one retry policy shape: every retry loop of the package is a ``tenacity.Retrying`` built here.

Each edge passes its own numbers (attempts, backoff, what is worth retrying, a wait the far end stated, the
sleep to use) and gets the same shape: stop after ``attempts``, exponential backoff with jitter capped at
``backoff_max_s`` unless ``wait_override`` names a wait, the last error re-raised as it is, and one log line
per retry::

    gateway: attempt 2 of 5 failed (taobao.item_video: connection refused …); retrying in 1.3 s

Retryability lives on the error (``TaobaoVideoError.retryable``); this module only applies a caller's choice.
It imports no ``requests``: the catalog uses it too, and read-only commands must start without the HTTP stack
(tenacity itself is imported by the first :func:`retrying` call).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from taobao_video.errors import TaobaoVideoError

if TYPE_CHECKING:
    import tenacity

log = logging.getLogger(__name__)

RETRY_LINE = "%s: attempt %d of %d failed (%s); retrying in %.1f s"


def retrying(
    edge: str,
    *,
    attempts: int,
    should_retry: Callable[[BaseException], bool],
    backoff_initial_s: float = 0.5,
    backoff_max_s: float = 30.0,
    wait_override: Callable[[BaseException], float | None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    log_level: int = logging.WARNING,
) -> tenacity.Retrying:
    """A ``tenacity.Retrying`` for ``edge`` (its name in the log line): at most ``attempts`` tries, retrying
    what ``should_retry`` accepts after ``backoff_initial_s * 2**(n-1)`` (capped at ``backoff_max_s``) plus up
    to ``backoff_initial_s`` of jitter, or after what ``wait_override`` returns when that is not None."""
    import tenacity

    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    backoff = tenacity.wait_exponential(multiplier=backoff_initial_s, max=backoff_max_s) + tenacity.wait_random(
        0, backoff_initial_s
    )

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        stated = wait_override(exc) if wait_override is not None and exc is not None else None
        return float(stated) if stated is not None else float(backoff(state))

    def log_retry(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        pause = state.next_action.sleep if state.next_action else 0.0
        log.log(log_level, RETRY_LINE, edge, state.attempt_number, attempts, exc, pause)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(should_retry),
        stop=tenacity.stop_after_attempt(attempts),
        wait=wait,
        sleep=sleep,
        reraise=True,
        before_sleep=log_retry,
    )


def is_retryable(exc: BaseException) -> bool:
    """The default test: the error says a retry may help (``TaobaoVideoError.retryable``)."""
    return isinstance(exc, TaobaoVideoError) and exc.retryable


__all__ = ["RETRY_LINE", "is_retryable", "retrying"]
