"""The seller provider against the sandbox's seller channel: exact call counts from the platform's own stats, over
quota days, with the ledger equal to the platform's count (issue 13)."""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from helpers.harvest import harvest, opened, sandbox_settings

from conftest import APP_KEY, Sleeps, make_sandbox
from taobao_video import wiring
from taobao_video.jobs.daily import run_daily
from taobao_video.sandbox import FakeClock, Fault, Sandbox
from taobao_video.top.tokens import Token, TokenStore

BEIJING = ZoneInfo("Asia/Shanghai")
LIST, QUERY = "taobao.items.seller.list.get", "alibaba.video.query"
SHOP, OTHER = "沙箱小店", "隔壁小店"


def seller_settings(sb: Sandbox, base: Path, clock: FakeClock, daily_limit: int, **taobao: object):
    settings = sandbox_settings(sb, base, taobao={"provider": "seller", **taobao}, quota={"daily_limit": daily_limit})
    body = sb.issue_token(app_key=APP_KEY, user_nick=SHOP)  # the seller's session: the shop authorised the app
    TokenStore(settings.taobao.token_file).save(Token.from_response(body, now=clock.now(), grant="authorization_code"))
    return settings


def next_day(clock: FakeClock) -> None:
    tomorrow = clock.now().astimezone(BEIJING).date() + timedelta(days=1)
    clock.set(datetime.combine(tomorrow, datetime.min.time(), BEIJING) + timedelta(hours=1))


def states(base: Path) -> dict[str, int]:
    db = sqlite3.connect(base / "catalog.sqlite3")
    try:
        return dict(db.execute("SELECT state, COUNT(*) FROM items GROUP BY state").fetchall())
    finally:
        db.close()


def ledger_days(base: Path) -> dict[str, int]:
    db = sqlite3.connect(base / "catalog.sqlite3")
    try:
        return dict(db.execute("SELECT day, used FROM quota_days WHERE app_key = ?", (APP_KEY,)).fetchall())
    finally:
        db.close()


def test_a_shop_of_130_ids_costs_77_calls_over_four_quota_days(clock, tmp_path):
    probe = make_sandbox(clock).catalogue  # the catalogue is a function of the seed: pick the ids first
    own_video = probe.sample("video", 160)[:70]
    other_shop = probe.sample("video", 160)[70:100]
    own_plain = probe.sample("no_video", 20)
    unknown = probe.sample("not_found", 10)
    ids = own_video + own_plain + unknown + other_shop
    random.Random(13).shuffle(ids)
    shops = {SHOP: tuple(own_video + own_plain), OTHER: tuple(other_shop)}
    with make_sandbox(clock, daily_limit=20, shops=shops, video_bytes=(6_000, 9_000)) as sb:
        settings = seller_settings(sb, tmp_path, clock, daily_limit=20)
        codes, used = [], []
        for day in range(4):
            if day:
                next_day(clock)
            report, _ = harvest(settings, clock, ids)
            codes.append(report.exit_code)
            used.append(sb.quota_used(APP_KEY))
            assert report.api_calls == used[-1]  # the run's count is the platform's
        stats = sb.stats()["gateway"]
        assert codes == [75, 75, 75, 0]
        assert stats["by_method"] == {LIST: 7, QUERY: 70} and stats["calls"] == 77
        assert set(stats["by_outcome"]) == {"ok"}  # no list call was refused (more than 20 ids is code 41)
        assert used == [20, 20, 20, 17]
        assert sorted(ledger_days(tmp_path).values()) == sorted(used)  # the ledger equals the platform, day by day
        assert states(tmp_path) == {"done": 70, "no_video": 20, "not_visible": 40}
        last = report  # the fourth day: what it did plus what earlier days did, nothing deferred
        assert last.skipped + last.downloaded + last.no_video + last.not_visible == 130 and last.deferred == 0


def test_not_visible_is_counted_apart_and_not_asked_again(clock, tmp_path):
    probe = make_sandbox(clock).catalogue
    own, other = probe.sample("video", 3), probe.sample("no_video", 2)
    unknown = probe.sample("deleted", 1)
    with make_sandbox(clock, shops={SHOP: tuple(own), OTHER: tuple(other)}, video_bytes=(6_000, 9_000)) as sb:
        settings = seller_settings(sb, tmp_path, clock, daily_limit=100)
        report, events = harvest(settings, clock, own + other + unknown)
        assert (report.downloaded, report.not_visible, report.not_found) == (3, 3, 0)
        assert report.exit_code == 0
        item_events = {e["num_iid"]: e["outcome"] for e in events if e["event"] == "item"}
        assert {item_events[i] for i in other + unknown} == {"not_visible"}
        calls = sb.stats()["gateway"]["calls"]
        assert calls == 1 + 3  # one list call for six ids, one query per video
        again, _ = harvest(settings, clock, own + other + unknown)
        assert sb.stats()["gateway"]["calls"] == calls and again.skipped == 6  # nothing asked again within the TTL


