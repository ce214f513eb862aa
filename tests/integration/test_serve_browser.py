"""The `serve` page in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium).

It lists a harvested sandbox catalog, the duration filter and the id search narrow the list, the player streams
the MP4 until its ``duration`` is the file's and ``currentTime`` advances, the covers shown are the ones on disk
(every request the page makes goes to the local server, none to the CDN), and thumbnails fall back to a frame of
the local video when the cover file is gone. Screenshots land in the test's tmp_path. Skipped when the browser
is not installed, except under CI (`.ci/run`), where that is a failure.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from helpers.serve import harvested, served_catalog
from mutagen.mp4 import MP4

from conftest import IN_CI

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Without the background-networking flags Chromium keeps calling Google services, which this closed network refuses.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)

WAIT_S = 30


def _browser_or_skip(profile: Path):
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        reason = f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver)"
        if IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)  # with an explicit driver too, Selenium Manager never downloads
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with harvested(tmp_path_factory.mktemp("browse")) as data, served_catalog(data.settings) as url:
        data.url = url
        yield data


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = _browser_or_skip(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


def wait(browser, condition, message):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT_S, poll_frequency=0.1).until(lambda _: condition(), message=message)


def shown_ids(browser) -> list[int]:
    """The ids of the cards on the page, read in one step (the grid is replaced whole on every answer)."""
    script = "return [...document.querySelectorAll('article.card')].map(card => card.dataset.id)"
    return [int(text) for text in browser.execute_script(script)]


def requested_urls(browser) -> list[str]:
    """Every network URL (http, https, ws) the browser asked for since the last call (Chromium's performance log:
    Network events); ``chrome://`` resources of the browser itself are not the network."""
    import json

    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if urlsplit(url).scheme not in ("chrome", "data", "blob", "about"):
                urls.append(url)
    return urls


def errors_in_console(browser) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def type_into(browser, element_id: str, text: str) -> None:
    field = browser.find_element("id", element_id)
    field.clear()
    field.send_keys(text)


def between(values, low_index: int, high_index: int) -> tuple[float, float]:
    """Two thresholds halfway between sorted distinct values, so no value sits on an edge."""
    ordered = sorted(set(values))
    return (
        round((ordered[low_index] + ordered[low_index + 1]) / 2, 2),
        round((ordered[high_index] + ordered[high_index - 1]) / 2, 2),
    )


def test_the_page_lists_the_catalog(world, browser, tmp_path):
    requested_urls(browser)  # drain what the browser asked before (its own start page)
    browser.get(world.url + "/")
    wait(browser, lambda: len(shown_ids(browser)) == 14, "the 14 videos never appeared")
    newest_first = sorted(world.rows, key=lambda i: (world.rows[i].downloaded_at, i), reverse=True)
    assert shown_ids(browser) == newest_first  # the default order: date downloaded, newest first
    assert browser.find_element("id", "summary").text.startswith("14 videos")
    assert browser.find_element("id", "range").text == "1–14 of 14"
    loaded = "return [...document.querySelectorAll('.thumb img')].filter(i => i.complete && i.naturalWidth > 0)"
    wait(browser, lambda: len(browser.execute_script(loaded)) == 14, "the covers (from disk) did not all load")
    sizes = browser.execute_script(loaded + ".map(i => [i.src, i.naturalWidth, i.naturalHeight])")
    for src, width, height in sizes:
        num_iid = int(src.rsplit("/", 1)[1].split(".")[0])
        assert src == f"{world.url}/covers/{num_iid}.jpg"
        assert (width, height) == (world.rows[num_iid].cover_width, world.rows[num_iid].cover_height) != (None, None)
    browser.save_screenshot(str(tmp_path / "grid.png"))
    asked = requested_urls(browser)
    assert any("/covers/" in url for url in asked)
    assert [url for url in asked if not url.startswith(world.url + "/")] == []  # nothing from the CDN or beyond
    assert all(urlsplit(url).hostname == "127.0.0.1" for url in asked)
    assert errors_in_console(browser) == []


