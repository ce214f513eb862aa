"""The providers' memory of videos, kept in the catalog (:class:`~taobao_video.top.providers.base.VideoMemory`).

A seller listing tells an item's ``video_id`` one call before its playable URL; the id is kept on the item (its
state unchanged) so a run the quota stops between the two never pays for the listing again. A ``video_id`` the
catalog already has a URL for (downloaded, or resolved for another item) needs no query at all.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from sqlalchemy import select, update

from taobao_video.model import WAITING_STATES, ItemState
from taobao_video.store.catalog import Catalog, engine_of
from taobao_video.store.common import READ_CHUNK, slices
from taobao_video.store.schema import Item, Video
from taobao_video.top.providers.base import KnownVideo, Listed

_WAITING = [state.value for state in WAITING_STATES if state is not ItemState.RESOLVED]


class CatalogVideoMemory:
    """The catalog as a provider's memory."""

    def __init__(self, catalog: Catalog) -> None:
        self.engine = engine_of(catalog)

    def listed(self, ids: Sequence[int]) -> dict[int, Listed]:
        """Waiting ids (pending, failed) with a listed ``video_id`` but no URL yet."""
        found: dict[int, Listed] = {}
        with self.engine.connect() as connection:
            for part in slices(list(ids), READ_CHUNK):
                query = select(Item.num_iid, Item.video_id, Item.title, Item.nick).where(
                    Item.num_iid.in_(part),
                    Item.state.in_(_WAITING),
                    Item.video_id.is_not(None),
                    Item.video_url.is_(None),
                )
                for row in connection.execute(query):
                    found[row.num_iid] = Listed(row.video_id, row.title, row.nick)
        return found

    def remember(self, listing: Mapping[int, Listed]) -> None:
        with self.engine.begin() as connection:
            for num_iid, entry in listing.items():
                connection.execute(
                    update(Item)
                    .where(Item.num_iid == num_iid)
                    .values(video_id=entry.video_id, title=entry.title, nick=entry.nick)
                )

    def known(self, video_ids: Collection[str]) -> dict[str, KnownVideo]:
        """Videos with a URL in ``videos`` (downloaded) or on a resolved item, by ``video_id``."""
        wanted = list(dict.fromkeys(video_ids))
        found: dict[str, KnownVideo] = {}
        with self.engine.connect() as connection:
            for part in slices(wanted, READ_CHUNK):
                rows = connection.execute(
                    select(
                        Video.video_id, Video.video_url, Video.cover_url, Video.duration, Video.width, Video.height
                    ).where(Video.video_id.in_(part))
                )
                for row in rows:
                    found.setdefault(
                        row.video_id, KnownVideo(row.video_url, row.cover_url, row.duration, row.width, row.height)
                    )
                left = [vid for vid in part if vid not in found]
                if not left:
                    continue
                rows = connection.execute(
                    select(
                        Item.video_id, Item.video_url, Item.cover_url, Item.api_duration, Item.width, Item.height
                    ).where(
                        Item.video_id.in_(left), Item.state == ItemState.RESOLVED.value, Item.video_url.is_not(None)
                    )
                )
                for row in rows:
                    found.setdefault(
                        row.video_id, KnownVideo(row.video_url, row.cover_url, row.api_duration, row.width, row.height)
                    )
        return found