def test_items_sharing_a_video_cost_one_query_and_a_known_video_none(clock, tmp_path):
    probe = make_sandbox(clock).catalogue
    a, b, c, d = probe.sample("video", 4)
    shared = {b: a, c: a}  # a's video backs b and c too
    with make_sandbox(clock, shops={SHOP: (a, b, c, d)}, shared_videos=shared, video_bytes=(6_000, 9_000)) as sb:
        settings = seller_settings(sb, tmp_path, clock, daily_limit=100)
        report, _ = harvest(settings, clock, [a, b])
        assert report.downloaded == 2
        assert sb.stats()["gateway"]["by_method"] == {LIST: 1, QUERY: 1}  # two items, one video, one query
        sb.reset_stats()
        report, _ = harvest(settings, clock, [c, d])  # c's video is in the catalog already: only d's is asked
        assert report.downloaded == 2
        assert sb.stats()["gateway"]["by_method"] == {LIST: 1, QUERY: 1}
        with opened(settings) as catalog:
            videos = catalog.videos([a, b, c, d])
        assert videos[a].video_id == videos[b].video_id == videos[c].video_id != videos[d].video_id
        assert videos[a].sha256 == videos[c].sha256 == sb.video(a).sha256()


def test_seller_video_url_mp4_skips_the_query(clock, tmp_path):
    probe = make_sandbox(clock).catalogue
    own = probe.sample("video", 5)
    with make_sandbox(clock, shops={SHOP: tuple(own)}, seller_url_style="mp4", video_bytes=(6_000, 9_000)) as sb:
        settings = seller_settings(sb, tmp_path, clock, daily_limit=100, seller_video_url="mp4")
        report, _ = harvest(settings, clock, own)
        assert report.downloaded == 5 and sb.stats()["gateway"]["by_method"] == {LIST: 1}


def test_a_batch_the_platform_fails_as_a_whole_is_retried_as_a_whole(clock, tmp_path):
    probe = make_sandbox(clock).catalogue
    own = probe.sample("video", 6)
    faults = [Fault("isp_error", "gateway", times=1, method=LIST)]  # the first list call fails for all six ids
    with make_sandbox(clock, shops={SHOP: tuple(own)}, faults=faults, video_bytes=(6_000, 9_000)) as sb:
        settings = seller_settings(sb, tmp_path, clock, daily_limit=100)
        report, _ = harvest(settings, clock, own)
        stats = sb.stats()["gateway"]
        assert report.downloaded == 6 and report.exit_code == 0
        assert stats["by_method"] == {LIST: 2, QUERY: 6} and stats["by_outcome"] == {"error:15": 1, "ok": 7}
        assert report.api_calls == 8 == sb.quota_used(APP_KEY)  # the failed attempt counted, on both sides


def test_the_simplified_answer_shape_is_read_too(clock, tmp_path):
    probe = make_sandbox(clock).catalogue
    own, plain = probe.sample("video", 2), probe.sample("no_video", 1)
    with make_sandbox(clock, shops={SHOP: (*own, *plain)}, video_bytes=(6_000, 9_000)) as sb:
        settings = seller_settings(sb, tmp_path, clock, daily_limit=100, simplify=True)
        report, _ = harvest(settings, clock, [*own, *plain, probe.sample("not_found", 1)[0]])
        assert (report.downloaded, report.no_video, report.not_visible) == (2, 1, 1)


def test_the_daily_run_plans_ids_from_calls_and_drains_the_shop_in_four_days(clock, tmp_path):
    probe = make_sandbox(clock).catalogue
    own_video, own_plain = probe.sample("video", 70), probe.sample("no_video", 20)
    strangers = probe.sample("not_found", 10)
    ids = own_video + own_plain + strangers
    random.Random(5).shuffle(ids)
    shops = {SHOP: tuple(own_video + own_plain)}
    with make_sandbox(clock, daily_limit=20, shops=shops, video_bytes=(6_000, 9_000)) as sb:
        settings = seller_settings(sb, tmp_path, clock, daily_limit=20)
        with opened(settings) as catalog:
            catalog.enqueue(ids, now=clock.now())
        codes, days_left, plans = [], [], []
        for day in range(4):
            if day:
                next_day(clock)
            events: list[dict] = []
            with opened(settings) as catalog:
                job = wiring.harvester(settings, catalog, clock=clock.now, sleep=Sleeps(), on_event=events.append)
                report = run_daily(job)
            codes.append(report.exit_code)
            days_left.append(report.days_left)
            plans.append(next(e for e in events if e["event"] == "plan")["lookups"])
        stats = sb.stats()["gateway"]
        assert codes == [75, 75, 75, 0]
        assert stats["by_method"] == {LIST: 5, QUERY: 70} and sum(stats["by_app"].values()) == 75
        assert plans[0] == 100  # 20 calls resolve up to 400 ids with the seller: the whole queue is taken
        assert report.as_dict()["ids_per_day"] == 400 and days_left[-1] == 0
        assert states(tmp_path) == {"done": 70, "no_video": 20, "not_visible": 10}
        assert sorted(ledger_days(tmp_path).values()) == sorted(sb.stats()["quota"][APP_KEY].values())
