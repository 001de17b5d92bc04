"""SharePoint's books: what a Graph request costs in resource units (RU) and the per-app budget that refuses it.

Costs follow graph-api.md §8.3 / peers.md: 1 RU for a single item (an item, a drive, a site, one version, the
`/content` redirect), a delta page with a token and a download from the pre-authenticated URL; 2 RU for a
multi-item query (children, a delta without a token, lists of drives, sites and versions) and for any write;
5 RU for a permission operation, also `$expand=permissions`. Directory routes (users, groups, organization,
subscribedSkus) are served by Entra ID and Outlook routes (calendars, contacts, …) by Exchange: they are counted
but cost no SharePoint RU (Outlook's own limits are in `outlook.py`). Every `$batch` step is charged on its own;
the envelope costs nothing. Throttled requests are charged too ("throttled requests count against limits").

The budget is two rolling windows, one of 60 s and one of 24 h (a sliding log in 1,440 slots per window; a charge
leaves its window one full span after the end of its slot, so no 60 s or 24 h interval ever admits more RU than
the budget). Over budget: 429, sometimes 503, with a Retry-After that tells the truth for the next attempt.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import dataclass, field

# Entra ID and Exchange, not SharePoint: counted, never charged SharePoint RU.
DIRECTORY_ROUTES = frozenset({"users", "user", "groups", "group", "organization", "subscribedSkus", "token",
                              "batch", "report"})

RU_COST = {"sites": 2, "drives": 2, "children": 2, "versions": 2, "delta_full": 2, "write": 2, "permissions": 5,
           "site": 1, "drive": 1, "item": 1, "content": 1, "download": 1, "version": 1, "version_content": 1,
           "delta": 1}
PERMISSIONS_COST = 5
HEADER_SHARE = 0.8          # RateLimit-* headers from this share of the minute budget on (SharePoint's 80%)


def ru_cost(route: str, query: dict[str, str] | None = None, *, with_token: bool = True,
            sharepoint: bool = True) -> int:
    """The RU one request of `route` costs; 0 for directory and Outlook routes (`sharepoint=False`)."""
    if not sharepoint or route in DIRECTORY_ROUTES:
        return 0
    cost = RU_COST.get(route, 1)
    if route == "delta" and not with_token:
        cost = RU_COST["delta_full"]
    if query and "permissions" in query.get("$expand", "").lower():
        cost = max(cost, PERMISSIONS_COST)
    return cost


class RollingWindow:
    """Charges of the last `span` seconds in 1,440 slots; `limit` is what the span may hold."""

    def __init__(self, span: float, limit: float) -> None:
        self.span, self.limit = span, limit
        self.width = span / 1440
        self.slots: deque[list[float]] = deque()    # [slot index, charged]
        self.total = 0.0

    def _expiry(self, slot: float) -> float:
        return (slot + 1) * self.width + self.span

    def used(self, now: float) -> float:
        while self.slots and self._expiry(self.slots[0][0]) <= now:
            self.total -= self.slots.popleft()[1]
        if not self.slots:
            self.total = 0.0
        return self.total

    def fits(self, now: float, cost: float) -> bool:
        return self.used(now) + cost <= self.limit

    def charge(self, now: float, cost: float) -> None:
        if cost <= 0:
            return
        slot = math.floor(now / self.width)
        if self.slots and self.slots[-1][0] == slot:
            self.slots[-1][1] += cost
        else:
            self.slots.append([slot, cost])
        self.total += cost

    def wait(self, now: float, cost: float) -> float:
        """Seconds until `cost` more fits (0 when it fits now; a whole span when it never can)."""
        used = self.used(now)
        if used + cost <= self.limit:
            return 0.0
        if cost > self.limit:
            return self.span
        for slot, charged in self.slots:
            used -= charged
            if used + cost <= self.limit:
                return max(0.0, self._expiry(slot) - now)
        return self.span

    def relief(self, now: float, level: float) -> float:
        """Seconds until the window holds less than `level`, if nothing more is charged."""
        used = self.used(now)
        for slot, charged in self.slots:
            if used < level:
                break
            used -= charged
            if used < level:
                return max(0.0, self._expiry(slot) - now)
        return 0.0


@dataclass
class Verdict:
    """What the budget says about one request: pass (status None) or 429/503 with Retry-After."""

    status: int | None = None
    retry_after: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    blocked: bool = False


class Budget:
    """A per-app SharePoint budget: RU per minute and per 24 h, unlimited where None.

    A client that keeps sending while it has been told to wait is blocked: `block_after` requests that arrive
    more than one second into a throttling episode and before its Retry-After has passed, within 60 s, block
    the app for `block_seconds` (every request 503 with a Retry-After of the rest of the block). Microsoft
    publishes neither number ("continued abuse leads to a block"); 100 and 60 s are our guesses, sized so a
    client that pauses all its workers on a 429 never gets there (its in-flight requests land inside the first
    second). `block_after=0` turns blocking off.
    """

    def __init__(self, per_minute: float | None = None, per_day: float | None = None, *, block_after: int = 100,
                 block_seconds: float = 60.0, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.minute: RollingWindow | None = None
        self.day: RollingWindow | None = None
        self.block_after, self.block_seconds = block_after, block_seconds
        self.configure(per_minute=per_minute, per_day=per_day)
        self.told_from = self.told_until = self.blocked_until = 0.0
        self.early: deque[float] = deque()

    def configure(self, **changes: float | int | bool | None) -> None:
        """Change only the options given: per_minute, per_day (0 or None = unlimited), block_after,
        block_seconds; charges already made stay in the windows unless `reset` is true."""
        unknown = set(changes) - {"per_minute", "per_day", "block_after", "block_seconds", "reset"}
        if unknown:
            raise ValueError(f"unknown budget options {sorted(unknown)}; expected per_minute, per_day, "
                             f"block_after, block_seconds or reset")
        reset = bool(changes.get("reset"))
        for key, span, attr in (("per_minute", 60.0, "minute"), ("per_day", 86400.0, "day")):
            prev: RollingWindow | None = getattr(self, attr)
            if key in changes:
                limit = changes[key]
                new = RollingWindow(span, float(limit)) if limit else None
                if new is not None and prev is not None and not reset:
                    new.slots, new.total = prev.slots, prev.total
                setattr(self, attr, new)
            elif reset and prev is not None:
                setattr(self, attr, RollingWindow(span, prev.limit))
        if "block_after" in changes:
            self.block_after = int(changes["block_after"] or 0)
        if "block_seconds" in changes:
            self.block_seconds = float(changes["block_seconds"] or 0)
        if reset:
            self.told_from = self.told_until = self.blocked_until = 0.0
            self.early.clear()

    @property
    def limited(self) -> bool:
        return self.minute is not None or self.day is not None

    def admit(self, cost: int, now: float | None = None) -> Verdict:
        """Charge `cost` (admitted or not) and say whether the request may pass."""
        if not self.limited:
            return Verdict()
        now = time.monotonic() if now is None else now
        windows = [w for w in (self.minute, self.day) if w is not None]
        if now < self.blocked_until:
            for w in windows:
                w.charge(now, cost)
            return self._refuse(503, self.blocked_until - now, now, blocked=True)
        if self.block_after and self.told_from + 1.0 <= now < self.told_until:
            self.early.append(now)
            while self.early and self.early[0] <= now - 60:
                self.early.popleft()
            if len(self.early) >= self.block_after:
                self.early.clear()
                self.blocked_until = now + self.block_seconds
                for w in windows:
                    w.charge(now, cost)
                return self._refuse(503, self.block_seconds, now, blocked=True)
        fits = all(w.fits(now, cost) for w in windows)
        for w in windows:
            w.charge(now, cost)
        if fits:
            return Verdict(headers=self._headers(now))
        wait = max(w.wait(now, cost) for w in windows)
        if now >= self.told_until:
            self.told_from = now
        self.told_until = max(self.told_until, now + wait)
        return self._refuse(429 if self.rng.random() < 0.7 else 503, wait, now)

    def _refuse(self, status: int, wait: float, now: float, blocked: bool = False) -> Verdict:
        wait = max(wait, 0.001)
        ra = f"{wait:.3f}" if self.rng.random() < 0.5 else str(max(1, math.ceil(wait)))
        return Verdict(status, ra, self._headers(now), blocked)

    def _headers(self, now: float) -> list[tuple[str, str]]:
        """IETF RateLimit-* once 80% of the minute budget is used. Reset: seconds until use drops back below
        80% if nothing more is sent (what SharePoint means by it is not published)."""
        w = self.minute
        if w is None:
            return []
        used = w.used(now)
        mark = HEADER_SHARE * w.limit
        if used < mark:
            return []
        return [("RateLimit-Limit", str(int(w.limit))), ("RateLimit-Remaining", str(max(0, int(w.limit - used)))),
                ("RateLimit-Reset", str(math.ceil(w.relief(now, mark))))]

    def state(self, now: float | None = None) -> dict[str, float | int | bool | None]:
        now = time.monotonic() if now is None else now
        return {"per_minute": self.minute.limit if self.minute else None,
                "per_day": self.day.limit if self.day else None,
                "used_minute": self.minute.used(now) if self.minute else None,
                "used_day": self.day.used(now) if self.day else None,
                "blocked": now < self.blocked_until, "block_after": self.block_after,
                "block_seconds": self.block_seconds}
