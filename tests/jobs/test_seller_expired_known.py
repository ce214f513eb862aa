"""Seller channel: a video known by video_id whose stored signed URL has expired gets a 403; the fresh lookup
after it returns a new signed URL, so the item is downloaded in that same run."""

from __future__ import annotations

from helpers.harvest import harvest, opened, sandbox_settings

from conftest import APP_KEY, Sleeps, make_sandbox
from taobao_video import wiring
from taobao_video.jobs.plan import record_lookup
from taobao_video.top.providers.base import no_pace
from taobao_video.top.tokens import Token, TokenStore

SHOP = "沙箱小店"


def test_seller_relookup_after_403_gets_a_fresh_url_for_a_video_known_by_id(clock, tmp_path):
    probe = make_sandbox(clock).catalogue
    a = next(i for i in probe.sample("video", 60) if probe.item(i).url_style == "signed")
    c = next(i for i in probe.sample("video", 60) if i != a)
    with make_sandbox(clock, shops={SHOP: (a, c)}, shared_videos={c: a}, video_bytes=(6_000, 9_000)) as sb:
        settings = sandbox_settings(sb, tmp_path, taobao={"provider": "seller"}, quota={"daily_limit": 100})
        body = sb.issue_token(app_key=APP_KEY, user_nick=SHOP)
        TokenStore(settings.taobao.token_file).save(
            Token.from_response(body, now=clock.now(), grant="authorization_code")
        )
        with opened(settings) as catalog:  # `taobao-video lookup a`: resolved, its signed URL stored for later
            catalog.add_items([a], now=clock.now())
            provider, _, _ = wiring.provider(settings, catalog, clock=clock.now, sleep=Sleeps())
            for result in provider.resolve([a], pace=no_pace):
                record_lookup(catalog, result, now=clock.now())
        clock.advance(sb.config.signed_url_ttl_s + 600)  # later: a's stored URL has expired
        report, events = harvest(settings, clock, [c])  # c shows a's video: 403, a fresh lookup, downloaded
        assert report.downloaded == 1 and report.failed == 0, [e for e in events if e["event"] == "item"]
