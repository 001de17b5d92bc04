"""The Graph sandbox keeps SharePoint's books: published RU costs per request kind, a per-app budget per minute
and per 24 h (throttled requests charged, RateLimit-* from 80%, 429/503 with Retry-After, a block for a client
that keeps sending), all visible in the stats and changeable through the admin API."""

from __future__ import annotations

import random
import time

import httpx
import pytest

from migrate.sandbox.graph.budget import Budget, RollingWindow
from tests.fixtures_graph import graph_http


def _file(g):
    d = g.tenant.drive_list[0]
    f = next(i for i in d.live_items() if i.kind == "file" and not i.malware and i.old_versions)
    return d, f


def test_each_request_kind_costs_what_sharepoint_charges(graph_sandbox_factory):
    g = graph_sandbox_factory()
    d, f = _file(g)
    u = g.tenant.users[0]
    steps = [  # (path, query, route, RU)
        (f"/drives/{d.id}/items/{f.id}", None, "item", 1),
        (f"/drives/{d.id}/items/{f.id}", {"$expand": "permissions"}, "item", 5),
        (f"/drives/{d.id}/root/children", None, "children", 2),
        (f"/drives/{d.id}/root/children", {"$expand": "thumbnails,permissions"}, "children", 5),
        (f"/drives/{d.id}/items/{f.id}/permissions", None, "permissions", 5),
        (f"/drives/{d.id}/items/{f.id}/versions", None, "versions", 2),
        (f"/drives/{d.id}/items/{f.id}/versions/{f.old_versions[0].label}", None, "version", 1),
        (f"/drives/{d.id}", None, "drive", 1),
        (f"/users/{u.id}/drives", None, "drives", 2),
        ("/sites", {"search": "*"}, "sites", 2),
        (f"/sites/{g.tenant.sites[0].id}", None, "site", 1),
        (f"/drives/{d.id}/items/{f.id}/content", None, "content", 1),
        ("/users", None, "users", 0),              # Entra ID, not SharePoint
        (f"/users/{u.id}", None, "user", 0),
        ("/groups", None, "groups", 0),
        ("/subscribedSkus", None, "subscribedSkus", 0),
        ("/organization", None, "organization", 0),
        (f"/users/{u.id}/calendars", None, "calendars", 0),   # Exchange: Outlook's limits, no SharePoint RU
        (f"/users/{u.id}/contacts", None, "contacts", 0),
    ]
    with graph_http(g, follow_redirects=False) as c:
        for path, query, route, ru in steps:
            before = g.stats()
            r = c.get(path, params=query)
            assert r.status_code in (200, 302), (path, r.text)
            after = g.stats()
            assert after["ru"] - before["ru"] == ru, (path, query)
            assert after["ru_by_route"].get(route, 0) - before["ru_by_route"].get(route, 0) == ru, route
            assert after["requests"][route] - before["requests"].get(route, 0) == 1, route
        first = c.get(f"/drives/{d.id}/root/delta", params={"$top": 1000}).json()
        assert g.stats()["ru_by_route"]["delta"] == 2          # no token: a whole enumeration
        c.get(first["@odata.deltaLink"])
        assert g.stats()["ru_by_route"]["delta"] == 3          # with a token: 1
        url = c.get(f"/drives/{d.id}/items/{f.id}").json()["@microsoft.graph.downloadUrl"]
        before = g.stats()["ru"]
        assert httpx.get(url).status_code == 200
        assert g.stats()["ru"] - before == 1 and g.stats()["ru_by_route"]["download"] == 1
        before = g.stats()["ru"]
        assert c.post(f"/drives/{d.id}/items/{f.id}/children", json={}).status_code == 405
        assert g.stats()["ru"] - before == 2 and g.stats()["ru_by_route"]["write"] == 2
        sku = c.get("/subscribedSkus").json()["value"][0]
        assert sku["prepaidUnits"]["enabled"] == g.tenant.licences == 60_000


def test_batch_steps_are_charged_one_by_one_and_the_envelope_costs_nothing(graph_sandbox_factory):
    g = graph_sandbox_factory(ru_per_minute=7)
    d, f = _file(g)
    steps = [{"id": str(i), "method": "GET", "url": f"/drives/{d.id}/items/{f.id}"} for i in range(5)]
    steps.append({"id": "p", "method": "GET", "url": f"/drives/{d.id}/items/{f.id}/permissions"})
    with graph_http(g) as c:
        r = c.post("/$batch", json={"requests": steps})
    assert r.status_code == 200
    by_id = {a["id"]: a for a in r.json()["responses"]}
    assert all(by_id[str(i)]["status"] == 200 for i in range(5))       # 5 RU of 7
    assert by_id["p"]["status"] in (429, 503) and float(by_id["p"]["headers"]["Retry-After"]) > 0
    s = g.stats()
    assert s["ru"] == 10 and s["ru_refused"] == 5                       # the refused step is charged too
    assert "batch" not in s["ru_by_route"] and s["requests"]["batch"] == 1


