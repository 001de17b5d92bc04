"""Delta enumeration of one drive as raw JSON pages: follows nextLinks (empty pages too) to the deltaLink."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from migrate.backends.graph.client import GraphClient
from migrate.backends.graph.items import DELTA_SELECT
from migrate.errors import SourceError
from migrate.protocols import DeltaPage

DEFAULT_PAGE_SIZE = 999


def start_url(client: GraphClient, drive_id: str, page_size: int = DEFAULT_PAGE_SIZE) -> str:
    """The first request of a full enumeration (no token), with the minimal $select and a large $top."""
    return client.url(f"drives/{quote(drive_id, safe='!')}/root/delta?$select={DELTA_SELECT}&$top={page_size}")


def iter_delta(client: GraphClient, drive_id: str, link: str | None, *,
               page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[DeltaPage]:
    """Pages from `link` (a stored nextLink or deltaLink) or from the start; the last page has `delta_link`.

    Raises DeltaExpired (410 / resyncRequired) and ItemNotFound (the drive is gone) from the first request
    that meets them; the caller checkpoints each page before asking for the next one.
    """
    url = link or start_url(client, drive_id, page_size)
    while True:
        data = client.get_json(url, kind="delta", what=f"delta of drive {drive_id}")
        items = data.get("value") or []
        nxt, dlink = data.get("@odata.nextLink"), data.get("@odata.deltaLink")
        if nxt and dlink:
            raise SourceError(f"delta of drive {drive_id}: a page carried both a nextLink and a deltaLink")
        yield DeltaPage(items=items, next_link=nxt, delta_link=dlink)
        if not nxt:
            return  # deltaLink reached (or, against the contract, neither link: the enumeration ends here)
        url = nxt
