"""The providers' parsers and tables: the item-data gateway's error table and bodies (PHP-style JSON, GBK), the
gateway item's ``video`` (object, ``[]``, scheme-less), and the provider economics the planner relies on."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taobao_video.errors import BadResponseError, ConfigError, ItemNotFound, QuotaExceeded
from taobao_video.model import LookupOutcome
from taobao_video.top.itemdata import ItemDataClient, VendorRefused, VendorUnavailable, decode, vendor_error
from taobao_video.top.providers.gateway import GatewayProvider
from taobao_video.top.providers.item import ItemProvider
from taobao_video.top.providers.seller import MAX_BATCH, SellerProvider

NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


def error_for(code: str) -> Exception:
    from zoneinfo import ZoneInfo

    return vendor_error(code, "reason", request_id="r1", now=NOW, tz=ZoneInfo("Asia/Shanghai"))


@pytest.mark.parametrize(
    ("code", "kind", "retryable", "exit_code"),
    [
        ("2000", ItemNotFound, False, 1),
        ("1001", ItemNotFound, False, 1),
        ("4000", VendorUnavailable, True, 1),
        ("4001", VendorUnavailable, True, 1),
        ("4002", VendorUnavailable, True, 1),
        ("4003", VendorRefused, False, 1),
        ("4004", ConfigError, False, 78),
        ("4005", ConfigError, False, 78),
        ("4006", ConfigError, False, 78),
        ("4007", ConfigError, False, 78),
        ("4013", QuotaExceeded, False, 75),
        ("9999", VendorRefused, False, 1),
    ],
)
def test_every_row_of_the_vendor_error_table(code, kind, retryable, exit_code):
    error = error_for(code)
    assert isinstance(error, kind) and error.retryable is retryable and error.exit_code == exit_code


def test_the_key_errors_name_the_variable_and_4013_resets_at_beijing_midnight():
    assert "TAOBAO_GATEWAY_KEY" in str(error_for("4004")) and "TAOBAO_GATEWAY_SECRET" in str(error_for("4005"))
    spent = error_for("4013")
    assert isinstance(spent, QuotaExceeded) and spent.reset_at is not None
    assert spent.reset_at.isoformat() == "2026-11-23T00:00:00+08:00"
    assert str(error_for("4002")).startswith("item-data gateway error 4002")


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(_TEXT, _JSON, max_size=6))
def test_php_style_json_decodes_to_the_same_object(document):
    php = json.dumps(document).replace("/", "\\/")  # json_encode escapes every slash and non-ASCII character
    assert decode(php.encode("utf-8")) == document


@given(st.text(st.sampled_from("已超量今日调用次数用完商品不存在 abc/:"), max_size=20))
def test_a_gbk_error_body_under_a_utf8_header_decodes(reason):
    body = json.dumps({"error_code": "4013", "reason": reason}, ensure_ascii=False).encode("gbk")
    assert decode(body)["reason"] == reason


@given(st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF) | st.sampled_from("ab /:,"), max_size=20))
def test_a_utf8_body_with_chinese_text_decodes_as_utf8(reason):
    body = json.dumps({"error_code": "2000", "reason": reason}, ensure_ascii=False).encode("utf-8")
    assert decode(body)["reason"] == reason


@pytest.mark.parametrize("body", [b"", b"<html>busy</html>", b"[1, 2]", b"\xff\xfe{"])
def test_what_is_not_a_json_object_is_a_bad_response(body):
    with pytest.raises(BadResponseError):
        decode(body)


def gateway_result(item: dict) -> tuple[LookupOutcome, str | None]:
    client = ItemDataClient(url="http://127.0.0.1:9/taobao/item_get/", key="k" * 8, secret="s" * 8)
    result = GatewayProvider(client)._result(5, item, "rid")
    return result.outcome, result.video.url if result.video else None


def test_the_gateway_video_as_object_empty_list_or_scheme_less():
    assert gateway_result({"video": []}) == (LookupOutcome.NO_VIDEO, None)
    assert gateway_result({}) == (LookupOutcome.NO_VIDEO, None)
    assert gateway_result({"video": {"url": ""}}) == (LookupOutcome.NO_VIDEO, None)
    url = "//cloud.video.taobao.com/play/u/1/p/1/e/6/t/1/2.mp4"
    assert gateway_result({"video": {"url": url}}) == (LookupOutcome.VIDEO, "http:" + url)
    assert gateway_result({"video": [{"url": "https://x/1.mp4"}]}) == (LookupOutcome.VIDEO, "https://x/1.mp4")


class _Never:
    def call(self, method: str, params: dict[str, object]) -> dict:
        raise AssertionError("no call is expected")

    def lookup(self, num_iid: int):
        raise AssertionError("no call is expected")


def test_each_provider_says_how_many_ids_n_calls_resolve():
    assert ItemProvider(_Never()).ids_for(7) == 7
    assert SellerProvider(_Never()).ids_for(7) == 7 * MAX_BATCH
    assert SellerProvider(_Never(), batch_size=5).ids_for(3) == 15
    client = ItemDataClient(url="http://127.0.0.1:9/x", key="k" * 8, secret="s" * 8)
    assert GatewayProvider(client).ids_for(4) == 4
    with pytest.raises(ValueError, match="batch_size"):
        SellerProvider(_Never(), batch_size=21)
