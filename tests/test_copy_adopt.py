"""Nothing read twice: files the target already holds whole are recorded as verified without a Graph download or
an upload (engine.adopt), through the real CLI against the Graph sandbox and the Nextcloud sandbox / Apache.

A second state database copying the same tenant to the same target sends nothing; a file changed at the target
(same size, other bytes) is not adopted and not overwritten; a target without stored checksums is read back and
hashed; a wrong modification time is set without a rewrite.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx

from migrate.engine.files.adopt import BY_EMPTY, BY_READING, BY_STORED_SHA1
from migrate.sandbox.graph import TenantSpec
from tests.conftest import run_cli
from tests.copy_support import (
    SPEC,
    assert_target_matches_truth,
    library_to_webdav,
    nextcloud_target,
    setup_migration,
    truth_by_id,
)

WRITES = ("PUT", "POST", "MOVE", "DELETE", "PROPPATCH")


def _writes(requests: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """Requests that changed the target: writes, and MKCOLs that made a folder (405: it was there already)."""
    return [x for x in requests if x[0] in WRITES or (x[0] == "MKCOL" and x[2] != 405)]


def _second_state(tmp_path: Path, env: dict[str, str], name: str = "second") -> dict[str, str]:
    """Another state database of the same tenant (knows nothing of the first copy): discover and scan into it."""
    fresh = {**env, "M365_MIGRATE_STATE": str(tmp_path / name / "migration.db")}
    for step in ("discover", "scan"):
        r = run_cli(step, cwd=tmp_path, env=fresh)
        assert r.returncode in (0, 3), r.stdout + r.stderr
    return fresh


def _rows(state: Path) -> list[dict]:
    con = sqlite3.connect(state)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM items WHERE is_folder = 0 AND deleted = 0 "
                                             "AND target_path IS NOT NULL")]
    finally:
        con.close()


def _audit(state: Path, action: str) -> list[dict]:
    con = sqlite3.connect(state)
    try:
        return [json.loads(d) | {"subject": s} for s, d in
                con.execute("SELECT subject, detail FROM audit WHERE action = ?", (action,))]
    finally:
        con.close()


def _graph_reads(g) -> int:
    """Requests that read a file's bytes from Graph (or ask for where to read them)."""
    req = g.stats()["requests"]
    return req.get("content", 0) + req.get("download", 0)


def _copy_again(tmp_path: Path, env: dict[str, str], g, nc=None, *, downloads: int = 0, name: str = "second"
                ) -> tuple[dict[str, str], Path, dict, int]:
    """`copy --json` into a second state database of the same tenant and target; asserts it downloaded exactly
    `downloads` files from Graph. Returns (its env, its state path, the summary, the target's request count before)."""
    fresh = _second_state(tmp_path, env, name)
    before, mark = g.stats()["requests"], len(nc.requests) if nc is not None else 0
    r = run_cli("--json", "copy", cwd=tmp_path, env=fresh)
    assert r.returncode == 0, r.stdout + r.stderr
    after = g.stats()["requests"]
    got = [after.get(k, 0) - before.get(k, 0) for k in ("download", "content")]
    assert got[0] == downloads and (downloads or not got[1]), (got, after)
    return fresh, tmp_path / name / "migration.db", json.loads(r.stdout), mark


