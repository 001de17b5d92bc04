"""One Graph event (a single, or a series master with its instances) → one iCalendar resource (RFC 5545).

Follows reference groupware.md §4: UID = the master's iCalUId, IANA TZIDs with real VTIMEZONEs, DATE values for
all-day events, RRULE from the pattern, EXDATE computed from the instances Graph returns (v1.0 does not list
cancelled occurrences), RECURRENCE-ID overrides for exceptions, SCHEDULE-AGENT=CLIENT on every attendee, DISPLAY
alarms only. The expansion is self-checked against Graph's instances; a pattern without an exact RRULE falls back
to RDATEs. The output is deterministic (DTSTAMP = the source's last change), so a rerun writes identical bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
from dataclasses import dataclass, field
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any

from migrate.groupware.timezones import tzinfo_for

PRODID = "-//m365-migrate//groupware//EN"
DAY = {"monday": "MO", "tuesday": "TU", "wednesday": "WE", "thursday": "TH", "friday": "FR", "saturday": "SA",
       "sunday": "SU"}
INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
PARTSTAT = {"accepted": "ACCEPTED", "organizer": "ACCEPTED", "tentativelyaccepted": "TENTATIVE",
            "declined": "DECLINED", "none": "NEEDS-ACTION", "notresponded": "NEEDS-ACTION"}
CLASS = {"normal": "PUBLIC", "personal": "PUBLIC", "private": "CONFIDENTIAL", "confidential": "CONFIDENTIAL"}
BUSY = {"free": "FREE", "tentative": "TENTATIVE", "busy": "BUSY", "oof": "OOF", "workingelsewhere": "WORKINGELSEWHERE"}
PRIORITY = {"high": (1, "2"), "normal": (5, "1"), "low": (9, "0")}
HORIZON_YEARS = 5                # never-ending series: cancellations are computed this far ahead


@dataclass
class Mapped:
    """The resource text plus what the plan must show: notes (carried with a change) and why it cannot go."""

    text: str
    uid: str
    notes: list[str] = field(default_factory=list)
    unsupported: str | None = None
    instances: int = 1


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("style", "script", "head"):
            self.skip += 1
        elif tag in ("br", "p", "div", "li", "tr"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head"):
            self.skip = max(0, self.skip - 1)

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_to_text(content: str) -> str:
    p = _Text()
    p.feed(content)
    text = re.sub(r"[ \t\r\f\v]+", " ", "".join(p.parts))
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def parse_utc(value: dict[str, Any] | str | None) -> dt.datetime | None:
    """A Graph dateTimeTimeZone requested in UTC (or an ISO instant) as an aware UTC datetime."""
    if value is None:
        return None
    text = value.get("dateTime") if isinstance(value, dict) else value
    if not text:
        return None
    text = str(text).replace("Z", "")
    if "." in text:
        head, frac = text.split(".", 1)
        text = head + "." + frac[:6]
    t = dt.datetime.fromisoformat(text)
    if t.tzinfo is None:
        zone = value.get("timeZone") if isinstance(value, dict) else "UTC"
        tz = tzinfo_for(zone) or dt.UTC
        t = t.replace(tzinfo=tz)
    return t.astimezone(dt.UTC)


def _text(value: str) -> Any:
    """X- properties are TEXT (RFC 5545 §3.8.8.2): escape them, or servers that re-parse them cut them at ';'/','."""
    import icalendar

    return icalendar.vText(value)


def _date_of(value: dict[str, Any] | None) -> dt.date:
    return dt.date.fromisoformat(str((value or {}).get("dateTime", ""))[:10])


class EventMapper:
    """Builds the VCALENDAR for one series or single event; `map()` is the entry point."""

    def __init__(self, master: dict[str, Any], instances: list[dict[str, Any]] | None,
                 attachments: list[dict[str, Any]] | None, *, now: dt.datetime | None = None,
                 links: dict[str, Any] | None = None, files: bool = False) -> None:
        self.m = master
        self.instances = instances or []
        self.attachments = attachments or []
        self._inline = {str(a.get("id") or a.get("name") or "attachment"): base64.b64decode(a["contentBytes"])
                        for a in self.attachments if a.get("contentBytes")}
        self.links = links or {}
        self.files = files or bool(self.links)
        self.now = now or dt.datetime.now(dt.UTC)
        self.notes: list[str] = []
        self.all_day = bool(master.get("isAllDay"))
        rec = master.get("recurrence") or {}
        zone_name = (rec.get("range") or {}).get("recurrenceTimeZone") or master.get("originalStartTimeZone")
        self.zone_name = zone_name or "UTC"
        tz = tzinfo_for(self.zone_name)
        if tz is None:
            self.notes.append(f"time zone {self.zone_name!r} has no IANA equivalent: times written in UTC")
            tz = dt.UTC
        self.tz = tz

    # ------------------------------------------------------------------ values
    def local(self, when: dict[str, Any] | str | None) -> dt.datetime | dt.date:
        if self.all_day and isinstance(when, dict):
            return _date_of(when)
        t = parse_utc(when)
        assert t is not None
        if self.all_day:
            return t.date()
        return t.astimezone(self.tz) if self.tz is not dt.UTC else t

    def _orig(self, inst: dict[str, Any]) -> dt.datetime | dt.date:
        t = parse_utc(inst.get("originalStart"))
        assert t is not None
        if self.all_day:
            return t.date()
        return t.astimezone(self.tz) if self.tz is not dt.UTC else t

    def rrule(self) -> dict[str, Any] | None:
        rec = self.m.get("recurrence")
        if not rec:
            return None
        p, r = rec.get("pattern") or {}, rec.get("range") or {}
        ptype = p.get("type")
        rule: dict[str, Any] = {"interval": int(p.get("interval") or 1)}
        days = [DAY[d.lower()] for d in p.get("daysOfWeek") or []]
        if ptype == "daily":
            rule["freq"] = "DAILY"
        elif ptype == "weekly":
            rule.update(freq="WEEKLY", byday=days, wkst=DAY[(p.get("firstDayOfWeek") or "sunday").lower()])
        elif ptype == "absoluteMonthly":
            rule.update(freq="MONTHLY", bymonthday=int(p["dayOfMonth"]))
        elif ptype == "relativeMonthly":
            rule.update(freq="MONTHLY", byday=days, bysetpos=INDEX[(p.get("index") or "first").lower()])
        elif ptype == "absoluteYearly":
            rule.update(freq="YEARLY", bymonth=int(p["month"]), bymonthday=int(p["dayOfMonth"]))
        elif ptype == "relativeYearly":
            rule.update(freq="YEARLY", bymonth=int(p["month"]), byday=days,
                        bysetpos=INDEX[(p.get("index") or "first").lower()])
        else:
            raise ValueError(f"unknown recurrence pattern type {ptype!r}")
        if "wkst" not in rule:
            rule["wkst"] = DAY[(p.get("firstDayOfWeek") or "sunday").lower()]
        rtype = str(r.get("type") or "noEnd").lower()
        if rtype == "numbered":
            rule["count"] = int(r.get("numberOfOccurrences") or 1)
        elif rtype == "enddate":
            end = dt.date.fromisoformat(r["endDate"])
            if self.all_day:
                rule["until"] = end
            else:   # the last instant of the local end date, in UTC (§4.3)
                last = dt.datetime.combine(end, dt.time(23, 59, 59)).replace(tzinfo=self.tz)
                rule["until"] = last.astimezone(dt.UTC)
        return rule

    # ------------------------------------------------------------------ components
    def vevent(self, src: dict[str, Any], *, recurrence_id: dt.datetime | dt.date | None = None) -> Any:
        import icalendar

        ev = icalendar.Event()
        ev.add("uid", self.uid)
        ev.add("dtstamp", parse_utc(self.m.get("lastModifiedDateTime")) or dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        if src.get("createdDateTime"):
            ev.add("created", parse_utc(src["createdDateTime"]))
        if src.get("lastModifiedDateTime"):
            ev.add("last-modified", parse_utc(src["lastModifiedDateTime"]))
        if recurrence_id is not None:
            ev.add("recurrence-id", recurrence_id)
        ev.add("dtstart", self.local(src["start"]))
        ev.add("dtend", self.local(src["end"]))
        ev.add("summary", src.get("subject") or "")
        body = src.get("body") or {}
        content = body.get("content") or ""
        text = html_to_text(content) if body.get("contentType", "html") == "html" else content
        join = ((src.get("onlineMeeting") or {}).get("joinUrl") or src.get("onlineMeetingUrl") or "")
        if join and join not in text:
            text = (text + "\n\n" if text else "") + f"Microsoft Teams: {join}"
        if text:
            ev.add("description", text)
        if content and body.get("contentType", "html") == "html":
            ev.add("x-alt-desc", _text(content), parameters={"FMTTYPE": "text/html"})
        locs = [x.get("displayName") for x in src.get("locations") or [] if x.get("displayName")]
        loc = (src.get("location") or {}).get("displayName") or "; ".join(locs)
        if loc:
            ev.add("location", loc)
        self._people(ev, src)
        sens = str(src.get("sensitivity") or "normal").lower()
        ev.add("class", CLASS.get(sens, "PUBLIC"))
        if sens != "normal":
            ev.add("x-m365-sensitivity", _text(sens))
        show = str(src.get("showAs") or "busy").lower()
        ev.add("transp", "TRANSPARENT" if show == "free" else "OPAQUE")
        if show in BUSY:
            ev.add("x-microsoft-cdo-busystatus", _text(BUSY[show]))
        prio, cdo = PRIORITY.get(str(src.get("importance") or "normal").lower(), (5, "1"))
        ev.add("priority", prio)
        ev.add("x-microsoft-cdo-importance", _text(cdo))
        if src.get("categories"):
            ev.add("categories", list(src["categories"]))
        if src.get("isCancelled"):
            ev.add("status", "CANCELLED")
        if join:
            import icalendar as ic

            ev.add("conference", ic.vUri(join), parameters={"VALUE": "URI", "FEATURE": "VIDEO",
                                                             "LABEL": "Microsoft Teams"})
            ev.add("x-microsoft-skypeteamsmeetingurl", _text(join))
        if self.all_day:
            ev.add("x-microsoft-cdo-alldayevent", _text("TRUE"))
        ev.add("x-m365-graph-id", _text(str(src.get("id") or "")))
        if src.get("isReminderOn"):
            alarm = icalendar.Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", src.get("subject") or "Reminder")
            alarm.add("trigger", dt.timedelta(minutes=-int(src.get("reminderMinutesBeforeStart") or 0)),
                      parameters={"RELATED": "START"})
            ev.add_component(alarm)
        return ev

    def _people(self, ev: Any, src: dict[str, Any]) -> None:
        import icalendar

        attendees = src.get("attendees") or []
        if not attendees:
            return
        org = (src.get("organizer") or {}).get("emailAddress") or {}
        if org.get("address"):
            a = icalendar.vCalAddress("mailto:" + org["address"])
            params = {"SCHEDULE-AGENT": "CLIENT"}
            if org.get("name"):
                params["CN"] = org["name"]
            ev.add("organizer", a, parameters=params)
        room = (src.get("location") or {}).get("displayName") or ""
        for att in attendees:
            em = att.get("emailAddress") or {}
            if not em.get("address"):
                continue
            kind = str(att.get("type") or "required").lower()
            params = {"ROLE": {"required": "REQ-PARTICIPANT", "optional": "OPT-PARTICIPANT"}.get(kind,
                                                                                               "NON-PARTICIPANT"),
                      "PARTSTAT": PARTSTAT.get(str((att.get("status") or {}).get("response") or "none").lower(),
                                               "NEEDS-ACTION"),
                      "CUTYPE": "INDIVIDUAL", "RSVP": "FALSE", "SCHEDULE-AGENT": "CLIENT"}
            if kind == "resource":
                is_room = em.get("name") == room or (src.get("location") or {}).get("locationType") == "conferenceRoom"
                params["CUTYPE"] = "ROOM" if is_room else "RESOURCE"
            if em.get("name"):
                params["CN"] = em["name"]
            ev.add("attendee", icalendar.vCalAddress("mailto:" + em["address"]), parameters=params)

    def _attach(self, ev: Any) -> None:
        """Small files inline, large ones and attached items as links to the owner's Files (`links`, by
        attachment id, once they are there), reference attachments listed (reference §4.8)."""
        import icalendar

        from migrate.groupware.attachments import FILES, INLINE, placements

        for p in placements(self.attachments, files=self.files):
            raw = self._inline.get(p.id)
            link = self.links.get(p.id)
            if p.where == INLINE and raw is not None:
                ev.add("attach", icalendar.vBinary(raw), parameters={
                    "FMTTYPE": p.content_type, "ENCODING": "BASE64", "VALUE": "BINARY", "X-FILENAME": p.name})
            elif isinstance(link, str):   # tried, and it cannot be carried: why
                self.notes.append(f"attachment {p.name!r} ({p.kind}) is not carried: {link}")
            elif link is not None:
                ev.add("attach", icalendar.vUri(link.url), parameters={
                    "FMTTYPE": link.content_type, "FILENAME": "/" + link.path, "X-NC-FILE-ID": link.file_id,
                    "X-NC-HAS-PREVIEW": "true" if link.has_preview else "false", "VALUE": "URI"})
                self.notes.append(f"attachment {p.name!r} ({p.size:,} bytes) is a file in the owner's Files "
                                  f"({link.path}), linked from the event")
            elif p.where == FILES:
                self.notes.append(f"attachment {p.name!r} ({p.size:,} bytes) goes to the owner's Files and is "
                                  "linked from the event")
            else:
                self.notes.append(f"attachment {p.name!r} ({p.kind}) is not carried: "
                                  + (p.reason or "its bytes were not read"))

    # ------------------------------------------------------------------ assembly
    def map(self) -> Mapped:
        import icalendar

        self.uid = str(self.m.get("iCalUId") or self.m.get("id"))
        cal = icalendar.Calendar()
        cal.add("version", "2.0")
        cal.add("prodid", PRODID)
        cal.add("calscale", "GREGORIAN")
        master = self.vevent(self.m)
        self._attach(master)
        cal.add_component(master)
        count = 1
        unsupported = None
        if self.m.get("recurrence"):
            count, unsupported = self._series(cal, master)
        first = master.decoded("dtstart")
        first_date = first.date() if isinstance(first, dt.datetime) else first
        if self.tz is not dt.UTC and not self.all_day:
            cal.subcomponents.insert(0, vtimezone(str(self.tz), first_date.year - 1,
                                                  max(first_date.year, self.now.year) + HORIZON_YEARS + 1))
        _one_date_per_line(cal)
        return Mapped(cal.to_ical().decode("utf-8"), self.uid, self.notes, unsupported, count)

    def _series(self, cal: Any, master: Any) -> tuple[int, str | None]:
        from migrate.groupware.expand import expand_starts

        insts = sorted(self.instances, key=lambda i: str(i.get("originalStart")))
        if not insts:
            return 0, "every occurrence of this series was cancelled; Nextcloud refuses a series without instances"
        rule = self.rrule()
        master.add("rrule", rule)
        originals = {self._orig(i) for i in insts}
        lo, hi = self.window()
        produced = set(expand_starts(cal.to_ical(), lo, hi))
        if not originals <= produced:
            # The pattern has no exact RRULE here (e.g. day 31 moved to the month's end): list the dates.
            del master["rrule"]
            for when in sorted(originals):
                master.add("rdate", when)
            first = min(originals)
            span = self.local(self.m["end"]) - self.local(self.m["start"])
            master["dtstart"] = icalendar_prop(first)
            master["dtend"] = icalendar_prop(first + span)
            self.notes.append("the recurrence pattern has no exact RRULE: occurrences written as RDATE list")
        else:
            gone = sorted(produced - originals)
            for when in gone:
                master.add("exdate", when)
        for inst in insts:
            if str(inst.get("type")) == "exception":
                cal.add_component(self.vevent({**self.m, **inst}, recurrence_id=self._orig(inst)))
        return len(insts), None

    def window(self) -> tuple[dt.datetime, dt.datetime]:
        """Where Graph's instances were read: the series range, never-ending series up to the horizon."""
        r = (self.m.get("recurrence") or {}).get("range") or {}
        start = dt.date.fromisoformat(r.get("startDate") or str(self.local(self.m["start"]))[:10])
        lo = dt.datetime.combine(start - dt.timedelta(days=2), dt.time(), dt.UTC)
        if str(r.get("type") or "").lower() == "enddate":
            hi = dt.datetime.combine(dt.date.fromisoformat(r["endDate"]) + dt.timedelta(days=2), dt.time(), dt.UTC)
        else:
            hi = horizon(self.now, start)
        return lo, hi


