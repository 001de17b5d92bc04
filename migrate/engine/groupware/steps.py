"""Calendars and contacts through the same journey as files: scan → plan → copy → verify, resumable.

scan reads each mapped mailbox (≤ 4 requests in flight per mailbox, Outlook's cap, paced under its 10,000
requests per 10 minutes; mailboxes in parallel) into gw_collections/gw_objects, a page per transaction. plan maps every object without
touching the target and lists what cannot be carried. copy creates the collections and PUTs each object at a
name derived from its UID with If-None-Match/If-Match, never inviting anyone, an audit record per PUT. verify
lists each collection and compares counts and content hashes with the state database.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrate.engine.groupware import delta as gw_delta
from migrate.engine.summary import StepSummary
from migrate.errors import AuthError, ConfigError, Fatal, MigrateError, TargetError, TransientError
from migrate.groupware.attachments import file_sizes

if TYPE_CHECKING:
    from migrate.backends.dav.target import DavTarget
    from migrate.backends.graph.contacts import ListedContact
    from migrate.backends.graph.source import GraphSource
    from migrate.mapping import Mappings
    from migrate.store import StateStore
    from migrate.store.groupware import GwCollection, GwObject

log = logging.getLogger(__name__)
WHAT = ("files", "calendars", "contacts", "mail")
# Outlook allows one app 10,000 requests per 10 minutes per mailbox (§1.4): each mailbox is paced just under it.
MAILBOX_INTERVAL = 600 / 10_000 / 0.95
IN_FLIGHT = 4   # Outlook runs at most 4 concurrent requests per app and mailbox (§1.4, "MailboxConcurrency")
KIND = {"calendars": "calendar", "contacts": "addressbook"}
Say = Callable[[str], None]
_COUNTS = threading.Lock()   # the step summaries are counted from several mailbox/collection threads


def preload() -> None:
    """Import icalendar and our mappers before starting threads: icalendar's first import is not thread-safe
    (two threads importing it at once fail with a circular-import ImportError)."""
    import icalendar  # noqa: F401
    import icalendar.parser  # noqa: F401

    import migrate.groupware.ical  # noqa: F401
    import migrate.groupware.vcard  # noqa: F401


def _add(summary: Any, name: str, n: int = 1) -> None:
    with _COUNTS:
        setattr(summary, name, getattr(summary, name) + n)


def parse_what(values: list[str] | str | None) -> frozenset[str]:
    """`--what files,calendars,contacts,mail` (repeatable or comma-separated); default files."""
    items = [values] if isinstance(values, str) else list(values or [])
    parts = {p.strip().lower() for v in items for p in v.split(",") if p.strip()} or {"files"}
    unknown = parts - set(WHAT)
    if unknown:
        raise ConfigError(f"--what {','.join(sorted(unknown))}: expected a comma-separated list of "
                          f"{', '.join(WHAT)}")
    return frozenset(parts)


def kinds_of(what: frozenset[str]) -> tuple[str, ...]:
    """The non-file kinds of a --what, in journey order: "calendar", "addressbook", then "mail" (engine.mail)."""
    return tuple(KIND[w] for w in ("calendars", "contacts") if w in what) + (("mail",) if "mail" in what else ())


def slug(name: str, source_id: str) -> str:
    """A stable collection URI: lowercase ASCII of the name plus a short hash of the source id (§6.2)."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:40] or "collection"
    return f"{text}-{hashlib.sha1(source_id.encode()).hexdigest()[:8]}"


def content_hash(body: bytes) -> str:
    """Hash of an object's content that survives a server's harmless re-serialisation (line endings, folding,
    property order, parameter order and quoting, PRODID); any changed value or parameter still changes it."""
    from icalendar.parser import Contentline

    text = body.decode("utf-8", "replace").replace("\r\n", "\n")
    text = re.sub(r"\n[ \t]", "", text)
    lines = []
    for line in text.split("\n"):
        if not line.strip() or line.upper().startswith("PRODID"):
            continue
        try:
            name, params, value = Contentline(line).parts()
            line = name.upper() + "".join(f";{k.upper()}={params[k]}" for k in sorted(params)) + ":" + value
        except ValueError:
            pass
        lines.append(line.rstrip())
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------- scan
@dataclass
class GwScanSummary(StepSummary):
    mailboxes: int = 0
    calendars: int = 0
    address_books: int = 0
    events: int = 0
    contacts: int = 0
    changed: int = 0
    deleted: int = 0
    skipped_calendars: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0

    @property
    def attention(self) -> bool:
        return bool(self.failed)


