"""The fault budget in the pacer, against real sockets on loopback: a port that refuses is retried for the budget's
time (not a count), shown while it happens, then given up for every caller at once; an answer ends an outage."""

from __future__ import annotations

import logging
import socket
import threading
import time

import httpx
import pytest

from migrate.backends.webdav.session import DavSession, make_http
from migrate.errors import EndpointUnreachable, ExitCode, TransientError, exit_code_for
from migrate.transport.outage import Endpoint, FaultBudget
from migrate.transport.pacer import Pacer


def _refusing_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _session(seconds: float) -> DavSession:
    budget = FaultBudget(Endpoint("target", "http://x", "[target] url in m365-migrate.toml"), seconds)
    return DavSession(make_http(), Pacer("t", max_attempts=2, faults=budget))


def test_a_refusing_port_is_retried_for_the_budget_then_exit_4_naming_url_and_key(caplog) -> None:
    s = _session(2.0)
    url = _refusing_url()
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING), pytest.raises(EndpointUnreachable) as info:
        s.send("GET", url + "/status.php", auth=None, what="GET status.php")
    took = time.monotonic() - t0
    assert 1.9 < took < 4, took   # the time budget, not max_attempts=2 (which would give up after 0.5 s)
    msg = str(info.value)
    assert "target http://x ([target] url in m365-migrate.toml) answered nothing for 2 s" in msg
    assert "Connection refused" in msg and "run the same command again" in msg
    assert exit_code_for(info.value) == ExitCode.AUTH
    shown = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert shown and shown[0].startswith("target http://x unreachable (ConnectError") and "retry 1 of" in shown[0]
    # every later call fails at once: a target that went away is one cause, not one per item
    t0 = time.monotonic()
    with pytest.raises(EndpointUnreachable):
        s.send("GET", url + "/other", auth=None, what="GET other")
    assert time.monotonic() - t0 < 0.1
    s.close()


def test_many_workers_share_one_outage_and_one_message_every_few_seconds(caplog) -> None:
    s = _session(1.5)
    url = _refusing_url()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            s.send("GET", url, auth=None, what="GET")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    with caplog.at_level(logging.WARNING):
        threads = [threading.Thread(target=worker) for _ in range(8)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert time.monotonic() - t0 < 4
    assert len(errors) == 8 and all(isinstance(e, EndpointUnreachable) for e in errors)
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1


def test_an_answer_ends_the_outage(nextcloud_sandbox) -> None:
    """Refused for most of the budget, then answering: the call succeeds and the next outage starts afresh."""
    clock = [0.0]
    budget = FaultBudget(Endpoint("target"), 10.0, clock=lambda: clock[0])
    pacer = Pacer("t", faults=budget, sleep=lambda d: clock.__setitem__(0, clock[0] + d))
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 6:
            from migrate.errors import Unanswered

            raise Unanswered("GET x: refused", reason="refused")
        return "ok"

    assert pacer.call(flaky) == "ok" and 5 <= clock[0] < 10
    assert not budget.gone
    calls["n"], start = 0, clock[0]
    assert pacer.call(flaky) == "ok" and clock[0] - start <= 10   # a fresh budget, not what was left of the first
    # an HTTP answer, even an error, is not an outage: a 503 keeps its count of attempts (2 here), not the budget
    nc = nextcloud_sandbox
    nc.fault("GET", 503, count=5)
    s = DavSession(make_http(), Pacer("t2", max_attempts=2, base_delay=0.01))
    t0 = time.monotonic()
    with pytest.raises(TransientError, match="503"):
        s.send("GET", nc.url + "/status.php", auth=None, what="GET status.php")
    assert time.monotonic() - t0 < 1 and not s.pacer.faults.gone
    s.close()


def test_the_schedule_spans_the_budget() -> None:
    b = FaultBudget(Endpoint("graph"), 60)
    assert [b.step(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 8, 10] and b.planned == 10
    assert FaultBudget(Endpoint("t"), 3).planned >= 3
    assert isinstance(httpx.ConnectError("x"), httpx.TransportError)
