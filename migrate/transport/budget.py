"""A resource-unit budget shared by every worker of a command: requests are charged before they are sent.

SharePoint meters each app of a tenant in resource units (RU) per minute and per 24 hours and answers 429/503
once an app goes over; an app that keeps going over gets blocked. So the cheapest way through a tenant is never
to be told no: every request takes its units from two token buckets (minute and day) before it leaves, and waits
when they are empty. Reservations may drive a bucket below zero; the caller then waits until the refill has paid
for it, so many workers asking at once are served in the order they asked, never all at once.

Graph's `RateLimit-Remaining/-Reset` headers (sent from 80% of the minute budget) are taken as the truth about
the minute bucket when they say less is left than we believe: another app of ours, or a second run, is spending
from the same budget.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

BURST_SECONDS = 1.0  # the minute bucket holds about a second of the budget: requests flow evenly, never in a burst;
# it refills at what a minute leaves after that second, so no 60-second window ever holds more than the minute
# budget (however SharePoint slides its window), at the cost of 1.7% of the rate


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """What a command may spend: the tenant's per-app budget times our share of it."""

    per_minute: float
    per_day: float | None = None
    share: float = 1.0
    spent_today: float = 0.0   # RU that earlier runs spent in the last 24 hours (from the state database)
    source: str = ""           # where the figures come from, in words (config, licences, lowest band)

    @property
    def minute_rate(self) -> float:
        return self.per_minute * self.share

    @property
    def day_allowance(self) -> float | None:
        return None if not self.per_day else self.per_day * self.share


class _Bucket:
    def __init__(self, rate_per_s: float, capacity: float, level: float, now: float) -> None:
        self.rate = rate_per_s
        self.capacity = capacity
        self.level = min(level, capacity)
        self.stamp = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def reserve(self, cost: float, now: float) -> float:
        self.refill(now)
        self.level -= cost
        return 0.0 if self.level >= 0 else -self.level / self.rate


class Budget:
    """Two buckets (minute, day) of resource units; thread-safe. `reserve` books units and says how long to wait."""

    def __init__(self, limits: BudgetLimits, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        now = clock()
        burst = max(limits.minute_rate / 60.0 * BURST_SECONDS, 5.0)  # room for the dearest single request (5 RU)
        rate = max(limits.minute_rate - burst, limits.minute_rate / 2) / 60.0
        self._minute = _Bucket(rate, burst, burst, now)
        self._day: _Bucket | None = None
        allowance = limits.day_allowance
        if allowance:
            left = max(0.0, allowance - limits.spent_today)
            self._day = _Bucket(allowance / 86400.0, allowance, left, now)
        self.reserved = 0.0
        self.waited = 0.0

    def reserve(self, cost: float) -> float:
        """Book `cost` units now; the seconds the caller must wait before sending (0 when there is room)."""
        if cost <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            wait = self._minute.reserve(cost, now)
            if self._day is not None:
                wait = max(wait, self._day.reserve(cost, now))
            self.reserved += cost
            self.waited += wait
            return wait

    def spend(self, cost: float) -> None:
        """Book `cost` units and wait until they are paid for (blocking; for worker threads)."""
        wait = self.reserve(cost)
        if wait > 0:
            self._sleep(wait)

    def observe(self, remaining: float | None, reset_s: float | None) -> None:
        """Graph's `RateLimit-Remaining`/`-Reset`: when Graph says less is left than we think, believe Graph
        (spread what is left over the seconds until the reset)."""
        if remaining is None:
            return
        with self._lock:
            now = self._clock()
            self._minute.refill(now)
            if remaining < self._minute.level:
                self._minute.level = remaining
            if remaining <= 0 and reset_s:
                # Nothing left until the reset: the next request waits for it.
                self._minute.level = min(self._minute.level, -reset_s * self._minute.rate)

    @property
    def day_left(self) -> float | None:
        """Units of the 24-hour allowance still free now (None without a daily budget)."""
        if self._day is None:
            return None
        with self._lock:
            self._day.refill(self._clock())
            return max(0.0, self._day.level)


def parse_ratelimit(headers: object) -> tuple[float | None, float | None]:
    """(remaining, reset seconds) from IETF draft `RateLimit-*` headers, or (None, None)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None, None

    def num(name: str) -> float | None:
        raw = get(name)
        if raw is None:
            return None
        try:
            return float(str(raw).split(",")[0].split(";")[0].strip())
        except ValueError:
            return None

    return num("ratelimit-remaining"), num("ratelimit-reset")
