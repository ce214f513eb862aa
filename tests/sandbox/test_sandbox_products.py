"""The sandbox catalogue: kinds and facts from the seed, stable samples, reversible video ids."""

from __future__ import annotations

from collections import Counter

import pytest

from taobao_video.fetch.images import ImageInfo, image_info
from taobao_video.sandbox.mp4 import Mp4Video
from taobao_video.sandbox.products import MAX_NUM_IID, PICTURE_SIZES, Catalogue, num_iid_in

BYTES = (64 * 1024, 512 * 1024)


def test_same_seed_same_items_other_seed_other_items():
    a, b, c = Catalogue(7, BYTES), Catalogue(7, BYTES), Catalogue(8, BYTES)
    ids = range(520_000_000_000, 520_000_000_200)
    assert [a.item(i) for i in ids] == [b.item(i) for i in ids]
    assert [a.kind(i) for i in ids] != [c.kind(i) for i in ids]


def test_kind_mix_and_video_facts():
    catalogue = Catalogue(3, BYTES)
    items = [catalogue.item(i) for i in catalogue.sample_mixed(4000)]
    kinds = Counter(item.kind for item in items)
    assert abs(kinds["video"] / 4000 - 0.6) < 0.04 and abs(kinds["no_video"] / 4000 - 0.2) < 0.03
    assert abs(kinds["not_found"] / 4000 - 0.1) < 0.02 and abs(kinds["deleted"] / 4000 - 0.1) < 0.02
    videos = [item for item in items if item.has_video]
    assert abs(sum(v.url_style == "stable" for v in videos) / len(videos) - 0.7) < 0.05
    assert abs(sum(bool(v.mpic) for v in videos) / len(videos) - 0.8) < 0.05
    for video in videos[:300]:
        assert 5.0 <= video.duration_s <= 60.0 and round(video.duration_s, 1) == video.duration_s
        assert (video.width, video.height) in PICTURE_SIZES
        minimum = Mp4Video.min_size(video.duration_s, video.width, video.height)
        assert max(BYTES[0], minimum) <= video.size_bytes <= max(BYTES[1], minimum)
    assert all(item.video_id is None for item in items if not item.has_video)


def test_samples_are_stable_and_of_the_right_kind():
    catalogue = Catalogue(9, BYTES)
    for kind in ("video", "no_video", "not_found", "deleted"):
        ids = catalogue.sample(kind, 25)
        assert ids == Catalogue(9, BYTES).sample(kind, 25)
        assert len(set(ids)) == 25 and all(catalogue.item(i).kind == kind for i in ids)
        assert all(len(str(i)) == 12 for i in ids)
    assert catalogue.sample("video", 5) == catalogue.sample("video", 10)[:5]
    with pytest.raises(ValueError):
        catalogue.sample("bogus", 1)


def test_video_ids_map_back_to_items():
    catalogue = Catalogue(4, BYTES)
    for num_iid in [*catalogue.sample("video", 50), 1, MAX_NUM_IID]:
        if catalogue.kind(num_iid) == "video":
            assert catalogue.num_iid_for(catalogue.video_id_for(num_iid)) == num_iid
    no_video = catalogue.sample("no_video", 1)[0]
    assert catalogue.num_iid_for(catalogue.video_id_for(no_video)) is None
    with pytest.raises(ValueError):
        catalogue.item(0)
    with pytest.raises(ValueError):
        catalogue.item(MAX_NUM_IID + 1)


def test_size_override_makes_a_video_item():
    plain = Catalogue(4, BYTES)
    target = plain.sample("not_found", 1)[0]
    catalogue = Catalogue(4, BYTES, {target: 3 * 1024 * 1024})
    item = catalogue.item(target)
    assert item.has_video and item.size_bytes == 3 * 1024 * 1024
    assert catalogue.video(target).size == 3 * 1024 * 1024


def test_video_bytes_are_deterministic():
    a, b = Catalogue(2, BYTES), Catalogue(2, BYTES)
    num_iid = a.sample("video", 1)[0]
    assert a.video(num_iid).sha256() == b.video(num_iid).sha256()
    assert a.video(num_iid) is a.video(num_iid)  # cached
    with pytest.raises(LookupError):
        a.video(a.sample("no_video", 1)[0])


def test_cover_is_a_jpeg_as_big_as_its_video():
    catalogue = Catalogue(2, BYTES)
    first, second = catalogue.sample("video", 2)
    cover = catalogue.cover(first)
    assert cover[:3] == b"\xff\xd8\xff" and cover.endswith(b"\xff\xd9") and len(cover) < 8000
    item = catalogue.item(first)
    assert image_info(cover) == ImageInfo("jpeg", item.width, item.height)
    assert cover == Catalogue(2, BYTES).cover(first) and cover != catalogue.cover(second)


def test_a_main_picture_without_video_is_8x8():
    catalogue = Catalogue(2, BYTES)
    assert image_info(catalogue.cover(catalogue.sample("no_video", 1)[0])) == ImageInfo("jpeg", 8, 8)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", 1),
        ("0005", 5),
        ("9999999999999", 9_999_999_999_999),
        ("0", None),
        ("", None),
        ("-5", None),
        (" 5", None),
        ("5x", None),
        ("12345678901234", None),  # 14 digits
        ("²", None),  # str.isdigit() takes it, int() does not
        ("\u0663", None),  # an Arabic-Indic three: int() takes it, the platform does not
    ],
)
def test_a_num_iid_parameter_is_1_to_13_ascii_digits_and_not_zero(raw, expected):
    assert num_iid_in(raw) == expected
