"""Incremental reads of calendars and contact folders with Graph delta (reference groupware.md §2.5).

Calendars: v1.0 only has `calendarView/delta` over a fixed window, returning instances, not masters. After a full
read the first delta round is walked once to obtain the link; later rounds name changed occurrences/singles (the
series is re-read whole through its `seriesMasterId`) and removed ids (an event, or an occurrence whose series
is then re-read; a master that answers 404 is gone). Contacts: `contactFolders/{id}/contacts/delta` per folder;
its first round is the full read. The default Contacts folder has no folder id in v1.0 and is read in full.
A 410 (expired token, SyncStateNotFound) drops the link and the collection is read in full again.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from migrate.errors import DeltaExpired

if TYPE_CHECKING:
    from migrate.store import StateStore
    from migrate.store.groupware import GwCollection

log = logging.getLogger(__name__)
# A delta page carries no photo flag: from this many changed contacts on, one id listing of the folder with the
# flags (a request per 100 contacts) is cheaper than asking each contact for a photo it may not have.
PHOTO_FLAGS_FROM = 10
PAST, FUTURE = dt.timedelta(days=365), dt.timedelta(days=5 * 366)   # the calendarView/delta window around now


def _q(ident: str) -> str:
    return quote(ident, safe="")


def start_calendar(store: StateStore, client: Any, user: dict[str, Any], coll: GwCollection,
                   now: dt.datetime) -> None:
    """Walk the first calendarView/delta round of the window once, only to keep its delta link."""
    from migrate.backends.graph import calendars as cal_api

    lo, hi = now - PAST, now + FUTURE
    params = {"startDateTime": cal_api._iso(lo), "endDateTime": cal_api._iso(hi)}
    link = None
    for _page, link in cal_api.delta_pages(client, f"/users/{_q(user['id'])}/calendars/{_q(coll.source_id)}"  # noqa: B007 (the last link is kept)
                                           "/calendarView/delta", params, kind="calendarDelta"):
        pass
    store.set_gw_collection(coll.id, delta_link=link)


def calendar_changes(store: StateStore, client: Any, user: dict[str, Any], coll: GwCollection,
                     now: dt.datetime, summary: Any) -> bool:
    """Apply one delta round to the rows; False when the link expired (the caller reads in full)."""
    from migrate.backends.graph import calendars as cal_api
    from migrate.engine.groupware.steps import _add, event_object

    refetch: set[str] = set()
    removed: set[str] = set()
    link = None
    try:
        for page, link in cal_api.delta_pages(client, coll.delta_link or "", kind="calendarDelta"):  # noqa: B007
            for it in page:
                if "@removed" in it:
                    removed.add(str(it["id"]))
                else:
                    refetch.add(str(it.get("seriesMasterId") or it["id"]))
    except DeltaExpired:
        log.info("delta link of %s %s expired: reading it in full", coll.upn, coll.name)
        store.set_gw_collection(coll.id, delta_link=None)
        return False
    if removed:   # deleted in the window, or added/changed/deleted outside it (§2.5): ask Graph which
        _known, series_of = store.gw_instance_ledger(coll.id)
        refetch |= {series_of.get(rid, rid) for rid in removed}
    gen = store.gw_generation(coll.id)
    objs, gone, seen = [], [], set()
    todo = sorted(refetch)
    while todo:
        eid = todo.pop()
        if eid in seen:
            continue
        seen.add(eid)
        ev = cal_api.get_event(client, user["id"], eid)
        if ev is None:
            gone.append(eid)
        elif ev.get("type") in ("occurrence", "exception"):   # an occurrence id we did not know: its series
            if ev.get("seriesMasterId"):
                todo.append(str(ev["seriesMasterId"]))
        else:
            objs.append(event_object(client, user["id"], ev, now))
    _add(summary, "changed", store.upsert_gw_objects(coll.id, gen, objs))
    _add(summary, "deleted", store.mark_gw_deleted(coll.id, gone))
    _add(summary, "events", len(objs))
    store.set_gw_collection(coll.id, delta_link=link)
    return True


def contact_changes(store: StateStore, client: Any, user: dict[str, Any], coll: GwCollection, folder: Any,
                    summary: Any) -> bool:
    """Read a contact folder through its delta (first round = full read); False for the default folder."""
    from migrate.backends.graph import calendars as cal_api
    from migrate.backends.graph.contacts import DEFAULT_FOLDER, ListedContact, photo_flags
    from migrate.engine.groupware.steps import _add, contact_object

    if folder.id == DEFAULT_FOLDER:
        return False
    full = not coll.delta_link
    start = f"/users/{_q(user['id'])}/contactFolders/{_q(folder.id)}/contacts/delta"
    try:
        rounds = cal_api.delta_pages(client, coll.delta_link or start, kind="contactDelta")
        first = next(rounds)
    except DeltaExpired:
        log.info("delta link of %s %s expired: reading it in full", coll.upn, coll.name)
        full, rounds = True, cal_api.delta_pages(client, start, kind="contactDelta")
        first = next(rounds)
    gen = store.begin_gw_scan(coll.id) if full else store.gw_generation(coll.id)
    link = None
    flags: dict[str, bool] | None = None
    for page, link in _chain(first, rounds):  # noqa: B007 (the last link is kept)
        changed = [c for c in page if "@removed" not in c]
        if flags is None and len(changed) >= PHOTO_FLAGS_FROM:
            flags = photo_flags(client, user["id"], folder.id)   # one listing instead of a request per contact
        known = flags or {}
        listed = [ListedContact(c, known.get(str(c["id"]))) for c in changed]
        objs = client.map(functools.partial(contact_object, client, user["id"], folder.path), listed)
        _add(summary, "changed", store.upsert_gw_objects(coll.id, gen, objs))
        _add(summary, "deleted", store.mark_gw_deleted(coll.id, [str(c["id"]) for c in page if "@removed" in c]))
        _add(summary, "contacts", len(objs))
    if full:
        _add(summary, "deleted", store.finish_gw_scan(coll.id, gen))
    store.set_gw_collection(coll.id, delta_link=link)
    return True


def _chain(first: Any, rest: Any) -> Any:
    yield first
    yield from rest