def test_a_second_state_database_sends_nothing_and_records_every_file(tmp_path, graph_sandbox_factory,
                                                                      nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**SPEC))
    nc = nextcloud_sandbox
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc))
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    first = _rows(tmp_path / "state" / "migration.db")
    assert first and all(x["status"] == "verified" for x in first)

    fresh, state, out, mark = _copy_again(tmp_path, env, g, nc)
    # not one byte from Graph (asserted there), not one write to the target
    writes = _writes(nc.requests[mark:])
    assert writes == [], writes[:5]
    rows = _rows(state)
    assert len(rows) == len(first)
    assert all(x["status"] == "verified" and x["adopted"] for x in rows), [x for x in rows if not x["adopted"]][:3]
    a = out["adopted"]
    assert (a["files"], a["bytes"]) == (len(rows), sum(x["size"] for x in rows))
    assert out["files_verified"] == 0 and out["bytes_sent"] == 0
    empty = [x for x in rows if x["size"] == 0]
    assert empty, "the tenant has 0-byte files"
    assert a["how"] == {BY_READING: len(rows) - len(empty), BY_EMPTY: len(empty)}
    gets = [x for x in nc.requests[mark:] if x[0] == "GET" and "/remote.php/dav/files/" in x[1]]
    assert len(gets) == len(rows) - len(empty)  # each non-empty file read back once, from the target
    # each carries the target's facts like a copied file, and an audit record saying how it was checked
    truth = truth_by_id(g)
    for x in rows:
        assert x["sha1"] == truth[(x["drive_id"], x["item_id"])]["sha1"], x["path"]
        assert x["target_checksum"] == f"SHA1:{x['sha1']}" and x["placed_path"] == x["target_path"]
    audit = _audit(state, "adopt")
    assert len(audit) == len(rows) and not _audit(state, "upload")
    sample = next(d for d in audit if d["size"])
    assert sample["checked"] and sample["sha1"] and sample["quick_xor_hash"]
    # status and verify see them as verified files, and count them as recorded without sending
    r = run_cli("--json", "status", cwd=tmp_path, env=fresh)
    assert json.loads(r.stdout)["adopted"] == {"files": len(rows), "bytes": a["bytes"]}
    r = run_cli("status", cwd=tmp_path, env=fresh)
    assert f"recorded without sending: {len(rows)} files" in r.stdout, r.stdout
    assert run_cli("verify", cwd=tmp_path, env=fresh).returncode == 0
    assert_target_matches_truth(g, nc, rows)
    # a rerun has nothing left to judge: no file is read again
    mark = len(nc.requests)
    r = run_cli("--json", "copy", cwd=tmp_path, env=fresh)
    assert r.returncode == 0 and json.loads(r.stdout)["adopted"]["files"] == 0, r.stdout + r.stderr
    assert not [x for x in nc.requests[mark:] if x[0] == "GET" and "/remote.php/dav/files/" in x[1]]