def test_minute_budget_refuses_with_retry_after_and_counts_the_refused(graph_sandbox_factory):
    g = graph_sandbox_factory(ru_per_minute=30, block_after=0)
    d, f = _file(g)
    with graph_http(g) as c:
        answers = [c.get(f"/drives/{d.id}/items/{f.id}") for _ in range(45)]
    ok = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code in (429, 503)]
    assert len(ok) == 30 and len(refused) == 15                         # never more than the budget in 60 s
    assert all(r.status_code == 200 for r in answers[:30])
    forms = {("." in r.headers["Retry-After"]) for r in refused}
    assert forms == {True, False}                                       # fractional and integer forms
    assert all(50 < float(r.headers["Retry-After"]) <= 61 for r in refused)
    assert refused[0].json()["error"]["code"] in ("TooManyRequests", "serviceNotAvailable")
    s = g.stats()
    assert s["ru"] == 45 and s["ru_refused"] == 15 and s["throttled"] == 15
    assert s["throttled_status"].get("429", 0) + s["throttled_status"].get("503", 0) == 15
    assert s["throttled_status"].get("429", 0) == s["status"].get("429", 0)
    assert s["budget"]["per_minute"] == 30 and s["budget"]["used_minute"] == 45


def test_ratelimit_headers_from_80_percent_of_the_minute_budget(graph_sandbox_factory):
    g = graph_sandbox_factory(ru_per_minute=100)
    d, f = _file(g)
    with graph_http(g) as c:
        answers = [c.get(f"/drives/{d.id}/items/{f.id}") for _ in range(85)]
    assert all("RateLimit-Limit" not in r.headers for r in answers[:79])
    for used, r in enumerate(answers[79:], start=80):
        assert r.headers["RateLimit-Limit"] == "100"
        assert r.headers["RateLimit-Remaining"] == str(100 - used)
        assert 0 < int(r.headers["RateLimit-Reset"]) <= 61


def test_downloads_are_charged_against_the_budget(graph_sandbox_factory):
    g = graph_sandbox_factory(ru_per_minute=3)
    d, f = _file(g)
    with graph_http(g) as c:
        url = c.get(f"/drives/{d.id}/items/{f.id}").json()["@microsoft.graph.downloadUrl"]
    first, second = httpx.get(url), httpx.get(url)
    assert (first.status_code, second.status_code) == (200, 200)
    assert "RateLimit-Limit" not in first.headers and second.headers["RateLimit-Remaining"] == "0"   # 3 of 3
    third = httpx.get(url)
    assert third.status_code in (429, 503) and float(third.headers["Retry-After"]) > 0
    assert g.stats()["ru_by_route"]["download"] == 3


def test_day_budget_refuses_for_hours_once_spent(graph_sandbox_factory):
    g = graph_sandbox_factory(ru_per_day=10)
    d, f = _file(g)
    with graph_http(g) as c:
        answers = [c.get(f"/drives/{d.id}/root/children") for _ in range(6)]
    assert [r.status_code for r in answers[:5]] == [200] * 5
    assert answers[5].status_code in (429, 503)
    assert float(answers[5].headers["Retry-After"]) > 86000          # only the day window frees it
    assert "RateLimit-Limit" not in answers[5].headers               # those speak of the minute budget


def test_admin_api_changes_the_budget_at_run_time_and_resets_the_books(graph_sandbox_factory):
    g = graph_sandbox_factory()
    d, f = _file(g)
    with httpx.Client(base_url=g.admin_url) as admin, graph_http(g) as c:
        assert admin.get("/budget").json()["per_minute"] is None
        assert all(c.get(f"/drives/{d.id}/items/{f.id}").status_code == 200 for _ in range(4))
        st = admin.post("/budget", json={"per_minute": 5}).json()
        assert st["per_minute"] == 5 and st["used_minute"] == 0            # unlimited time was not recorded
        codes = [c.get(f"/drives/{d.id}/items/{f.id}").status_code for _ in range(6)]
        assert codes[:5] == [200] * 5 and codes[5] in (429, 503)
        books = admin.get("/stats").json()
        assert books["ru_by_route"]["item"] == 10 and books["ru_refused"] == 1 and books["budget"]["per_minute"] == 5
        admin.post("/budget", json={"per_minute": 50})                     # charges already made stay
        assert admin.get("/budget").json()["used_minute"] == 6
        assert c.get(f"/drives/{d.id}/items/{f.id}").status_code == 200
        admin.post("/budget", json={"reset": True})
        assert admin.get("/budget").json()["used_minute"] == 0
        assert admin.post("/budget", json={"per_hour": 1}).status_code == 400
        cleared = admin.delete("/stats").json()
        assert cleared["ru"] == 0 and cleared["requests"] == {} and cleared["throttled"] == 0
        admin.post("/budget", json={"per_minute": 0})
        assert admin.get("/budget").json()["per_minute"] is None


