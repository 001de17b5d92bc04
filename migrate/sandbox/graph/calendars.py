"""Mailbox data of the sandbox tenant: calendars, events with real recurrence rules, contact folders and contacts.

Generated lazily per user from the tenant seed (file-only tests pay nothing). The data is deliberately nasty
(reference groupware.md): series with moved and cancelled occurrences, Windows zones incl. ones without an IANA
twin, all-day and multi-day events, private events, attendees and rooms, attachments, Unicode everywhere,
photos, nested contact folders. Occurrences are expanded here by this module's own day walk (not by an RRULE
library), so a client's RRULE translation is checked against an independent implementation. Exchange-like
choices where the reference is open: a monthly pattern on day 29–31 falls on the month's last day.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import random
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from .tenant import Tenant, User

# The sandbox's own Windows → IANA table (what Exchange means); fixed offsets for zones without an IANA twin.
ZONES: dict[str, dt.tzinfo] = {
    "W. Europe Standard Time": ZoneInfo("Europe/Berlin"),
    "Romance Standard Time": ZoneInfo("Europe/Paris"),
    "Pacific Standard Time": ZoneInfo("America/Los_Angeles"),
    "Tokyo Standard Time": ZoneInfo("Asia/Tokyo"),
    "India Standard Time": ZoneInfo("Asia/Kolkata"),
    "AUS Eastern Standard Time": ZoneInfo("Australia/Sydney"),
    "UTC": dt.UTC,
    "tzone://Microsoft/Utc": dt.UTC,
    "Customized Time Zone": dt.timezone(dt.timedelta(hours=3)),
    "tzone://Microsoft/Custom": dt.timezone(dt.timedelta(hours=-3, minutes=-30)),
}
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
INDEX = {"first": 0, "second": 1, "third": 2, "fourth": 3, "last": -1}
HORIZON = dt.date(2036, 12, 31)    # noEnd series are expanded up to here (or the requested window end)
BASE = dt.date(2027, 1, 4)         # a Monday; the generated calendar lives in 2027–2028
GEN_STAMP = "2026-11-02T08:00:00Z"
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffdb004300") + bytes(range(64)) + b"\xff\xd9"


def item_attachment(ident: str, subject: str, sender: str) -> dict[str, Any]:
    """An attached mail (itemAttachment): listed without bytes, its `$value` is the message as MIME (§2.8)."""
    mime = (f"From: {sender}\r\nTo: {sender}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nProtokoll: alles besprochen.\r\n").encode()
    return {"@odata.type": "#microsoft.graph.itemAttachment", "id": ident, "name": subject, "contentType": None,
            "size": len(mime) + 2048, "isInline": False, "lastModifiedDateTime": GEN_STAMP, "_mime": mime}


def zone(name: str) -> dt.tzinfo:
    return ZONES.get(name) or ZoneInfo("UTC")


def _last_day(y: int, m: int) -> int:
    nxt = dt.date(y + (m == 12), m % 12 + 1, 1)
    return (nxt - dt.timedelta(days=1)).day


def _add_months(y: int, m: int, n: int) -> tuple[int, int]:
    k = y * 12 + (m - 1) + n
    return k // 12, k % 12 + 1


def slot_dates(pattern: dict[str, Any], rng: dict[str, Any], stop: dt.date) -> list[dt.date]:
    """Every date the pattern produces from range.startDate, honouring the range end, up to `stop` (inclusive)."""
    start = dt.date.fromisoformat(rng["startDate"])
    rtype = str(rng.get("type", "noEnd")).lower()
    end = dt.date.fromisoformat(rng["endDate"]) if rtype == "enddate" else stop
    end = min(end, stop)
    count = int(rng.get("numberOfOccurrences") or 0) if rtype == "numbered" else None
    ptype, interval = pattern["type"], max(1, int(pattern.get("interval") or 1))
    days = [DAYS.index(d) for d in pattern.get("daysOfWeek") or []]
    out: list[dt.date] = []

    def take(d: dt.date) -> bool:
        if d < start:
            return True
        if d > end or (count is not None and len(out) >= count):
            return False
        out.append(d)
        return True

    if ptype == "daily":
        d = start
        while take(d):
            d += dt.timedelta(days=interval)
    elif ptype == "weekly":
        first = DAYS.index(pattern.get("firstDayOfWeek") or "sunday")
        week = start - dt.timedelta(days=(start.weekday() - first) % 7)
        while week <= end:
            for off in range(7):
                d = week + dt.timedelta(days=off)
                if d.weekday() in days and not take(d):
                    return out
            week += dt.timedelta(weeks=interval)
    elif ptype in ("absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"):
        yearly = ptype.endswith("Yearly")
        y, m = start.year, (int(pattern["month"]) if yearly else start.month)
        step = 12 * interval if yearly else interval
        while dt.date(y, m, 1) <= end:
            if ptype.startswith("absolute"):
                d = dt.date(y, m, min(int(pattern["dayOfMonth"]), _last_day(y, m)))
            else:
                cands = [dt.date(y, m, n) for n in range(1, _last_day(y, m) + 1)
                         if dt.date(y, m, n).weekday() in days]
                d = cands[INDEX[pattern.get("index") or "first"]]
            if not take(d):
                return out
            y, m = _add_months(y, m, step)
    return out


@dataclass
class Event:
    """A single event or a series master, with its exceptions (by original date) and cancelled dates."""

    data: dict[str, Any]
    tz: str
    start: dt.datetime            # local, naive (or midnight for all-day)
    end: dt.datetime
    exceptions: dict[dt.date, dict[str, Any]] = field(default_factory=dict)
    cancelled: set[dt.date] = field(default_factory=set)
    attachments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def all_day(self) -> bool:
        return bool(self.data.get("isAllDay"))

    def aware(self, local: dt.datetime) -> dt.datetime:
        return local.replace(tzinfo=dt.UTC) if self.all_day else local.replace(tzinfo=zone(self.tz))

    def instances(self, stop: dt.date) -> list[dict[str, Any]]:
        """Occurrences and exceptions (v1.0 shape, internal times) up to `stop`; cancelled ones are absent."""
        rec = self.data.get("recurrence")
        if not rec:
            return []
        out = []
        dur = self.end - self.start
        for d in slot_dates(rec["pattern"], rec["range"], stop):
            if d in self.cancelled:
                continue
            local = dt.datetime.combine(d, self.start.time())
            orig = self.aware(local).astimezone(dt.UTC)
            inst: dict[str, Any] = {"_start": local, "_end": local + dur, "originalStart": _z(orig),
                                    "type": "occurrence", "id": f"{self.id}_OCC{d:%Y%m%d}",
                                    "seriesMasterId": self.id, "_date": d}
            exc = self.exceptions.get(d)
            if exc:
                inst.update(type="exception", **{k: v for k, v in exc.items() if not k.startswith("_")})
                inst["_start"], inst["_end"] = exc["_start"], exc["_end"]
            out.append(inst)
        return out


def _z(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Mailbox:
    """One user's calendars (with events) and contact folders (with contacts), plus a change log for delta."""

    user: User
    calendars: list[dict[str, Any]] = field(default_factory=list)
    events: dict[str, list[Event]] = field(default_factory=dict)      # calendar id -> events
    folders: list[dict[str, Any]] = field(default_factory=list)      # every contact folder; root has no parent
    contacts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # folder id -> contacts
    photos: dict[str, bytes] = field(default_factory=dict)
    seq: int = 0
    changes: list[tuple[int, str, str]] = field(default_factory=list)  # (seq, kind, id)
    removed: dict[str, int] = field(default_factory=dict)              # id -> seq of deletion

    @property
    def root_folder(self) -> str:
        return str(self.folders[0]["id"])

    def event(self, event_id: str) -> tuple[str, Event] | None:
        for cid, evs in self.events.items():
            for e in evs:
                if e.id == event_id:
                    return cid, e
        return None

    def contact(self, contact_id: str) -> dict[str, Any] | None:
        for cs in self.contacts.values():
            for c in cs:
                if c["id"] == contact_id:
                    return c
        return None

    def touch(self, kind: str, ident: str) -> None:
        self.seq += 1
        self.changes.append((self.seq, kind, ident))