def _mailboxes(store: StateStore, mappings: Mappings, upns: tuple[str, ...], summary: Any
               ) -> list[tuple[dict[str, Any], str]]:
    wanted = {u.lower() for u in upns}
    out = []
    for u in store.users():
        if wanted and u["upn"].lower() not in wanted:
            continue
        target = mappings.users.target_for(u["upn"])
        if not target:
            summary.unmapped.append(u["upn"])
            continue
        out.append((u, target))
    if not out and not summary.unmapped:
        raise ConfigError("no users are recorded in the state database",
                          hint="run `m365-migrate discover` first, then map users in users.csv")
    return out


# What is kept of a plain occurrence: it repeats its master, so only its identity and times matter (the EXDATE
# computation and the delta ledger); an exception is kept whole. Less to hash, store and hold per page.
OCCURRENCE_KEYS = ("id", "type", "seriesMasterId", "originalStart", "start", "end")


class MailboxClient:
    """The Graph client seen through one mailbox's own pacer: requests of a mailbox are spaced to stay under
    Outlook's per-mailbox limit, and a 429 for one mailbox pauses only that mailbox (Retry-After honoured)."""

    def __init__(self, client: Any, upn: str, interval: float) -> None:
        from migrate.transport.pacer import Pacer

        self.client = client
        self.request_once = client.request_once
        # its own pacing, but Graph's one fault budget: an outage is Graph's, whichever mailbox meets it
        self.pacer = Pacer(f"mailbox {upn}", max_attempts=client.pacer.max_attempts, min_interval=interval,
                           faults=client.pacer.faults)
        self.pool = ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="gw-mailbox")

    def get_json(self, path: str, **kw: Any) -> dict[str, Any]:
        return self.client.get_json(path, pacer=self.pacer, **kw)

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        """fn over a page's items with up to IN_FLIGHT requests of this mailbox at once (the pacer still spaces
        their starts), so one slow answer does not hold the mailbox below its pacing limit."""
        return list(self.pool.map(fn, items))

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def scan_groupware(store: StateStore, source: GraphSource, mappings: Mappings, kinds: tuple[str, ...], *,
                   upns: tuple[str, ...] = (), workers: int = 4, now: dt.datetime | None = None,
                   say: Say = lambda m: None, mailbox_interval: float = MAILBOX_INTERVAL) -> GwScanSummary:
    """Read calendars/contacts of every mapped mailbox into the state database (idempotent, resumable).

    Up to 4 requests in flight per mailbox (Outlook's cap), mailboxes in parallel, each paced by its own Pacer."""
    preload()
    summary = GwScanSummary()
    started = time.monotonic()
    before = sum(source.client.counts.values())
    now = now or dt.datetime.now(dt.UTC)
    boxes = _mailboxes(store, mappings, upns, summary)
    summary.mailboxes = len(boxes)

    def one(box: tuple[dict[str, Any], str]) -> None:
        user, target = box
        client = MailboxClient(source.client, user["upn"], mailbox_interval)
        try:
            one_mailbox(client, user, target)
        finally:
            client.close()

    def one_mailbox(client: MailboxClient, user: dict[str, Any], target: str) -> None:
        try:
            if "calendar" in kinds:
                _scan_calendars(store, client, user, target, now, summary)
            if "addressbook" in kinds:
                _scan_contacts(store, client, user, target, summary)
            say(f"scanned the mailbox of {user['upn']}")
        except AuthError as exc:
            raise AuthError(f"{user['upn']}: {exc}", hint="the app needs the Graph application permissions "
                            "Calendars.Read and Contacts.Read (admin consent), scoped to the migration mailboxes") from exc
        except MigrateError as exc:
            if isinstance(exc, Fatal):   # Graph unreachable: one cause that ends the run, not one per mailbox
                raise
            summary.failed.append(f"{user['upn']}: {exc}")
            log.warning("scan of %s failed: %s", user["upn"], exc)

    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="gw-scan") as pool:
        for f in [pool.submit(one, b) for b in boxes]:
            f.result()
    summary.requests = sum(source.client.counts.values()) - before
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def _scan_calendars(store: StateStore, client: Any, user: dict[str, Any], target: str,
                    now: dt.datetime, summary: GwScanSummary) -> None:
    from migrate.backends.graph import calendars as cal_api

    for cal in cal_api.list_calendars(client, user["id"]):
        owner = ((cal.get("owner") or {}).get("address") or user["upn"]).lower()
        skip = None if owner == user["upn"].lower() else (
            f"calendar of {owner} shown in this mailbox: migrated from its owner's mailbox, not copied here")
        coll = store.upsert_gw_collection(user_id=user["id"], upn=user["upn"], kind="calendar", source_id=cal["id"],
                                          name=cal.get("name") or "Calendar", color=cal.get("hexColor") or "",
                                          target_user=target, target_uri=slug(cal.get("name") or "", cal["id"]),
                                          skip_reason=skip)
        if skip:
            summary.skipped_calendars.append(f"{user['upn']}: {cal.get('name')} ({skip})")
            continue
        _add(summary, "calendars", 1)
        if coll.delta_link and gw_delta.calendar_changes(store, client, user, coll, now, summary):
            continue
        gen = store.begin_gw_scan(coll.id)
        for page in cal_api.event_pages(client, user["id"], cal["id"]):
            objs = client.map(lambda ev: event_object(client, user["id"], ev, now), page)
            _add(summary, "changed", store.upsert_gw_objects(coll.id, gen, objs))
            _add(summary, "events", len(objs))
        _add(summary, "deleted", store.finish_gw_scan(coll.id, gen))
        gw_delta.start_calendar(store, client, user, coll, now)


