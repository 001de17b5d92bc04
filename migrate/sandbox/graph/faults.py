"""Seeded, per-route fault injection and the request books (costs and budgets are in `budget.py`).

Route names (for `faults.set(route=...)` and `stats()["requests"]`): users, user, groups, group, organization,
subscribedSkus, sites, site, drive (one drive), drives (a drive list), item, children, delta, content (the /content
302), download (the pre-authenticated URL), permissions, versions (a version list), version (one version),
version_content, write (any non-GET on a drive), attachment (an event's attachments, one, or its `$value`), token
(the OAuth2 endpoint), or "*" for every Graph route (not token, download or admin). Other Outlook routes
(calendars, events, contacts, photo, …) are counted under their own names in `stats()["requests"]`.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

ROUTES = ("batch", "users", "user", "groups", "group", "organization", "subscribedSkus", "sites", "site", "drive",
          "drives", "item", "children", "delta", "content", "download", "permissions", "versions", "version",
          "version_content", "write", "attachment", "token", "mailFolders", "mailFolder", "messages", "message",
          "messageDelta", "mailFolderDelta", "mime", "report")

_CODES = {429: ("TooManyRequests", "Please retry again later."),
          503: ("serviceNotAvailable", "The service is temporarily unavailable. Please retry later."),
          504: ("gatewayTimeout", "The operation timed out."),
          500: ("generalException", "An unspecified error has occurred."),
          404: ("itemNotFound", "The resource could not be found."),
          401: ("InvalidAuthenticationToken", "Access token has expired or is not yet valid.")}


@dataclass
class Rule:
    """What to do to `rate` of a route's requests: a status, a dropped connection, a delay or a slow body."""

    route: str
    status: int | None = None
    rate: float = 1.0
    retry_after: str | None = None
    seed: int = 0
    count: int | None = None          # stop after this many injections
    reset_after: int | None = None    # drop the connection after K body bytes
    delay: float = 0.0                # seconds before the response
    bytes_per_second: float | None = None
    fired: int = 0
    seen: int = 0
    rng: random.Random = field(default_factory=random.Random)


class Faults:
    """Thread-safe rule set; decisions are drawn from each rule's own seeded PRNG, so the same request order
    gives the same fault sequence."""

    def __init__(self) -> None:
        self._rules: dict[str, Rule] = {}
        self._lock = threading.Lock()
        self.log: list[tuple[str, int, str]] = []   # (route, n-th request of that route, action)

    def set(self, route: str, status: int | None = None, rate: float = 1.0, retry_after: str | float | None = None,
            seed: int = 0, count: int | None = None, reset_after: int | None = None, delay: float = 0.0,
            bytes_per_second: float | None = None) -> None:
        if route != "*" and route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; expected '*' or one of {ROUTES}")
        if status is not None and status not in _CODES:
            raise ValueError(f"unsupported fault status {status}; expected one of {sorted(_CODES)}")
        with self._lock:
            self._rules[route] = Rule(route, status, rate, None if retry_after is None else str(retry_after), seed,
                                      count, reset_after, delay, bytes_per_second, rng=random.Random(seed))

    def clear(self, route: str | None = None) -> None:
        with self._lock:
            if route is None:
                self._rules.clear()
            else:
                self._rules.pop(route, None)

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{k: v for k, v in r.__dict__.items() if k != "rng"} for r in self._rules.values()]

    def draw(self, route: str) -> Rule | None:
        """The rule that fires for this request, if any (one PRNG draw per matching request)."""
        with self._lock:
            rule = self._rules.get(route)
            if rule is None and route not in ("token", "download"):
                rule = self._rules.get("*")
            if rule is None:
                return None
            rule.seen += 1
            if rule.count is not None and rule.fired >= rule.count:
                return None
            if rule.rng.random() >= rule.rate:
                return None
            rule.fired += 1
            action = (f"status {rule.status}" if rule.status else f"reset@{rule.reset_after}"
                      if rule.reset_after is not None else f"delay {rule.delay} rate {rule.bytes_per_second}")
            self.log.append((route, rule.seen, action))
            return rule


def error_body(status: int, code: str | None = None, message: str | None = None,
               inner: dict[str, Any] | None = None) -> bytes:
    """Graph's error envelope (reference §8.1)."""
    dcode, dmsg = _CODES.get(status, ("generalException", "An error occurred."))
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    rid = f"{random.getrandbits(128):032x}"
    rid = f"{rid[:8]}-{rid[8:12]}-{rid[12:16]}-{rid[16:20]}-{rid[20:]}"
    inner_err = {"date": now, "request-id": rid, "client-request-id": rid, **(inner or {})}
    if status == 429 and inner is None:
        inner_err.update({"code": "429", "message": "Please retry after", "status": "429"})
    return json.dumps({"error": {"code": code or dcode, "message": message or dmsg, "innerError": inner_err}}).encode()


class Stats:
    """The books, kept by the loop thread: requests, statuses and RU per route, throttling, Outlook per mailbox;
    `snapshot()` copies them, `reset()` starts them over."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests: dict[str, int] = {}
        self.status: dict[str, int] = {}
        self.ru = 0                          # SharePoint RU charged, throttled requests included
        self.ru_by_route: dict[str, int] = {}
        self.ru_refused = 0                  # RU of requests answered 429/503 (charged all the same)
        self.bytes_sent = 0
        self.throttled = 0                   # 429 + 503 answers, budget, Outlook limits and injected faults
        self.throttled_status: dict[str, int] = {}
        self.blocked = 0                     # 503 answers while the app was blocked
        self.faults = 0
        self.mailboxes: dict[str, dict[str, int]] = {}

    def charge(self, route: str, cost: int) -> None:
        if cost:
            self.ru += cost
            self.ru_by_route[route] = self.ru_by_route.get(route, 0) + cost

    def refused(self, status: int, cost: int = 0, *, blocked: bool = False) -> None:
        self.throttled += 1
        self.throttled_status[str(status)] = self.throttled_status.get(str(status), 0) + 1
        self.ru_refused += cost
        self.blocked += blocked

    def mailbox(self, key: str) -> dict[str, int]:
        got = self.mailboxes.get(key)
        if got is None:
            got = self.mailboxes[key] = {"requests": 0, "throttled": 0, "over_concurrency": 0, "over_rate": 0,
                                         "max_in_flight": 0}
        return got

    def snapshot(self) -> dict[str, Any]:
        return {"requests": dict(self.requests), "status": dict(self.status), "ru": self.ru,
                "ru_by_route": dict(self.ru_by_route), "ru_refused": self.ru_refused,
                "bytes_sent": self.bytes_sent, "throttled": self.throttled,
                "throttled_status": dict(self.throttled_status), "blocked": self.blocked, "faults": self.faults,
                "mailboxes": {k: dict(v) for k, v in self.mailboxes.items()},
                "total_requests": sum(self.requests.values())}
