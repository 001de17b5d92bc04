"""What each Graph request costs, in one table, and the books of a run: requests, RU and throttling per kind.

SharePoint charges resource units per request (reference graph-api.md §8.3): 1 RU a single item, a delta page with a
token and a download; 2 RU a multi-item query (children, a delta without a token, a list of drives or sites, a
version list) and a write; 5 RU anything about permissions. Every `$batch` step counts on its own and throttled
requests count too. Directory requests (users, groups, the organisation, licences) are Entra ID, not SharePoint, and
calendar, contact and mail requests are Outlook's: they cost no SharePoint RU but are counted (Outlook limits requests
per mailbox; see `OUTLOOK_KINDS`).

The kind is what the caller passes (`GraphClient.request_once(kind=...)`); a kind not in the table costs 1 RU, so a
new request is never free by accident.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, urlsplit

RU = {
    "item": 1, "content": 1, "download": 1, "version_content": 1, "drive": 1, "site": 1,
    "delta": 1, "delta_full": 2, "children": 2, "list": 2, "drives": 2, "sites": 2, "versions": 2,
    "permissions": 5,
    "batch": 0,          # the envelope: its steps are charged one by one
    "users": 0, "user": 0, "groups": 0, "group": 0, "organization": 0, "licences": 0, "sdk": 0,
    "mail_report": 0,    # the usage reports (online archives): not SharePoint
}
OUTLOOK_KINDS = frozenset({"calendars", "calendar", "events", "event", "instances", "attachments", "attachment",
                           "calendarView", "calendarDelta", "contactFolders", "contacts", "contact", "contactDelta",
                           "photo", "mail_folders", "mail_folder", "mail_messages", "mail_delta", "mail_mime"})


def kind_of(url: str) -> str:
    """The kind of a request the SDK sends (discovery), from its path: what `ru_cost` needs to charge it."""
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if parts and parts[0] in ("v1.0", "beta"):
        parts = parts[1:]
    if not parts:
        return "other"
    head, rest = parts[0].split("(")[0], parts[1:]
    if head in ("users", "groups"):
        if rest[1:2] == ["drives"]:
            return "drives"
        if rest[1:2] == ["drive"]:
            return "drive"
        return head if not rest else head.rstrip("s")
    if head == "sites":
        if rest[1:2] == ["drives"] or rest[1:2] == ["sites"]:
            return "sites" if rest[1:2] == ["sites"] else "drives"
        if rest[1:2] == ["drive"]:
            return "drive"
        return "sites" if not rest or rest[0].startswith("getAllSites") else "site"
    if head == "drives":
        return "drive" if len(rest) == 1 else "item"
    if head in ("organization", "subscribedSkus"):
        return "organization"
    return "other"


def ru_cost(kind: str, url: str = "") -> int:
    """SharePoint RU of one request of `kind` (a delta without a token is a full query: 2 RU)."""
    if kind in OUTLOOK_KINDS:
        return 0
    if kind == "delta" and url and "token" not in parse_qs(urlsplit(url).query) and "token=" not in url:
        return RU["delta_full"]
    return RU.get(kind, 1)


class GraphBooks:
    """Thread-safe counters of one command's Graph traffic (everything that was sent, retries included)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.ru: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.mailbox_requests: Counter[str] = Counter()

    def charge(self, kind: str, url: str = "", *, steps: int = 1, mailbox: str | None = None) -> int:
        """Record `steps` requests of `kind`; returns their RU."""
        cost = ru_cost(kind, url) * steps
        with self._lock:
            self.requests[kind] += steps
            if cost:
                self.ru[kind] += cost
            if mailbox:
                self.mailbox_requests[mailbox] += steps
        return cost

    def throttle(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.throttled[kind] += n

    @property
    def total_ru(self) -> int:
        with self._lock:
            return sum(self.ru.values())

    @property
    def total_requests(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    def snapshot(self) -> dict[str, Any]:
        """The books as plain data, for run summaries, `status`, `--json` and benchmarks."""
        with self._lock:
            requests = sum(self.requests.values())
            throttled = sum(self.throttled.values())
            return {"ru": sum(self.ru.values()), "requests": requests, "throttled": throttled,
                    "throttled_share": round(throttled / requests, 4) if requests else 0.0,
                    "ru_by_kind": dict(sorted(self.ru.items())), "requests_by_kind": dict(sorted(self.requests.items())),
                    "throttled_by_kind": dict(sorted(self.throttled.items())),
                    "busiest_mailbox_requests": max(self.mailbox_requests.values(), default=0)}
