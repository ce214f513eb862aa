"""Sending one message to the ``[notify]`` URLs through Apprise, bounded in time, and the notifier's small state
file (what was sent when: ``token_expiring`` goes out once a day; sends and failures are counted for the metrics).

Apprise URLs may carry secrets (tokens in the path, passwords), so nothing here ever prints one: a URL is named
by its position and scheme only (``URL 2 (json://…)``). A send never raises: its outcome is returned.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taobao_video.fsutil import atomic_write_text

STATE_FILE = "notify-state.json"  # beside the token file: the tool's other small private state


def url_label(index: int, url: str) -> str:
    """How messages name a notify URL without its secrets: its position and scheme."""
    scheme = url.partition("://")[0] or "?"
    return f"URL {index + 1} ({scheme}://…)"


@dataclass
class SendResult:
    """What one send did: how many URLs took the message, and one line per URL that did not."""

    sent: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.problems)


def send(
    urls: list[str],
    title: str,
    body: str,
    *,
    kind: str,
    timeout_s: float,
    stop: threading.Event | None = None,
) -> SendResult:
    """Send ``title``/``body`` to every URL; each gets ``timeout_s`` for its connection and its answer, and the
    whole send at most twice that (a receiver that accepts the connection and never answers is left behind on a
    daemon thread, which never keeps the process alive). A ``stop`` (Ctrl-C) leaves it at once, as it does a run."""
    result = SendResult()
    outcome: dict[int, bool | str] = {}

    def deliver() -> None:
        import apprise

        for index, url in enumerate(urls):
            outcome[index] = _deliver_one(apprise, url, title, body, kind, timeout_s)

    worker = threading.Thread(target=deliver, name="notify", daemon=True)
    # only a stop asked during the send cuts it (a run stopped by Ctrl-C still reports; a second Ctrl-C exits)
    watched = stop if stop is not None and not stop.is_set() else None
    worker.start()
    deadline = time.monotonic() + timeout_s * 2 + 1
    while worker.is_alive() and time.monotonic() < deadline and not (watched is not None and watched.is_set()):
        worker.join(0.1)
    for index, url in enumerate(urls):
        got = outcome.get(index)
        if got is True:
            result.sent += 1
        else:
            stopped = watched is not None and watched.is_set()
            waited = "left unsent: the run was stopped" if stopped else f"no answer within {timeout_s:g} s"
            why = got if isinstance(got, str) else waited
            result.problems.append(f"notify {url_label(index, url)}: {why}")
    return result


def _deliver_one(apprise: Any, url: str, title: str, body: str, kind: str, timeout_s: float) -> bool | str:
    """True when the service took the message, else why not (never the URL itself)."""
    sender = apprise.Apprise()
    if not sender.add(url):
        return "not a URL Apprise knows (check its scheme and form)"
    for service in sender:
        service.socket_connect_timeout = timeout_s
        service.socket_read_timeout = timeout_s
    try:
        ok = sender.notify(body=body, title=title, notify_type=kind)
    except Exception as exc:  # a plugin's own bug must not end the run that is only reporting
        return f"the sender failed ({type(exc).__name__})"
    return True if bool(ok) else "the service did not accept the message (unreachable, refused or timed out)"


class NotifyState:
    """The notifier's state file: the quota day ``token_expiring`` was last sent, and sends/failures so far."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # none yet, or damaged: the worst case is one extra token_expiring message
        return data if isinstance(data, dict) else {}

    def record(self, result: SendResult, **changes: Any) -> None:
        """Add a send's result to the counts and write ``changes`` over the file's values, in one read and one
        write; a failure to write is left to the caller's warning."""
        data = self.load()
        sent, failed = int(data.get("sent", 0)) + result.sent, int(data.get("failed", 0)) + result.failed
        data.update(changes, sent=sent, failed=failed)
        atomic_write_text(self.path, json.dumps(data, indent=2, sort_keys=True), mode=0o600)
