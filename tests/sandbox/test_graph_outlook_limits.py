"""Outlook's per-mailbox limits on the groupware routes: requests per 10 minutes and requests in flight, with
real concurrent connections held open by the per-request delay."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.fixtures_graph import graph_http


def _concurrently(g, paths: list[str], timeout: float = 30) -> list[httpx.Response | Exception]:
    token = g.issue_token()

    def one(path: str) -> httpx.Response | Exception:
        with graph_http(g, token=token) as c:      # a connection of its own
            try:
                return c.get(path, timeout=timeout)
            except httpx.HTTPError as exc:
                return exc

    with ThreadPoolExecutor(len(paths)) as pool:
        return list(pool.map(one, paths))


def test_a_fifth_request_in_flight_for_one_mailbox_is_refused(graph_sandbox_factory):
    g = graph_sandbox_factory(outlook_delay=0.6)
    u = g.tenant.users[0]
    answers = _concurrently(g, [f"/users/{u.id}/calendars"] * 5)
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 200, 200, 200, 429]
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.json() == {"error": {"code": "ApplicationThrottled",
                                        "message": "Application is over its MailboxConcurrency limit."}}
    assert float(refused.headers["Retry-After"]) > 0
    books = g.stats()["mailboxes"][u.id]
    assert books == {"requests": 5, "throttled": 1, "over_concurrency": 1, "over_rate": 0, "max_in_flight": 4}
    assert g.stats()["throttled_status"]["429"] == 1 and g.stats()["ru"] == 0     # no SharePoint RU
    # the four finished: their slots are free again
    assert sorted(r.status_code for r in _concurrently(g, [f"/users/{u.id}/contacts"] * 4)) == [200] * 4


def test_the_limit_is_per_mailbox(graph_sandbox_factory):
    g = graph_sandbox_factory(outlook_delay=0.5, mailbox_concurrency=2)
    a, b = g.tenant.users[0], g.tenant.users[1]
    answers = _concurrently(g, [f"/users/{a.id}/calendars"] * 2 + [f"/users/{b.id}/contactFolders"] * 2)
    assert [r.status_code for r in answers] == [200] * 4
    books = g.stats()["mailboxes"]
    assert books[a.id]["max_in_flight"] == 2 and books[b.id]["max_in_flight"] == 2


def test_an_abandoned_request_frees_its_slot_when_its_answer_is_dropped(graph_sandbox_factory):
    g = graph_sandbox_factory(outlook_delay=0.5, mailbox_concurrency=2)
    u = g.tenant.users[0]
    gone = _concurrently(g, [f"/users/{u.id}/calendars"] * 2, timeout=0.1)
    assert all(isinstance(r, httpx.TimeoutException) for r in gone)
    time.sleep(0.8)
    assert [r.status_code for r in _concurrently(g, [f"/users/{u.id}/calendars"] * 2)] == [200, 200]


def test_requests_per_ten_minutes_per_mailbox(graph_sandbox_factory):
    g = graph_sandbox_factory(mailbox_requests_per_10_minutes=5)
    a, b = g.tenant.users[0], g.tenant.users[1]
    with graph_http(g) as c:
        codes = [c.get(f"/users/{a.id}/contacts").status_code for _ in range(5)]
        over = c.get(f"/users/{a.id}/calendars")
        other = c.get(f"/users/{b.id}/calendars")
    assert codes == [200] * 5 and other.status_code == 200
    assert over.status_code == 429 and over.json()["error"]["code"] == "ApplicationThrottled"
    assert 500 < float(over.headers["Retry-After"]) <= 601
    books = g.stats()["mailboxes"]
    assert books[a.id]["over_rate"] == 1 and books[a.id]["requests"] == 6 and books[b.id]["requests"] == 1


def test_batch_steps_count_per_mailbox_and_limits_change_at_run_time(graph_sandbox_factory):
    g = graph_sandbox_factory()
    u = g.tenant.users[0]
    ids = list(range(6))
    steps = [{"id": str(i), "method": "GET", "url": f"/users/{u.id}/contacts?$top=1&$skip={i}"} for i in ids]
    with httpx.Client(base_url=g.admin_url) as admin:
        assert admin.post("/outlook", json={"per_10_minutes": 4}).json()["per_10_minutes"] == 4
        assert admin.post("/outlook", json={"burst": 1}).status_code == 400
    with graph_http(g) as c:
        r = c.post("/$batch", json={"requests": steps})
    statuses = {a["id"]: a["status"] for a in r.json()["responses"]}
    assert sorted(statuses.values()).count(429) == len(ids) - 4          # steps 5 and 6 are over the cap
    books = g.stats()["mailboxes"][u.id]
    assert books["requests"] == len(ids) and books["over_rate"] == len(ids) - 4 and books["over_concurrency"] == 0
