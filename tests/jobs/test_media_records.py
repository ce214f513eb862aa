"""What a harvest keeps beside each video, against the sandbox: the probe's columns, the cover on disk (or why
not), covers retried by the next run without a call, and the product facts in the rows and the item events."""

from __future__ import annotations

from fractions import Fraction

import pytest
from helpers.harvest import harvest, log_in, opened, sandbox_settings

from conftest import make_sandbox
from taobao_video.fetch.probe import probe
from taobao_video.model import ItemState
from taobao_video.sandbox import Fault
from taobao_video.store.catalog import engine_of
from taobao_video.store.covers import missing_covers


@pytest.fixture
def world(clock, tmp_path):
    with make_sandbox(clock, daily_limit=1000, video_bytes=(40_000, 120_000)) as sb:
        settings = sandbox_settings(sb, tmp_path, download={"retries": 1})
        log_in(sb, settings, clock)
        yield sb, settings


def test_each_video_gets_its_probe_columns_its_cover_and_its_facts(world, clock, tmp_path):
    sb, _ = world
    # item.get is the lookup that states the title, the seller's nick and the video_id
    settings = sandbox_settings(sb, tmp_path, taobao={"api_method": "taobao.item.get"})
    ids = sb.catalogue.sample("video", 8)
    report, events = harvest(settings, clock, ids)
    assert report.downloaded == 8 and report.api_calls == 8
    with opened(settings) as catalog:
        rows = catalog.videos(ids)
    for num_iid in ids:
        row, item = rows[num_iid], sb.catalogue.item(num_iid)
        info = probe(settings.base_dir / row.video_path)
        assert (row.codec, row.bitrate, row.fps, row.has_audio) == ("h264", info.bitrate, info.fps, False)
        assert row.container == "mov,mp4,m4a,3gp,3g2,mj2" and row.fps == round(float(Fraction(info.fps)), 3)
        assert row.cover_error is None
        if not item.mpic:  # item.get states a cover only for a main-picture video
            assert (row.cover_url, row.cover_path, row.cover_width) == (None, None, None)
        else:
            assert row.cover_path == f"covers/{num_iid}.jpg"
            assert (settings.base_dir / row.cover_path).read_bytes() == sb.catalogue.cover(num_iid)
            assert (row.cover_width, row.cover_height) == (item.width, item.height)
        assert (row.title, row.nick, row.video_id) == (item.title, item.nick, str(item.video_id))
    done = {e["num_iid"]: e for e in events if e["event"] == "item"}
    for num_iid in ids:
        assert done[num_iid]["title"] == sb.catalogue.item(num_iid).title
        assert done[num_iid]["nick"] == sb.catalogue.item(num_iid).nick
        assert done[num_iid]["video_id"] == str(sb.catalogue.item(num_iid).video_id)
        assert done[num_iid].get("cover_path") == (f"covers/{num_iid}.jpg" if sb.catalogue.item(num_iid).mpic else None)
    assert any(not sb.catalogue.item(i).mpic for i in ids) and any(sb.catalogue.item(i).mpic for i in ids)
    assert not list((settings.base_dir / "covers").glob("*.part"))


@pytest.mark.parametrize("kind", ["http_500", "html_200", "truncate"])
def test_a_cover_failure_leaves_the_video_done_and_the_next_run_fetches_it_without_a_call(world, clock, kind):
    sb, settings = world
    ids = sb.catalogue.sample("video", 3)
    broken = ids[1]
    sb.set_faults([Fault(kind, target="cover", num_iid=broken)])
    report, events = harvest(settings, clock, ids)
    assert report.downloaded == 3 and report.failed == 0 and report.exit_code == 0
    with opened(settings) as catalog:
        row = catalog.video(broken)
        assert catalog.item(broken).state == ItemState.DONE
    assert row.cover_path is None and row.cover_error
    assert not (settings.base_dir / "covers" / f"{broken}.jpg").exists()
    assert not list((settings.base_dir / "covers").glob("*.part"))
    pictures, videos = sb.stats()["pictures"]["requests"], sb.stats()["cdn"]["requests"]

    sb.set_faults([])
    calls = sb.stats()["gateway"]["calls"]
    report, events = harvest(settings, clock, ids)
    assert report.skipped == 3 and report.api_calls == 0 and sb.stats()["gateway"]["calls"] == calls
    assert [e for e in events if e["event"] == "cover"] == [
        {
            "event": "cover",
            "num_iid": broken,
            "outcome": "downloaded",
            "cover_path": f"covers/{broken}.jpg",
            "cover_width": sb.catalogue.item(broken).width,
            "cover_height": sb.catalogue.item(broken).height,
        }
    ]
    assert sb.stats()["pictures"]["requests"] == pictures + 1  # the one cover, nothing else
    assert sb.stats()["cdn"]["requests"] == videos
    with opened(settings) as catalog:
        row = catalog.video(broken)
    assert row.cover_path == f"covers/{broken}.jpg" and row.cover_error is None
    assert (settings.base_dir / row.cover_path).read_bytes() == sb.catalogue.cover(broken)


def test_a_cover_host_outside_the_allowlist_is_refused_and_the_video_kept(world, clock, tmp_path):
    sb, _ = world
    settings = sandbox_settings(sb, tmp_path, download={"allowed_hosts": ["127.0.0.1"]})
    num_iid = sb.catalogue.sample("video", 1)[0]
    report, _ = harvest(settings, clock, [num_iid])
    assert report.downloaded == 1
    with opened(settings) as catalog:  # as if the API had named a cover elsewhere
        engine = engine_of(catalog)
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "UPDATE videos SET cover_url = 'https://evil.example.com/x.jpg', cover_path = NULL WHERE num_iid = ?",
                (num_iid,),
            )
        assert missing_covers(catalog, limit=10) == [(num_iid, "https://evil.example.com/x.jpg")]
    report, events = harvest(settings, clock, [num_iid])
    cover = next(e for e in events if e["event"] == "cover")
    assert cover["outcome"] == "failed" and "not in allowed_hosts" in cover["cover_error"]
    with opened(settings) as catalog:
        assert catalog.item(num_iid).state == ItemState.DONE
        assert catalog.video(num_iid).cover_error == cover["cover_error"]
