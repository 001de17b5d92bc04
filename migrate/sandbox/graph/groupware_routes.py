"""Graph v1.0 routes over the sandbox mailboxes: calendars, events, instances, calendarView (+delta), attachments,
contact folders (nested), contacts (+delta) and photos, with the shapes and gaps of the real service
(reference groupware.md §2–§3): `/events` lists only singles and masters, cancelled occurrences are absent,
times follow `Prefer: outlook.timezone` (UTC by default) except all-day dates, which are never shifted.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from .calendars import HORIZON, Event, Groupware, Mailbox, zone
from .faults import error_body
from .http import Request, Response
from .tenant import User

Handler = Callable[[], Response]
SEGMENTS = {"calendars", "calendar", "calendarGroups", "events", "calendarView", "contactFolders", "contacts"}
_TZ = re.compile(r'outlook\.timezone="([^"]+)"', re.I)
# PidLidHasPicture (PSETID_Address, LID 0x8015, PT_BOOLEAN): whether a contact has a photo, readable through
# `$expand=singleValueExtendedProperties($filter=id eq '…')` instead of asking for the photo itself.
HAS_PICTURE = "Boolean {00062004-0000-0000-c000-000000000046} Id 0x8015"
_EXPAND_IDS = re.compile(r"singleValueExtendedProperties\(\$filter=(.*)\)\s*$", re.I)
_ID_EQ = re.compile(r"id\s+eq\s+'([^']*)'", re.I)


def _j(status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, json.dumps(obj, ensure_ascii=False).encode(), headers or [])


def _err(status: int, code: str, message: str) -> Response:
    return Response(status, error_body(status, code, message))


def _parse_instant(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)   # no offset means UTC (§2.2)


def _tok(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")


def _untok(text: str) -> dict[str, Any] | None:
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, json.JSONDecodeError):
        return None


class GroupwareRoutes:
    """Dispatch `/users/{id}/<segment>/…` for the mailbox segments; everything is read-only over HTTP."""

    def __init__(self, groupware: Groupware) -> None:
        self.gw = groupware
        self.requests: dict[str, int] = {}

    # ------------------------------------------------------------------ rendering
    def _when(self, local: dt.datetime, e: Event, tzname: str) -> dict[str, str]:
        if e.all_day:   # dates are dates: never shifted into the requested zone (§2.6)
            return {"dateTime": local.strftime("%Y-%m-%dT00:00:00.0000000"), "timeZone": tzname}
        t = local.replace(tzinfo=zone(e.tz)).astimezone(zone(tzname) if tzname in _known() else dt.UTC)
        return {"dateTime": t.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": tzname}

    def _event(self, e: Event, tzname: str, inst: dict[str, Any] | None = None) -> dict[str, Any]:
        out = {k: v for k, v in e.data.items()}
        if inst is None:
            out["start"], out["end"] = self._when(e.start, e, tzname), self._when(e.end, e, tzname)
            return out
        out.pop("recurrence", None)
        out.update({k: v for k, v in inst.items() if not k.startswith("_")})
        out["iCalUId"] = e.data["iCalUId"][:40] + inst["_date"].strftime("%Y%m%d") + e.data["iCalUId"][48:]
        out["start"], out["end"] = self._when(inst["_start"], e, tzname), self._when(inst["_end"], e, tzname)
        return out

    def _span(self, e: Event, local_start: dt.datetime, local_end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        return e.aware(local_start).astimezone(dt.UTC), e.aware(local_end).astimezone(dt.UTC)

    def view(self, mb: Mailbox, cal_id: str, lo: dt.datetime, hi: dt.datetime, tzname: str,
             only: set[str] | None = None) -> list[dict[str, Any]]:
        """calendarView: singles, occurrences and exceptions overlapping [lo, hi); never masters."""
        return [item for _pos, item in self._view_from(mb, cal_id, lo, hi, tzname, only)]

    def _view_from(self, mb: Mailbox, cal_id: str, lo: dt.datetime, hi: dt.datetime, tzname: str,
                   only: set[str] | None = None, at: tuple[int, int] = (0, 0)) -> Any:
        """The view from position `at` (event index, index among that event's items) on, as (position, item):
        a page of a long delta round is made from where the last one stopped, not from the whole view again."""
        for ei, e in enumerate(mb.events.get(cal_id, [])[at[0]:], start=at[0]):
            if only is not None and e.id not in only:
                continue
            if e.data.get("recurrence"):
                items = [inst for inst in e.instances(min(HORIZON, hi.date() + dt.timedelta(days=1)))
                         if self._overlaps(e, inst["_start"], inst["_end"], lo, hi)]
                start = at[1] if ei == at[0] else 0
                for ii, inst in enumerate(items[start:], start=start):
                    yield (ei, ii), self._event(e, tzname, inst)
            elif (at[1] == 0 or ei != at[0]) and self._overlaps(e, e.start, e.end, lo, hi):
                yield (ei, 0), self._event(e, tzname)

    def _overlaps(self, e: Event, local_start: dt.datetime, local_end: dt.datetime, lo: dt.datetime,
                  hi: dt.datetime) -> bool:
        s, en = self._span(e, local_start, local_end)
        return s < hi and en > lo

    # ------------------------------------------------------------------ dispatch
    def route(self, req: Request, base: str, user: User, segs: list[str]) -> tuple[str, Handler]:
        mb = self.gw.mailbox(user)
        m = _TZ.search(req.headers.get("prefer", ""))
        tzname = m.group(1) if m else "UTC"
        head = segs[0]
        if head == "calendarGroups":
            grp = {"id": mb.calendars[0]["id"] + "G", "name": "My Calendars", "classId": "0006f0b7-0000-0000-c000-"
                   "000000000046", "changeKey": "AAAA"}
            if len(segs) == 1:
                return "calendarGroups", lambda: _j(200, {"value": [grp]})
            if len(segs) == 3 and segs[1] == grp["id"] and segs[2] == "calendars":
                return "calendars", lambda: _j(200, {"value": mb.calendars})
            return "calendarGroups", lambda: _err(404, "ErrorItemNotFound", "The specified object was not found.")
        if head == "calendar":
            segs = ["calendars", mb.calendars[0]["id"], *segs[1:]]
        if head == "calendarView":
            segs = ["calendars", mb.calendars[0]["id"], *segs]
        if head == "events":
            return self._events(req, base, mb, None, segs[1:], tzname)
        if segs[0] == "calendars":
            if len(segs) == 1:
                return "calendars", lambda: self._paged(req, base, "calendars", mb.calendars, 10)
            cal = next((c for c in mb.calendars if c["id"] == segs[1]), None)
            if cal is None:
                return "calendar", lambda: _err(404, "ErrorItemNotFound", "The specified object was not found in "
                                                "the store.")
            rest = segs[2:]
            if not rest:
                return "calendar", lambda: _j(200, cal)
            if rest[0] == "events":
                return self._events(req, base, mb, cal["id"], rest[1:], tzname)
            if rest == ["calendarView"]:
                return "calendarView", lambda: self._view(req, base, mb, cal["id"], tzname)
            if rest == ["calendarView", "delta"]:
                return "calendarDelta", lambda: self._view_delta(req, base, mb, cal["id"], tzname)
        if head == "contacts":
            if len(segs) == 1:
                return "contacts", lambda: self._paged(req, base, "contacts",
                                                       self._contacts(req, mb, mb.contacts[mb.root_folder]), 10)
            c = mb.contact(segs[1])
            if c is None:
                return "contact", lambda: _err(404, "ErrorItemNotFound", "The specified object was not found in "
                                               "the store.")
            if len(segs) == 2:
                return "contact", lambda: _j(200, self._contacts(req, mb, [c])[0])
            if segs[2:] in (["photo", "$value"], ["photo", "value"]):
                photo = mb.photos.get(c["id"])
                if photo is None:
                    return "photo", lambda: _err(404, "ImageNotFound", "The photo wasn't found.")
                return "photo", lambda: Response(200, photo, [], content_type="image/jpeg")
        if head == "contactFolders":
            top = [f for f in mb.folders if f.get("parentFolderId") == mb.root_folder]
            if len(segs) == 1:
                return "contactFolders", lambda: self._paged(req, base, "contactFolders", top, 10)
            f = next((x for x in mb.folders if x["id"] == segs[1]), None)
            if f is None:
                return "contactFolder", lambda: _err(404, "ErrorItemNotFound", "The specified folder was not found.")
            rest = segs[2:]
            if not rest:
                return "contactFolder", lambda: _j(200, f)
            if rest == ["childFolders"]:
                kids = [x for x in mb.folders if x.get("parentFolderId") == f["id"]]
                return "contactFolders", lambda: self._paged(req, base, "contactFolders", kids, 10)
            if rest == ["contacts"]:
                return "contacts", lambda: self._paged(req, base, "contacts",
                                                       self._contacts(req, mb, mb.contacts.get(f["id"], [])), 10)
            if rest == ["contacts", "delta"]:
                return "contactDelta", lambda: self._contact_delta(req, base, mb, f["id"])
        return "mailbox", lambda: _err(400, "BadRequest", f"Resource not found for the segment '{segs[-1]}'.")

    def _contacts(self, req: Request, mb: Mailbox, contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Contacts with the extended properties `$expand` asks for (only PidLidHasPicture is known here): "true"
        where there is a photo; where there is none the property is absent, or "false" for every third contact
        (a photo that was removed), so readers handle both; `$select` keeps only the fields named (and id)."""
        m = _EXPAND_IDS.search(req.query.get("$expand", ""))
        wanted = {i.lower() for i in _ID_EQ.findall(m.group(1))} if m else set()
        fields = [f.strip() for f in req.query.get("$select", "").split(",") if f.strip()]
        if not wanted and not fields:
            return contacts
        out = []
        for c in contacts:
            row = {k: v for k, v in c.items() if k in fields or k == "id" or k.startswith("@")} if fields else dict(c)
            if HAS_PICTURE.lower() in wanted:
                flag = "true" if c["id"] in mb.photos else "false" if sum(map(ord, c["id"])) % 3 == 0 else None
                if flag is not None:
                    row["singleValueExtendedProperties"] = [{"id": HAS_PICTURE, "value": flag}]
            out.append(row)
        return out

    def _events(self, req: Request, base: str, mb: Mailbox, cal_id: str | None, rest: list[str], tzname: str
                ) -> tuple[str, Handler]:
        if not rest:
            if cal_id is None:
                cal_id = mb.calendars[0]["id"]
            evs = mb.events.get(cal_id, [])
            return "events", lambda: self._paged(req, base, "events", [self._event(e, tzname) for e in evs], 10,
                                                 maximum=1000)
        found = mb.event(rest[0])
        if found is None or (cal_id is not None and found[0] != cal_id):
            return "event", lambda: _err(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        e = found[1]
        if len(rest) == 1:
            return "event", lambda: _j(200, self._event(e, tzname))
        if rest[1:] == ["instances"]:
            return "instances", lambda: self._instances(req, base, e, tzname)
        if rest[1:] == ["attachments"]:
            return "attachment", lambda: _j(200, {"value": [_att_json(a, req.query.get("$select"))
                                                            for a in e.attachments]})
        if len(rest) in (3, 4) and rest[1] == "attachments":
            att = next((a for a in e.attachments if a["id"] == rest[2]), None)
            if att is None:
                return "attachment", lambda: _err(404, "ErrorItemNotFound", "The specified object was not found in "
                                                  "the store.")
            if len(rest) == 3:
                return "attachment", lambda: _j(200, _att_json(att, req.query.get("$select")))
            if rest[3] == "$value":
                return "attachment", lambda: _att_value(att)
        return "event", lambda: _err(400, "BadRequest", f"Resource not found for the segment '{rest[-1]}'.")

    def _window(self, req: Request) -> tuple[dt.datetime, dt.datetime] | Response:
        lo, hi = _parse_instant(req.query.get("startDateTime")), _parse_instant(req.query.get("endDateTime"))
        if lo is None or hi is None:
            return _err(400, "ErrorInvalidParameter", "This request requires a time window specified by the query "
                        "string parameters StartDateTime and EndDateTime.")
        return lo, hi

    def _instances(self, req: Request, base: str, e: Event, tzname: str) -> Response:
        win = self._window(req)
        if isinstance(win, Response):
            return win
        lo, hi = win
        vals = []
        for inst in e.instances(min(HORIZON, hi.date() + dt.timedelta(days=1))):
            s, en = self._span(e, inst["_start"], inst["_end"])
            if s < hi and en > lo:
                vals.append(self._event(e, tzname, inst))
        return self._paged(req, base, "events", vals, 10, maximum=1000)

    def _view(self, req: Request, base: str, mb: Mailbox, cal_id: str, tzname: str) -> Response:
        win = self._window(req)
        if isinstance(win, Response):
            return win
        return self._paged(req, base, "events", self.view(mb, cal_id, *win, tzname), 10, maximum=1000)

    def _paged(self, req: Request, base: str, what: str, values: list[Any], default: int, maximum: int = 999
               ) -> Response:
        try:
            top = max(1, min(maximum, int(req.query.get("$top", default))))
            skip = int(req.query.get("$skip", "0"))
        except ValueError:
            return _err(400, "BadRequest", "Invalid $top or $skip.")
        page = values[skip:skip + top]
        body: dict[str, Any] = {"@odata.context": f"{base}/$metadata#{what}", "value": page}
        if skip + top < len(values):
            body["@odata.nextLink"] = skip_link(req, base, top, skip + top)
        return _j(200, body)

    # ------------------------------------------------------------------ delta
    def _delta_page(self, base: str, path: str, values: list[Any], state: dict[str, Any], mb: Mailbox,
                    page: int) -> Response:
        off = int(state.get("o", 0))
        chunk = values[off:off + page]
        body: dict[str, Any] = {"@odata.context": f"{base}/$metadata#Collection(event)", "value": chunk}
        if off + page < len(values):
            body["@odata.nextLink"] = f"{base}{path}?$skiptoken={_tok({**state, 'o': off + page})}"
        else:
            body["@odata.deltaLink"] = f"{base}{path}?$deltatoken={_tok({k: v for k, v in state.items() if k != 'o'} | {'seq': mb.seq})}"
        return _j(200, body)

    def _changed_since(self, mb: Mailbox, seq: int, kind: str) -> tuple[set[str], set[str]]:
        changed = {i for s, k, i in mb.changes if s > seq and k == kind}
        removed = {i for i, s in mb.removed.items() if s > seq and i in changed}
        return changed - removed, removed

    def _view_delta(self, req: Request, base: str, mb: Mailbox, cal_id: str, tzname: str) -> Response:
        path = "/" + req.path.split("/", 2)[2] if req.path.startswith(("/v1.0", "/beta")) else req.path
        tok = req.query.get("$skiptoken") or req.query.get("$deltatoken")
        if tok:
            state = _untok(tok)
            if state is None:
                return _err(410, "SyncStateNotFound", "The sync state could not be found.")
        else:
            if "$select" in req.query or "$expand" in req.query or "$filter" in req.query:
                return _err(400, "ErrorInvalidUrlQuery", "The following parameters are not supported with change "
                            "tracking over the 'CalendarView' resource: '$orderby, $filter, $select, $expand, $search, "
                            "$top'.")
            win = self._window(req)
            if isinstance(win, Response):
                return win
            state = {"s": win[0].isoformat(), "e": win[1].isoformat(), "seq": -1}
        lo, hi = dt.datetime.fromisoformat(state["s"]), dt.datetime.fromisoformat(state["e"])
        page = _maxpage(req)
        if state["seq"] < 0:
            return self._first_round_page(base, path, mb, cal_id, lo, hi, tzname, state, page)
        else:
            changed, removed = self._changed_since(mb, int(state["seq"]), "event")
            values = self.view(mb, cal_id, lo, hi, tzname, only=changed)
            inside = {v.get("seriesMasterId") or v["id"] for v in values}
            mine = {e.id for e in mb.events.get(cal_id, [])}
            # added/changed outside the window: reported as removed, like deletions (§2.5)
            removed |= {i for i in changed - inside if i in mine}
            values += [{"id": i, "@removed": {"reason": "deleted"}} for i in sorted(removed)]
        if "seqd" not in state:
            state["seqd"] = mb.seq
        return self._delta_page(base, path, values, {**state, "seq": state["seq"]}, mb, page)

    def _first_round_page(self, base: str, path: str, mb: Mailbox, cal_id: str, lo: dt.datetime, hi: dt.datetime,
                          tzname: str, state: dict[str, Any], page: int) -> Response:
        """One page of a first delta round (the whole window), resumed at the position its skiptoken carries."""
        at = tuple(state.get("at") or (0, 0))
        chunk, nxt = [], None
        for pos, item in self._view_from(mb, cal_id, lo, hi, tzname, at=(int(at[0]), int(at[1]))):
            if len(chunk) == page:
                nxt = pos
                break
            chunk.append(item)
        body: dict[str, Any] = {"@odata.context": f"{base}/$metadata#Collection(event)", "value": chunk}
        if nxt is not None:
            body["@odata.nextLink"] = f"{base}{path}?$skiptoken={_tok({**state, 'at': list(nxt)})}"
        else:
            done = {k: v for k, v in state.items() if k != "at"}
            body["@odata.deltaLink"] = f"{base}{path}?$deltatoken={_tok(done | {'seq': mb.seq})}"
        return _j(200, body)

    def _contact_delta(self, req: Request, base: str, mb: Mailbox, folder_id: str) -> Response:
        path = "/" + req.path.split("/", 2)[2] if req.path.startswith(("/v1.0", "/beta")) else req.path
        tok = req.query.get("$skiptoken") or req.query.get("$deltatoken")
        state = _untok(tok) if tok else {"seq": -1}
        if state is None:
            return _err(410, "SyncStateNotFound", "The sync state could not be found.")
        contacts = mb.contacts.get(folder_id, [])
        if state["seq"] < 0:
            values: list[Any] = list(contacts)
        else:
            changed, removed = self._changed_since(mb, int(state["seq"]), "contact")
            values = [c for c in contacts if c["id"] in changed]
            values += [{"id": i, "@removed": {"reason": "deleted"}} for i in sorted(removed)]
        return self._delta_page(base, path, values, state, mb, _maxpage(req))


def _att_json(att: dict[str, Any], select: str | None) -> dict[str, Any]:
    """An attachment as Graph lists it: `$select` keeps the named properties (plus its type and id)."""
    out = {k: v for k, v in att.items() if not k.startswith("_")}
    if select:
        keep = {x.strip() for x in select.split(",")} | {"@odata.type", "id"}
        out = {k: v for k, v in out.items() if k in keep}
    return out


def _att_value(att: dict[str, Any]) -> Response:
    """`$value`: a file's raw bytes, an attached item's MIME text, 405 for a reference attachment (§2.8)."""
    kind = str(att.get("@odata.type") or "")
    if kind.endswith("referenceAttachment"):
        return _err(405, "ErrorInvalidRequest", "The OData request is not supported. $value is not supported "
                    "for a reference attachment.")
    if kind.endswith("itemAttachment"):
        return Response(200, att.get("_mime") or b"", [], content_type="message/rfc822")
    return Response(200, base64.b64decode(att.get("contentBytes") or ""), [],
                    content_type=att.get("contentType") or "application/octet-stream")


def skip_link(req: Request, base: str, top: int, skip: int) -> str:
    """The nextLink of a `$top`/`$skip` page: the same query with the next `$skip`, absolute, on our host."""
    qs = "&".join(f"{k}={quote(v, safe=',$()')}" for k, v in req.query.items() if k not in ("$skip", "$top"))
    path = req.path.split("?")[0]
    path = path[path.index("/", 1):] if path.startswith(("/v1.0", "/beta")) else path
    return f"{base}{path}?{qs + '&' if qs else ''}$top={top}&$skip={skip}"


def _maxpage(req: Request) -> int:
    m = re.search(r"odata\.maxpagesize=(\d+)", req.headers.get("prefer", ""))
    return max(1, min(1000, int(m.group(1)))) if m else 100


def _known() -> set[str]:
    from .calendars import ZONES

    return set(ZONES)
