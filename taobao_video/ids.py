"""Product ids from arguments, files and stdin: numbers or item URLs, one per line, bad lines reported by number.

Accepted forms (surrounding whitespace ignored, blank lines and ``#`` comments skipped):

    520813250866
    https://item.taobao.com/item.htm?spm=a1z10&id=520813250866&ns=1
    detail.tmall.com/item.htm?id=601234567890&skuId=1
    https://a.m.taobao.com/i520813250866.htm

Parsing streams: a million-line file is read line by line, so memory stays flat.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from taobao_video.errors import UsageError

MAX_ID_DIGITS = 16  # today's num_iids have 12-13 digits; anything far longer is not an id
MAX_LINE_CHARS = 4096
_ITEM_HOSTS = ("taobao.com", "tmall.com", "tmall.hk")
_PATH_ID = re.compile(r"/i(\d+)\.htm", re.ASCII)


@dataclass(frozen=True)
class BadLine:
    """One line that is not an id, with where it was and why."""

    source: str
    line_no: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line_no}: {self.reason}: {self.text!r}"


@dataclass
class ParsedIds:
    """Unique ids in first-seen order, the lines that were not ids, and how many repeats collapsed."""

    ids: list[int] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)
    duplicates: int = 0


def parse_id(text: str) -> int:
    """One num_iid from a number or an item URL; ValueError saying why not."""
    token = text.strip()
    if not token:
        raise ValueError("empty")
    if token.isascii() and token.isdigit():
        return _checked_number(token)
    if token.startswith("-") and token[1:].isascii() and token[1:].isdigit():
        raise ValueError("not a positive number")
    if "." in token and ("/" in token or "?" in token):
        return _id_from_url(token)
    raise ValueError("not a number or an item URL")


def _checked_number(digits: str) -> int:
    significant = digits.lstrip("0")
    if not significant:
        raise ValueError("zero is not a num_iid")
    if len(significant) > MAX_ID_DIGITS:
        raise ValueError(f"too long for a num_iid ({len(significant)} digits)")
    return int(significant)


def _id_from_url(token: str) -> int:
    url = token if "://" in token else "https://" + token
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        raise ValueError("not a valid URL") from None
    if not any(host == h or host.endswith("." + h) for h in _ITEM_HOSTS):
        raise ValueError(f"not a Taobao or Tmall item URL (host {host or '?'})")
    values = parse_qs(parts.query).get("id")
    if values:
        if not (values[0].isascii() and values[0].isdigit()):
            raise ValueError(f"the URL's id is not a number ({values[0][:40]!r})")
        return _checked_number(values[0])
    match = _PATH_ID.search(parts.path)
    if match and match.group(1).isascii():
        return _checked_number(match.group(1))
    raise ValueError("item URL without an id=… parameter")


def iter_entries(lines: Iterable[str], source: str) -> Iterator[int | BadLine]:
    """Each line's id or BadLine, streaming; blank lines and ``#`` comments are skipped."""
    for line_no, raw in enumerate(lines, start=1):
        line = raw.strip().lstrip("\ufeff")
        if not line or line.startswith("#"):
            continue
        if len(line) > MAX_LINE_CHARS:
            yield BadLine(source, line_no, line[:60] + "…", f"line too long ({len(line)} characters)")
            continue
        if "\ufffd" in line or "\x00" in line:
            yield BadLine(source, line_no, line[:60], "not text (binary or wrongly encoded bytes)")
            continue
        try:
            yield parse_id(line)
        except ValueError as exc:
            yield BadLine(source, line_no, line[:80], str(exc))


def collect(entries: Iterable[int | BadLine], into: ParsedIds | None = None) -> ParsedIds:
    """Gather entries into unique ids (first seen wins) and bad lines."""
    parsed = into or ParsedIds()
    seen = set(parsed.ids)
    for entry in entries:
        if isinstance(entry, BadLine):
            parsed.bad.append(entry)
        elif entry in seen:
            parsed.duplicates += 1
        else:
            seen.add(entry)
            parsed.ids.append(entry)
    return parsed


def open_id_source(path: str) -> tuple[Iterable[str], str]:
    """Lines of a file (or ``-`` for stdin) and the name to report them by; UsageError when unreadable."""
    if path == "-":
        stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace", newline=None)
        return stream, "<stdin>"
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{path}: is a directory, not a file of ids")
    try:
        handle = target.open("r", encoding="utf-8", errors="replace", newline=None)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None
    return handle, path


def parse_inputs(args: Iterable[str], files: Iterable[str]) -> ParsedIds:
    """Ids from command-line arguments (``-`` meaning stdin) and ``--file`` paths, in that order."""
    parsed = ParsedIds()
    plain = []
    sources = list(files)
    for arg in args:
        if arg == "-":
            sources.append("-")
        else:
            plain.append(arg)
    collect(iter_entries(plain, "<arguments>"), parsed)
    for path in sources:
        lines, name = open_id_source(path)
        try:
            collect(iter_entries(lines, name), parsed)
        finally:
            if hasattr(lines, "close") and path != "-":
                lines.close()  # type: ignore[union-attr]
    return parsed
