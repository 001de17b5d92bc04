"""Graph backend parsing and store logic on JSON samples (reference §3, §4, §6, §8): no network."""

from __future__ import annotations

import pytest

from migrate.backends.graph.client import MalwareBlocked, _TokenExpired, classify
from migrate.backends.graph.items import delta_row, parse_time
from migrate.backends.graph.permissions import to_grants
from migrate.errors import AuthError, DeltaExpired, ItemNotFound, ThrottledError, TransientError
from migrate.models import Drive, DriveKind


def _err(code, message="", inner=None):
    body = {"error": {"code": code, "message": message}}
    if inner:
        body["error"]["innerError"] = {"code": inner}
    return body


@pytest.mark.parametrize("status,body,headers,kind,extra", [
    (429, _err("TooManyRequests"), {"retry-after": "2.128"}, ThrottledError, 2.128),
    (429, _err("TooManyRequests"), {}, ThrottledError, 1.0),
    (503, _err("serviceNotAvailable"), {"retry-after": "7"}, ThrottledError, 7.0),
    (503, _err("serviceNotAvailable"), {}, TransientError, None),
    (504, None, {}, TransientError, None),
    (401, _err("InvalidAuthenticationToken", "Access token has expired or is not yet valid."), {}, _TokenExpired, None),
    (403, _err("accessDenied", "Access denied"), {}, AuthError, None),
    (403, _err("malwareDetected"), {}, MalwareBlocked, None),
    (404, _err("itemNotFound"), {}, ItemNotFound, None),
    (410, _err("resyncRequired"), {"location": "https://g/v1.0/drives/x/root/delta"}, DeltaExpired, None),
    (400, _err("invalidRequest", inner="resyncApplyDifferences"), {}, DeltaExpired, None),
])
def test_classify(status, body, headers, kind, extra):
    err = classify(status, body, headers, "GET x")
    assert type(err) is kind or isinstance(err, kind)
    if kind is ThrottledError:
        assert err.retry_after == extra
    if kind is DeltaExpired and status == 410:
        assert err.restart_url.endswith("/root/delta")
    assert classify(200, None, {}, "x") is None


def test_delta_rows():
    f = {"id": "F", "name": "a.txt", "size": 11, "parentReference": {"id": "P", "driveId": "d"},
         "file": {"mimeType": "text/plain", "hashes": {"quickXorHash": "aCgDG9jwBhDc4Q1yawMZAAAAAAA="}},
         "fileSystemInfo": {"lastModifiedDateTime": "2025-06-14T17:45:00Z", "createdDateTime": "2025-04-01T08:00:00Z"},
         "lastModifiedDateTime": "2026-01-01T00:00:00Z", "eTag": "e", "shared": {"scope": "users"}}
    r = delta_row(f, 3)
    assert r["parent_id"] == "P" and r["is_folder"] == 0 and r["size"] == 11 and r["shared"] == 1
    assert r["mtime"] == parse_time("2025-06-14T17:45:00Z")  # fileSystemInfo wins over the service time
    assert r["quick_xor_hash"].startswith("aCgD") and r["ctag"] is None and r["scan_generation"] == 3
    empty = delta_row({"id": "E", "name": "e", "size": 0, "file": {"hashes": {}}, "parentReference": {"id": "P"}}, 1)
    assert empty["quick_xor_hash"] is None
    root = delta_row({"id": "R", "name": "root", "root": {}, "folder": {}, "parentReference": {"driveId": "d"}}, 1)
    assert root["parent_id"] is None and root["name"] == "" and root["is_folder"] == 1
    note = delta_row({"id": "N", "name": "Notes", "package": {"type": "oneNote"}, "parentReference": {"id": "R"}}, 1)
    assert note["package_type"] == "oneNote" and note["is_folder"] == 1
    gone = delta_row({"id": "G", "deleted": {"state": "deleted"}, "parentReference": {"id": "P"}}, 4)
    assert gone == {"item_id": "G", "deleted": 1, "scan_generation": 4}
    assert parse_time("2017-09-14T12:34:53.9123456Z") == pytest.approx(1505392493.912, abs=1e-3)


def test_grants_follow_reference_6():
    perms = [
        {"id": "Y2xhc3Mz", "roles": ["owner"], "grantedTo": {"user": {"displayName": "class3 Owners"}},
         "inheritedFrom": {}},
        {"id": "L1", "roles": ["read"], "hasPassword": True, "expirationDateTime": "0001-01-01T00:00:00Z",
         "link": {"scope": "anonymous", "type": "view", "webUrl": "https://x"}},
        {"id": "L2", "roles": ["write"], "link": {"scope": "users", "type": "edit"},
         "expirationDateTime": "2027-01-01T00:00:00Z",
         "grantedToIdentitiesV2": [
             {"user": {"id": "u1", "email": "john@contoso.com", "displayName": "John"}},
             {"siteUser": {"id": "9", "displayName": "Guest",
                           "loginName": "i:0#.f|membership|guest_gmail.com#ext#@contoso.onmicrosoft.com"}}]},
        {"id": "G1", "roles": ["write"], "grantedToV2": {"siteGroup": {"id": "5", "displayName": "Members",
                                                                       "loginName": "Members"}}},
        {"id": "U1", "roles": ["read"], "grantedToV2": {"user": {"id": "u9", "email": "ext@other.org"}}},
    ]
    g = {x.perm_id: x for x in to_grants("d", "i", perms, frozenset({"contoso.com"}))}
    assert g["Y2xhc3Mz"].kind == "owner" and g["Y2xhc3Mz"].inherited
    assert g["L1"].kind == "link" and g["L1"].link_scope == "anonymous" and g["L1"].expires is None
    assert g["L1"].has_password and not g["L1"].inherited
    assert g["L2/0"].kind == "user" and g["L2/0"].link_scope == "users" and g["L2/0"].expires.startswith("2027")
    assert g["L2/1"].kind == "external"
    assert g["G1"].kind == "group" and g["G1"].grantee_name == "Members"
    assert g["U1"].kind == "external"


