"""Parsing ids and item URLs: every accepted form, every bad line reported with its number, nothing lost."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taobao_video.errors import UsageError
from taobao_video.ids import BadLine, iter_entries, parse_id, parse_inputs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("520813250866", 520813250866),
        ("  520813250866\n", 520813250866),
        ("000520813250866", 520813250866),
        ("https://item.taobao.com/item.htm?id=520813250866", 520813250866),
        ("https://item.taobao.com/item.htm?spm=a1z10.1-c&id=520813250866&ns=1&abbucket=8", 520813250866),
        ("item.taobao.com/item.htm?id=520813250866", 520813250866),
        ("http://detail.tmall.com/item.htm?id=601234567890&skuId=4", 601234567890),
        ("https://detail.m.tmall.com/item.htm?id=601234567890", 601234567890),
        ("https://a.m.taobao.com/i520813250866.htm", 520813250866),
    ],
)
def test_accepted_forms(text, expected):
    assert parse_id(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("-520813250866", "not a positive number"),
        ("0", "zero"),
        ("123456789012345678901234567890", "too long"),
        ("12ab", "not a number"),
        ("https://example.com/item.htm?id=1", "not a Taobao or Tmall item URL"),
        ("https://item.taobao.com/item.htm?spm=1", "without an id"),
        ("https://item.taobao.com/item.htm?id=abc", "not a number"),
        ("٣٤٥", "not a number"),  # Arabic-Indic digits are digits to str.isdigit, not to us
        ("1.5", "not a number"),
    ],
)
def test_rejected_forms(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_id(text)


def test_bad_lines_are_reported_with_numbers_and_good_ones_kept(tmp_path):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# my list\n111\n\nbanana\n222\n111\n" + "9" * 5000 + "\n333\r\n", encoding="utf-8")
    parsed = parse_inputs([], [str(ids_file)])
    assert parsed.ids == [111, 222, 333]
    assert parsed.duplicates == 1
    assert [(b.line_no, b.reason.split(" (")[0]) for b in parsed.bad] == [
        (4, "not a number or an item URL"),
        (7, "line too long"),
    ]
    assert str(parsed.bad[0]) == f"{ids_file}:4: not a number or an item URL: 'banana'"


def test_arguments_then_files_and_duplicates_across_them(tmp_path):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("222\n333\n")
    parsed = parse_inputs(["111", "222"], [str(ids_file)])
    assert parsed.ids == [111, 222, 333] and parsed.duplicates == 1


def test_garbage_bytes_and_unicode(tmp_path):
    ids_file = tmp_path / "ids.bin"
    ids_file.write_bytes(b"\xff\xfe\x00garbage\n\xef\xbb\xbf444\n\xe5\x95\x86\xe5\x93\x81\n555\n")
    parsed = parse_inputs([], [str(ids_file)])
    assert parsed.ids == [444, 555]
    assert [b.line_no for b in parsed.bad] == [1, 3]


def test_empty_file_gives_no_ids(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    parsed = parse_inputs([], [str(tmp_path / "empty.txt")])
    assert parsed.ids == [] and parsed.bad == []


def test_directory_and_missing_file_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="is a directory"):
        parse_inputs([], [str(tmp_path)])
    with pytest.raises(UsageError, match="no such file"):
        parse_inputs([], [str(tmp_path / "nope.txt")])


def test_streaming_does_not_need_the_whole_input():
    def endless():
        n = 1
        while True:
            yield f"{n}\n"
            n += 1

    entries = iter_entries(endless(), "<gen>")
    assert [next(entries) for _ in range(3)] == [1, 2, 3]


@given(st.lists(st.text(max_size=60), max_size=30))
def test_any_text_gives_ids_or_numbered_bad_lines(lines):
    for entry in iter_entries(lines, "<h>"):
        assert isinstance(entry, int | BadLine)
        if isinstance(entry, int):
            assert 0 < entry < 10**16
        else:
            assert 1 <= entry.line_no <= len(lines) and entry.reason


@given(
    st.integers(min_value=1, max_value=10**16 - 1),
    st.sampled_from(["{}", "https://item.taobao.com/item.htm?id={}", "detail.tmall.com/item.htm?foo=bar&id={}&x=1"]),
)
def test_round_trip(num_iid, template):
    assert parse_id(template.format(num_iid)) == num_iid
