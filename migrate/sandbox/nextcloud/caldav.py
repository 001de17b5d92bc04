"""CalDAV/CardDAV of the Nextcloud sandbox, behaving as a real 32.0.1 did (reference groupware.md §6–§7).

Kept: MKCALENDAR/extended MKCOL (405 when it exists), PUT preconditions (412), one UID per collection (400),
validation (415, `Prefer: handling=strict`), the 10 MiB object limit (403), series without instances (403),
ETag = MD5 of the body, and — the hazards — scheduling: a PUT of an event organised by the owner delivers copies
into local attendees' calendars and mails every attendee unless `x-nc-scheduling: false`, `Schedule-Reply: F` or
SCHEDULE-AGENT=CLIENT stops it; a DELETE cancels to all attendees (rooms included) and `x-nc-scheduling` does
not stop that in 32.0.1; deleted objects go to a trash bin whose copy blocks re-creating the UID with a 500
"UNIQUE constraint failed" until it is purged. Mail goes to `mails` (the loopback mail sink tests read).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from .wire import Environ, StartResponse, header, read_body, respond, sabre_error

CAL_PREFIX = "/remote.php/dav/calendars/"
CARD_PREFIX = "/remote.php/dav/addressbooks/users/"
EVENT_SIZE_LIMIT = 10_485_760
CARD_SIZE_LIMIT = 5_242_880
MS = '<?xml version="1.0" encoding="utf-8"?>\n<d:multistatus xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns" ' \
     'xmlns:cal="urn:ietf:params:xml:ns:caldav" xmlns:card="urn:ietf:params:xml:ns:carddav" ' \
     'xmlns:nc="http://nextcloud.com/ns">'


@dataclass
class DavObject:
    uid: str
    body: bytes
    id: int

    @property
    def etag(self) -> str:
        return '"' + hashlib.md5(self.body, usedforsecurity=False).hexdigest() + '"'


@dataclass
class Collection:
    kind: str                      # calendar | addressbook
    uri: str
    displayname: str
    color: str = ""
    objects: dict[str, DavObject] = field(default_factory=dict)


class Groupware:
    """Calendars and address books per user, the trash bin, scheduling deliveries and the mail sink."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.lock = threading.Lock()
        self.collections: dict[tuple[str, str, str], Collection] = {}   # (user, kind, uri)
        self.trash: dict[int, tuple[str, str, str, DavObject]] = {}     # id -> (user, uri, name, object)
        self.mails: list[dict[str, str]] = []
        self.deliveries: list[dict[str, str]] = []
        self._ids = 0

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    # ------------------------------------------------------------------ entry
    def handle(self, environ: Environ, sr: StartResponse, user: str, method: str, path: str) -> Iterable[bytes]:
        kind, prefix = ("calendar", CAL_PREFIX) if path.startswith(CAL_PREFIX) else ("addressbook", CARD_PREFIX)
        parts = [unquote(p) for p in path[len(prefix):].split("/") if p]
        if not parts or parts[0] != user:
            return sabre_error(sr, 404, "Principal not found" if not parts else f"Node with name '{parts[0]}' could "
                               "not be found")
        with self.lock:
            if kind == "calendar" and len(parts) >= 2 and parts[1] == "trashbin":
                return self.trashbin(environ, sr, user, method, parts[2:])
            if len(parts) == 1:
                return self.home(environ, sr, user, kind, method)
            coll = self.collections.get((user, kind, parts[1]))
            if len(parts) == 2:
                return self.collection(environ, sr, user, kind, parts[1], coll, method)
            if coll is None:
                return sabre_error(sr, 404, f"Node with name '{parts[1]}' could not be found")
            return self.object(environ, sr, user, coll, parts[2], method)

    # ------------------------------------------------------------------ homes and collections
    def home(self, environ: Environ, sr: StartResponse, user: str, kind: str, method: str) -> Iterable[bytes]:
        if method != "PROPFIND":
            return sabre_error(sr, 405, f"{method} is not allowed on the home")
        base = (CAL_PREFIX if kind == "calendar" else CARD_PREFIX) + quote(user) + "/"
        rows = [self._resp(base, "<d:resourcetype><d:collection/></d:resourcetype>")]
        if header(environ, "Depth", "1") != "0":
            if kind == "calendar":
                rows += [self._resp(base + n + "/", "<d:resourcetype><d:collection/></d:resourcetype>")
                         for n in ("inbox", "outbox", "trashbin")]
            for (u, k, uri), c in sorted(self.collections.items()):
                if u == user and k == kind:
                    rows.append(self._resp(base + quote(uri) + "/", self._coll_props(c)))
        return respond(sr, 207, (MS + "".join(rows) + "</d:multistatus>").encode(), "application/xml; charset=utf-8")

    def _coll_props(self, c: Collection) -> str:
        rt = "<cal:calendar/>" if c.kind == "calendar" else "<card:addressbook/>"
        return (f"<d:resourcetype><d:collection/>{rt}</d:resourcetype><d:displayname>{escape(c.displayname)}"
                "</d:displayname>")

    def _resp(self, href: str, props: str) -> str:
        return (f"<d:response><d:href>{escape(href)}</d:href><d:propstat><d:prop>{props}</d:prop>"
                "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>")

    def collection(self, environ: Environ, sr: StartResponse, user: str, kind: str, uri: str,
                   coll: Collection | None, method: str) -> Iterable[bytes]:
        if method in ("MKCALENDAR", "MKCOL"):
            if coll is not None:
                return sabre_error(sr, 405, "The resource you tried to create already exists",
                                   exception="Sabre\\DAV\\Exception\\MethodNotAllowed")
            body = read_body(environ).decode("utf-8", "replace")
            if kind == "addressbook" and "addressbook" not in body:
                return sabre_error(sr, 403, "Creating a collection here is not allowed")
            name = re.search(r"<[a-z]*:?displayname>(.*?)</[a-z]*:?displayname>", body, re.S)
            color = re.search(r"calendar-color>(.*?)</", body, re.S)
            self.collections[(user, kind, uri)] = Collection(kind, uri, name.group(1) if name else uri,
                                                             color.group(1) if color else "")
            return respond(sr, 201)
        if coll is None:
            return sabre_error(sr, 404, f"Node with name '{uri}' could not be found")
        if method == "PROPFIND":
            base = (CAL_PREFIX if kind == "calendar" else CARD_PREFIX) + quote(user) + "/" + quote(uri) + "/"
            rows = [self._resp(base, self._coll_props(coll))]
            if header(environ, "Depth", "1") != "0":
                rows += [self._resp(base + quote(n), f"<d:getetag>{o.etag}</d:getetag><d:resourcetype/>")
                         for n, o in sorted(coll.objects.items())]
            return respond(sr, 207, (MS + "".join(rows) + "</d:multistatus>").encode(),
                           "application/xml; charset=utf-8")
        if method == "DELETE":
            del self.collections[(user, kind, uri)]
            return respond(sr, 204)
        if method == "PROPPATCH":   # Sabre answers 207 with a status per property
            name = re.search(r"<[a-z]*:?displayname>(.*?)</[a-z]*:?displayname>",
                             read_body(environ).decode("utf-8", "replace"), re.S)
            if name:
                coll.displayname = name.group(1)
            base = (CAL_PREFIX if kind == "calendar" else CARD_PREFIX) + quote(user) + "/" + quote(uri) + "/"
            return respond(sr, 207, (MS + f"<d:response><d:href>{base}</d:href><d:propstat><d:prop><d:displayname/>"
                                     "</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
                                     "</d:multistatus>").encode(), "application/xml; charset=utf-8")
        return sabre_error(sr, 405, f"{method} is not allowed here")

    # ------------------------------------------------------------------ objects
    def object(self, environ: Environ, sr: StartResponse, user: str, coll: Collection, name: str, method: str
               ) -> Iterable[bytes]:
        obj = coll.objects.get(name)
        if method == "GET":
            if obj is None:
                return sabre_error(sr, 404, "Calendar object not found" if coll.kind == "calendar"
                                   else "Card not found")
            ctype = "text/calendar; charset=utf-8" if coll.kind == "calendar" else "text/vcard; charset=utf-8"
            return respond(sr, 200, obj.body, ctype, [("ETag", obj.etag)])
        if method == "PUT":
            return self.put(environ, sr, user, coll, name, obj)
        if method == "DELETE":
            if obj is None:
                return sabre_error(sr, 404, "Calendar object not found")
            im = header(environ, "If-Match")
            if im and im != obj.etag:
                return sabre_error(sr, 412, "An If-Match header was specified, but none of the specified ETags "
                                   "matched.")
            del coll.objects[name]
            if coll.kind == "calendar":
                if header(environ, "Schedule-Reply", "T") != "F":   # x-nc-scheduling is ignored here in 32.0.1
                    self.schedule(user, obj.body, "CANCEL", deleting=True)
                self.trash[obj.id] = (user, coll.uri, name, obj)
            return respond(sr, 204)
        return sabre_error(sr, 405, f"{method} is not allowed on an object")

    def put(self, environ: Environ, sr: StartResponse, user: str, coll: Collection, name: str,
            obj: DavObject | None) -> Iterable[bytes]:
        body = read_body(environ, limit=64 * 1024 * 1024)
        limit = EVENT_SIZE_LIMIT if coll.kind == "calendar" else CARD_SIZE_LIMIT
        if len(body) > limit:
            return sabre_error(sr, 403, f"VEvent or VTodo object exceeds {limit} bytes" if coll.kind == "calendar"
                               else f"VCard object exceeds {limit} bytes")
        inm, im = header(environ, "If-None-Match"), header(environ, "If-Match")
        if inm == "*" and obj is not None:
            return sabre_error(sr, 412, "An If-None-Match header was specified, but the ETag matched (or * was "
                               "specified).")
        if im and (obj is None or im != obj.etag):
            return sabre_error(sr, 412, "An If-Match header was specified, but none of the specified ETags matched.")
        strict = "handling=strict" in (header(environ, "Prefer") or "")
        check = self.validate_ical(body) if coll.kind == "calendar" else self.validate_vcard(body)
        if isinstance(check[0], int):
            return sabre_error(sr, int(check[0]), str(check[1]))
        uid, repaired = str(check[0]), bool(check[1])
        if repaired and strict:
            return sabre_error(sr, 415, "Validation error in iCalendar: UID MUST appear exactly once")
        for other_name, other in coll.objects.items():
            if other.uid == uid and other_name != name:
                what = "Calendar" if coll.kind == "calendar" else "VCard"
                where = "calendar" if coll.kind == "calendar" else "addressbook"
                return sabre_error(sr, 400, f"{what} object with uid already exists in this {where} collection.")
        if coll.kind == "calendar" and obj is None and any(
                t[0] == user and t[1] == coll.uri and t[3].uid == uid for t in self.trash.values()):
            return sabre_error(sr, 500, "An exception occurred while executing a query: SQLSTATE[23000]: Integrity "
                               "constraint violation: 19 UNIQUE constraint failed: oc_calendarobjects.calendarid, "
                               "oc_calendarobjects.calendartype, oc_calendarobjects.uid")
        if repaired:
            for begin in (b"BEGIN:VCARD\r\n", b"BEGIN:VEVENT\r\n"):
                body = body.replace(begin, begin + b"UID:" + uid.encode() + b"\r\n", 1)
        new = DavObject(uid, body, obj.id if obj else self._next_id())
        coll.objects[name] = new
        scheduled = False
        if coll.kind == "calendar" and (header(environ, "x-nc-scheduling", "") or "").lower() != "false" \
                and header(environ, "Schedule-Reply", "T") != "F":
            scheduled = self.schedule(user, body, "REQUEST", deleting=False)
        headers = [] if (scheduled or repaired) else [("ETag", new.etag)]
        return respond(sr, 201 if obj is None else 204, b"", None, headers)

    # ------------------------------------------------------------------ validation
    def validate_ical(self, body: bytes) -> tuple[str, bool] | tuple[int, str]:
        import icalendar

        try:
            cal = icalendar.Calendar.from_ical(body)
        except ValueError as exc:
            return 415, f"Validation error in iCalendar: {exc}"
        if "METHOD" in cal:
            return 415, ("Validation error in iCalendar: A calendar object on a CalDAV server MUST NOT have a METHOD "
                         "property.")
        events = [c for c in cal.walk("VEVENT")]
        if not events:
            return 403, "iCalendar objects must at least have a component of type VEVENT"
        uids = {str(e.get("UID")) for e in events if e.get("UID") is not None}
        if len(uids) > 1:
            return 415, ("Validation error in iCalendar: A calendar object on a CalDAV server may only have components "
                         "with the same UID.")
        masters = [e for e in events if "RECURRENCE-ID" not in e]
        if len(masters) > 1:
            return 415, (f"Validation error in iCalendar: More than one master object was found for the object with "
                         f"UID {next(iter(uids), '')}")
        for e in events:
            if "DTSTAMP" not in e:
                return 415, "Validation error in iCalendar: DTSTAMP MUST appear exactly once in a VEVENT component"
        if masters and ("RRULE" in masters[0] or "RDATE" in masters[0]) and not self._has_instances(body):
            return 403, "This recurrence rule does not generate any valid instances"
        if not uids:
            return "sabre-vobject-" + str(uuid.uuid4()), True
        return uids.pop(), False

    def _has_instances(self, body: bytes) -> bool:
        import icalendar
        import recurring_ical_events

        cal = icalendar.Calendar.from_ical(body)
        try:
            return any(True for _ in recurring_ical_events.of(cal).between(
                dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC)))
        except Exception:   # noqa: BLE001 - Sabre would refuse what it cannot expand
            return False

    def validate_vcard(self, body: bytes) -> tuple[str, bool] | tuple[int, str]:
        text = body.decode("utf-8", "replace")
        if "BEGIN:VCARD" not in text:
            return 415, "Validation error in vCard: no VCARD component"
        m = re.search(r"^UID:(.*?)\r?$", text, re.M)
        if m is None:
            return str(uuid.uuid4()), True
        return m.group(1).strip(), False

    # ------------------------------------------------------------------ scheduling (the hazard)
    def schedule(self, owner: str, body: bytes, method: str, *, deleting: bool) -> bool:
        """iTIP for an object the owner organises: deliver to local attendees, mail the others. True if it did."""
        import icalendar

        me = self.state.users[owner].email.lower() if owner in self.state.users else ""
        cal = icalendar.Calendar.from_ical(body)
        did = False
        for ev in cal.walk("VEVENT"):
            org = str(ev.get("ORGANIZER") or "").lower().removeprefix("mailto:")
            if not me or org != me:
                continue
            atts = ev.get("ATTENDEE") or []
            for a in atts if isinstance(atts, list) else [atts]:
                if str(a.params.get("SCHEDULE-AGENT", "SERVER")).upper() == "CLIENT":
                    continue
                addr = str(a).lower().removeprefix("mailto:")
                cutype = str(a.params.get("CUTYPE", "INDIVIDUAL")).upper()
                local = next((u for u in self.state.users.values() if u.email.lower() == addr and u.uid != owner),
                             None)
                if local is not None:
                    self._deliver(local.uid, body, ev)
                    did = True
                if cutype in ("ROOM", "RESOURCE") and not deleting:
                    continue
                subject = ("Cancelled: " if method == "CANCEL" else "Invitation: ") + str(ev.get("SUMMARY") or "")
                self.mails.append({"to": addr, "subject": subject, "method": method, "from": owner})
                did = True
        return did

    def _deliver(self, uid: str, body: bytes, ev: Any) -> None:
        """Into the attendee's default calendar: `personal`, else the first writable calendar (on 32.0.1 that
        can be a calendar the migration created), else a new `personal` (§6.1, seen on the real server)."""
        coll = self.collections.get((uid, "calendar", "personal")) or next(
            (c for (u, k, _), c in sorted(self.collections.items()) if u == uid and k == "calendar"), None)
        if coll is None:
            coll = self.collections[(uid, "calendar", "personal")] = Collection("calendar", "personal", "Personal")
        name = f"sabredav-{uuid.uuid4()}.ics"
        coll.objects[name] = DavObject(str(ev.get("UID")), body, self._next_id())
        self.deliveries.append({"user": uid, "calendar": coll.uri, "name": name, "uid": str(ev.get("UID"))})

    # ------------------------------------------------------------------ trash bin
    def trashbin(self, environ: Environ, sr: StartResponse, user: str, method: str, rest: list[str]
                 ) -> Iterable[bytes]:
        if rest[:1] != ["objects"]:
            return sabre_error(sr, 404, "Not found")
        if len(rest) == 1:
            if method == "PROPFIND":
                return sabre_error(sr, 501, "Not implemented", exception="Sabre\\DAV\\Exception\\NotImplemented")
            if method == "REPORT":
                text = read_body(environ).decode("utf-8", "replace")
                m = re.search(r"<[a-z]*:?text-match[^>]*>(.*?)</", text, re.S)
                want = m.group(1).strip() if m else None
                rows = [self._resp(f"{CAL_PREFIX}{quote(user)}/trashbin/objects/{i}.ics",
                                   f"<d:getetag>{o.etag}</d:getetag><nc:calendar-uri>{escape(uri)}</nc:calendar-uri>")
                        for i, (u, uri, _n, o) in sorted(self.trash.items())
                        if u == user and (want is None or o.uid == want)]
                return respond(sr, 207, (MS + "".join(rows) + "</d:multistatus>").encode(),
                               "application/xml; charset=utf-8")
            return sabre_error(sr, 405, f"{method} is not allowed here")
        m = re.fullmatch(r"(\d+)\.ics", rest[1])
        entry = self.trash.get(int(m.group(1))) if m else None
        if entry is None or entry[0] != user:
            return sabre_error(sr, 404, "Not found")
        if method == "DELETE":
            del self.trash[int(m.group(1))]  # type: ignore[union-attr]
            return respond(sr, 204)
        if method == "GET":
            return respond(sr, 200, entry[3].body, "text/calendar; charset=utf-8")
        return sabre_error(sr, 405, f"{method} is not allowed here")