def test_a_file_changed_at_the_target_is_not_adopted_and_a_wrong_mtime_is_set(tmp_path, graph_sandbox_factory,
                                                                              nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "users": 1, "files_per_drive": 20}))
    nc = nextcloud_sandbox
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), targets=("alice",))
    assert run_cli("copy", cwd=tmp_path, env=env).returncode == 0
    rows = [x for x in _rows(tmp_path / "state" / "migration.db") if x["size"] > 0]
    changed, touched = rows[0], rows[1]
    auth = ("alice", nc.app_passwords["alice"])
    with httpx.Client(auth=auth) as c:
        # a person's file of the same size at the path (other bytes; the PUT clears the stored checksum)
        other = bytes(b ^ 0x5A for b in c.get(nc.dav_url("alice", changed["target_path"])).content)
        assert len(other) == changed["size"]
        assert c.put(nc.dav_url("alice", changed["target_path"]), content=other).status_code == 204
        # the same bytes with another modification time
        body = ('<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:"><d:set><d:prop>'
                "<d:lastmodified>1500000000</d:lastmodified></d:prop></d:set></d:propertyupdate>")
        assert c.request("PROPPATCH", nc.dav_url("alice", touched["target_path"]), content=body).status_code == 207
    assert int(nc.file_info("alice", touched["target_path"])["mtime"]) == 1500000000

    fresh, state, out, mark = _copy_again(tmp_path, env, g, nc)
    after = {x["item_id"]: x for x in _rows(state)}
    # the person's file is left as it is: a conflict (on_conflict = skip) with the reason, never written
    ch = after[changed["item_id"]]
    assert ch["status"] == "conflict" and not ch["adopted"], ch
    assert "QuickXorHash of the target's bytes differs" in ch["last_error"], ch["last_error"]
    assert (nc.file_info("alice", changed["target_path"]) or {}).get("size") == changed["size"]
    with httpx.Client(auth=auth) as c:
        assert c.get(nc.dav_url("alice", changed["target_path"])).content == other
    assert out["adopted"]["conflict_count"] == 1
    assert [c["item_id"] for c in out["adopted"]["conflicts"]] == [changed["item_id"]]
    # the touched file is adopted and gets the source's time back by a PROPPATCH, not by an upload
    t = after[touched["item_id"]]
    assert t["status"] == "verified" and t["adopted"], t
    want = max(int(truth_by_id(g)[(t["drive_id"], t["item_id"])]["mtime"]), 86401)
    assert int(nc.file_info("alice", touched["target_path"])["mtime"]) == want
    assert out["adopted"]["mtimes_set"] == 1
    writes = [x for x in _writes(nc.requests[mark:]) if x[0] != "PROPPATCH"]
    assert writes == [], writes
    assert [x[0] for x in nc.requests[mark:] if x[0] == "PROPPATCH"] == ["PROPPATCH"]
    assert all(x["status"] == "verified" for i, x in after.items() if i != changed["item_id"])
    # a plain plan lists it as a conflict (not as already there), and the next copy judges it again: not written
    r = run_cli("--json", "plan", cwd=tmp_path, env=fresh)
    assert r.returncode in (0, 3), r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert (doc["summary"]["conflicts"], doc["summary"]["already_files"]) == (1, 0), doc["summary"]
    listed = json.loads((Path(doc["reports"]) / "plan.json").read_text())["conflicts"]
    assert [(c["item_id"], c["action"]) for c in listed] == [(changed["item_id"], "skip: left as it is, not copied")]
    mark = len(nc.requests)
    r = run_cli("--json", "copy", cwd=tmp_path, env=fresh)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not _writes(nc.requests[mark:])
    assert {x["item_id"]: x for x in _rows(state)}[changed["item_id"]]["status"] == "conflict"
    # once the person's file is gone, the next copy sends the source's
    with httpx.Client(auth=auth) as c:
        assert c.delete(nc.dav_url("alice", changed["target_path"])).status_code == 204
    r = run_cli("--json", "copy", cwd=tmp_path, env=fresh)
    assert r.returncode == 0 and json.loads(r.stdout)["files_verified"] == 1, r.stdout + r.stderr
    assert_target_matches_truth(g, nc, _rows(state))


def test_a_stored_checksum_equal_to_the_listed_sha1_decides_without_reading(tmp_path, graph_sandbox_factory,
                                                                            nextcloud_sandbox):
    """OneDrive Personal lists a sha1Hash; where the target keeps the SHA1 our first copy gave it, that settles it."""
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "users": 1, "files_per_drive": 12}))
    nc = nextcloud_sandbox
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), targets=("alice",),
                             transfer="bulk_upload = false")  # single PUTs: Nextcloud keeps their OC-Checksum
    assert run_cli("copy", cwd=tmp_path, env=env).returncode == 0
    fresh = _second_state(tmp_path, env)
    state = tmp_path / "second" / "migration.db"
    truth = truth_by_id(g)
    con = sqlite3.connect(state)
    for (drive_id, item_id), t in truth.items():
        if not t["is_folder"] and t["size"]:
            con.execute("UPDATE items SET sha1 = ? WHERE drive_id = ? AND item_id = ?", (t["sha1"], drive_id, item_id))
    con.commit()
    con.close()
    mark = len(nc.requests)
    r = run_cli("--json", "copy", cwd=tmp_path, env=fresh)
    assert r.returncode == 0, r.stdout + r.stderr
    how = json.loads(r.stdout)["adopted"]["how"]
    rows = _rows(state)
    assert how.get(BY_STORED_SHA1) == sum(1 for x in rows if x["size"]), how
    assert not [x for x in nc.requests[mark:] if x[0] == "GET" and "/remote.php/dav/files/" in x[1]]
    assert not _writes(nc.requests[mark:])
    assert all(x["status"] == "verified" for x in rows)


