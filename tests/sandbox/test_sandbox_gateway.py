"""The sandbox gateway: signature known answers, every validation step and its order, both video APIs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from helpers.sandbox import gateway_params, signed
from helpers.signing import V1, V2

from taobao_video.sandbox import AppConfig, FakeClock, Sandbox, SandboxConfig

BOTH = frozenset({"taobao.item_video", "taobao.item.get"})


@pytest.fixture
def sb(clock: FakeClock) -> Iterator[Sandbox]:
    apps = (
        AppConfig(key="test", secret="test"),
        AppConfig(key="getonly", secret="s3cret", methods=frozenset({"taobao.item.get"})),
    )
    with Sandbox(SandboxConfig(seed=7, apps=apps, clock=clock.now)) as sandbox:
        yield sandbox


@pytest.fixture
def token(sb: Sandbox) -> str:
    return sb.issue_token("test")["access_token"]


def post(sb: Sandbox, params: dict[str, str]) -> dict:
    response = requests.post(sb.gateway_url, data=params, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
    return response.json()


def error(body: dict) -> tuple[int, str | None]:
    err = body["error_response"]
    return err["code"], err.get("sub_code")


# --- signature known answers (top-protocol.md §3; the vectors live in test_signing) --------------------------

KNOWN_ANSWERS = [
    (V1, "helloworld", "2016-01-01 04:00:00", "66987CB115214E59E6EC978214934FB8"),
    ({**V1, "sign_method": "hmac"}, "helloworld", "2016-01-01 04:00:00", "D56D7858309C31B6251083A874D48273"),
    (
        {**V1, "sign_method": "hmac-sha256"},
        "helloworld",
        "2016-01-01 04:00:00",
        "04DB15AD0774D5CFCE2C837DE43E3FCEA9011ED74F3038FB6AB5F3C4CEA119E8",
    ),
    (V2, "280a8edc3a899b8a1e4cb965732d2441", "2012-02-15 15:02:05", "8E170B6351CC5C6CF34DFFDC63569734"),
]


@pytest.mark.parametrize(("params", "secret", "utc", "signature"), KNOWN_ANSWERS)
def test_known_answer_signatures_pass_and_one_changed_character_fails(params, secret, utc, signature):
    clock = FakeClock(datetime.fromisoformat(utc).replace(tzinfo=UTC))
    app = AppConfig(key=params["app_key"], secret=secret)
    with Sandbox(SandboxConfig(apps=(app,), clock=clock.now)) as sb:
        sb.issue_token(app.key, access_token="test")
        good = post(sb, {**params, "sign": signature})
        assert error(good) == (22, None), good  # got past the signature check (7): the method is unknown (8)
        bad = signature[:-1] + ("0" if signature[-1] != "0" else "1")
        assert error(post(sb, {**params, "sign": bad}))[0] == 25
        assert error(post(sb, {**params, "sign": signature.lower()}))[0] == 22  # hex case does not matter


# --- validation steps -------------------------------------------------------------------------------------


def test_success_item_video(sb, token):
    num_iid = sb.catalogue.sample("video", 1)[0]
    item = sb.catalogue.item(num_iid)
    body = post(sb, signed(gateway_params(sb, token, num_iid=str(num_iid))))
    answer = body["item_video_response"]
    assert set(answer) == {"video", "request_id"}
    assert set(answer["video"]) == {"url", "duration", "cover_url"}
    assert answer["video"]["duration"] == round(item.duration_s * 1000)
    assert answer["video"]["url"].startswith(sb.url + "/cdn/")
    assert answer["video"]["cover_url"] == f"{sb.url}/cdn/cover/{item.video_id}.jpg"
    assert len(answer["request_id"]) == 13 and answer["request_id"].isalnum()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"app_key": None}, (28, None)),
        ({"app_key": "nope"}, (29, "isv.appkey-not-exists")),
        ({"method": None}, (21, None)),
        ({"method": "taobao.item.seller.get"}, (22, None)),
        ({"v": None}, (32, None)),
        ({"v": "1.0"}, (33, None)),
        ({"timestamp": None}, (30, None)),
        ({"timestamp": "yesterday"}, (31, None)),
        ({"timestamp": "2026-11-22 12:10:01"}, (31, None)),  # 10 min 1 s late, Beijing wall time
        ({"timestamp": "2026-11-22 04:00:00"}, (31, None)),  # UTC wall time instead of Beijing
        ({"sign_method": "sha1"}, (25, None)),
        ({"session": None}, (26, None)),
        ({"session": "not-a-token"}, (27, "invalid-sessionkey")),
        ({"num_iid": None}, (40, None)),
        ({"num_iid": "abc"}, (41, None)),
        ({"num_iid": "0"}, (41, None)),
        ({"num_iid": "-5"}, (41, None)),
        ({"num_iid": "12345678901234"}, (41, None)),
    ],
)
def test_each_validation_step(sb, token, change, expected):
    params = gateway_params(sb, token, num_iid=str(sb.catalogue.sample("video", 1)[0]))
    params.update(change)
    if params.get("sign_method") == "sha1":
        params = {k: v for k, v in params.items() if v is not None}
        body = post(sb, {**params, "sign": "ABC"})
    else:
        body = post(sb, signed(params))
    assert error(body) == expected
    assert body["error_response"]["request_id"]


def test_timestamp_sub_msg_tells_the_server_time(sb, token):
    body = post(sb, signed(gateway_params(sb, token, num_iid="1", timestamp="2026-11-22 11:49:00")))
    assert error(body)[0] == 31
    assert "2026-11-22 12:00:00" in body["error_response"]["sub_msg"]
    ok = post(sb, signed(gateway_params(sb, token, num_iid="1", timestamp="2026-11-22 11:50:00")))
    assert "error_response" not in ok or error(ok)[0] != 31


def test_missing_and_wrong_signature(sb, token):
    params = gateway_params(sb, token, num_iid="1")
    assert error(post(sb, params)) == (24, None)
    assert error(post(sb, {**params, "sign": "0" * 32})) == (25, None)
    body = post(sb, {**params, "sign_method": "sha1", "sign": "0" * 32})
    assert error(body)[0] == 25 and "sha1" in body["error_response"]["sub_msg"]


def test_hmac_methods_accepted(sb, token):
    num_iid = str(sb.catalogue.sample("video", 1)[0])
    for method in ("md5", "hmac", "hmac-sha256"):
        params = gateway_params(sb, token, num_iid=num_iid, sign_method=method)
        assert "item_video_response" in post(sb, signed(params))


def test_signature_covers_unknown_parameters(sb, token):
    num_iid = str(sb.catalogue.sample("video", 1)[0])
    params = signed(gateway_params(sb, token, num_iid=num_iid, partner_id="top-apitools", whatever="x"))
    assert "item_video_response" in post(sb, params)
    params["whatever"] = "y"
    assert error(post(sb, params))[0] == 25


def test_permission_code_11(sb):
    token = sb.issue_token("getonly")["access_token"]
    params = gateway_params(sb, token, num_iid="1", app_key="getonly")
    assert error(post(sb, signed(params, "s3cret"))) == (11, "isv.permission-api-package-limit")


@pytest.mark.parametrize("config", [{"platform_methods": frozenset({"taobao.item.get"})}, {"item_video_api": False}])
def test_platform_without_item_video_gives_22(clock, config):
    with Sandbox(SandboxConfig(clock=clock.now, **config)) as sb:
        params = gateway_params(sb, sb.issue_token()["access_token"], num_iid="1")
        assert error(post(sb, signed(params))) == (22, None)


def test_session_under_access_token_name(sb, token):
    params = gateway_params(sb, token, num_iid=str(sb.catalogue.sample("video", 1)[0]))
    params["access_token"] = params.pop("session")
    assert "item_video_response" in post(sb, signed(params))


def test_session_names_are_configurable(clock):
    with Sandbox(SandboxConfig(clock=clock.now, session_params=("session",))) as sb:
        params = gateway_params(sb, sb.issue_token()["access_token"], num_iid="1")
        params["access_token"] = params.pop("session")
        assert error(post(sb, signed(params))) == (26, None)


def test_another_apps_token_is_invalid(sb):
    token = sb.issue_token("getonly")["access_token"]
    assert error(post(sb, signed(gateway_params(sb, token, num_iid="1")))) == (27, "invalid-sessionkey")


def test_session_not_required(clock):
    with Sandbox(SandboxConfig(clock=clock.now, require_session=False)) as sb:
        params = gateway_params(sb, "", num_iid=str(sb.catalogue.sample("video", 1)[0]))
        del params["session"]
        assert "item_video_response" in post(sb, signed(params))


def test_item_get_requires_fields(sb, token):
    params = gateway_params(sb, token, "taobao.item.get", num_iid="1")
    assert error(post(sb, signed(params))) == (40, None)
    assert post(sb, signed(params))["error_response"]["msg"] == "Missing Required Arguments:fields"


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ({"app_key": "nope"}, {"sign": "BAD"}, 29),
        ({"sign": "BAD"}, {"session": None}, 25),
        ({"v": "3.0"}, {"timestamp": None}, 33),
        ({"timestamp": None}, {"sign": None}, 30),
        ({"method": None}, {"v": None}, 21),
        ({"method": "taobao.nope"}, {"session": None}, 22),
        ({"session": None}, {"num_iid": None}, 26),
    ],
)
def test_validation_order(sb, token, first, second, expected):
    params = signed(gateway_params(sb, token, num_iid="1"))
    params.update(first)
    params.update(second)
    params = {k: v for k, v in params.items() if v is not None}
    if "sign" not in first and "sign" not in second:
        params = signed({k: v for k, v in params.items() if k != "sign"})
    assert error(post(sb, params))[0] == expected


def test_bad_signature_before_invalid_method(sb, token):
    params = {**signed(gateway_params(sb, token, "taobao.nope", num_iid="1")), "sign": "0" * 32}
    assert error(post(sb, params))[0] == 25


# --- the business answers ---------------------------------------------------------------------------------


def test_item_video_fields_filter_and_unknown_fields(sb, token):
    num_iid = sb.catalogue.sample("video", 1)[0]
    item = sb.catalogue.item(num_iid)
    fields = "width,height,bogus,duration"
    body = post(sb, signed(gateway_params(sb, token, num_iid=str(num_iid), fields=fields)))
    video = body["item_video_response"]["video"]
    assert video == {"width": item.width, "height": item.height, "duration": round(item.duration_s * 1000)}


def test_item_video_without_video(sb, token):
    num_iid = sb.catalogue.sample("no_video", 1)[0]
    body = post(sb, signed(gateway_params(sb, token, num_iid=str(num_iid))))
    assert list(body) == ["item_video_response"]
    assert list(body["item_video_response"]) == ["request_id"]


@pytest.mark.parametrize("method", ["taobao.item_video", "taobao.item.get"])
def test_not_found_and_deleted(sb, token, method):
    missing, deleted = sb.catalogue.sample("not_found", 1)[0], sb.catalogue.sample("deleted", 1)[0]
    body = post(sb, signed(gateway_params(sb, token, method, num_iid=str(missing), fields="num_iid")))
    assert error(body) == (15, "isv.item-get-service-error:ITEM_NOT_FOUND")
    assert body["error_response"]["msg"] == "Remote service error"
    assert body["error_response"]["sub_msg"] == "该商品不存在"
    body = post(sb, signed(gateway_params(sb, token, method, num_iid=str(deleted), fields="num_iid")))
    assert error(body) == (15, "isv.item-is-delete:invalid-numIid")


def test_item_get_videos_and_mpic(sb, token):
    ids = sb.catalogue.sample("video", 40)
    mpic = next(i for i in ids if sb.catalogue.item(i).mpic)
    plain = next(i for i in ids if not sb.catalogue.item(i).mpic)
    fields = "num_iid,title,pic_url,video,mpic_video"
    item = post(sb, signed(gateway_params(sb, token, "taobao.item.get", num_iid=str(mpic), fields=fields)))
    got = item["item_get_response"]["item"]
    facts = sb.catalogue.item(mpic)
    assert got["num_iid"] == mpic and isinstance(got["num_iid"], int)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in got["title"])
    assert got["pic_url"].startswith(sb.url)
    (video,) = got["videos"]["video"]
    assert set(video) == {"id", "video_id", "url", "num_iid", "created", "modified"}
    assert video["video_id"] == facts.video_id and video["num_iid"] == mpic
    assert got["mpic_video"] == {
        "video_id": facts.video_id,
        "video_pic": f"{sb.url}/cdn/cover/{facts.video_id}.jpg",
        "video_duaration": round(facts.duration_s),
        "video_status": 1,
        "num_iid": mpic,
    }
    got = post(sb, signed(gateway_params(sb, token, "taobao.item.get", num_iid=str(plain), fields=fields)))
    assert "mpic_video" not in got["item_get_response"]["item"]
    assert "videos" in got["item_get_response"]["item"]


def test_item_get_video_only_when_asked(sb, token):
    num_iid = str(sb.catalogue.sample("video", 1)[0])
    got = post(sb, signed(gateway_params(sb, token, "taobao.item.get", num_iid=num_iid, fields="num_iid,title")))
    assert set(got["item_get_response"]["item"]) == {"num_iid", "title"}
    got = post(sb, signed(gateway_params(sb, token, "taobao.item.get", num_iid=num_iid, fields="video.url")))
    assert "videos" in got["item_get_response"]["item"]


def test_item_get_no_video_item_lacks_video_fields(sb, token):
    num_iid = str(sb.catalogue.sample("no_video", 1)[0])
    fields = "num_iid,title,pic_url,video,mpic_video"
    got = post(sb, signed(gateway_params(sb, token, "taobao.item.get", num_iid=num_iid, fields=fields)))
    assert set(got["item_get_response"]["item"]) == {"num_iid", "title", "pic_url"}


def test_simplify(sb, token):
    num_iid = str(sb.catalogue.sample("video", 1)[0])
    got = post(
        sb,
        signed(gateway_params(sb, token, "taobao.item.get", num_iid=num_iid, fields="num_iid,video", simplify="true")),
    )
    assert set(got) == {"item", "request_id"}
    assert isinstance(got["item"]["videos"], list) and got["item"]["videos"][0]["num_iid"] == int(num_iid)
    got = post(sb, signed(gateway_params(sb, token, num_iid=num_iid, simplify="true")))
    assert set(got) == {"video", "request_id"}
    err = post(sb, signed(gateway_params(sb, token, num_iid="abc", simplify="true")))
    assert error(err) == (41, None)


def test_get_and_query_string_merge(sb, token):
    num_iid = str(sb.catalogue.sample("video", 1)[0])
    params = signed(gateway_params(sb, token, num_iid=num_iid))
    response = requests.get(sb.gateway_url, params=params, timeout=10)
    assert "item_video_response" in response.json()
    system = {k: params[k] for k in ("method", "app_key", "v", "sign_method", "timestamp", "format", "sign")}
    business = {k: v for k, v in params.items() if k not in system}
    merged = requests.post(sb.gateway_url, params=system, data=business, timeout=10).json()
    assert "item_video_response" in merged


@pytest.mark.parametrize("verb", ["PUT", "DELETE", "PATCH"])
def test_other_verbs_give_9(sb, verb):
    body = requests.request(verb, sb.gateway_url + "?format=json", timeout=10).json()
    assert error(body) == (9, None)
    assert body["error_response"]["msg"] == "Http Action Not Allowed"


def test_non_utf8_body_gives_47(sb):
    response = requests.post(
        sb.gateway_url + "?format=json",
        data=b"app_key=test&nicks=%C4%E3%BA%C3",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert error(response.json())[0] == 47


def test_xml_when_format_absent(sb, token):
    params = gateway_params(sb, token, num_iid=str(sb.catalogue.sample("video", 1)[0]))
    del params["format"]
    response = requests.post(sb.gateway_url, data=signed(params), timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/xml")
    assert "<item_video_response><video><url>" in response.text
    response = requests.post(sb.gateway_url, data={"app_key": "nope"}, timeout=10)
    assert "<error_response><code>29</code>" in response.text


def test_num_iid_as_json_number_and_leading_zeros(sb, token):
    num_iid = sb.catalogue.sample("video", 1)[0]
    got = post(sb, signed(gateway_params(sb, token, "taobao.item.get", num_iid=f"0{num_iid}", fields="num_iid")))
    assert got["item_get_response"]["item"]["num_iid"] == num_iid


def test_signed_urls_carry_an_expiry(sb, token):
    ids = sb.catalogue.sample("video", 40)
    signed_id = next(i for i in ids if sb.catalogue.item(i).url_style == "signed")
    url = post(sb, signed(gateway_params(sb, token, num_iid=str(signed_id))))["item_video_response"]["video"]["url"]
    expiry = int(url.split("auth_key=")[1].split("-")[0])
    assert expiry == int(sb.now().timestamp()) + 3600


def test_request_ids_are_distinct_and_deterministic(clock):
    def ids() -> list[str]:
        with Sandbox(SandboxConfig(seed=3, clock=clock.now)) as sb:
            return [post(sb, {"app_key": "x", "format": "json"})["error_response"]["request_id"] for _ in range(5)]

    first = ids()
    assert len(set(first)) == 5 and first == ids()


def test_stats_count_gateway_calls(sb, token):
    num_iid = sb.catalogue.sample("video", 1)[0]
    post(sb, signed(gateway_params(sb, token, num_iid=str(num_iid))))
    post(sb, signed(gateway_params(sb, token, num_iid=str(num_iid), sign_method="hmac")))
    post(sb, {**signed(gateway_params(sb, token, num_iid=str(num_iid))), "sign": "X"})
    stats = sb.stats()["gateway"]
    assert stats["calls"] == 3
    assert stats["by_method"] == {"taobao.item_video": 3}
    assert stats["by_item"] == {str(num_iid): 3}
    assert stats["by_app"] == {"test": 3}
    assert stats["by_outcome"] == {"ok": 2, "error:25": 1}
    assert json.loads(requests.get(sb.url + "/_sandbox/stats", timeout=10).text)["gateway"] == stats
    sb.reset_stats()
    assert sb.stats()["gateway"]["calls"] == 0