def test_the_duration_filter_narrows_the_list(world, browser):
    browser.get(world.url + "/")
    wait(browser, lambda: len(shown_ids(browser)) == 14, "the list never appeared")
    low, high = between([row.duration for row in world.rows.values()], 2, -3)
    expected = {i for i, row in world.rows.items() if low <= row.duration <= high}
    assert 0 < len(expected) < 14
    type_into(browser, "min_duration", str(low))
    type_into(browser, "max_duration", str(high))
    wait(browser, lambda: set(shown_ids(browser)) == expected, f"the list never narrowed to {sorted(expected)}")
    assert browser.find_element("id", "range").text == f"1–{len(expected)} of {len(expected)}"
    assert f"min_duration={low}" in browser.current_url  # the filters are in the URL, so a reload keeps them
    browser.refresh()
    wait(browser, lambda: set(shown_ids(browser)) == expected, "the filters did not survive a reload")
    browser.find_element("id", "clear").click()
    wait(browser, lambda: len(shown_ids(browser)) == 14, "Clear did not bring every video back")


def test_the_id_search_narrows_the_list(world, browser):
    browser.get(world.url + "/")
    wait(browser, lambda: len(shown_ids(browser)) == 14, "the list never appeared")
    prefix = str(max(world.rows))[:-1]
    expected = {i for i in world.rows if str(i).startswith(prefix)}
    assert 0 < len(expected) < 14
    type_into(browser, "q", prefix)
    wait(browser, lambda: set(shown_ids(browser)) == expected, f"the search never narrowed to {sorted(expected)}")
    one = min(expected)
    type_into(browser, "q", str(one))
    wait(browser, lambda: shown_ids(browser) == [one], f"searching {one} did not show it alone")
    type_into(browser, "q", "9")
    wait(browser, lambda: "No videos match" in browser.find_element("id", "grid").text, "no empty-state message")
    type_into(browser, "q", "x1")
    wait(browser, lambda: "q: must be the first digits" in browser.find_element("id", "message").text,
         "a bad search did not show the API's message")  # fmt: skip
    assert [line for line in errors_in_console(browser) if "/api/videos?q=x1&" not in line] == []


def test_the_player_streams_the_video(world, browser, tmp_path):
    browser.get(world.url + "/")
    wait(browser, lambda: len(shown_ids(browser)) == 14, "the list never appeared")
    num_iid = max(world.rows, key=lambda i: world.rows[i].duration)
    file_duration = MP4(world.path(num_iid)).info.length
    browser.find_element("css selector", f'article.card[data-id="{num_iid}"] .thumb').click()
    video = browser.find_element("id", "video")
    assert browser.find_element("id", "player-title").text == str(num_iid)
    wait(
        browser,
        lambda: abs((browser.execute_script("return arguments[0].duration", video) or 0) - file_duration) <= 0.1,
        f"the player's duration never became the file's {file_duration:.3f} s",
    )
    assert browser.execute_script("return arguments[0].currentSrc", video).endswith(f"/videos/{num_iid}.mp4")
    start = browser.execute_script("return arguments[0].currentTime", video)
    wait(browser, lambda: browser.execute_script("return arguments[0].currentTime", video) > start + 0.5,
         "the video does not play (currentTime does not advance)")  # fmt: skip
    assert browser.execute_script("return arguments[0].error", video) is None
    browser.save_screenshot(str(tmp_path / "player.png"))
    # Seeking asks the server for a range further in; playback carries on from there.
    browser.execute_script("arguments[0].currentTime = arguments[0].duration - 3", video)
    wait(browser, lambda: browser.execute_script("return arguments[0].currentTime", video) >= file_duration - 3,
         "seeking failed")  # fmt: skip
    browser.find_element("id", "close").click()
    wait(browser, lambda: not browser.execute_script("return document.getElementById('player').open"),
         "the player did not close")  # fmt: skip
    assert errors_in_console(browser) == []


def test_thumbnails_fall_back_to_a_frame_of_the_video(world, browser, tmp_path):
    world.sandbox.stop()  # the CDN is gone, which the page never needed (the last test of the module)
    for row in world.rows.values():  # and so are the covers on disk: every cover fails to load
        (world.settings.base_dir / row.cover_path).unlink()
    browser.execute_cdp_cmd("Network.clearBrowserCache", {})
    browser.get(world.url + "/")
    wait(browser, lambda: len(shown_ids(browser)) == 14, "the list never appeared")
    wait(browser, lambda: browser.execute_script(
        "return [...document.querySelectorAll('.thumb video')].filter(v => v.readyState >= 2).length"
    ) >= 10, "no video frame replaced the covers")  # fmt: skip
    assert browser.execute_script("return document.querySelectorAll('.thumb img').length") == 0
    browser.save_screenshot(str(tmp_path / "frames.png"))
    missing = errors_in_console(browser)
    assert missing and all("/covers/" in line and "404" in line for line in missing)