def test_a_client_that_keeps_sending_while_told_to_wait_is_blocked(graph_sandbox_factory):
    g = graph_sandbox_factory(ru_per_minute=5, block_after=10, block_seconds=30)
    d, f = _file(g)
    with graph_http(g) as c:
        for _ in range(5):
            assert c.get(f"/drives/{d.id}/items/{f.id}").status_code == 200
        t0 = time.monotonic()
        answers = []
        while time.monotonic() - t0 < 1.5 or len(answers) < 30:            # ignores every Retry-After
            answers.append(c.get(f"/drives/{d.id}/items/{f.id}"))
    assert all(r.status_code in (429, 503) for r in answers)
    s = g.stats()
    assert s["blocked"] >= 1 and s["budget"]["blocked"] is True
    last = answers[-1]
    assert last.status_code == 503 and 25 < float(last.headers["Retry-After"]) <= 30


# ---------------------------------------------------------------------- the windows themselves, on a clock we drive
def test_the_minute_window_never_admits_more_than_the_budget_in_any_60_seconds():
    b = Budget(per_minute=50, block_after=0, seed=3)
    rng = random.Random(5)
    now, admitted, refused = 1000.0, [], 0
    for _ in range(3000):                                # a greedy client that honours Retry-After
        now += rng.expovariate(1 / 0.4)
        cost = rng.choice((1, 1, 1, 2, 5))
        v = b.admit(cost, now)
        if v.status is None:
            admitted.append((now, cost))
        else:
            refused += 1
            now += float(v.retry_after)
    assert sum(c for _, c in admitted) > 0.6 * 50 * (now - 1000) / 60 and refused   # ~73% when only 429s pace it
    for i, (t, _) in enumerate(admitted):               # every 60 s interval that starts at an admission
        in_window = sum(c for u, c in admitted[i:] if u < t + 60)
        assert in_window <= 50


def test_retry_after_is_the_truth_for_the_next_attempt():
    b = Budget(per_minute=10, block_after=0, seed=1)
    now = 0.0
    for k in range(10):
        assert b.admit(1, now + k).status is None         # one per second: 10 RU by t = 9
    v = b.admit(1, 12.0)
    assert v.status in (429, 503)
    wait = float(v.retry_after)
    # the refused request was charged, so the window must shed two charges: the slots of t = 0 and t = 1
    assert 49 <= wait <= 62
    assert b.admit(1, 12.0 + wait - 1.5).status is not None       # too early
    later = 12.0 + wait + 1.0
    assert b.admit(1, later).status is None


def test_block_lasts_its_time_and_then_the_budget_applies_again():
    b = Budget(per_minute=2, block_after=3, block_seconds=10, seed=2)
    assert b.admit(2, 0.0).status is None
    assert b.admit(1, 0.1).status is not None            # told to wait ~60 s
    statuses = [b.admit(1, 1.5 + i * 0.1) for i in range(3)]
    assert statuses[-1].blocked and statuses[-1].status == 503
    assert b.admit(1, 5.0).blocked                      # still blocked
    assert not b.admit(1, 200.0).blocked and b.admit(1, 300.0).status is None


def test_rolling_window_slots_expire_one_span_after_their_end():
    w = RollingWindow(60.0, 3)
    w.charge(10.0, 3)
    assert w.wait(20.0, 1) == pytest.approx(50.04, abs=0.05)
    assert not w.fits(69.9, 1) and w.fits(70.1, 1)


def test_cli_flags_set_the_budget_and_the_outlook_limits():
    from tests.sandbox.test_graph_cli import _start

    proc, info = _start("--users", "2", "--sites", "1", "--teams", "0", "--files-per-drive", "3",
                        "--ru-per-minute", "40", "--ru-per-day", "900", "--block-after", "7",
                        "--block-seconds", "12", "--mailbox-concurrency", "2", "--mailbox-requests", "50",
                        "--outlook-delay", "0.25", "--licences", "1200")
    try:
        st = httpx.get(info["admin_url"] + "/budget").json()
        assert (st["per_minute"], st["per_day"], st["block_after"], st["block_seconds"]) == (40, 900, 7, 12)
        ol = httpx.get(info["admin_url"] + "/outlook").json()
        assert (ol["concurrency"], ol["per_10_minutes"], ol["delay"]) == (2, 50, 0.25)
        tok = httpx.post(info["admin_url"] + "/token", json={}).json()["access_token"]
        sku = httpx.get(info["graph_url"] + "/subscribedSkus", headers={"Authorization": f"Bearer {tok}"}).json()
        assert sku["value"][0]["prepaidUnits"]["enabled"] == 1200
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) in (0, 130)
