"""Reading calendars and events of a mailbox through Graph v1.0 (reference groupware.md §2), raw JSON.

Every request goes through the client's pacer (the one place for retries and Retry-After). Times are asked for
in UTC (`Prefer: outlook.timezone="UTC"`, explicit) and ids as immutable ids, so a moved item keeps its id.
Cancelled occurrences are absent in v1.0; the mapper computes them from the instances read here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from migrate.errors import ItemNotFound, TransientError

if TYPE_CHECKING:
    from migrate.backends.graph.client import GraphClient

PREFER = {"Prefer": 'outlook.timezone="UTC", outlook.body-content-type="html", IdType="ImmutableId"'}
PAGE = 100


def q(ident: str) -> str:
    return quote(ident, safe="")


def get(client: GraphClient, path: str, params: Mapping[str, Any] | None = None, *, kind: str) -> dict[str, Any]:
    """One paced GET with the mailbox Prefer headers; returns the JSON object."""
    return client.get_json(path, params=params, kind=kind, headers=PREFER)


def pages(client: GraphClient, path: str, params: Mapping[str, Any] | None = None, *, kind: str
          ) -> Iterator[list[dict[str, Any]]]:
    """Each page of a collection, following @odata.nextLink verbatim."""
    data = get(client, path, params, kind=kind)
    while True:
        yield list(data.get("value") or ())
        nxt = data.get("@odata.nextLink")
        if not nxt:
            return
        data = get(client, nxt, kind=kind)


def list_calendars(client: GraphClient, user_id: str) -> list[dict[str, Any]]:
    return [c for page in pages(client, f"/users/{q(user_id)}/calendars", {"$top": PAGE}, kind="calendars")
            for c in page]


def event_pages(client: GraphClient, user_id: str, calendar_id: str) -> Iterator[list[dict[str, Any]]]:
    """Singles and series masters of a calendar, a page at a time (exceptions come from `instances`)."""
    yield from pages(client, f"/users/{q(user_id)}/calendars/{q(calendar_id)}/events", {"$top": PAGE},
                     kind="events")


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def instances(client: GraphClient, user_id: str, event_id: str, lo: dt.datetime, hi: dt.datetime
              ) -> list[dict[str, Any]]:
    """Occurrences and exceptions of one series in [lo, hi)."""
    params = {"startDateTime": _iso(lo), "endDateTime": _iso(hi), "$top": 1000}
    return [i for page in pages(client, f"/users/{q(user_id)}/events/{q(event_id)}/instances", params,
                                kind="instances") for i in page]


ATTACHMENT_FIELDS = "id,name,contentType,size,isInline,lastModifiedDateTime"


def attachments(client: GraphClient, user_id: str, event_id: str, *, content: bool = False) -> list[dict[str, Any]]:
    """The event's attachments without their bytes (`$select`): a large one is never read into memory here.
    `content=True` lists them with their bytes (for a caller that knows from the metadata that all are small)."""
    try:
        return list(get(client, f"/users/{q(user_id)}/events/{q(event_id)}/attachments",
                        None if content else {"$select": ATTACHMENT_FIELDS}, kind="attachment").get("value") or [])
    except ItemNotFound:
        return []


@contextmanager
def open_attachment(client: Any, user_id: str, event_id: str, attachment_id: str
                    ) -> Iterator[tuple[str, Iterator[bytes]]]:
    """An attachment's raw bytes (`$value`: the file, or MIME/iCalendar/vCard of an attached item) as they arrive,
    with the content type Graph sent. `client` is a GraphClient or a mailbox's view of one (its pacer is used)."""
    graph = getattr(client, "client", client)
    resp = graph.open_stream(f"/users/{q(user_id)}/events/{q(event_id)}/attachments/{q(attachment_id)}/$value",
                             kind="attachment", what=f"attachment of event {event_id}",
                             pacer=getattr(client, "pacer", None))
    def chunks() -> Iterator[bytes]:
        import httpx

        try:
            yield from resp.iter_bytes()   # as they arrive (a chunk size would copy each through a buffer)
        except httpx.TransportError as exc:
            raise TransientError(f"attachment of event {event_id}: the download broke ({type(exc).__name__})") \
                from None

    try:
        yield resp.headers.get("content-type", ""), chunks()
    finally:
        resp.close()


def calendar_view(client: GraphClient, user_id: str, calendar_id: str, lo: dt.datetime, hi: dt.datetime
                  ) -> Iterator[dict[str, Any]]:
    """The source's expanded view (singles, occurrences, exceptions) of a window, for verification."""
    params = {"startDateTime": _iso(lo), "endDateTime": _iso(hi), "$top": 1000}
    for page in pages(client, f"/users/{q(user_id)}/calendars/{q(calendar_id)}/calendarView", params,
                      kind="calendarView"):
        yield from page


def get_event(client: GraphClient, user_id: str, event_id: str) -> dict[str, Any] | None:
    """One event (a single or a series master) as /events returns it; None when it is gone."""
    try:
        return get(client, f"/users/{q(user_id)}/events/{q(event_id)}", kind="event")
    except ItemNotFound:
        return None


def delta_pages(client: GraphClient, start: str, params: Mapping[str, Any] | None = None, *, kind: str
                ) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
    """A delta round (reference §2.5): each page with the final @odata.deltaLink on the last one (else None).

    `start` is the delta path of a first round (with `params`) or a stored delta link; DeltaExpired (410) is raised
    from the first request when the link is no longer valid."""
    data = client.get_json(start, params=params, kind=kind,
                           headers={"Prefer": f'{PREFER["Prefer"]}, odata.maxpagesize={PAGE}'})
    while True:
        nxt = data.get("@odata.nextLink")
        yield list(data.get("value") or ()), (None if nxt else data.get("@odata.deltaLink"))
        if not nxt:
            return
        data = client.get_json(nxt, kind=kind, headers={"Prefer": f'{PREFER["Prefer"]}, odata.maxpagesize={PAGE}'})
