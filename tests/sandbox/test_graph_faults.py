"""Seeded fault injection, resource-unit accounting, stats and the admin HTTP routes."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.fixtures_graph import graph_http


def _statuses(c: httpx.Client, url: str, n: int) -> list[tuple[int, str | None]]:
    out = []
    for _ in range(n):
        r = c.get(url)
        out.append((r.status_code, r.headers.get("Retry-After")))
    return out


@pytest.mark.parametrize("retry_after", ["2.128", "1", None])
def test_throttling_bodies_and_retry_after_forms(graph_sandbox_factory, retry_after):
    g = graph_sandbox_factory()
    g.faults.set(route="users", status=429, rate=1.0, retry_after=retry_after, count=1)
    with graph_http(g) as c:
        r = c.get("/users")
        assert r.status_code == 429 and r.headers.get("Retry-After") == retry_after
        err = r.json()["error"]
        assert err["code"] == "TooManyRequests" and err["innerError"]["status"] == "429"
        assert c.get("/users").status_code == 200               # count=1: only once
    assert g.stats()["throttled"] == 1


def test_same_seed_same_fault_sequence(graph_sandbox_factory):
    runs = []
    for _ in range(2):
        g = graph_sandbox_factory()
        g.faults.set(route="*", status=503, rate=0.3, retry_after="1", seed=42)
        with graph_http(g) as c:
            runs.append(_statuses(c, "/users", 40))
        g.faults.set(route="*", status=503, rate=0.3, retry_after="1", seed=43)
        with graph_http(g) as c:
            runs.append(_statuses(c, "/users", 40))
    assert runs[0] == runs[2] and runs[1] == runs[3] and runs[0] != runs[1]
    assert 5 <= sum(s == 503 for s, _ in runs[0]) <= 20


def test_504_and_connection_reset_and_slow_body(graph_sandbox_factory):
    g = graph_sandbox_factory()
    d = g.tenant.drive_list[0]
    big = max((i for i in d.live_items() if i.kind == "file" and not i.malware), key=lambda i: i.content.size)
    with graph_http(g) as c:
        g.faults.set(route="children", status=504, count=1)
        assert c.get(f"/drives/{d.id}/root/children").status_code == 504
        url = c.get(f"/drives/{d.id}/items/{big.id}").json()["@microsoft.graph.downloadUrl"]
    g.faults.set(route="download", reset_after=1000, count=1)
    with pytest.raises(httpx.HTTPError):
        with httpx.stream("GET", url) as r:
            for _ in r.iter_bytes():
                pass
    assert len(httpx.get(url).content) == big.content.size     # the next one is whole
    g.faults.set(route="download", bytes_per_second=200_000, count=1)
    t0 = time.monotonic()
    part = httpx.get(url, headers={"Range": "bytes=0-99999"})
    assert part.status_code == 206 and len(part.content) == 100_000
    assert time.monotonic() - t0 >= 0.4
    assert g.faults.log[-1][0] == "download"


def test_resource_units_and_stats(graph_sandbox_factory):
    g = graph_sandbox_factory()
    d = g.tenant.drive_list[0]
    f = next(i for i in d.live_items() if i.kind == "file" and not i.malware)
    with graph_http(g) as c:
        before = g.stats()["ru"]
        c.get(f"/drives/{d.id}/items/{f.id}")
        assert g.stats()["ru"] - before == 1
        c.get(f"/drives/{d.id}/root/children")
        assert g.stats()["ru"] - before == 3
        c.get(f"/drives/{d.id}/items/{f.id}/permissions")
        assert g.stats()["ru"] - before == 8
        link = c.get(f"/drives/{d.id}/root/delta", params={"$top": 1000}).json()["@odata.deltaLink"]
        assert g.stats()["ru"] - before == 10
        c.get(link)
        assert g.stats()["ru"] - before == 11
    s = g.stats()
    assert s["requests"]["permissions"] == 1 and s["requests"]["delta"] == 2 and s["bytes_sent"] > 1000


def test_ru_budget_throttles_with_ratelimit_headers(graph_sandbox_factory):
    g = graph_sandbox_factory(ru_per_minute=60)
    d = g.tenant.drive_list[0]
    with graph_http(g) as c:
        codes = [c.get(f"/drives/{d.id}/items/{d.root.id}/permissions") for _ in range(14)]
    throttled = [r for r in codes if r.status_code in (429, 503)]
    assert throttled and codes[0].status_code == 200
    assert all(float(r.headers["Retry-After"]) > 0 for r in throttled)
    assert any("RateLimit-Remaining" in r.headers for r in codes)
    assert g.stats()["throttled"] == len(throttled)


def test_admin_http_routes(graph_sandbox_factory):
    g = graph_sandbox_factory()
    d = g.tenant.drive_list[0]
    with httpx.Client(base_url=g.admin_url) as admin, graph_http(g) as c:
        r = admin.post("/mutate", json={"op": "add_file", "drive_id": d.id, "parent_path": "/", "name": "adm.txt",
                                        "size": 3})
        assert r.status_code == 200 and r.json()["path"] == "/adm.txt"
        assert admin.post("/mutate", json={"op": "add_file", "drive_id": d.id, "parent_path": "/",
                                           "name": "ADM.txt"}).status_code == 400          # name clash
        truth = admin.get("/truth").json()[d.id]
        assert any(row["path"] == "/adm.txt" and row["size"] == 3 for row in truth)
        admin.post("/faults", json={"route": "item", "status": 500, "count": 1})
        assert c.get(f"/drives/{d.id}/items/{r.json()['id']}").status_code == 500
        assert admin.delete("/faults").json() == {"rules": []}
        perm = admin.post("/mutate", json={"op": "add_permission", "drive_id": d.id, "item_id": r.json()["id"],
                                           "kind": "anonymous", "password": True}).json()["permission"]
        assert c.get(f"/drives/{d.id}/items/{r.json()['id']}").json()["shared"]["scope"] == "anonymous"
        admin.post("/mutate", json={"op": "remove_permission", "drive_id": d.id, "item_id": r.json()["id"],
                                    "permission_id": perm["id"]})
        assert "shared" not in c.get(f"/drives/{d.id}/items/{r.json()['id']}").json()
        assert admin.get("/stats").json()["requests"]["item"] == 3
        tok = admin.post("/token", json={}).json()["access_token"]
        assert httpx.get(g.graph_url + "/users", headers={"Authorization": f"Bearer {tok}"}).status_code == 200
        admin.post("/expire-access-tokens")
        assert c.get("/users").status_code == 401


def test_token_endpoint_fault(graph_sandbox_factory):
    g = graph_sandbox_factory()
    g.faults.set(route="token", status=503, retry_after="1", count=1)
    form = {"grant_type": "client_credentials", "client_id": g.client_id, "client_secret": g.client_secret,
            "scope": "https://graph.microsoft.com/.default"}
    with httpx.Client(verify=g.ca_path) as c:
        url = f"{g.authority}/{g.tenant_id}/oauth2/v2.0/token"
        assert c.post(url, data=form).status_code == 503
        ok = c.post(url, data=form).json()
        assert ok["token_type"] == "Bearer" and ok["expires_in"] == 3600
        conf = c.get(f"{g.authority}/{g.tenant_id}/v2.0/.well-known/openid-configuration").json()
        assert conf["token_endpoint"] == url and "authorization_endpoint" in conf


def test_chunked_admin_post_and_head_download(graph_sandbox_factory):
    g = graph_sandbox_factory()
    d = g.tenant.drive_list[0]

    def body():
        yield b'{"op": "add_folder", "drive_id": "' + d.id.encode() + b'", '
        yield b'"parent_path": "/", "name": "chunked"}'

    r = httpx.post(g.admin_url + "/mutate", content=body())           # a generator body is sent chunked
    assert r.status_code == 200 and r.json()["path"] == "/chunked"
    f = next(i for i in d.live_items() if i.kind == "file" and i.content.size and not i.malware)
    with graph_http(g) as c:
        url = c.get(f"/drives/{d.id}/items/{f.id}").json()["@microsoft.graph.downloadUrl"]
    h = httpx.head(url)
    assert h.status_code == 200 and int(h.headers["Content-Length"]) == f.content.size and h.content == b""
    assert httpx.get(url).status_code == 200                          # the connection pool is still sane
