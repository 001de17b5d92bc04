"""The fault budget: how long an endpoint may answer nothing before a command gives up on it (exit 4).

One budget per endpoint, shared by every caller of its pacer. An outage starts with the first attempt that got
no answer at all (refused, reset, timed out) and ends with the next answer. Its retries are shown while they
happen (one line every few seconds, whatever the number of workers), spaced by a fixed schedule, and when the
outage has lasted the budget the endpoint is declared gone: that attempt and every later call through the pacer
raise EndpointUnreachable at once, so a target that went away stops the run instead of failing every item.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from migrate.errors import EndpointUnreachable, Unanswered

log = logging.getLogger(__name__)

DEFAULT_BUDGET = 60.0  # seconds of an endpoint answering nothing; [transfer] unreachable_after
SAY_EVERY = 5.0  # seconds between two retry messages of one outage


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What to name when an endpoint does not answer: "target https://cloud… ([target] url in m365-migrate.toml)"."""

    label: str
    url: str = ""
    key: str = ""

    def __str__(self) -> str:
        return f"{self.label} {self.url}".strip()


class FaultBudget:
    """Tracks the current outage of one endpoint; thread-safe."""

    def __init__(self, endpoint: Endpoint, seconds: float = DEFAULT_BUDGET, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.endpoint = endpoint
        self.seconds = max(0.0, float(seconds))
        self._clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None
        self._said = -SAY_EVERY
        self._gone: tuple[str, str] | None = None  # (message, hint) once given up
        self._cap = min(10.0, max(0.5, self.seconds / 6))
        self.planned = self._planned()

    def step(self, attempt: int) -> float:
        """The pause after the `attempt`-th unanswered try: 0.5, 1, 2, 4 … s, at most a sixth of the budget."""
        return min(self._cap, 0.5 * 2 ** max(0, attempt - 1))

    def _planned(self) -> int:
        n, total = 0, 0.0
        while total < self.seconds:
            n += 1
            total += self.step(n)
        return max(1, n)

    # --- what the pacer reports -----------------------------------------------------------------------------
    def answered(self) -> None:
        """The endpoint answered (anything): the outage, if any, is over."""
        if self._since is not None:
            with self._lock:
                if self._since is not None and self._gone is None and self._said >= self._since:
                    log.warning("%s answers again", self.endpoint)  # only after an outage that was shown
                self._since = None

    def unanswered(self, exc: Unanswered) -> bool:
        """Count one unanswered attempt; True when the budget is spent (the endpoint is then gone for good)."""
        with self._lock:
            if self._gone is not None:
                return True
            now = self._clock()
            if self._since is None:
                self._since = now
            elapsed = now - self._since
            if elapsed < self.seconds - 0.05:  # the last pause ends at the budget's end, give or take a clock tick
                return False
            self._gone = self._verdict(exc, elapsed)
            return True

    def pause(self, exc: Unanswered, attempt: int) -> float:
        """Seconds to wait before the next try (never past the budget's end); says so every few seconds."""
        with self._lock:
            now = self._clock()
            since = self._since if self._since is not None else now
            left = max(0.0, self.seconds - (now - since))
            delay = min(self.step(attempt), left)
            if now - self._said >= SAY_EVERY:
                self._said = now
                log.warning("%s unreachable (%s), retry %d of %d, giving up in %.0f s", exc.where or self.endpoint,
                            exc.reason, attempt, max(attempt, self.planned), left)
        return delay

    def check(self) -> None:
        """Raise EndpointUnreachable once the endpoint was given up on (every later call fails fast)."""
        if self._gone is not None:
            raise self.unreachable()

    @property
    def gone(self) -> bool:
        return self._gone is not None

    def unreachable(self) -> EndpointUnreachable:
        message, hint = self._gone or (f"{self.endpoint} unreachable", "")
        return EndpointUnreachable(message, hint=hint or None)

    def _verdict(self, exc: Unanswered, elapsed: float) -> tuple[str, str]:
        where = f" ({self.endpoint.key})" if self.endpoint.key else ""
        who = exc.where or f"{self.endpoint}{where}"
        return (f"{who} answered nothing for {elapsed:.0f} s: {exc.reason}",
                "check that the server is running and reachable from this machine (URL, port, firewall, proxy, "
                "DNS, TLS); then run the same command again: it resumes where it stopped")
