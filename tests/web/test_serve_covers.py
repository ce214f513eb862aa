"""`serve`'s covers: ``/covers/<id>.<ext>`` serves the cover on disk that the row names, nothing else; the API
rows say where (``cover_src``); the page's policy allows images from the server only."""

from __future__ import annotations

import pytest
import requests
from helpers.serve import harvested, served_catalog

from taobao_video.store.catalog import engine_of, open_existing


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with harvested(tmp_path_factory.mktemp("covers"), first=3, second=2, no_video=1) as data:
        with served_catalog(data.settings) as url:
            data.url = url
            yield data


def test_the_api_names_each_local_cover_and_the_server_serves_its_bytes(world):
    page = requests.get(world.url + "/api/videos", timeout=10).json()
    assert len(page["videos"]) == 5
    for record in page["videos"]:
        num_iid = record["num_iid"]
        assert record["cover_src"] == f"/covers/{num_iid}.jpg" and record["cover_path"] == f"covers/{num_iid}.jpg"
        response = requests.get(world.url + record["cover_src"], timeout=10)
        assert response.status_code == 200 and response.headers["Content-Type"] == "image/jpeg"
        assert response.content == world.sandbox.catalogue.cover(num_iid)
        again = requests.get(
            world.url + record["cover_src"], headers={"If-None-Match": response.headers["ETag"]}, timeout=10
        )
        assert again.status_code == 304


def test_only_the_cover_a_row_names_inside_the_covers_folder_is_served(world):
    num_iid = min(world.rows)
    assert requests.get(f"{world.url}/covers/{num_iid}.png", timeout=10).status_code == 404  # not its extension
    assert requests.get(f"{world.url}/covers/1.jpg", timeout=10).status_code == 404  # no such video
    assert requests.get(f"{world.url}/covers/{num_iid}.gif", timeout=10).status_code == 404  # no such route
    url = world.settings.database.url
    catalog = open_existing(url)
    try:
        with engine_of(catalog).begin() as connection:
            connection.exec_driver_sql(
                "UPDATE videos SET cover_path = '../settings.toml.jpg' WHERE num_iid = ?", (num_iid,)
            )
        (world.settings.base_dir / "settings.toml.jpg").write_bytes(b"secret")
        response = requests.get(f"{world.url}/covers/{num_iid}.jpg", timeout=10)
        assert response.status_code == 404 and "not in the covers folder" in response.json()["error"]
        with engine_of(catalog).begin() as connection:
            connection.exec_driver_sql(
                f"UPDATE videos SET cover_path = 'covers/{num_iid}.jpg' WHERE num_iid = ?", (num_iid,)
            )
        (world.settings.base_dir / "covers" / f"{num_iid}.jpg").unlink()
        response = requests.get(f"{world.url}/covers/{num_iid}.jpg", timeout=10)
        assert response.status_code == 404 and "see `catalog verify`" in response.json()["error"]
    finally:
        catalog.close()


def test_the_page_may_load_images_from_this_server_only(world):
    policy = requests.get(world.url + "/", timeout=10).headers["Content-Security-Policy"]
    assert "img-src 'self' data:;" in policy and "https:" not in policy and "http:" not in policy
