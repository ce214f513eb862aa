"""catalog verify --fix: a video whose file and cover are both gone is fixed (its row goes, the item is requeued
and the next run fetches both), yet the report counts its cover as a bad file left unfixed: exit 1."""

from __future__ import annotations

import shutil

from helpers.harvest import harvest, log_in, opened, sandbox_settings

from conftest import make_sandbox
from taobao_video.jobs.verify import verify
from taobao_video.model import ItemState


def test_verify_fix_of_a_lost_video_and_its_cover_ends_all_fixed(clock, tmp_path):
    with make_sandbox(clock, daily_limit=1000, video_bytes=(40_000, 80_000)) as sb:
        settings = sandbox_settings(sb, tmp_path)
        log_in(sb, settings, clock)
        num_iid = next(i for i in sb.catalogue.sample("video", 40) if sb.catalogue.item(i).mpic)
        report, _ = harvest(settings, clock, [num_iid])
        assert report.downloaded == 1
        with opened(settings) as catalog:
            assert catalog.video(num_iid).cover_path  # a video with its cover
        shutil.rmtree(tmp_path / "videos")  # the disk holding videos and covers was lost
        shutil.rmtree(tmp_path / "covers")
        with opened(settings) as catalog:
            result = verify(catalog, settings.base_dir, fix=True, now=clock.now)
            assert catalog.item(num_iid).state == ItemState.RESOLVED  # fixed: downloaded again by the next run
        assert result.exit_code == 0, result.as_dict()
