"""The resource-unit budget of the one pacer: charged before sending, never more than the minute budget in any
60-second window, paced to the day's allowance, and Graph's RateLimit headers believed."""

from __future__ import annotations

import threading

import pytest

from migrate.transport.budget import Budget, BudgetLimits, parse_ratelimit
from migrate.transport.pacer import Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def _sent_times(budget: Budget, clock: Clock, costs: list[float]) -> list[float]:
    out = []
    for c in costs:
        budget.spend(c)
        out.append(clock.now)
    return out


def test_no_sixty_second_window_holds_more_than_the_minute_budget() -> None:
    clock = Clock()
    b = Budget(BudgetLimits(per_minute=600, share=1.0), clock=clock, sleep=clock.sleep)
    costs = [1, 2, 5, 1, 1, 2] * 300
    times = _sent_times(b, clock, costs)
    # every window of 60 s starting at a send holds at most 600 RU
    j, held = 0, 0.0
    for i, t in enumerate(times):
        held += costs[i]
        while times[j] <= t - 60:
            held -= costs[j]
            j += 1
        assert held <= 600 + 1e-6, (i, held)
    # and the budget is used: the whole run takes about total / rate, no more than 3% over
    total = sum(costs)
    assert times[-1] - times[0] <= (total - 10) / (590 / 60) * 1.03


def test_the_day_allowance_paces_once_used_and_counts_what_earlier_runs_spent() -> None:
    clock = Clock()
    lim = BudgetLimits(per_minute=6_000, per_day=86_400, share=0.5, spent_today=43_000)
    b = Budget(lim, clock=clock, sleep=clock.sleep)
    assert b.day_left == pytest.approx(200)   # 43,200 allowed, 43,000 spent by earlier runs
    start = clock.now
    for _ in range(400):
        b.spend(1)
    # 200 left, then the day's refill: 43,200 / 86,400 = 0.5 RU per second
    assert clock.now - start == pytest.approx(200 / 0.5, rel=0.05)


def test_ratelimit_headers_slow_us_when_graph_says_less_is_left() -> None:
    clock = Clock()
    b = Budget(BudgetLimits(per_minute=6_000, share=1.0), clock=clock, sleep=clock.sleep)
    assert b.reserve(1) == 0
    b.observe(*parse_ratelimit({"ratelimit-remaining": "0", "ratelimit-reset": "7"}))
    assert b.reserve(1) == pytest.approx(7 + 1 / b._minute.rate, rel=0.01)
    assert parse_ratelimit({}) == (None, None)


def test_the_pacer_charges_every_worker_from_one_budget() -> None:
    clock = Clock()
    lock = threading.Lock()

    def sleep(s: float) -> None:
        with lock:
            clock.now += s

    pacer = Pacer("graph", sleep=sleep, clock=clock)
    pacer.budget = Budget(BudgetLimits(per_minute=120, share=1.0), clock=clock, sleep=sleep)
    threads = [threading.Thread(target=lambda: [pacer.spend(1) for _ in range(20)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert pacer.budget.reserved == 80
    assert pacer.stats.waited == pytest.approx((80 - 5) / ((120 - 5) / 60), rel=0.02)
