"""Byte ranges (RFC 9110 §14): known answers, and the invariants of any header against any size."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taobao_video.web.byteranges import UNSATISFIABLE, content_range, parse_range, unsatisfied_range, wanted_range


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-99", 1000, (0, 99)),
        ("bytes=100-", 1000, (100, 999)),
        ("bytes=-100", 1000, (900, 999)),
        ("bytes=-5000", 1000, (0, 999)),  # a suffix longer than the file is the whole file
        ("bytes=990-5000", 1000, (990, 999)),  # the end is clipped
        (" bytes=0-0 ", 1000, (0, 0)),
        ("bytes=1000-", 1000, UNSATISFIABLE),
        ("bytes=1000-1005", 1000, UNSATISFIABLE),
        ("bytes=-0", 1000, UNSATISFIABLE),
        ("bytes=-10", 0, UNSATISFIABLE),
        ("bytes=0-9,20-29", 1000, None),  # several ranges: the whole body
        ("bytes=9-3", 1000, None),  # invalid: ignored
        ("bytes=-", 1000, None),
        ("items=0-9", 1000, None),
        ("garbage", 1000, None),
    ],
)
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


def test_if_range_and_the_header_values():
    validators = ('"v1"', "Sun, 22 Nov 2026 04:00:00 GMT")
    assert wanted_range("bytes=0-9", '"v1"', 100, validators) == (0, 9)
    assert wanted_range("bytes=0-9", "Sun, 22 Nov 2026 04:00:00 GMT", 100, validators) == (0, 9)
    assert wanted_range("bytes=0-9", '"v0"', 100, validators) is None  # another version: the whole body
    assert wanted_range(None, None, 100, validators) is None
    assert wanted_range("", '"v1"', 100, validators) is None
    assert content_range((0, 9), 100) == "bytes 0-9/100"
    assert unsatisfied_range(100) == "bytes */100"


@given(
    first=st.one_of(st.none(), st.integers(0, 2_000)),
    last=st.one_of(st.none(), st.integers(0, 2_000)),
    size=st.integers(0, 1_500),
)
def test_any_single_range_lands_inside_the_file(first, last, size):
    header = f"bytes={'' if first is None else first}-{'' if last is None else last}"
    span = parse_range(header, size)
    if isinstance(span, tuple):
        assert 0 <= span[0] <= span[1] < size
        if first is not None:
            assert span[0] == first
        else:
            assert span[1] == size - 1 and span[1] - span[0] + 1 == min(last, size)
    elif span == UNSATISFIABLE:
        assert size == 0 or (first is not None and first >= size) or (first is None and last == 0)
    else:
        assert (first is None and last is None) or (first is not None and last is not None and last < first)
