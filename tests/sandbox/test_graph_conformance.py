"""Plain-HTTP conformance of the Graph sandbox against the reference's JSON shapes (graph-api.md §1–§8)."""

from __future__ import annotations

import base64
import hashlib
import time

import httpx
import pytest
import quickxorhash

from tests.fixtures_graph import graph_http


def _all(c: httpx.Client, url: str, **params) -> list[dict]:
    out, page = [], (c.get(url, params=params) if params else c.get(url)).json()
    out += page["value"]
    while "@odata.nextLink" in page:
        page = c.get(page["@odata.nextLink"]).json()
        out += page["value"]
    return out


def test_users_paging_select_and_default_properties(graph_client, graph_sandbox):
    page = graph_client.get("/users", params={"$top": 2}).json()
    assert page["@odata.context"].endswith("$metadata#users")
    assert len(page["value"]) == 2 and "$skiptoken=" in page["@odata.nextLink"]
    assert page["@odata.nextLink"].startswith(graph_sandbox.graph_url)
    u = page["value"][0]
    assert set(u) == {"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                      "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"}
    users = _all(graph_client, "/users", **{"$top": 3, "$select": "id,userPrincipalName"})
    assert len(users) == len(graph_sandbox.tenant.users)
    assert all(set(x) == {"id", "userPrincipalName"} for x in users)


def test_user_drive_and_no_mysite(graph_client, graph_sandbox):
    t = graph_sandbox.tenant
    owner = next(u for u in t.users if u.drive_id)
    d = graph_client.get(f"/users/{owner.upn}/drive").json()
    assert d["id"] == owner.drive_id and d["driveType"] == "business"
    assert d["owner"]["user"]["id"] == owner.id and d["owner"]["user"]["email"] == owner.upn
    assert set(d["quota"]) >= {"deleted", "remaining", "state", "total", "used"}
    assert graph_client.get(f"/users/{owner.id}/drives").json()["value"][0]["id"] == owner.drive_id
    nomy = next(u for u in t.users if not u.drive_id)
    r = graph_client.get(f"/users/{nomy.id}/drive")
    assert r.status_code == 404
    assert r.json()["error"] == {**r.json()["error"], "code": "ResourceNotFound", "message": "User's mysite not found."}


def test_groups_and_team_drive(graph_client, graph_sandbox):
    g = graph_sandbox.tenant.groups[0]
    assert graph_client.get("/groups").json()["value"][0]["id"] == g.id
    members = graph_client.get(f"/groups/{g.id}/members").json()["value"]
    assert {m["id"] for m in members} == set(g.members)
    d = graph_client.get(f"/groups/{g.id}/drive").json()
    assert d["driveType"] == "documentLibrary" and d["owner"]["group"]["id"] == g.id
    assert graph_client.get(f"/groups/{g.id}/drives").json()["value"][0]["id"] == d["id"]


def test_sites_search_getallsites_and_libraries(graph_client, graph_sandbox):
    t = graph_sandbox.tenant
    every = _all(graph_client, "/sites/getAllSites()", **{"$top": 1})
    assert [s["id"] for s in every] == [s.id for s in t.sites]
    root = every[0]
    assert root["root"] == {} and root["siteCollection"]["hostName"] == "contoso.sharepoint.com"
    page = graph_client.get("/sites/getAllSites", params={"$top": 1}).json()
    assert "/sites/oneDrive.getAllSites?" in page["@odata.nextLink"]
    assert graph_client.get("/sites/getAllSites", params={"$search": "x"}).status_code == 400
    for key in ("search", "$search"):
        hits = graph_client.get("/sites", params={key: "*"}).json()["value"]
        assert len(hits) == len(t.sites)
        assert set(hits[0]) >= {"id", "name", "webUrl", "createdDateTime", "lastModifiedDateTime"}
    site = t.sites[-1]
    libs = graph_client.get(f"/sites/{site.id}/drives").json()["value"]
    assert [x["id"] for x in libs] == site.drive_ids
    assert all(x["driveType"] == "documentLibrary" for x in libs)
    assert graph_client.get(f"/sites/{site.id}/drive").json()["id"] == site.drive_ids[0]
    assert graph_client.get(f"/sites/{site.id}").json()["id"] == site.id


def test_children_to_the_end_match_truth_with_sdk_spellings(graph_client, graph_sandbox):
    d = graph_sandbox.tenant.drive_list[0]
    truth = graph_sandbox.truth()[d.id]
    top_names = sorted(r["name"] for r in truth if r["path"].count("/") == 1)
    kids = _all(graph_client, f"{graph_sandbox.graph_url}//drives/{d.id}/items/root/children", **{"$top": 3})
    assert sorted(k["name"] for k in kids) == top_names
    assert [k["name"] for k in _all(graph_client, f"/drives/{d.id}/root/children")] == \
        [k["name"] for k in kids]
    f = next(k for k in kids if "file" in k and k["size"] > 0)
    assert set(f) >= {"id", "name", "size", "eTag", "cTag", "createdDateTime", "lastModifiedDateTime", "webUrl",
                      "createdBy", "lastModifiedBy", "parentReference", "file", "fileSystemInfo",
                      "@microsoft.graph.downloadUrl"}
    assert f["parentReference"]["path"] == f"/drives/{d.id}/root:"
    assert f["file"]["hashes"]["quickXorHash"] and "sha1Hash" not in f["file"]["hashes"]
    folder = next(k for k in kids if "folder" in k and k["folder"]["childCount"])
    assert "cTag" not in folder
    sel = graph_client.get(f"/drives/{d.id}/items/root/children", params={"$select": "id,name"}).json()
    assert all(set(x) == {"id", "name"} for x in sel["value"])
    assert graph_client.get(f"/drives/{d.id}/items").json()["error"]["message"] == \
        "The 'filter' query option must be provided."


def test_item_by_path_root_alias_and_errors(graph_client, graph_sandbox):
    d = graph_sandbox.tenant.drive_list[0]
    root = graph_client.get(f"/drives/{d.id}/items/root").json()
    assert root["root"] == {} and root["id"] == d.root.id and "path" not in root["parentReference"]
    aw = graph_client.get(f"/drives/{d.id}/root:/Awkward:").json()
    assert aw["name"] == "Awkward" and aw["folder"]["childCount"] > 5
    hash_item = graph_client.get(f"/drives/{d.id}/root:/Awkward/100%25%20%231%20report.txt").json()
    assert hash_item["name"] == "100% #1 report.txt"
    kids = graph_client.get(f"/drives/{d.id}/root:/Awkward:/children").json()["value"]
    assert any(k["name"] == "empty.txt" and k["file"]["hashes"] == {} for k in kids)
    nf = graph_client.get(f"/drives/{d.id}/items/01NOPE")
    assert nf.status_code == 404 and nf.json()["error"]["code"] == "itemNotFound"
    assert set(nf.json()["error"]["innerError"]) >= {"date", "request-id", "client-request-id"}
    etag = graph_client.get(f"/drives/{d.id}/root:/Awkward").json()["eTag"]
    assert graph_client.get(f"/drives/{d.id}/root:/Awkward", headers={"If-None-Match": etag}).status_code == 304


def test_auth_errors_have_graph_bodies(graph_sandbox):
    with httpx.Client(base_url=graph_sandbox.graph_url) as c:
        for headers in ({}, {"Authorization": "Bearer nope"}):
            r = c.get("/users", headers=headers)
            assert r.status_code == 401
            assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
            assert "authorization_uri=" in r.headers["WWW-Authenticate"]
    with graph_http(graph_sandbox, token=graph_sandbox.issue_token(lifetime=-1)) as c:
        r = c.get("/users")
        assert r.status_code == 401 and r.json()["error"]["message"] == \
            "Access token has expired or is not yet valid."


def test_permissions_every_shape(graph_client, graph_sandbox):
    seen = set()
    for d in graph_sandbox.tenant.drive_list:
        for it in d.live_items():
            if not it.perms:
                continue
            item = graph_client.get(f"/drives/{d.id}/items/{it.id}").json()
            assert item["shared"]["scope"] in ("anonymous", "organization", "users")
            perms = graph_client.get(f"/drives/{d.id}/items/{it.id}/permissions").json()["value"]
            inherited = [p for p in perms if "inheritedFrom" in p]
            assert inherited and all(p["inheritedFrom"] == {} for p in inherited)
            unique = [p for p in perms if "inheritedFrom" not in p]
            assert len(unique) == len(it.perms)
            for p in perms:
                assert isinstance(p["roles"], list) and p["id"]
                if "link" in p:
                    seen.add("link:" + p["link"]["scope"])
                    assert {"type", "scope", "webUrl", "preventsDownload"} <= set(p["link"])
                    assert "grantedToIdentitiesV2" in p and "hasPassword" in p
                    if p["link"]["scope"] == "anonymous":
                        assert p["hasPassword"] is True and p["expirationDateTime"].endswith("Z")
                        assert p["roles"] == ["write"] and p["link"]["type"] == "edit"
                else:
                    g2 = p["grantedToV2"]
                    seen.update(k for k in g2 if k in ("user", "group", "siteGroup"))
                    assert "grantedTo" in p
                    if "invitation" in p:
                        seen.add("guest")
                        assert "#ext#" in g2["siteUser"]["loginName"]
                if p["roles"] == ["owner"]:
                    seen.add("owner")
    assert seen >= {"link:anonymous", "link:organization", "link:users", "user", "group", "siteGroup",
                    "guest", "owner"}
    plain = next(i for i in graph_sandbox.tenant.drive_list[0].live_items() if i.kind == "file" and not i.perms
                 and not any(a.perms for a in graph_sandbox.tenant.drive_list[0].ancestors(i)))
    item = graph_client.get(f"/drives/{graph_sandbox.tenant.drive_list[0].id}/items/{plain.id}").json()
    assert "shared" not in item


def test_versions_newest_first_and_current_content_refused(graph_client, graph_sandbox):
    d, it = next((d, i) for d in graph_sandbox.tenant.drive_list for i in d.live_items() if len(i.old_versions) >= 2)
    vs = graph_client.get(f"/drives/{d.id}/items/{it.id}/versions").json()["value"]
    assert [v["id"] for v in vs] == [f"{n}.0" for n in range(len(it.old_versions) + 1, 0, -1)]
    assert vs[0]["size"] == it.content.size
    assert set(vs[1]) >= {"id", "lastModifiedBy", "lastModifiedDateTime", "size", "@microsoft.graph.downloadUrl"}
    cur = graph_client.get(f"/drives/{d.id}/items/{it.id}/versions/{vs[0]['id']}/content")
    assert cur.status_code == 400 and "current version" in cur.json()["error"]["message"]
    old = graph_client.get(f"/drives/{d.id}/items/{it.id}/versions/{vs[-1]['id']}/content")
    assert old.status_code == 302
    body = httpx.get(old.headers["Location"]).content
    assert len(body) == vs[-1]["size"] == it.old_versions[0].content.size


def _qx(data: bytes) -> str:
    h = quickxorhash.quickxorhash()
    h.update(data)
    return base64.b64encode(h.digest()).decode()


def test_download_redirect_range_expiry_and_malware(graph_sandbox_factory):
    g = graph_sandbox_factory(download_url_ttl=6)       # room for a loaded machine between the URL and its use
    d = g.tenant.drive_list[0]
    with graph_http(g) as c:
        kids = c.get(f"/drives/{d.id}/items/root/children").json()["value"]
        f = max((k for k in kids if "file" in k and "malware" not in k), key=lambda k: k["size"])
        r = c.get(f"/drives/{d.id}/items/{f['id']}/content")
        assert r.status_code == 302
        issued = time.monotonic()
        loc = r.headers["Location"]
        assert not loc.startswith(g.graph_url.rsplit("/", 1)[0])      # another port: no bearer to lean on
        full = httpx.get(loc)                                          # no Authorization header
        assert full.status_code == 200 and len(full.content) == f["size"]
        assert _qx(full.content) == f["file"]["hashes"]["quickXorHash"]
        truth = {row["id"]: row for row in g.truth()[d.id]}
        assert hashlib.sha1(full.content).hexdigest() == truth[f["id"]]["sha1"]
        part = httpx.get(loc, headers={"Range": "bytes=10-109"})
        assert part.status_code == 206 and part.content == full.content[10:110]
        assert part.headers["Content-Range"] == f"bytes 10-109/{f['size']}"
        assert httpx.get(loc, headers={"Range": "bytes=-5"}).content == full.content[-5:]
        assert httpx.get(loc, headers={"Range": f"bytes={f['size']}-"}).status_code == 416
        same = c.get(f"/drives/{d.id}/items/{f['id']}/content", headers={"If-None-Match": f["cTag"]})
        assert same.status_code == 304
        bad = next(k for k in c.get(f"/drives/{d.id}/items/root/children").json()["value"] if "malware" in k)
        assert "@microsoft.graph.downloadUrl" not in bad
        mr = c.get(f"/drives/{d.id}/items/{bad['id']}/content")
        assert mr.status_code == 403 and mr.json()["error"]["code"] == "malwareDetected"
        time.sleep(max(0.0, issued + 6.2 - time.monotonic()))
        late = httpx.get(loc)
        assert late.status_code == 401
        fresh = c.get(f"/drives/{d.id}/items/{f['id']}/content").headers["Location"]
        assert httpx.get(fresh, headers={"Range": "bytes=0-0"}).status_code == 206


def test_enrichment_changes_downloaded_bytes_but_not_listing(graph_sandbox_factory):
    g = graph_sandbox_factory(enrichment=True)
    lib = next(d for d in g.tenant.drive_list if d.drive_type == "documentLibrary")
    truth = [r for r in g.truth()[lib.id] if r.get("enriched") and r["listed_size"]]
    assert truth, "libraries hold Office files"
    row = truth[0]
    with graph_http(g) as c:
        item = c.get(f"/drives/{lib.id}/items/{row['id']}").json()
        body = httpx.get(item["@microsoft.graph.downloadUrl"]).content
    assert item["size"] == row["listed_size"] != len(body) == row["size"]
    assert item["file"]["hashes"]["quickXorHash"] == row["listed_quickXorHash"] != _qx(body)
    assert _qx(body) == row["quickXorHash"] and hashlib.sha1(body).hexdigest() == row["sha1"]


@pytest.mark.parametrize("form,status,code", [("404-file", 404, "UnknownError"), ("400", 400, "UnknownError")])
def test_other_mysite_error_forms(graph_sandbox_factory, form, status, code):
    g = graph_sandbox_factory(mysite_error=form)
    nomy = next(u for u in g.tenant.users if not u.drive_id)
    with graph_http(g) as c:
        r = c.get(f"/users/{nomy.upn}/drive")
    assert r.status_code == status and r.json()["error"]["code"] == code


def test_site_by_server_relative_path(graph_client, graph_sandbox):
    site = next(s for s in graph_sandbox.tenant.sites if not s.is_root)
    rel = site.web_url.split("sharepoint.com/", 1)[1]
    got = graph_client.get(f"/sites/contoso.sharepoint.com:/{rel}").json()
    assert got["id"] == site.id
    libs = graph_client.get(f"/sites/contoso.sharepoint.com:/{rel}:/drives").json()["value"]
    assert [x["id"] for x in libs] == site.drive_ids


def test_json_batch_steps_are_routed_charged_and_matched_by_id(graph_sandbox_factory):
    g = graph_sandbox_factory()
    d = g.tenant.drive_list[0]
    with graph_http(g) as c:
        kids = [k for k in c.get(f"/drives/{d.id}/items/root/children").json()["value"]
                if "file" in k and "malware" not in k][:3]
        steps = [{"id": f"s{n}", "method": "GET",
                  "url": f"/drives/{d.id}/items/{k['id']}?$select=id,@microsoft.graph.downloadUrl"}
                 for n, k in enumerate(kids)]
        steps.append({"id": "missing", "method": "GET", "url": f"/drives/{d.id}/items/NOPE"})
        before = g.stats()["requests"].get("item", 0)
        r = c.post("/$batch", json={"requests": steps})
        assert r.status_code == 200
        answers = r.json()["responses"]
        assert [a["id"] for a in answers] != [s["id"] for s in steps]  # any order: match by id
        by_id = {a["id"]: a for a in answers}
        assert by_id["missing"]["status"] == 404 and by_id["missing"]["body"]["error"]["code"] == "itemNotFound"
        for n, k in enumerate(kids):
            a = by_id[f"s{n}"]
            assert a["status"] == 200 and set(a["body"]) == {"id", "@microsoft.graph.downloadUrl"}
            got = httpx.get(a["body"]["@microsoft.graph.downloadUrl"])
            assert got.status_code == 200 and _qx(got.content) == k["file"]["hashes"]["quickXorHash"]
        assert g.stats()["requests"]["item"] - before == 4  # each step counts as a request of its own
        assert g.stats()["requests"]["batch"] == 1
        too_many = [{"id": str(n), "method": "GET", "url": "/me"} for n in range(21)]
        big = c.post("/$batch", json={"requests": too_many})
        assert big.status_code == 400 and "maximum of 20" in big.json()["error"]["message"]
        dup = c.post("/$batch", json={"requests": [steps[0], steps[0]]})
        assert dup.status_code == 400
        # a throttled step is a 429 entry with its own Retry-After inside a 200 envelope
        g.faults.set(route="item", status=429, retry_after="1.5", count=1)
        r = c.post("/$batch", json={"requests": steps[:2]})
        assert r.status_code == 200
        statuses = sorted(a["status"] for a in r.json()["responses"])
        assert statuses == [200, 429]
        throttled = next(a for a in r.json()["responses"] if a["status"] == 429)
        assert throttled["headers"]["Retry-After"] == "1.5"
    with graph_http(g, token="not-a-token") as bad:
        assert bad.post("/$batch", json={"requests": steps[:1]}).status_code == 401