class _Gen:
    """Deterministic mailbox generator for one user."""

    def __init__(self, tenant: Tenant, user: User, spec: Any) -> None:
        self.t, self.u, self.spec = tenant, user, spec
        self.rng = random.Random(f"gw:{tenant.seed}:{user.upn}")
        self.n = 0

    def gid(self, prefix: str) -> str:
        self.n += 1
        raw = hashlib.sha256(f"{self.u.id}:{prefix}:{self.n}".encode()).digest()[:18]
        return "AAMkA" + base64.b64encode(raw).decode().replace("/", "_")[:-1] + "="

    def uid(self) -> str:
        raw = hashlib.sha256(f"{self.u.id}:uid:{self.n}".encode()).hexdigest()[:48].upper()
        return "040000008200E00074C5B7101A82E00800000000" + raw

    def colleague(self) -> User:
        others = [x for x in self.t.users if x.id != self.u.id] or [self.u]
        return others[self.rng.randrange(len(others))]

    def me(self) -> dict[str, Any]:
        return {"emailAddress": {"name": self.u.display_name, "address": self.u.upn}}

    def event(self, subject: str, tz: str, start: dt.datetime, minutes: int, *, all_day_days: int = 0,
              recurrence: dict[str, Any] | None = None, attendees: bool = False, **extra: Any) -> Event:
        ident = self.gid("ev")
        end = start + (dt.timedelta(days=all_day_days) if all_day_days else dt.timedelta(minutes=minutes))
        data: dict[str, Any] = {
            "id": ident, "iCalUId": self.uid(), "subject": subject, "isAllDay": bool(all_day_days),
            "type": "seriesMaster" if recurrence else "singleInstance", "isCancelled": False,
            "originalStartTimeZone": tz, "originalEndTimeZone": tz, "recurrence": recurrence,
            "body": {"contentType": "html", "content": f"<html><body><p>{subject} — Agenda ✓</p></body></html>"},
            "bodyPreview": f"{subject} — Agenda ✓", "importance": "normal", "sensitivity": "normal",
            "showAs": "free" if all_day_days else "busy", "categories": [], "isReminderOn": not all_day_days,
            "reminderMinutesBeforeStart": 15, "hasAttachments": False, "isOrganizer": True,
            "organizer": self.me(), "attendees": [], "location": {"displayName": "", "locationType": "default"},
            "isOnlineMeeting": False, "onlineMeeting": None, "createdDateTime": "2026-10-01T08:00:00Z",
            "lastModifiedDateTime": GEN_STAMP, "changeKey": base64.b64encode(ident[-8:].encode()).decode(),
            "webLink": f"https://outlook.office365.com/owa/?itemid={ident}",
        }
        if attendees:
            c = self.colleague()
            data["attendees"] = [
                {"type": "required", "status": {"response": "accepted", "time": "2026-10-02T08:12:00Z"},
                 "emailAddress": {"name": c.display_name, "address": c.upn}},
                {"type": "optional", "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                 "emailAddress": {"name": "Eva Gäst", "address": "eva@example.org"}},
                {"type": "resource", "status": {"response": "accepted", "time": "2026-10-02T08:10:00Z"},
                 "emailAddress": {"name": "Besprechung 2.01", "address": "room201@contoso.onmicrosoft.com"}}]
            data["location"] = {"displayName": "Besprechung 2.01", "locationType": "conferenceRoom"}
            data["isOnlineMeeting"] = True
            data["onlineMeetingProvider"] = "teamsForBusiness"
            data["onlineMeeting"] = {"joinUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting_"
                                                f"{ident[-10:-1]}%40thread.v2/0?context=%7b%7d"}
        data.update(extra)
        return Event(data, tz, start, end)

    def build(self) -> Mailbox:
        mb = Mailbox(self.u)
        cal = {"id": self.gid("cal"), "name": "Calendar", "color": "auto", "hexColor": "", "isDefaultCalendar": True,
               "canEdit": True, "canShare": True, "canViewPrivateItems": True, "isRemovable": False,
               "owner": {"name": self.u.display_name, "address": self.u.upn}}
        proj = {**cal, "id": self.gid("cal"), "name": "Projekt X / Ünïcødé 会議", "color": "lightTeal",
                "hexColor": "#2ab4a6", "isDefaultCalendar": False, "isRemovable": True}
        other = self.colleague()
        shared = {**cal, "id": self.gid("cal"), "name": other.display_name, "isDefaultCalendar": False,
                  "canEdit": False, "owner": {"name": other.display_name, "address": other.upn}}
        mb.calendars = [cal, proj, shared]
        mb.events = {cal["id"]: self.nasty(), proj["id"]: self.filler(int(self.spec.groupware_events)),
                     shared["id"]: [self.event("Someone else's meeting", "UTC", dt.datetime(2027, 2, 1, 9), 30)]}
        self.contacts(mb)
        return mb

    def nasty(self) -> list[Event]:
        E, out = self.event, []
        w = {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "monday"}
        jf = E("Jour fixe", "W. Europe Standard Time", dt.datetime(2027, 1, 11, 10), 30, attendees=True,
               categories=["Projekt X"], recurrence={"pattern": w, "range": {
                   "type": "endDate", "startDate": "2027-01-11", "endDate": "2027-06-28",
                   "recurrenceTimeZone": "W. Europe Standard Time", "numberOfOccurrences": 0}})
        moved = dt.datetime(2027, 1, 19, 14)
        jf.exceptions[dt.date(2027, 1, 18)] = {"subject": "Jour fixe (verschoben)", "_start": moved,
                                               "_end": moved + dt.timedelta(minutes=30),
                                               "bodyPreview": "Diesmal Dienstag."}
        jf.cancelled.add(dt.date(2027, 1, 25))
        jf.cancelled.add(dt.date(2027, 3, 29))        # after the DST change
        out.append(jf)
        out.append(E("Standup über DST", "Pacific Standard Time", dt.datetime(2027, 3, 1, 9, 15), 15,
                     recurrence={"pattern": {"type": "daily", "interval": 2}, "range": {
                         "type": "numbered", "startDate": "2027-03-01", "numberOfOccurrences": 20,
                         "recurrenceTimeZone": "Pacific Standard Time"}}))
        out.append(E("月例会議 (first weekday)", "Tokyo Standard Time", dt.datetime(2027, 1, 1, 9), 60,
                     recurrence={"pattern": {"type": "relativeMonthly", "interval": 1, "index": "first",
                                             "daysOfWeek": DAYS[:5]},
                                 "range": {"type": "noEnd", "startDate": "2027-01-01",
                                           "recurrenceTimeZone": "Tokyo Standard Time"}}))
        ult = E("Month-end close (day 31)", "India Standard Time", dt.datetime(2027, 1, 31, 16, 30), 45,
                recurrence={"pattern": {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31},
                            "range": {"type": "numbered", "startDate": "2027-01-31", "numberOfOccurrences": 12,
                                      "recurrenceTimeZone": "India Standard Time"}})
        out.append(ult)
        out.append(E("Last Sunday of March", "AUS Eastern Standard Time", dt.datetime(2027, 3, 28, 11), 90,
                     recurrence={"pattern": {"type": "relativeYearly", "interval": 1, "month": 3, "index": "last",
                                             "daysOfWeek": ["sunday"]},
                                 "range": {"type": "endDate", "startDate": "2027-03-28", "endDate": "2030-12-31",
                                           "recurrenceTimeZone": "AUS Eastern Standard Time"}}))
        out.append(E("Jahrestag 🎉", "W. Europe Standard Time", dt.datetime(2027, 2, 14), 0, all_day_days=1,
                     recurrence={"pattern": {"type": "absoluteYearly", "interval": 1, "month": 2, "dayOfMonth": 14},
                                 "range": {"type": "noEnd", "startDate": "2027-02-14",
                                           "recurrenceTimeZone": "W. Europe Standard Time"}}))
        out.append(E("Fortnightly Mo/We/Fr", "Romance Standard Time", dt.datetime(2027, 2, 3, 8, 45), 20,
                     recurrence={"pattern": {"type": "weekly", "interval": 2, "daysOfWeek": ["monday", "wednesday",
                                                                                      "friday"],
                                             "firstDayOfWeek": "monday"},
                                 "range": {"type": "endDate", "startDate": "2027-02-03", "endDate": "2027-05-28",
                                           "recurrenceTimeZone": "Romance Standard Time"}}))
        out.append(E("Klausur (3 Tage)", "W. Europe Standard Time", dt.datetime(2027, 4, 14), 0, all_day_days=3))
        out.append(E("Arzttermin", "W. Europe Standard Time", dt.datetime(2027, 2, 9, 8, 30), 60,
                     sensitivity="private", body={"contentType": "html", "content": "<p>Privat</p>"}))
        out.append(E("Custom-zone call", "Customized Time Zone", dt.datetime(2027, 2, 10, 10), 45))
        out.append(E("Legacy Outlook zone", "tzone://Microsoft/Custom", dt.datetime(2027, 2, 11, 13), 30))
        out.append(E("Weekly in a custom zone", "Customized Time Zone", dt.datetime(2027, 3, 2, 10), 30,
                     recurrence={"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["tuesday"],
                                             "firstDayOfWeek": "sunday"},
                                 "range": {"type": "numbered", "startDate": "2027-03-02", "numberOfOccurrences": 8,
                                           "recurrenceTimeZone": "Customized Time Zone"}}))
        out.append(E("Zoë's Ünïcødé 会議 🎉; a,b\\c", "W. Europe Standard Time", dt.datetime(2027, 3, 3, 15), 60,
                     location={"displayName": "Café „Zur Post“", "locationType": "default"},
                     importance="high", categories=["Rot", "Wichtig"]))
        all_gone = E("Series with every occurrence cancelled", "UTC", dt.datetime(2027, 5, 3, 9), 30,
                     recurrence={"pattern": {"type": "daily", "interval": 1},
                                 "range": {"type": "numbered", "startDate": "2027-05-03", "numberOfOccurrences": 2,
                                           "recurrenceTimeZone": "UTC"}})
        all_gone.cancelled |= {dt.date(2027, 5, 3), dt.date(2027, 5, 4)}
        out.append(all_gone)
        ext = E("Invited by a partner", "W. Europe Standard Time", dt.datetime(2027, 3, 5, 11), 60, isOrganizer=False,
                organizer={"emailAddress": {"name": "Partner", "address": "boss@partner.example"}},
                attendees=[{"type": "required", "status": {"response": "accepted", "time": "2026-10-03T10:00:00Z"},
                            "emailAddress": {"name": self.u.display_name, "address": self.u.upn}}])
        out.append(ext)
        att = E("Mit Anhang", "W. Europe Standard Time", dt.datetime(2027, 3, 8, 9), 30, hasAttachments=True,
                attendees=True)
        size = max(1, int(self.spec.groupware_attachment_kb)) * 1024
        att.attachments = [
            {"@odata.type": "#microsoft.graph.fileAttachment", "id": self.gid("att"), "name": "Agenda Q1 ✓.txt",
             "contentType": "text/plain", "size": 26, "isInline": False,
             "contentBytes": base64.b64encode(b"Agenda: budget, roadmap.\n").decode()},
            {"@odata.type": "#microsoft.graph.fileAttachment", "id": self.gid("att"), "name": "Plan groß.pdf",
             "contentType": "application/pdf", "size": size, "isInline": False,
             "contentBytes": base64.b64encode(random.Random(size).randbytes(size)).decode()},
            {"@odata.type": "#microsoft.graph.referenceAttachment", "id": self.gid("att"), "name": "Budget.xlsx",
             "contentType": None, "size": 312, "isInline": False},
            item_attachment(self.gid("att"), "Protokoll letzte Woche", self.u.upn)]
        out.append(att)
        return out

    def filler(self, n: int) -> list[Event]:
        out = []
        zones = ["W. Europe Standard Time", "Pacific Standard Time", "Tokyo Standard Time", "UTC"]
        share = float(self.spec.groupware_recurring)
        for i in range(n):
            day = BASE + dt.timedelta(days=self.rng.randrange(600))
            start = dt.datetime.combine(day, dt.time(self.rng.randrange(7, 19), self.rng.choice([0, 15, 30, 45])))
            tz = zones[i % len(zones)]
            subject = f"{self.rng.choice(['Review', 'Planung', 'Sync', 'Workshop', 'Café'])} #{i} ✓"
            if self.rng.random() < share:
                wd = DAYS[day.weekday()]
                e = self.event(subject, tz, start, 30 + 15 * (i % 3), attendees=i % 5 == 0, recurrence={
                    "pattern": {"type": "weekly", "interval": 1 + i % 2, "daysOfWeek": [wd], "firstDayOfWeek": "monday"},
                    "range": {"type": "numbered", "startDate": day.isoformat(), "recurrenceTimeZone": tz,
                              "numberOfOccurrences": 4 + i % 9}})
                insts = slot_dates(e.data["recurrence"]["pattern"], e.data["recurrence"]["range"], HORIZON)
                if len(insts) > 3 and i % 3 == 0:
                    e.cancelled.add(insts[1])
                if len(insts) > 3 and i % 4 == 0:
                    d = insts[2]
                    s = dt.datetime.combine(d, start.time()) + dt.timedelta(hours=2)
                    e.exceptions[d] = {"subject": subject + " (moved)", "_start": s, "_end": s + (e.end - e.start)}
            elif i % 11 == 0:
                e = self.event(subject, tz, dt.datetime.combine(day, dt.time()), 0, all_day_days=1 + i % 2)
            else:
                e = self.event(subject, tz, start, 60, attendees=i % 7 == 0,
                               sensitivity="private" if i % 13 == 0 else "normal")
            out.append(e)
        return out

    def contacts(self, mb: Mailbox) -> None:
        root = {"id": self.gid("cf"), "displayName": "Contacts", "parentFolderId": self.gid("msgroot")}
        kunden = {"id": self.gid("cf"), "displayName": "Kunden", "parentFolderId": root["id"]}
        y2024 = {"id": self.gid("cf"), "displayName": "2024", "parentFolderId": kunden["id"]}
        privat = {"id": self.gid("cf"), "displayName": "Privat ♥", "parentFolderId": root["id"]}
        mb.folders = [root, kunden, y2024, privat]
        anna = self.contact(root["id"], "Anna", "Example-Berger", middleName="Maria", title="Dr.", generation="MSc",
                            nickName="Anni", initials="A.M.E.", companyName="Contoso GmbH", department="Finance",
                            jobTitle="Controller", officeLocation="3.14", birthday="1980-04-12T11:59:00Z",
                            personalNotes="Met at conference\r\nSecond line; with, punctuation",
                            categories=["Customers", "VIP"], businessHomePage="https://contoso.example/anna",
                            homePhones=["+43 1 7654321"], spouseName="Karl",
                            businessAddress={"street": "Ringstraße 1\nTop 4", "city": "Wien", "state": "",
                                             "countryOrRegion": "Austria", "postalCode": "1010"},
                            emailAddresses=[{"name": "Anna", "address": "anna.example@contoso.com"},
                                            {"name": "anni@example.net", "address": "anni@example.net"}])
        mb.photos[anna["id"]] = JPEG
        people = [("Zoë", "Ødegaard"), ("José", "Núñez"), ("Łukasz", "Żółć"), ("美咲", "山田"), ("", "Nur-Nachname"),
                  ("Ünal", "Öztürk")]
        n = max(0, int(self.spec.groupware_contacts))
        folders = [root, kunden, y2024, privat]
        mb.contacts = {f["id"]: [] for f in folders}
        mb.contacts[root["id"]].append(anna)
        for i in range(n):
            gn, sn = people[i % len(people)]
            f = folders[i % len(folders)]
            c = self.contact(f["id"], gn, f"{sn}{'' if i < len(people) else i}",
                             companyName="Fabrikam" if i % 2 else "", jobTitle="", birthday=None
                             if i % 3 else f"19{70 + i % 30}-0{1 + i % 9}-1{i % 9}T11:59:00Z")
            mb.contacts[f["id"]].append(c)
            if i % 4 == 1:
                mb.photos[c["id"]] = JPEG[:-2] + bytes([i % 256]) + b"\xff\xd9"

    def contact(self, folder: str, given: str, surname: str, **extra: Any) -> dict[str, Any]:
        ident = self.gid("ct")
        display = " ".join(p for p in (given, surname) if p)
        c: dict[str, Any] = {
            "id": ident, "parentFolderId": folder, "changeKey": base64.b64encode(ident[-6:].encode()).decode(),
            "createdDateTime": "2021-03-02T09:12:44Z", "lastModifiedDateTime": GEN_STAMP, "displayName": display,
            "givenName": given or None, "middleName": None, "surname": surname, "title": None, "generation": None,
            "initials": None, "nickName": None, "fileAs": "", "emailAddresses": [
                {"name": display, "address": f"{ident[-8:-1].lower()}@example.org"}],
            "businessPhones": ["+49 30 123456"], "homePhones": [], "mobilePhone": "+49 171 2345678",
            "imAddresses": [], "homeAddress": {}, "businessAddress": {}, "otherAddress": {}, "companyName": "",
            "department": None, "jobTitle": None, "officeLocation": None, "profession": None, "manager": None,
            "assistantName": None, "businessHomePage": None, "birthday": None, "spouseName": None, "children": [],
            "personalNotes": "", "categories": [],
        }
        c.update(extra)
        return c