def _row(item_id, parent, name, gen, folder=False, deleted=0):
    return {"item_id": item_id, "parent_id": parent, "name": name, "is_folder": int(folder), "size": 1, "mtime": None,
            "ctime": None, "quick_xor_hash": None, "sha1": None, "etag": None, "ctag": None, "mime_type": None,
            "package_type": None, "shared": 0, "malware": 0, "deleted": deleted, "scan_generation": gen}


def test_paths_out_of_order_rename_and_reconcile(store):
    store.upsert_drives([Drive("d", DriveKind.ONEDRIVE, "OneDrive")])
    # children before parents, across pages; duplicates: last occurrence wins
    store.save_delta_page("d", [_row("c", "b", "c.txt", 1), _row("b", "a", "B", 1, True)], next_link="n1", generation=1)
    assert store.drive("d")["scan_link"] == "n1"
    store.save_delta_page("d", [_row("a", "r", "A", 1, True), _row("r", None, "", 1, True),
                                _row("x", "r", "old.txt", 1), _row("x", "r", "x.txt", 1)], next_link=None, generation=1)
    fin = store.finish_delta("d", generation=1, full=True, delta_link="dl1", scan_state="scanning")
    assert fin["orphans"] == 0
    paths = {r["item_id"]: r["path"] for r in store.iter_items("d")}
    assert paths == {"r": "", "a": "A", "b": "A/B", "c": "A/B/c.txt", "x": "x.txt"}
    assert store.drive("d")["delta_link"] == "dl1" and store.drive("d")["scan_link"] is None
    # incremental: the root and A come back unchanged (ancestors), A renamed → descendants follow; x deleted
    store.transition("d", "c", "transferring")
    store.save_delta_page("d", [_row("r", None, "", 2, True), _row("a", "r", "A2", 2, True),
                                {"item_id": "x", "deleted": 1, "scan_generation": 2}], next_link=None, generation=2)
    store.finish_delta("d", generation=2, full=False, delta_link="dl2", scan_state="scanning")
    rows = {r["item_id"]: r for r in store.iter_items("d", include_deleted=True)}
    assert rows["c"]["path"] == "A2/B/c.txt" and rows["c"]["status"] == "transferring"
    assert rows["x"]["deleted"] == 1
    # full resync that no longer sees B: B and its child become deleted, copy status kept
    store.save_delta_page("d", [_row("r", None, "", 3, True), _row("a", "r", "A2", 3, True)], next_link=None,
                          generation=3)
    fin = store.finish_delta("d", generation=3, full=True, delta_link="dl3", scan_state="scanning")
    rows = {r["item_id"]: r for r in store.iter_items("d", include_deleted=True)}
    assert rows["b"]["deleted"] == rows["c"]["deleted"] == 1 and rows["c"]["status"] == "transferring"
    assert fin["unseen_deleted"] == 2
    # a full pass that began on an empty drive (prior_items = 0) skips that walk: nothing could be unseen
    store.update_drive("d", prior_items=0)
    store.save_delta_page("d", [_row("r", None, "", 4, True)], next_link=None, generation=4)
    fin = store.finish_delta("d", generation=4, full=True, delta_link="dl4", scan_state="scanning")
    assert fin["unseen_deleted"] == 0 and store.item("d", "a")["deleted"] == 0


def test_grouped_page_commits_leave_a_prefix_with_its_link(tmp_path):
    """Inside scan_settings pages are committed in groups; what a crash leaves is the committed pages and the link
    that follows them, never rows without their link or a link past them."""
    import sqlite3

    from migrate.store import StateStore

    db = tmp_path / "state.db"
    s = StateStore(db)
    s.upsert_drives([Drive("d", DriveKind.ONEDRIVE, "OneDrive")])

    def committed() -> tuple[int, str | None]:
        other = sqlite3.connect(db)  # another process's view: committed data only
        try:
            return (other.execute("SELECT count(*) FROM items").fetchone()[0],
                    other.execute("SELECT scan_link FROM drives").fetchone()[0])
        finally:
            other.close()

    settings = s.scan_settings(group_rows=3, group_seconds=3600)
    settings.__enter__()  # never left: the process dies inside
    s.save_delta_page("d", [_row("r", None, "", 1, True), _row("a", "r", "A", 1, True)], next_link="n1",
                      generation=1)
    assert committed() == (0, None)  # held in the open group
    s.save_delta_page("d", [_row("b", "a", "b.txt", 1), _row("c", "a", "c.txt", 1)], next_link="n2", generation=1)
    assert committed() == (4, "n2")  # 4 rows ≥ 3: the group went in with the link after its last page
    s.save_delta_page("d", [_row("e", "a", "e.txt", 1)], next_link="n3", generation=1)
    assert s.drive("d")["scan_link"] == "n3"  # this process sees its own open group
    s.db.conn.close()  # a crash before the next commit: SQLite drops the open group
    s = StateStore(db)
    assert s.drive("d")["scan_link"] == "n2"
    assert {r["item_id"] for r in s.iter_items("d")} == {"r", "a", "b", "c"}
    assert {r["item_id"]: r["path"] for r in s.iter_items("d")}["c"] == "A/c.txt"
