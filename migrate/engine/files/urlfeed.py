"""Which files `copy` sends next, in the order their download URLs arrive from the cheapest source.

A download URL costs a Graph request to learn. Asked one file at a time that doubles the resource units of a copy
(the request for the URL, then the download). A delta page or a folder listing asked only for ids and URLs brings
the URLs of up to a page of files for 1–2 RU. So per drive the files still to send are taken in the order of one
of three sources, whichever costs least by the state database's counts:

- `delta`: a fresh enumeration of the drive (2 RU for its first page, 1 RU for each further one);
- `listing`: the children of each folder holding such files (2 RU a page);
- `single`: each file asks for its own URL when it opens (1 RU each; many at once in `$batch` steps).

The source is walked just ahead of the transfers (the caller consumes the files as workers free up, so URLs are used
minutes after they arrived, not hours). Files the walk did not bring (gone at the source since the scan) follow at
the end and ask for their own URLs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from migrate.errors import Fatal, MigrateError
from migrate.protocols import Source
from migrate.store import StateStore
from migrate.store.base import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UrlPlan:
    """The source chosen for one drive and what each would cost (RU), for the run's log and summary."""

    how: str            # delta | listing | single | none
    files: int
    costs: dict[str, float]

    @property
    def ru(self) -> float:
        return self.costs.get(self.how, 0.0)


def choose(store: StateStore, source: Source, drive_id: str, *, max_attempts: int, page_size: int) -> UrlPlan:
    """The cheapest way to learn the URLs of the drive's files still to send (on a tie, per file: no pass)."""
    c = store.url_source_counts(drive_id, max_attempts, page_size)
    files = c["files"]
    if not files:
        return UrlPlan("none", 0, {})
    costs: dict[str, float] = {"single": float(files)}
    if callable(getattr(source, "urls_by_delta", None)):
        pages = max(1, -(-c["items"] // max(1, page_size)))
        costs["delta"] = 2.0 + (pages - 1)
    if callable(getattr(source, "urls_by_listing", None)):
        costs["listing"] = 2.0 * c["listing_pages"]
    how = min(("single", "delta", "listing"), key=lambda k: costs.get(k, float("inf")))
    return UrlPlan(how, files, costs)


def files_to_send(store: StateStore, source: Source, drive: dict[str, Any], plan: UrlPlan, *,
                  max_attempts: int, settle: Callable[[], None] = lambda: None) -> Iterator[dict[str, Any]]:
    """The drive's files still to send, each once, in the order the chosen source brings their URLs; then the rest
    (not brought by it, or every file for `single`) in the store's order, as rows of the items table.

    `settle()` runs between the two: it must return only once every file handed out so far has been taken up by a
    worker (its row written), so none of them is handed out twice."""
    drive_id = drive["id"]
    started = utcnow()   # rows a worker writes from here on were tried by this run: the rest is swept at the end
    if plan.how in ("delta", "listing"):
        try:
            yield from _by_pages(store, source, drive_id, plan.how, max_attempts)
        except MigrateError as exc:
            if isinstance(exc, Fatal):
                raise
            log.warning("drive %s: download URLs could not be listed ahead (%s); each file asks for its own",
                        drive.get("name") or drive_id, str(exc).splitlines()[0])
        settle()
    yield from store.iter_items(drive_id, statuses=("pending", "failed"), files_only=True, untouched_since=started)


def _by_pages(store: StateStore, source: Source, drive_id: str, how: str, max_attempts: int
              ) -> Iterator[dict[str, Any]]:
    if how == "delta":
        for ids in source.urls_by_delta(drive_id):  # type: ignore[attr-defined]
            yield from store.to_send_among(drive_id, ids, max_attempts)
        return
    for folder in store.folders_to_send(drive_id, max_attempts):
        for ids in source.urls_by_listing(drive_id, folder):  # type: ignore[attr-defined]
            yield from store.to_send_among(drive_id, ids, max_attempts)