class Groupware:
    """Every mailbox of the tenant, generated on first use."""

    def __init__(self, tenant: Tenant, spec: Any) -> None:
        self.tenant, self.spec = tenant, spec
        self.boxes: dict[str, Mailbox] = {}

    def mailbox(self, user: User) -> Mailbox:
        mb = self.boxes.get(user.id)
        if mb is None:
            mb = self.boxes[user.id] = _Gen(self.tenant, user, self.spec).build()
        return mb


class GroupwareMutations:
    """Changes made "in Outlook" between runs (call through `GraphSandbox.call`): recorded for delta."""

    def __init__(self, groupware: Groupware) -> None:
        self.gw = groupware

    def _event(self, user: User, subject: str) -> tuple[Mailbox, Event]:
        mb = self.gw.mailbox(user)
        for evs in mb.events.values():
            for e in evs:
                if e.data.get("subject") == subject:
                    return mb, e
        raise KeyError(f"no event {subject!r} in the mailbox of {user.upn}")

    def _changed(self, mb: Mailbox, e: Event) -> None:
        e.data["lastModifiedDateTime"] = f"2026-12-{10 + mb.seq % 18:02d}T09:00:00Z"
        e.data["changeKey"] = base64.b64encode(f"{e.id}:{mb.seq}".encode()).decode()[-16:]
        mb.touch("event", e.id)

    def cancel_occurrence(self, user: User, subject: str, day: dt.date) -> str:
        mb, e = self._event(user, subject)
        e.cancelled.add(day)
        self._changed(mb, e)
        return e.id

    def rename_event(self, user: User, subject: str, new: str) -> str:
        mb, e = self._event(user, subject)
        e.data["subject"] = new
        self._changed(mb, e)
        return e.id

    def add_attachment(self, user: User, subject: str, name: str, size: int) -> str:
        """A file attached in Outlook to an existing event (its changeKey changes, so delta reports it)."""
        mb, e = self._event(user, subject)
        ident = "AAMkAtt" + base64.b64encode(hashlib.sha256(f"{e.id}:{name}:{mb.seq}".encode()).digest()[:15]
                                             ).decode().replace("/", "_")
        e.attachments.append({"@odata.type": "#microsoft.graph.fileAttachment", "id": ident, "name": name,
                              "contentType": "application/octet-stream", "size": size, "isInline": False,
                              "lastModifiedDateTime": "2026-12-05T10:00:00Z",
                              "contentBytes": base64.b64encode(random.Random(name).randbytes(size)).decode()})
        e.data["hasAttachments"] = True
        self._changed(mb, e)
        return ident

    def remove_attendee(self, user: User, subject: str, address: str) -> str:
        mb, e = self._event(user, subject)
        e.data["attendees"] = [a for a in e.data.get("attendees") or []
                               if (a.get("emailAddress") or {}).get("address") != address]
        self._changed(mb, e)
        return e.id

    def remove_attachment(self, user: User, subject: str, name: str) -> str:
        mb, e = self._event(user, subject)
        e.attachments = [a for a in e.attachments if a.get("name") != name]
        e.data["hasAttachments"] = bool(e.attachments)
        self._changed(mb, e)
        return e.id

    def delete_event(self, user: User, subject: str) -> str:
        mb, e = self._event(user, subject)
        for evs in mb.events.values():
            if e in evs:
                evs.remove(e)
        mb.touch("event", e.id)
        mb.removed[e.id] = mb.seq
        return e.id

    def _contact(self, user: User, name: str) -> tuple[Mailbox, str, dict[str, Any]]:
        mb = self.gw.mailbox(user)
        for fid, cs in mb.contacts.items():
            for c in cs:
                if c.get("displayName") == name:
                    return mb, fid, c
        raise KeyError(f"no contact {name!r} in the mailbox of {user.upn}")

    def rename_contact(self, user: User, name: str, new: str) -> str:
        mb, _, c = self._contact(user, name)
        c["displayName"] = new
        c["changeKey"] = base64.b64encode(f"{c['id']}:{mb.seq}".encode()).decode()[-16:]
        mb.touch("contact", c["id"])
        return str(c["id"])

    def delete_contact(self, user: User, name: str) -> str:
        mb, fid, c = self._contact(user, name)
        mb.contacts[fid].remove(c)
        mb.touch("contact", c["id"])
        mb.removed[c["id"]] = mb.seq
        return str(c["id"])

    def rename_calendar(self, user: User, name: str, new: str) -> str:
        mb = self.gw.mailbox(user)
        cal = next(c for c in mb.calendars if c.get("name") == name)
        cal["name"] = new
        cal["changeKey"] = base64.b64encode(f"{cal['id']}:{mb.seq}".encode()).decode()[-16:]
        return str(cal["id"])