def event_object(client: Any, user_id: str, ev: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The state row of one single or series master: the event, its instances (series) and attachments."""
    from migrate.backends.dav.target import href_for
    from migrate.backends.graph import calendars as cal_api
    from migrate.groupware.ical import instance_window

    insts = None
    if ev.get("type") == "seriesMaster" or ev.get("recurrence"):
        lo, hi = instance_window(ev, now)
        insts = [i if i.get("type") == "exception" else {k: i[k] for k in OCCURRENCE_KEYS if k in i}
                 for i in cal_api.instances(client, user_id, ev["id"], lo, hi)]
    atts = cal_api.attachments(client, user_id, ev["id"]) if ev.get("hasAttachments") else None
    if atts:
        from migrate.engine.groupware.attach import read_inline

        atts = read_inline(client, user_id, ev["id"], atts)
    uid = str(ev.get("iCalUId") or ev["id"])
    return {"source_id": ev["id"], "kind": "event", "uid": uid, "href": href_for(uid, "ics"),
            "title": ev.get("subject") or "", "instances": len(insts) if insts is not None else 1,
            "payload": {"event": ev, "instances": insts, "attachments": atts,
                        "read_at": now.strftime("%Y-%m-%dT%H:%M:%SZ")}}


def _scan_contacts(store: StateStore, client: Any, user: dict[str, Any], target: str,
                   summary: GwScanSummary) -> None:
    from migrate.backends.graph import contacts as ct_api

    for folder in ct_api.folders(client, user["id"]):
        coll = store.upsert_gw_collection(user_id=user["id"], upn=user["upn"], kind="addressbook",
                                          source_id=folder.id, name=folder.path, color="", target_user=target,
                                          target_uri=slug(folder.path, folder.id))
        _add(summary, "address_books", 1)
        if gw_delta.contact_changes(store, client, user, coll, folder, summary):
            continue
        gen = store.begin_gw_scan(coll.id)
        for page in ct_api.contact_pages(client, user["id"], folder.id):
            objs = client.map(functools.partial(contact_object, client, user["id"], folder.path), page)
            _add(summary, "changed", store.upsert_gw_objects(coll.id, gen, objs))
            _add(summary, "contacts", len(objs))
        _add(summary, "deleted", store.finish_gw_scan(coll.id, gen))


def contact_object(client: Any, user_id: str, folder_path: str, listed: ListedContact) -> dict[str, Any]:
    """The state row of one contact, with its photo inline (asked for only where the listing says there is
    one, or where it could not say)."""
    from migrate.backends.dav.target import href_for
    from migrate.backends.graph import contacts as ct_api

    c = listed.data
    photo = ct_api.photo(client, user_id, listed)
    uid = str(c["id"])
    return {"source_id": c["id"], "kind": "contact", "uid": uid, "href": href_for(uid, "vcf"),
            "title": c.get("displayName") or "", "instances": 0,
            "payload": {"contact": c, "folder": folder_path,
                        "photo": base64.b64encode(photo).decode() if photo else None}}


# ---------------------------------------------------------------------------------------------------- mapping
@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    notes: tuple[str, ...]
    unsupported: str | None
    instances: int


def render(obj: GwObject, links: dict[str, Any] | None = None, *, files: bool = False) -> Rendered:
    """The bytes to PUT for one object (deterministic: same payload and attachment links → same bytes)."""
    p = obj.payload
    if obj.kind == "event":
        from migrate.groupware.ical import map_event

        read_at = dt.datetime.fromisoformat(str(p.get("read_at") or "2026-01-01T00:00:00Z").replace("Z", "+00:00"))
        try:
            m = map_event(p["event"], p.get("instances"), p.get("attachments"), now=read_at, links=links,
                          files=files)
        except (KeyError, ValueError, TypeError) as exc:
            return Rendered(b"", (), f"cannot be mapped to iCalendar: {type(exc).__name__}: {exc}", 0)
        return Rendered(m.text.encode("utf-8"), tuple(m.notes), m.unsupported, m.instances)
    from migrate.groupware.vcard import map_contact

    photo = base64.b64decode(p["photo"]) if p.get("photo") else None
    card = map_contact(p["contact"], photo, folder_path=p.get("folder") or "")
    return Rendered(card.text.encode("utf-8"), tuple(card.notes), None, 0)


# ---------------------------------------------------------------------------------------------------- plan
def plan_groupware(store: StateStore, kinds: tuple[str, ...], *, upns: tuple[str, ...] = (), files: bool = False
                   ) -> dict[str, Any]:
    """Map every object without writing to the target: counts, unsupported items, notes and an estimate.
    `files`: the target has Files for attachments too large to inline (Nextcloud)."""
    rows: list[dict[str, Any]] = []
    unsupported: list[dict[str, str]] = []
    notes: list[dict[str, str]] = []
    skipped = []
    for coll in store.gw_collections(kinds, upns):
        if coll.skip_reason or not coll.target_user:
            skipped.append({"user": coll.upn, "collection": coll.name, "reason": coll.skip_reason or "user not mapped"})
            continue
        counts = {"objects": 0, "series": 0, "instances": 0, "unsupported": 0, "bytes": 0, "files": 0, "file_bytes": 0}
        for obj in store.iter_gw_objects(coll.id):
            r = render(obj, files=files)
            for n in file_sizes(obj.payload.get("attachments")) if files else ():   # they count against quotas
                counts["files"], counts["file_bytes"] = counts["files"] + 1, counts["file_bytes"] + n
            counts["objects"] += 1
            counts["instances"] += r.instances
            counts["series"] += int(obj.kind == "event" and bool(obj.payload.get("instances") is not None))
            counts["bytes"] += len(r.body)
            where = {"user": coll.upn, "collection": coll.name, "title": obj.title}
            if r.unsupported:
                counts["unsupported"] += 1
                unsupported.append({**where, "reason": r.unsupported})
            for n in r.notes:
                notes.append({**where, "note": n})
            new_status = "unsupported" if r.unsupported else (obj.status if obj.status != "unsupported" else "pending")
            if new_status != obj.status or r.notes:
                store.set_gw_object(obj.id, status=new_status, notes=json.dumps(list(r.notes), ensure_ascii=False)
                                    if r.notes else None, last_error=r.unsupported)
        rows.append({"user": coll.upn, "kind": coll.kind, "collection": coll.name, "target_user": coll.target_user,
                     "target_uri": coll.target_uri, **counts})
    total = sum(r["objects"] - r["unsupported"] for r in rows)
    return {"collections": rows, "unsupported": unsupported, "notes": notes, "skipped": skipped,
            "totals": {"events": sum(r["objects"] for r in rows if r["kind"] == "calendar"),
                       "contacts": sum(r["objects"] for r in rows if r["kind"] == "addressbook"),
                       "unsupported": len(unsupported), "puts": total,
                       "bytes": sum(r["bytes"] for r in rows), "attachment_files": sum(r["files"] for r in rows),
                       "attachment_file_bytes": sum(r["file_bytes"] for r in rows)},
            "estimate": estimate(store, total),
            "attention": bool(unsupported)}


def estimate(store: StateStore, puts: int) -> dict[str, Any]:
    """How long a rescan and the copy should take: the last scan's Graph requests at Outlook's per-mailbox limit
    (mailboxes in parallel), and the writes at the rate the last copy measured (unknown before the first)."""
    scan = copy = None
    for run in store.runs(200):
        if run["status"] not in ("ok", "attention"):
            continue
        summary = json.loads(run["summary"] or "{}")
        if scan is None and run["command"].startswith("scan-") and summary.get("mailboxes"):
            scan = summary
        if copy is None and run["command"].startswith("copy-") and summary.get("created", 0) + summary.get(
                "updated", 0) >= 20 and summary.get("seconds"):
            copy = summary
    out: dict[str, Any] = {"writes": puts}
    if scan:
        per_mailbox = scan["requests"] / max(1, scan["mailboxes"])
        out["rescan_graph_requests"] = scan["requests"]
        out["rescan_seconds_at_outlook_limit"] = round(per_mailbox * MAILBOX_INTERVAL, 1)
        out["rescan_minutes_at_outlook_limit"] = round(per_mailbox * MAILBOX_INTERVAL / 60, 1)
    if copy:
        rate = (copy["created"] + copy["updated"]) / copy["seconds"]
        out["copy_objects_per_second_measured"] = round(rate, 1)
        out["copy_seconds"] = round(puts / rate, 1)
        out["copy_minutes"] = round(puts / rate / 60, 1)
    return out


# ---------------------------------------------------------------------------------------------------- copy
@dataclass
class GwCopySummary(StepSummary):
    collections_created: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    adopted: int = 0
    unsupported: int = 0
    attachments: dict[str, int] = field(default_factory=dict)   # carried to Files, shared, removed, kept
    failed: list[str] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0

    @property
    def attention(self) -> bool:
        return bool(self.failed)


def copy_groupware(store: StateStore, target: DavTarget, kinds: tuple[str, ...], *, upns: tuple[str, ...] = (),
                   workers: int = 4, say: Say = lambda m: None, attach: Any = None) -> GwCopySummary:
    """Create collections and PUT every pending object; a rerun sends nothing for what is already there.
    `attach` (engine.groupware_attach.Carrier) puts large attachments into the owner's Files first."""
    preload()
    summary = GwCopySummary()
    started, before = time.monotonic(), target.requests
    colls = [c for c in store.gw_collections(kinds, upns) if not c.skip_reason and c.target_user]

    def one(coll: GwCollection) -> None:
        try:
            if not coll.created:
                if target.ensure_collection(coll.kind, coll.target_user or "", coll.target_uri, coll.name,
                                            color=coll.color):
                    _add(summary, "collections_created", 1)
                    store.audit("groupware.mkcol", f"{coll.target_user}/{coll.target_uri}", kind=coll.kind,
                                name=coll.name, source=coll.source_id)
                store.set_gw_collection(coll.id, created=1, target_name=coll.name)
            for obj in store.iter_gw_objects(coll.id, ("pending", "failed", "uploaded", "verified")):
                _copy_one(store, target, coll, obj, summary, attach)
            say(f"copied {coll.kind} {coll.name!r} of {coll.upn}")
        except (TargetError, AuthError, TransientError) as exc:
            if isinstance(exc, AuthError):
                raise
            # TransientError: the server kept failing after the pacer's retries (a sqlite Nextcloud answers 500
            # "database is locked" under load, §6.14): this collection stops, the others go on, a rerun resumes
            summary.failed.append(f"{coll.upn} {coll.name}: {exc}" + ("; stopped here, run again to resume"
                                                                       if isinstance(exc, TransientError) else ""))
            store.set_gw_collection(coll.id, last_error=str(exc)[:500])

    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="gw-copy") as pool:
        for f in [pool.submit(one, c) for c in colls]:
            f.result()
    summary.unsupported = int(store.scalar("SELECT COUNT(*) FROM gw_objects WHERE status='unsupported' AND deleted=0"))
    summary.requests = target.requests - before + (attach.requests if attach is not None else 0)
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def _copy_one(store: StateStore, target: DavTarget, coll: GwCollection, obj: GwObject, summary: GwCopySummary,
              attach: Any = None) -> None:
    from migrate.backends.dav.target import PreconditionFailed

    links = attach.prepare(coll, obj, summary) if attach is not None else {}   # the files first: linked by id
    if links is None:   # an attachment could not be carried (recorded): the event waits for the next copy
        return
    r = render(obj, links, files=attach is not None)
    if r.unsupported:
        store.set_gw_object(obj.id, status="unsupported", last_error=r.unsupported)
        return
    digest = content_hash(r.body)
    if obj.status in ("uploaded", "verified") and obj.body_sha256 == digest and obj.target_etag:
        _add(summary, "unchanged", 1)
        return
    user, where = coll.target_user or "", f"{coll.target_user}/{coll.target_uri}/{obj.href}"
    notes = json.dumps(list(r.notes), ensure_ascii=False) if r.notes else None
    etag = obj.target_etag   # set only by a proven write: a source change goes back to pending but keeps it
    outcome = "updated" if etag else "created"
    try:
        try:
            res = (target.put(coll.kind, user, coll.target_uri, obj.href, r.body, etag=etag) if etag
                   else _create(target, store, coll, obj, r.body, where))
        except PreconditionFailed:
            # Not what the ledger says: an interrupted run wrote it before recording, or someone changed or
            # deleted it at the target. Ours (same content) is adopted; a deleted one is written again (the
            # source still has it); a changed one is left alone and reported.
            got = target.get(coll.kind, user, coll.target_uri, obj.href)
            if got is not None and content_hash(got[0]) == digest:
                store.set_gw_object(obj.id, status="uploaded", target_etag=got[1], body_sha256=digest,
                                    body_size=len(r.body), last_error=None, notes=notes)
                store.audit("groupware.adopt", where, uid=obj.uid, etag=got[1], sha256=digest)
                _add(summary, "adopted", 1)
                return
            if etag and got is not None:
                raise PreconditionFailed("changed at the target since it was written; not overwritten "
                                         "(remove it there or resolve by hand, then run again)") from None
            if got is None:
                if etag:
                    store.audit("groupware.recreate", where, uid=obj.uid, reason="deleted at the target")
                outcome = "created"
                res = _create(target, store, coll, obj, r.body, where)
            else:
                outcome = "updated"
                res = target.put(coll.kind, user, coll.target_uri, obj.href, r.body, etag=got[1])
    except (TargetError, TransientError) as exc:   # PreconditionFailed, UidExists, refusals: this object only
        store.set_gw_object(obj.id, status="failed", attempts=obj.attempts + 1, last_error=str(exc)[:500])
        store.audit("groupware.put-failed", where, uid=obj.uid, error=str(exc)[:300])
        if isinstance(exc, TransientError):   # retries exhausted: its collection stops (see copy_groupware)
            raise
        summary.failed.append(f"{coll.upn} {coll.name}: {obj.title!r}: {exc}")
        return
    etag_now = res.etag
    if not etag_now:   # the server changed what it stored (repair or scheduling annotation): learn its ETag
        got = target.get(coll.kind, user, coll.target_uri, obj.href)
        etag_now = got[1] if got else None
    store.set_gw_object(obj.id, status="uploaded", target_etag=etag_now, body_sha256=digest, body_size=len(r.body),
                        attempts=obj.attempts + 1, last_error=None, notes=notes)
    store.audit("groupware.put", where, uid=obj.uid, status=res.status, etag=etag_now, sha256=digest,
                size=len(r.body), kind=obj.kind, outcome=outcome)
    if outcome == "created":
        _add(summary, "created", 1)
    else:
        _add(summary, "updated", 1)


