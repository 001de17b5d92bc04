"""Windows time-zone names (what Graph reports) to IANA zones, via the CLDR table icalendar ships.

Names without an IANA twin (`tzone://Microsoft/Custom`, "Customized Time Zone") return None: the caller writes
UTC instants instead and reports it (reference groupware.md §2.6).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC_NAMES = {"utc", "tzone://microsoft/utc", "coordinated universal time", "gmt"}
# CLDR's territory-001 targets that are old aliases: write the canonical name clients know.
CANONICAL = {"Asia/Calcutta": "Asia/Kolkata", "Asia/Katmandu": "Asia/Kathmandu", "Asia/Rangoon": "Asia/Yangon",
             "Asia/Saigon": "Asia/Ho_Chi_Minh", "Atlantic/Faeroe": "Atlantic/Faroe", "Europe/Kiev": "Europe/Kyiv"}


@lru_cache(maxsize=256)
def iana_for(name: str | None) -> str | None:
    """The IANA zone for a Graph time-zone name (Windows or already IANA); None when there is no twin."""
    if not name:
        return None
    if name.strip().lower() in UTC_NAMES:
        return "UTC"
    from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

    target = WINDOWS_TO_OLSON.get(name)
    if target is None and "/" in name and not name.startswith("tzone:"):
        target = name
    if target is None:
        return None
    target = CANONICAL.get(target, target)
    try:
        ZoneInfo(target)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return target


def tzinfo_for(name: str | None) -> dt.tzinfo | None:
    iana = iana_for(name)
    if iana is None:
        return None
    return dt.UTC if iana == "UTC" else ZoneInfo(iana)