def test_a_plain_webdav_target_is_read_back_and_hashed(tmp_path, graph_sandbox_factory, apache_dav):
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "users": 1, "sites": 1, "files_per_drive": 15}))
    user, pw = apache_dav.auth
    env = library_to_webdav(tmp_path, g, apache_dav, "/Adopted library")
    assert run_cli("copy", cwd=tmp_path, env=env).returncode == 0
    first = _rows(tmp_path / "state" / "migration.db")
    victim = next(x for x in first if x["size"] > 0)
    base = apache_dav.url.rstrip("/")
    with httpx.Client(auth=(user, pw)) as c:  # same size, other bytes: Apache keeps no checksum to tell
        body = c.get(base + quote(victim["target_path"])).content
        assert c.put(base + quote(victim["target_path"]), content=bytes(b ^ 1 for b in body)).status_code in (200, 204)
    fresh, state, out, _ = _copy_again(tmp_path, env, g)
    a = out["adopted"]
    rows = {x["item_id"]: x for x in _rows(state)}
    assert a["files"] == len(rows) - 1 and a["conflict_count"] == 1
    assert a["read_files"] == sum(1 for x in rows.values() if x["size"]) and a["read_bytes"] > 0
    assert rows[victim["item_id"]]["status"] == "conflict"
    with httpx.Client(auth=(user, pw)) as c:
        assert c.get(base + quote(victim["target_path"])).content == bytes(b ^ 1 for b in body)
    assert run_cli("verify", cwd=tmp_path, env=fresh).returncode == 0


def test_a_kill_during_adoption_leaves_the_state_consistent_and_the_rerun_continues(tmp_path, graph_sandbox_factory,
                                                                                    nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "users": 1, "files_per_drive": 60}))
    nc = nextcloud_sandbox
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), targets=("alice",),
                             transfer="workers = 2")
    assert run_cli("copy", cwd=tmp_path, env=env).returncode == 0
    fresh = _second_state(tmp_path, env)
    state = tmp_path / "second" / "migration.db"
    nc.delay("GET", 0.1)  # a slow read-back, so the kill lands among the checks
    p = subprocess.Popen([str(Path(sys.executable).with_name("m365-migrate")), "copy"], cwd=tmp_path, env=fresh,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None and len(_audit(state, "adopt")) < 5:
        time.sleep(0.05)
    assert p.poll() is None, "the copy finished before the kill; slow it down"
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    nc.delay("GET", 0)
    rows = _rows(state)
    done = {x["item_id"] for x in rows if x["status"] == "verified"}
    assert 5 <= len(done) < len(rows), len(done)
    assert {x["status"] for x in rows} <= {"verified", "pending"}, {x["status"] for x in rows}
    assert all(x["adopted"] for x in rows if x["status"] == "verified")
    assert run_cli("audit", "verify", cwd=tmp_path, env=fresh).returncode == 0
    reads, mark = _graph_reads(g), len(nc.requests)
    r = run_cli("--json", "copy", cwd=tmp_path, env=fresh)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _graph_reads(g) == reads and not _writes(nc.requests[mark:])
    rows = _rows(state)
    assert all(x["status"] == "verified" and x["adopted"] for x in rows)
    assert json.loads(r.stdout)["adopted"]["files"] == len(rows) - len(done)
    # what was recorded before the kill is not read again
    read_again = {x[1] for x in nc.requests[mark:] if x[0] == "GET" and x[1].startswith("/remote.php/dav/files/")}
    rest = {f"/remote.php/dav/files/alice{x['target_path']}" for x in rows if x["item_id"] not in done}
    assert read_again and read_again <= rest, sorted(read_again - rest)[:3]
    assert len(_audit(state, "adopt")) == len(rows)


def test_under_on_conflict_rename_the_source_file_goes_beside_the_other_one(tmp_path, graph_sandbox_factory,
                                                                             nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "users": 1, "files_per_drive": 8, "awkward_names": False}))
    nc = nextcloud_sandbox
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc) + 'on_conflict = "rename"\n',
                             targets=("alice",))
    assert run_cli("copy", cwd=tmp_path, env=env).returncode == 0
    changed = next(x for x in _rows(tmp_path / "state" / "migration.db") if x["size"] > 0)
    auth = ("alice", nc.app_passwords["alice"])
    with httpx.Client(auth=auth) as c:
        other = bytes(b ^ 0x33 for b in c.get(nc.dav_url("alice", changed["target_path"])).content)
        assert c.put(nc.dav_url("alice", changed["target_path"]), content=other).status_code == 204
    fresh, state, out, mark = _copy_again(tmp_path, env, g, nc, downloads=1)  # only the file that goes beside
    assert out["adopted"]["renamed"] == 1 and out["files_verified"] == 1
    row = next(x for x in _rows(state) if x["item_id"] == changed["item_id"])
    assert row["status"] == "verified" and not row["adopted"] and row["target_path"] != changed["target_path"]
    assert row["pinned_name"] and row["target_path"].endswith(row["pinned_name"])
    with httpx.Client(auth=auth) as c:  # the other file is untouched, ours is beside it
        assert c.get(nc.dav_url("alice", changed["target_path"])).content == other
    assert nc.file_info("alice", row["target_path"])["sha1"] == truth_by_id(g)[(row["drive_id"], row["item_id"])]["sha1"]
    # stable: the next plan and copy keep the renamed path and write nothing
    mark = len(nc.requests)
    assert run_cli("copy", cwd=tmp_path, env=fresh).returncode == 0
    assert not _writes(nc.requests[mark:])
    assert next(x for x in _rows(state) if x["item_id"] == changed["item_id"])["target_path"] == row["target_path"]
    assert run_cli("verify", cwd=tmp_path, env=fresh).returncode == 0
    # a third state database finds our copy beside the other file and records it there, sending nothing
    third, state, out, mark = _copy_again(tmp_path, env, g, nc, name="third")
    assert not _writes(nc.requests[mark:])
    again = next(x for x in _rows(state) if x["item_id"] == changed["item_id"])
    assert again["status"] == "verified" and again["adopted"] and again["target_path"] == row["target_path"]
    assert out["adopted"]["files"] == len(_rows(state)) and not out["adopted"]["conflict_count"]
    assert run_cli("verify", cwd=tmp_path, env=third).returncode == 0