def _create(target: DavTarget, store: StateStore, coll: GwCollection, obj: GwObject, body: bytes, where: str) -> Any:
    """PUT with If-None-Match: *; a trashed copy of the UID (Nextcloud 32.0.1, §6.9) is purged and the PUT retried."""
    from migrate.backends.dav.target import UidInTrash

    user = coll.target_user or ""
    try:
        return target.put(coll.kind, user, coll.target_uri, obj.href, body, etag=None)
    except UidInTrash:
        purged = target.purge_trashed_uid(user, obj.uid)
        store.audit("groupware.purge-trash", where, uid=obj.uid, purged=purged)
        return target.put(coll.kind, user, coll.target_uri, obj.href, body, etag=None)


# ---------------------------------------------------------------------------------------------------- verify
@dataclass
class GwVerifySummary(StepSummary):
    collections: int = 0
    checked: int = 0
    verified: int = 0
    missing: list[str] = field(default_factory=list)
    differ: list[str] = field(default_factory=list)
    not_copied: int = 0
    unsupported: int = 0
    extra: int = 0

    @property
    def attention(self) -> bool:
        return bool(self.missing or self.differ or self.not_copied)


def verify_groupware(store: StateStore, target: DavTarget, kinds: tuple[str, ...], *,
                     upns: tuple[str, ...] = (), workers: int = 4) -> GwVerifySummary:
    """Per collection: the target's listing against the rows (counts), then each object's content hash.
    Collections are checked `workers` at a time (one GET per object: on a busy real server the waiting dominates)."""
    s = GwVerifySummary()
    colls = [c for c in store.gw_collections(kinds, upns) if not c.skip_reason and c.target_user]
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="gw-verify") as pool:
        for part in pool.map(lambda c: _verify_collection(store, target, c), colls):
            s.collections += 1
            for name in ("checked", "verified", "not_copied", "unsupported", "extra", "missing", "differ"):
                setattr(s, name, getattr(s, name) + getattr(part, name))
    return s


def _verify_collection(store: StateStore, target: DavTarget, coll: GwCollection) -> GwVerifySummary:
    s = GwVerifySummary()
    listing = target.listing(coll.kind, coll.target_user or "", coll.target_uri)
    ours = set()
    for obj in store.iter_gw_objects(coll.id):
        if obj.status == "unsupported":
            s.unsupported += 1
            continue
        if obj.status not in ("uploaded", "verified"):
            s.not_copied += 1
            continue
        s.checked += 1
        ours.add(obj.href)
        where = f"{coll.upn} {coll.name}: {obj.title!r}"
        if obj.href not in listing:
            s.missing.append(where)
            store.set_gw_object(obj.id, status="failed", last_error="missing at the target")
            continue
        got = target.get(coll.kind, coll.target_user or "", coll.target_uri, obj.href)
        if got is None or content_hash(got[0]) != obj.body_sha256:
            s.differ.append(where)
            store.set_gw_object(obj.id, status="failed", last_error="content differs at the target")
            continue
        s.verified += 1
        if obj.status != "verified":
            store.set_gw_object(obj.id, status="verified")
    s.extra = len(set(listing) - ours)
    return s
