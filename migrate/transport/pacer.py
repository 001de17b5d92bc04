"""The one place where calls are retried and paced; every HTTP call of every backend goes through a Pacer.

Backends turn responses into typed errors (their own `should_retry` classification); the pacer decides what
to do with them: Transient errors are retried with backoff, `ThrottledError.retry_after` is honoured exactly
(integer or fractional seconds) and pauses *every* worker sharing the pacer, not just the one that was told.
Anything else passes straight through. Attempts that get no answer at all (Unanswered) are bounded in time by
the pacer's FaultBudget instead of a count (transport/outage.py); Ctrl-C ends every pause at once (interrupt.py).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception

from migrate.errors import ThrottledError, Transient, Unanswered
from migrate.transport import interrupt
from migrate.transport.outage import Endpoint, FaultBudget

if TYPE_CHECKING:
    from migrate.transport.budget import Budget

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass
class PacerStats:
    """Counters a run reports at the end (and benchmarks read)."""

    calls: int = 0
    retries: int = 0
    throttled: int = 0
    waited: float = 0.0
    retry_afters: list[float] = field(default_factory=list)


class Pacer:
    """Retry transient failures with exponential backoff; share throttling across all threads using it."""

    def __init__(
        self,
        name: str,
        *,
        max_attempts: int = 8,
        base_delay: float = 0.5,
        max_delay: float = 60.0,
        min_interval: float = 0.0,
        sleep: Callable[[float], None] = interrupt.sleep,
        clock: Callable[[], float] = time.monotonic,
        faults: FaultBudget | None = None,
    ) -> None:
        self.name = name
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.min_interval = min_interval
        self._sleep = sleep
        self._clock = clock
        self._cond = threading.Lock()
        self._resume_at = 0.0
        self._last_call = 0.0
        self.stats = PacerStats()
        self.faults = faults or FaultBudget(Endpoint(name))
        self.budget: Budget | None = None   # the resource-unit budget every request through this pacer draws on

    def spend(self, units: float) -> None:
        """Take `units` from the budget before a request leaves, waiting while it is empty (no-op without one)."""
        budget = self.budget
        if budget is not None and units > 0:
            wait = budget.reserve(units)
            if wait > 0:
                self.stats.waited += wait
                self._sleep(wait)

    def pause(self, seconds: float) -> None:
        """Hold every caller of this pacer for `seconds` from now (extends, never shortens, a running pause)."""
        with self._cond:
            self._resume_at = max(self._resume_at, self._clock() + max(0.0, seconds))

    def _wait_turn(self) -> None:
        while True:
            with self._cond:
                now = self._clock()
                delay = max(self._resume_at - now, self._last_call + self.min_interval - now)
                if delay <= 0:
                    self._last_call = now
                    self.stats.calls += 1
                    return
            self.stats.waited += delay
            self._sleep(delay)

    def _stop(self, state: RetryCallState) -> bool:
        """Unanswered attempts stop when the fault budget is spent, any other failure after max_attempts."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Unanswered):
            # also a bound per call: answers from elsewhere on the endpoint (another host behind the same pacer,
            # such as Graph's download host) keep ending the shared outage, and this call must still end
            return self.faults.unanswered(exc) or state.attempt_number >= max(self.max_attempts,
                                                                               self.faults.planned + 2)
        return state.attempt_number >= self.max_attempts

    def _backoff(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Unanswered):
            return self.faults.pause(exc, state.attempt_number)
        if isinstance(exc, ThrottledError) and exc.retry_after is not None:
            # The pause is shared (set in _before_sleep); this thread waits for it in _wait_turn.
            return 0.0
        delay = min(self.max_delay, self.base_delay * 2 ** (state.attempt_number - 1))
        return delay * (0.5 + random.random() / 2)

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.stats.retries += 1
        if isinstance(exc, ThrottledError):
            self.stats.throttled += 1
            wait = exc.retry_after if exc.retry_after is not None else None
            if wait is not None:
                self.stats.retry_afters.append(wait)
                self.pause(wait)
        log.debug("%s: retry %d after %s", self.name, state.attempt_number, exc)

    def call(self, fn: Callable[[], T], *, what: str = "") -> T:
        """Run `fn` until it returns, raises a non-transient error, or runs out of attempts."""
        retrying = Retrying(
            stop=self._stop,
            wait=self._backoff,
            retry=retry_if_exception(lambda e: isinstance(e, Transient)),
            before_sleep=self._before_sleep,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    interrupt.check()
                    self.faults.check()
                    self._wait_turn()
                    result = fn()
                    self.faults.answered()
                    return result
        except Unanswered:
            if self.faults.gone:
                raise self.faults.unreachable() from None
            raise
        raise AssertionError("unreachable")  # pragma: no cover


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: integer or fractional (Graph sends '2.128'); dates are rare here."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
