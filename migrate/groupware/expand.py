"""Expanding iCalendar resources with recurring-ical-events: the self-check of a mapped series and the
`verify` comparison of the target's occurrences with the source's calendarView, as instants in UTC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any


def _occurrences(ical: bytes | str, lo: dt.datetime, hi: dt.datetime) -> list[Any]:
    import icalendar
    import recurring_ical_events

    cal = icalendar.Calendar.from_ical(ical)
    return list(recurring_ical_events.of(cal).between(lo, hi))


def expand_starts(ical: bytes | str, lo: dt.datetime, hi: dt.datetime) -> list[dt.datetime | dt.date]:
    """DTSTART of every occurrence in [lo, hi), as written (aware datetimes or dates)."""
    return [ev.decoded("dtstart") for ev in _occurrences(ical, lo, hi)]


def to_utc(value: dt.datetime | dt.date) -> dt.datetime:
    """Instants in UTC; a DATE (all-day) is midnight of that date, the way Graph reports all-day times."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return dt.datetime.combine(value, dt.time(), dt.UTC)


def expand_utc(icals: Iterable[bytes | str], lo: dt.datetime, hi: dt.datetime) -> list[tuple[str, str]]:
    """(start, end) in UTC ISO form of every occurrence of every resource in [lo, hi), sorted."""
    out: list[tuple[str, str]] = []
    for text in icals:
        for ev in _occurrences(text, lo, hi):
            start = ev.decoded("dtstart")
            end = ev.decoded("dtend") if "DTEND" in ev else start
            out.append((to_utc(start).strftime("%Y-%m-%dT%H:%M:%SZ"), to_utc(end).strftime("%Y-%m-%dT%H:%M:%SZ")))
    return sorted(out)
