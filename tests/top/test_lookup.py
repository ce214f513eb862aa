"""Video lookup against the sandbox: both APIs into one record, outcomes, and the auto fallback."""

from __future__ import annotations

import pytest

from conftest import client_for, logged_in, make_sandbox
from taobao_video import errors as E
from taobao_video.top.lookup import ITEM_GET, ITEM_VIDEO, ItemLookup


def by_method(sb) -> dict:
    return sb.stats()["gateway"]["by_method"]


@pytest.mark.parametrize("simplify", [False, True])
def test_item_video_gives_the_catalogue_facts(sandbox, clock, tokens, sleeps, simplify):
    lookup = ItemLookup(client_for(sandbox, clock, tokens, sleeps, simplify=simplify), api_method=ITEM_VIDEO)
    for num_iid in sandbox.catalogue.sample("video", 5):
        item = sandbox.catalogue.item(num_iid)
        result = lookup.lookup(num_iid)
        assert result.outcome == "video" and result.api_method == ITEM_VIDEO and result.request_id
        video = result.video
        assert video.num_iid == num_iid
        assert video.duration == pytest.approx(item.duration_s, abs=0.001)
        assert (video.width, video.height) == (item.width, item.height)
        assert video.url.endswith(".mp4") or ".mp4?" in video.url
        assert video.cover_url


@pytest.mark.parametrize("simplify", [False, True])
def test_item_get_gives_url_and_mpic_duration(sandbox, clock, tokens, sleeps, simplify):
    lookup = ItemLookup(client_for(sandbox, clock, tokens, sleeps, simplify=simplify), api_method=ITEM_GET)
    seen_with, seen_without = 0, 0
    for num_iid in sandbox.catalogue.sample("video", 20):
        item = sandbox.catalogue.item(num_iid)
        result = lookup.lookup(num_iid)
        assert result.outcome == "video" and result.api_method == ITEM_GET
        if item.mpic:
            seen_with += 1
            assert result.video.duration == pytest.approx(round(item.duration_s), abs=1)
            assert result.video.cover_url
        else:
            seen_without += 1
            assert result.video.duration is None
    assert seen_with and seen_without


@pytest.mark.parametrize("method", [ITEM_VIDEO, ITEM_GET])
@pytest.mark.parametrize(
    ("kind", "outcome"), [("no_video", "no_video"), ("not_found", "not_found"), ("deleted", "not_found")]
)
def test_items_without_video_are_outcomes_not_errors(sandbox, client, method, kind, outcome):
    lookup = ItemLookup(client, api_method=method)
    for num_iid in sandbox.catalogue.sample(kind, 3):
        result = lookup.lookup(num_iid)
        assert result.outcome == outcome and result.video is None
        if outcome == "not_found":
            assert result.detail.startswith("isv.item")


def test_auto_falls_back_to_item_get_once_and_remembers(clock, tmp_path, sleeps):
    with make_sandbox(clock, methods=frozenset({ITEM_GET})) as sb:
        lookup = ItemLookup(client_for(sb, clock, logged_in(sb, clock, tmp_path), sleeps), api_method="auto")
        ids = sb.catalogue.sample("video", 4)
        results = [lookup.lookup(num_iid) for num_iid in ids]
        assert [r.outcome for r in results] == ["video"] * 4
        assert all(r.api_method == ITEM_GET for r in results)
        assert lookup.method == ITEM_GET
        assert by_method(sb) == {ITEM_VIDEO: 1, ITEM_GET: 4}


def test_auto_falls_back_when_the_platform_has_no_item_video_api(clock, tmp_path, sleeps):
    with make_sandbox(clock, item_video_api=False) as sb:
        lookup = ItemLookup(client_for(sb, clock, logged_in(sb, clock, tmp_path), sleeps), api_method="auto")
        assert lookup.lookup(sb.catalogue.sample("video", 1)[0]).outcome == "video"
        assert by_method(sb) == {ITEM_VIDEO: 1, ITEM_GET: 1}


def test_a_fixed_method_does_not_fall_back(clock, tmp_path, sleeps):
    with make_sandbox(clock, methods=frozenset({ITEM_GET})) as sb:
        lookup = ItemLookup(client_for(sb, clock, logged_in(sb, clock, tmp_path), sleeps), api_method=ITEM_VIDEO)
        with pytest.raises(E.MethodUnavailable) as caught:
            lookup.lookup(sb.catalogue.sample("video", 1)[0])
        assert caught.value.code == 11


def test_duration_unit_seconds(sandbox, client):
    num_iid = sandbox.catalogue.sample("video", 1)[0]
    in_ms = ItemLookup(client, api_method=ITEM_VIDEO).lookup(num_iid).video.duration
    in_s = ItemLookup(client, api_method=ITEM_VIDEO, duration_unit="s").lookup(num_iid).video.duration
    assert in_s == pytest.approx(in_ms * 1000)


class Canned:
    """A caller that answers with a fixed payload: for shapes the sandbox does not produce."""

    def __init__(self, payload):
        self.payload = payload

    def call(self, method, params):
        return self.payload


@pytest.mark.parametrize(
    ("payload", "outcome", "duration"),
    [
        ({"video": [{"url": "http://x/a.mp4", "duration": "12000"}]}, "video", 12.0),
        ({"video": {"url": "", "duration": 5}}, "no_video", None),
        ({"video": {"url": "http://x/a.mp4", "duration": 0}}, "video", None),
        ({"video": {"url": "http://x/a.mp4", "duration": "n/a"}}, "video", None),
        ({"video": None}, "no_video", None),
    ],
)
def test_item_video_odd_shapes(payload, outcome, duration):
    result = ItemLookup(Canned(payload), api_method=ITEM_VIDEO).lookup(1)
    assert result.outcome == outcome
    assert (result.video.duration if result.video else None) == duration


def test_item_get_odd_shapes():
    single = {"item": {"videos": {"video": {"url": "http://x/b.mp4"}}, "mpic_video": {"video_duration": 9}}}
    assert ItemLookup(Canned(single), api_method=ITEM_GET).lookup(1).video.duration == 9
    mpic_only = {"item": {"mpic_video": {"video_id": 1, "video_duaration": 9}}}
    result = ItemLookup(Canned(mpic_only), api_method=ITEM_GET).lookup(1)
    assert result.outcome == "no_video" and "without a playable URL" in result.detail
    with pytest.raises(E.BadResponseError):
        ItemLookup(Canned({"request_id": "x"}), api_method=ITEM_GET).lookup(1)