def test_sync_records_a_new_source_file_whose_bytes_are_already_there(tmp_path, graph_sandbox_factory,
                                                                      nextcloud_sandbox):
    from tests.sync_support import copied, sync

    nc = nextcloud_sandbox
    g, env, drive = copied(tmp_path, graph_sandbox_factory, nc)
    new = g.mutate.add_file(drive, "/", "put there by hand.bin", 5000)
    other = g.mutate.add_file(drive, "/", "another person's file.bin", 4000)
    body = g.tenant.drives[drive].items[new["id"]].content.read()
    with httpx.Client(auth=("alice", nc.app_passwords["alice"])) as c:  # the same bytes, already there
        assert c.put(nc.dav_url("alice", "put there by hand.bin"), content=body).status_code == 201
        assert c.put(nc.dav_url("alice", "another person's file.bin"), content=b"x" * 4000).status_code == 201
    before = g.stats()["requests"].get("download", 0)
    out = sync(tmp_path, env, code=3)  # the other file of the same size is a conflict: kept, ours beside it
    assert g.stats()["requests"].get("download", 0) - before == 1  # only the file that goes beside the other
    with sqlite3.connect(tmp_path / "state" / "migration.db") as con:
        status, adopted = con.execute("SELECT status, adopted FROM items WHERE item_id = ?", (new["id"],)).fetchone()
    assert status == "verified" and adopted, (status, adopted)
    assert [x["item_id"] for x in out["conflicts"]] == [other["id"]]
    with httpx.Client(auth=("alice", nc.app_passwords["alice"])) as c:
        assert c.get(nc.dav_url("alice", "another person's file.bin")).content == b"x" * 4000
    truth = truth_by_id(g)
    conflict_copy = next(p.name for p in nc.state.home("alice").iterdir() if "(conflict " in p.name)
    assert nc.file_info("alice", conflict_copy)["sha1"] == truth[(drive, other["id"])]["sha1"]
    info = nc.file_info("alice", "put there by hand.bin")  # untouched bytes, the source's time set
    assert info["sha1"] == truth[(drive, new["id"])]["sha1"]
    assert int(info["mtime"]) == max(int(truth[(drive, new["id"])]["mtime"]), 86401)
    verify = run_cli("verify", cwd=tmp_path, env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
