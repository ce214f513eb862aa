"""HTTP byte ranges (RFC 9110 §14): which part of a representation a ``Range`` request wants.

Shared by the two servers in the package: the sandbox CDN and ``taobao-video serve``. Only one range per
request is honoured: ``bytes=a-b``, ``bytes=a-`` and ``bytes=-n``. Several ranges, another unit or a malformed
header are ignored and the whole body is sent (§14.2 lets a server ignore Range; players ask for one range at
a time anyway). ``If-Range`` that matches neither validator also means the whole body (§13.1.5).
"""

from __future__ import annotations

import re
from typing import Literal

UNSATISFIABLE: Literal["unsatisfiable"] = "unsatisfiable"
Span = tuple[int, int]  # first and last byte, inclusive, as Content-Range writes them

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
# A number longer than a 64-bit offset is no range we serve (and Python will not even read one past 4300 digits):
# such a header is ignored, the whole file sent (200), as for a malformed one.
_MAX_DIGITS = 19


def parse_range(header: str, size: int) -> Span | Literal["unsatisfiable"] | None:
    """One byte range as inclusive (first, last); :data:`UNSATISFIABLE`; or None to send the whole body."""
    match = _RANGE.fullmatch(header.strip())
    if match is None or (not match[1] and not match[2]):
        return None  # several ranges, another unit or garbage: serve it all
    if any(len(number.lstrip("0")) > _MAX_DIGITS for number in (match[1], match[2])):
        return None
    if not match[1]:  # suffix: the last n bytes
        suffix = int(match[2])
        return UNSATISFIABLE if suffix == 0 or size == 0 else (max(0, size - suffix), size - 1)
    first = int(match[1])
    if match[2] and int(match[2]) < first:
        return None  # syntactically invalid: ignore the header
    if first >= size:
        return UNSATISFIABLE
    return first, min(int(match[2]) if match[2] else size - 1, size - 1)


def wanted_range(
    range_header: str | None, if_range: str | None, size: int, validators: tuple[str, ...]
) -> Span | Literal["unsatisfiable"] | None:
    """:func:`parse_range` of a request's headers, or None when there is no Range or ``If-Range`` names
    another version than ``validators`` (the ETag and Last-Modified the response carries)."""
    if not range_header:
        return None
    if if_range and (if_range not in validators or if_range.startswith("W/")):  # a weak tag never matches (RFC 9110)
        return None
    return parse_range(range_header, size)


def content_range(span: Span, size: int) -> str:
    """The ``Content-Range`` value of a 206 answer."""
    return f"bytes {span[0]}-{span[1]}/{size}"


def unsatisfied_range(size: int) -> str:
    """The ``Content-Range`` value of a 416 answer."""
    return f"bytes */{size}"
