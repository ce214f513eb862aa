"""The sandbox's two provider channels on the wire: the seller channel's list and query methods (a session per
shop, silent omission, at most 20 ids) and the item-data gateway (keys, daily limits, its codes and body quirks)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from helpers.sandbox import error_code, gateway_call, gateway_params, signed

from taobao_video.sandbox import AppConfig, FakeClock, Sandbox, SandboxConfig, VendorKey

LIST, QUERY = "taobao.items.seller.list.get", "alibaba.video.query"


@pytest.fixture
def sb(clock: FakeClock) -> Iterator[Sandbox]:
    probe = Sandbox(SandboxConfig(seed=7)).catalogue
    a = probe.sample("video", 3)
    b = probe.sample("no_video", 2)
    config = SandboxConfig(
        seed=7,
        apps=(AppConfig(key="test", secret="test"),),
        clock=clock.now,
        shops={"A": tuple(a), "B": tuple(b)},
        shared_videos={a[1]: a[0]},
        vendor_keys=(VendorKey("vkey-1234", "vsecret-5678", daily_limit=3),),
        vendor_transient={a[2]: 1},
    )
    with Sandbox(config) as sandbox:
        sandbox.shop_a, sandbox.shop_b = a, b  # type: ignore[attr-defined]
        yield sandbox


def listing(sb: Sandbox, shop: str, ids: list[int], **extra: str) -> dict:
    token = sb.issue_token("test", user_nick=shop)["access_token"]
    fields = "num_iid,title,nick,videos,mpic_video"
    params = gateway_params(sb, token, LIST, num_iids=",".join(map(str, ids)), fields=fields, **extra)
    return gateway_call(sb, signed(params))


def test_a_shop_sees_only_its_own_items_and_the_rest_is_left_out(sb):
    a, b = sb.shop_a, sb.shop_b
    body = listing(sb, "A", [*a, *b, 1])
    items = body["items_seller_list_get_response"]["items"]["item"]
    assert [item["num_iid"] for item in items] == a and all(item["nick"] == "A" for item in items)
    assert items[0]["videos"]["video"][0]["url"].endswith(f"/player/{items[0]['videos']['video'][0]['video_id']}")
    assert items[1]["videos"]["video"][0]["video_id"] == items[0]["videos"]["video"][0]["video_id"]  # shared
    nothing = listing(sb, "A", b)["items_seller_list_get_response"]
    assert "items" not in nothing and "request_id" in nothing  # nothing matched: no items key at all
    simple = listing(sb, "B", b, simplify="true")
    assert [item["num_iid"] for item in simple["items"]] == b


def test_more_than_20_ids_or_no_session_is_an_error(sb):
    assert error_code(listing(sb, "A", list(range(1, 22)))) == 41
    params = gateway_params(sb, "", LIST, num_iids="1", fields="num_iid")
    del params["session"]
    assert error_code(gateway_call(sb, signed(params))) == 26


@pytest.mark.parametrize("bad", ["\u00b2", "0", "12345678901234", "x"])
def test_a_num_iid_that_is_not_1_to_13_ascii_digits_is_code_41_on_every_channel(sb, bad):
    token = sb.issue_token("test", user_nick="A")["access_token"]
    num_iids = f"{sb.shop_a[0]},{bad}"
    listed = gateway_call(sb, signed(gateway_params(sb, token, LIST, num_iids=num_iids, fields="num_iid")))
    assert error_code(listed) == 41 and listed["error_response"]["sub_msg"] == "num_iids must be positive integers"
    assert error_code(gateway_call(sb, signed(gateway_params(sb, token, num_iid=bad)))) == 41
    assert vendor(sb, key="vkey-1234", secret="vsecret-5678", num_iid=bad).json()["error_code"] == "4003"


def test_the_video_query_answers_the_play_url_of_one_video(sb):
    token = sb.issue_token("test", user_nick="A")["access_token"]
    video_id = str(sb.catalogue.video_id_for(sb.shop_a[0]))
    body = gateway_call(sb, signed(gateway_params(sb, token, QUERY, video_id=video_id)))
    answer = body["alibaba_video_query_response"]
    assert answer["play_url"].startswith(sb.url + "/cdn/") and answer["duration"] >= 5
    missing = gateway_call(sb, signed(gateway_params(sb, token, QUERY, video_id="1")))
    assert error_code(missing) == 15
    assert sb.stats()["gateway"]["by_method"] == {QUERY: 2}


def vendor(sb: Sandbox, **query: str) -> requests.Response:
    return requests.get(sb.itemdata_url, params=query, timeout=10)


def test_the_item_data_gateway_codes_charges_and_quirks(sb):
    a, b = sb.shop_a, sb.shop_b
    key = {"key": "vkey-1234", "secret": "vsecret-5678"}
    assert vendor(sb, key="nope", secret="x", num_iid="1").json()["error_code"] == "4004"
    assert vendor(sb, key="vkey-1234", secret="x", num_iid="1").json()["error_code"] == "4005"
    assert vendor(sb, **key, num_iid="x").json()["error_code"] == "4003"
    assert vendor(sb, **key, num_iid=str(a[2])).json()["error_code"] == "4002"  # transient, once
    found = vendor(sb, **key, num_iid=str(a[0]))
    assert b"\\/" in found.content  # PHP's escaped slashes
    item = found.json()["item"]
    assert item["num_iid"] == str(a[0]) and item["video"]["url"].startswith("//127.0.0.1:")
    assert vendor(sb, **key, num_iid=str(b[0])).json()["item"]["video"] == []
    gone = str(sb.catalogue.sample("deleted", 1)[0])
    assert vendor(sb, **key, num_iid=gone).json()["error_code"] == "2000"  # charged: the third charged call
    spent = vendor(sb, **key, num_iid=str(a[2]))
    assert json.loads(spent.content.decode("gbk"))["error_code"] == "4013"  # GBK under a UTF-8 header
    assert "已超量" in spent.content.decode("gbk") and spent.headers["Content-Type"].endswith("UTF-8")
    assert sb.stats()["itemdata"]["charged"] == 3 and sb.itemdata.used("vkey-1234") == 3
