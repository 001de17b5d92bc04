"""Pacing of createShare per owner (Nextcloud 32: 20 calls per user per 600 s, §8.2), and waits that show
themselves: who waits, how far that owner is, and when the window opens."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Callable

from migrate.transport import interrupt

UNKNOWN_WINDOW = 600.0  # NC 32's createShare period, used when no pacing is configured but the server says 429

# wait(owner, seconds, reason): sleeps `seconds` for `owner`; replaces the plain sleep when given
WaitHook = Callable[[str, float, str], None]


class OwnerWindows:
    """A sliding window per owner: at most `limit` calls in any `period` seconds; limit 0 means no pacing."""

    def __init__(self, limit: int, period: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = interrupt.sleep, wait: WaitHook | None = None) -> None:
        self.limit, self.period = limit, float(period)
        self._clock, self._sleep, self._wait = clock, sleep, wait
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, owner: str, now: float) -> deque[float]:
        calls = self._calls.setdefault(owner, deque())
        horizon = self.period if self.limit else UNKNOWN_WINDOW
        while calls and calls[0] <= now - horizon:
            calls.popleft()
        return calls

    def _pause(self, owner: str, seconds: float, reason: str) -> None:
        if self._wait is not None:
            self._wait(owner, seconds, reason)
        else:
            self._sleep(seconds)

    def acquire(self, owner: str) -> float:
        """Wait until `owner` may call again, count the call, and return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                calls = self._recent(owner, now)
                if not self.limit or len(calls) < self.limit:
                    calls.append(now)
                    return waited
                delay = calls[0] + self.period - now
            self._pause(owner, delay, f"paced to {self.limit} new shares per {self.period:.0f} s")
            waited += delay

    def finished(self, owner: str) -> None:
        """Re-stamp the owner's last call with its end: the server counted it on arrival, somewhere in between.

        Callers work on one owner from one thread, so the owner's last entry is the call that just ended.
        """
        with self._lock:
            calls = self._calls.get(owner)
            if calls:
                calls[-1] = max(calls[-1], self._clock())

    def wait_full(self, owner: str) -> float:
        """The server said 429 to the owner's last call: wait until the oldest call it counted leaves its window;
        return the seconds.

        A refused call is not counted by Nextcloud's limiter (it registers an attempt only when it lets it through),
        so it is forgotten here, else the next wait would end too early and meet another 429.
        """
        period = self.period if self.limit else UNKNOWN_WINDOW
        with self._lock:
            now = self._clock()
            calls = self._recent(owner, now)
            if calls:
                calls.pop()
            # Calls before this run (or by someone else) are unknown to us: then the whole window must pass.
            delay = calls[0] + period - now if calls else period
        delay = max(delay, 0.05)
        self._pause(owner, delay, "the server answered 429 (createShare rate limit)")
        return delay


def duration(seconds: float) -> str:
    """"4 min 05 s", "12 s": short enough for a progress line."""
    s = max(0, int(round(seconds)))
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def visible_wait(say: Callable[[str], None], progress: Callable[[str], tuple[int, int]],
                 clock: Callable[[], float], pause: Callable[[float], None], stopped: Callable[[], bool]) -> WaitHook:
    """A WaitHook that prints a line when a wait starts and then every few seconds until the window opens (every
    5 s for short waits, up to every 30 s for long ones): owner, shares done / to do, time left, and the clock
    time the window opens. `pause` sleeps (and ends early when the run stops)."""

    def wait(owner: str, seconds: float, reason: str) -> None:
        end = clock() + seconds
        opens = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).strftime("%H:%M:%S UTC")
        tick = max(5.0, min(30.0, seconds / 10))
        while not stopped():
            left = end - clock()
            if left <= 0:  # the whole wait, never a little less: a retry a few ms early meets another 429
                return
            done, total = progress(owner)
            if left >= 1:
                say(f"share: {owner}: {done}/{total} shares done; {reason}; the window opens in {duration(left)} "
                    f"(at {opens})")
            pause(max(min(tick, left), 0.01))

    return wait
