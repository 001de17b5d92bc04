"""The delta engine over plain HTTP: full enumeration, incremental changes, coalescing, quirks and 410."""

from __future__ import annotations

import time

import httpx

from tests.fixtures_graph import graph_http


def run_delta(c: httpx.Client, url: str, **params) -> tuple[list[dict], str, list[dict]]:
    """Follow nextLinks to the deltaLink; returns (items, deltaLink, pages)."""
    pages = [(c.get(url, params=params) if params else c.get(url)).json()]   # httpx drops a URL's query if params={}
    while "@odata.nextLink" in pages[-1]:
        assert "@odata.deltaLink" not in pages[-1]
        pages.append(c.get(pages[-1]["@odata.nextLink"]).json())
    return [x for p in pages for x in p["value"]], pages[-1]["@odata.deltaLink"], pages


def latest(items: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for x in items:
        out[x["id"]] = x          # the last occurrence wins
    return out


def test_full_delta_covers_truth_without_paths(graph_sandbox):
    d = graph_sandbox.tenant.drive_list[1]
    truth = graph_sandbox.truth()[d.id]
    with graph_http(graph_sandbox) as c:
        items, link, pages = run_delta(c, f"{graph_sandbox.graph_url}//drives/{d.id}/items/root/delta()",
                                       **{"$top": 7})
    state = latest(items)
    assert {r["id"] for r in truth} | {d.root.id} == set(state)
    assert len(pages) > 3 and link.startswith(graph_sandbox.graph_url)
    for x in items:
        assert "path" not in x.get("parentReference", {}) and "cTag" not in x and "deleted" not in x
    sizes = {r["id"]: r["listed_size"] for r in truth if r["size"] is not None}
    assert all(state[i]["size"] == s for i, s in sizes.items())


def test_incremental_delta_after_mutations(graph_sandbox_factory):
    g = graph_sandbox_factory()
    d = g.tenant.drive_list[0]
    m = g.mutate
    with graph_http(g) as c:
        _, link, _ = run_delta(c, f"/drives/{d.id}/root/delta")
        again, link2, _ = run_delta(c, link)
        assert [x["id"] for x in again] == [] or {x["id"] for x in again} == {d.root.id}
        folder = m.add_folder(d.id, "/", "New folder")
        added = m.add_file(d.id, "/New folder", "fresh.txt", 1234)
        victim = next(i for i in d.live_items() if i.kind == "folder" and i.children and i.name != "New folder"
                      and not any(c.kind == "folder" for c in i.children.values()))
        doomed = [victim.id, *victim.children]
        m.delete(d.id, victim.id)
        f = next(i for i in d.live_items() if i.kind == "file" and not i.malware and i.content.size)
        m.rename(d.id, f.id, "renamed once.txt")
        m.rename(d.id, f.id, "renamed twice.txt")
        m.modify(d.id, f.id, size=99)
        mover = next(i for i in d.live_items() if i.kind == "file" and i.parent_id != d.root.id and i is not f)
        m.move(d.id, mover.id, "/New folder")
        items, link3, _ = run_delta(c, link2)
    ids = [x["id"] for x in items]
    state = latest(items)
    assert ids.count(f.id) == 1 and state[f.id]["name"] == "renamed twice.txt" and state[f.id]["size"] == 99
    assert state[added["id"]]["parentReference"]["id"] == folder["id"]
    assert state[mover.id]["parentReference"]["id"] == folder["id"]
    assert d.root.id in state                                   # ancestors come with changes
    for i in doomed:
        assert state[i]["deleted"] == {"state": "deleted"} and "name" not in state[i]
    assert not any(x.get("deleted") for x in items if x["id"] not in doomed)
    with graph_http(g) as c:
        assert run_delta(c, link3)[0] == []


def test_small_pages_resend_ancestors_and_select_is_kept(graph_sandbox_factory):
    g = graph_sandbox_factory()
    d = g.tenant.drive_list[0]
    with graph_http(g) as c:
        _, link, _ = run_delta(c, f"/drives/{d.id}/root/delta", **{"$select": "id,name,parentReference",
                                                                    "$top": 1})
        assert "$select=id,name,parentReference" in link
        deep = [i for i in d.live_items() if i.kind == "file" and len(d.ancestors(i)) >= 3][:4]
        for i in deep:
            g.mutate.modify(d.id, i.id)
        items, _, pages = run_delta(c, link)          # the deltaLink keeps $select and the page size
    assert len(pages) >= 4
    for p in pages:
        if p["value"]:
            assert set(p["value"][0]) <= {"id", "name", "parentReference"}
            assert d.root.id in {x["id"] for x in p["value"]}      # repeated on every page
    assert [x["id"] for x in items].count(d.root.id) >= 4


def test_latest_timestamp_and_410(graph_sandbox_factory):
    g = graph_sandbox_factory(resync_inner="resyncChangesApplyDifferences")
    d = g.tenant.drive_list[0]
    with graph_http(g) as c:
        lat = c.get(f"/drives/{d.id}/root/delta", params={"token": "latest"}).json()
        assert lat["value"] == [] and "@odata.deltaLink" in lat and "@odata.nextLink" not in lat
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
        added = g.mutate.add_file(d.id, "/", "after-latest.txt", 5)
        items, _, _ = run_delta(c, lat["@odata.deltaLink"])
        assert {x["id"] for x in items} == {added["id"], d.root.id}
        since = run_delta(c, f"/drives/{d.id}/root/delta", token=stamp)[0]
        assert added["id"] in {x["id"] for x in since} and len(since) < 10
        assert len(run_delta(c, f"/drives/{d.id}/root/delta", token="2020-01-01T00:00:00Z")[0]) > 20
        mid = c.get(f"/drives/{d.id}/root/delta", params={"$top": 2}).json()["@odata.nextLink"]
        g.expire_delta_tokens()
        for stale in (lat["@odata.deltaLink"], mid):
            r = c.get(stale)
            assert r.status_code == 410
            err = r.json()["error"]
            assert err["code"] == "resyncRequired" and err["innerError"]["code"] == "resyncChangesApplyDifferences"
        items, _, _ = run_delta(c, r.headers["Location"])
        assert len(latest(items)) == len([x for x in d.live_items()])


def test_delta_spellings(graph_sandbox):
    d = graph_sandbox.tenant.drive_list[0]
    with graph_http(graph_sandbox) as c:
        tok = c.get(f"/drives/{d.id}/root/delta", params={"token": "latest"}).json()["@odata.deltaLink"]
        token = tok.rsplit("token=", 1)[1]
        for url in (f"/drives/{d.id}/items/root/delta(token='{token}')", f"/drives/{d.id}/root/delta(token={token})",
                    f"/drives/{d.id}/root/microsoft.graph.delta()?token={token}"):
            r = c.get(url)
            assert r.status_code == 200 and "@odata.deltaLink" in r.json(), url
        sub = next(i for i in d.live_items() if i.kind == "folder")
        assert c.get(f"/drives/{d.id}/items/{sub.id}/delta").status_code == 400


def test_empty_pages_and_seeded_shuffle(graph_sandbox_factory):
    g = graph_sandbox_factory(empty_pages=True, shuffle_delta=True)
    g2 = graph_sandbox_factory(shuffle_delta=True)
    plain = graph_sandbox_factory()
    d = g.tenant.drive_list[0]
    with graph_http(g) as c, graph_http(g2) as c2, graph_http(plain) as c3:
        items, _, pages = run_delta(c, f"/drives/{d.id}/root/delta", **{"$top": 10})
        items2, _, _ = run_delta(c2, f"/drives/{d.id}/root/delta", **{"$top": 10})
        items3, _, _ = run_delta(c3, f"/drives/{d.id}/root/delta", **{"$top": 10})
    assert pages[0]["value"] == [] and "@odata.nextLink" in pages[0]
    assert sum(1 for p in pages if not p["value"]) >= len(pages) // 2
    assert [x["id"] for x in items] == [x["id"] for x in items2]          # same seed, same order
    assert [x["id"] for x in items] != [x["id"] for x in items3]
    assert sorted(x["id"] for x in items) == sorted(x["id"] for x in items3)


def test_prefer_delta_exclude_parent_keeps_only_the_root(graph_sandbox_factory):
    g = graph_sandbox_factory()
    d = g.tenant.drive_list[0]
    deep = next(i for i in d.live_items() if i.kind == "file" and len(d.ancestors(i)) >= 3)
    with graph_http(g) as c:
        link = run_delta(c, f"/drives/{d.id}/root/delta")[1]
        g.mutate.modify(d.id, deep.id)
        r = c.get(link, headers={"Prefer": "deltaExcludeParent"}).json()
        assert [x["id"] for x in r["value"]] == [d.root.id, deep.id]
        assert g.warm() > 0
        items, _, _ = run_delta(c, f"/drives/{d.id}/root/delta")
        assert {x["id"] for x in items} == {i.id for i in d.live_items()}


def test_changes_during_an_enumeration_are_not_lost(graph_sandbox_factory):
    g = graph_sandbox_factory()
    d = g.tenant.drive_list[0]
    with graph_http(g) as c:
        first = c.get(f"/drives/{d.id}/root/delta", params={"$top": 5}).json()
        seen = {x["id"] for x in first["value"]}
        later = [i for i in d.live_items() if i.kind == "file" and i.id not in seen and not i.malware]
        g.mutate.rename(d.id, later[-1].id, "renamed mid-scan.txt")
        gone = g.mutate.delete(d.id, later[-2].id)
        new = g.mutate.add_file(d.id, "/", "created mid-scan.txt", 10)
        items, link, _ = run_delta(c, first["@odata.nextLink"])
        more, _, _ = run_delta(c, link)
    state = latest(first["value"] + items + more)
    live = {k: v for k, v in state.items() if "deleted" not in v}
    assert set(live) == {i.id for i in d.live_items()}
    assert live[later[-1].id]["name"] == "renamed mid-scan.txt" and new["id"] in live
    assert gone["id"] not in live