def _one_date_per_line(cal: Any) -> None:
    """RDATE/EXDATE as one value per property: some servers (Radicale via vobject) keep only the first value of a
    list in VTIMEZONE rules, which would silently break DST transitions."""
    for comp in cal.walk():
        for name in ("RDATE", "EXDATE"):
            if name not in comp:
                continue
            props = comp[name] if isinstance(comp[name], list) else [comp[name]]
            if all(len(p.dts) == 1 for p in props):
                continue
            params = props[0].params
            values = [d.dt for p in props for d in p.dts]
            del comp[name]
            for v in values:
                comp.add(name, v, parameters={k: v2 for k, v2 in params.items() if k != "TZID"})


@lru_cache(maxsize=512)
def vtimezone(tzid: str, first_year: int, last_year: int) -> Any:
    """A real VTIMEZONE for `tzid` covering the years the object needs (built once per zone and range)."""
    import icalendar

    tz = icalendar.Timezone.from_tzid(tzid, first_date=dt.date(first_year, 1, 1), last_date=dt.date(last_year, 1, 1))
    _one_date_per_line(tz)
    return tz


def horizon(now: dt.datetime, start: dt.date) -> dt.datetime:
    base = max(now.date(), start)
    return dt.datetime.combine(dt.date(base.year + HORIZON_YEARS, 12, 31), dt.time(), dt.UTC)


def instance_window(master: dict[str, Any], now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The window to read `/instances` in for a series master (same as the mapper's self-check window)."""
    return EventMapper(master, None, None, now=now).window()


def icalendar_prop(value: Any) -> Any:
    import icalendar

    return icalendar.vDDDTypes(value)


def map_event(master: dict[str, Any], instances: list[dict[str, Any]] | None = None,
              attachments: list[dict[str, Any]] | None = None, *, now: dt.datetime | None = None,
              links: dict[str, Any] | None = None, files: bool = False) -> Mapped:
    """The public entry: one Graph single/master (+ instances, attachments) → a Mapped resource. `links` are the
    Files of attachments already carried there (by attachment id); `files`: the target has Files for them."""
    return EventMapper(master, instances, attachments, now=now, links=links, files=files).map()


def unescape(text: str) -> str:
    return html.unescape(text)
