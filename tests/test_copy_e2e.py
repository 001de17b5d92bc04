"""`copy` and `verify` through the real CLI against the Graph and Nextcloud sandboxes (and Apache mod_dav).

What a cutover relies on: every file byte-identical at its stored target path, modification times kept, 0-byte
files and awkward names handled, `verify` clean afterwards and exit 3 with the gap listed when a file goes
missing; a 300 MB file through chunked upload; kill -9 at random points, then resume with nothing missing,
nothing duplicated and no verified file sent again; bad accounts refused together before any byte moves.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from migrate.sandbox.graph import TenantSpec
from tests.conftest import run_cli
from tests.copy_support import (
    SPEC,
    assert_target_matches_truth,
    db,
    file_rows,
    kill_copy_after,
    library_to_webdav,
    nextcloud_target,
    setup_migration,
    truth_by_id,
)


def _ancient(g, drive_id: str, path: str, when: float) -> str:
    """Give one source file a modification time Nextcloud cannot store (≤ 86400); returns its id."""
    d = g.tenant.drives[drive_id]
    it = next(i for i in d.items.values() if d.path_of(i) == path)
    it.modified = when
    return it.id


def _stamp(nc, row) -> tuple:
    info = nc.file_info(row["target_user"], row["target_path"].lstrip("/")) or {}
    return info.get("fileid"), info.get("etag"), info.get("upload_time")


def test_copy_is_byte_identical_keeps_mtimes_and_verify_finds_a_deleted_file(tmp_path, graph_sandbox_factory,
                                                                             nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**SPEC))
    nc = nextcloud_sandbox
    drive0 = sorted(g.truth())[0]
    old_id = _ancient(g, drive0, "/Awkward/Café résumé.txt", 3600.0)
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc))

    r = run_cli("--json", "copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    summary = json.loads(r.stdout)
    rows = file_rows(tmp_path)
    assert summary["files_verified"] == len(rows) and not summary["failed"]
    n = assert_target_matches_truth(g, nc, rows)
    truth = truth_by_id(g)
    assert n == sum(1 for (d, _i), t in truth.items() if not t["is_folder"])
    assert [x for x in rows if x["size"] == 0], "the tenant has 0-byte files"
    assert any(x["path"] != x["target_path"].lstrip("/") for x in rows), "awkward names were renamed"
    # the clamped mtime is accepted, and the reason is recorded on the item
    (old,) = [x for x in rows if x["item_id"] == old_id]
    assert old["status"] == "verified" and "86401" in (old["note"] or "")

    r = run_cli("verify", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr

    victim = next(x for x in rows if x["size"] > 0 and x["target_user"] == "bob")
    with httpx.Client(auth=("bob", nc.app_passwords["bob"])) as c:
        assert c.delete(nc.dav_url("bob", victim["target_path"].lstrip("/"))).status_code == 204
    r = run_cli("--json", "verify", cwd=tmp_path, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    gaps = json.loads(r.stdout)["gaps"]
    assert [(x["item_id"], x["problem"]) for x in gaps] == [(victim["item_id"], "no file at the path")]
    # the gap is resumable: the next copy sends exactly that file, then verify is clean again
    before = len(nc.requests)
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    writes = [x for x in nc.requests[before:] if x[0] in ("PUT", "POST", "MOVE")]
    assert len(writes) == 1, writes  # one PUT or one bulk request carrying that one file
    assert_target_matches_truth(g, nc, file_rows(tmp_path))
    assert run_cli("verify", cwd=tmp_path, env=env).returncode == 0


def test_verify_lists_folders_instead_of_one_stat_per_file(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "files_per_drive": 60}))
    nc = nextcloud_sandbox
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc))
    assert run_cli("copy", cwd=tmp_path, env=env).returncode == 0
    rows = file_rows(tmp_path)
    folders = {(x["target_user"], x["target_path"].rstrip("/").rpartition("/")[0]) for x in rows}
    assert len(folders) * 2 < len(rows), "the tenant must hold several files per folder"
    before = len(nc.requests)
    r = run_cli("--json", "verify", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["checked"] == len(rows) and out["folders_listed"] == len(folders)
    # one listing per folder (plus the credential/detection calls), never one PROPFIND per file
    propfinds = [x for x in nc.requests[before:] if x[0] == "PROPFIND"]
    assert len(propfinds) <= len(folders) + 4, (len(propfinds), len(folders))
    # a file whose size changed behind our back is found from the listing, and only it
    victim = next(x for x in rows if x["size"] > 0 and x["target_user"] == "alice")
    with httpx.Client(auth=("alice", nc.app_passwords["alice"])) as c:
        assert c.put(nc.dav_url("alice", victim["target_path"].lstrip("/")), content=b"other").status_code in (201, 204)
    r = run_cli("--json", "verify", cwd=tmp_path, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    gaps = json.loads(r.stdout)["gaps"]
    assert [(x["item_id"], x["problem"]) for x in gaps] == [(victim["item_id"], f"size 5, expected {victim['size']}")]


def test_folders_are_created_siblings_at_once_parents_first(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "users": 1, "files_per_drive": 4}))
    nc = nextcloud_sandbox
    drive = sorted(g.truth())[0]
    for i in range(12):  # 12 empty siblings, each with 2 empty children: 36 folders over two levels
        g.mutate.add_folder(drive, "/", f"Team {i:02d}")
        for j in range(2):
            g.mutate.add_folder(drive, f"/Team {i:02d}", f"Sub {j}")
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), targets=("alice",))
    nc.delay("MKCOL", 0.05)  # a slow server, so folders asked for together are served together
    before = len(nc.requests)
    r = run_cli("--json", "copy", cwd=tmp_path, env=env)
    nc.delay("MKCOL", 0)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["folders_created"] >= 36
    assert nc.peak_running("MKCOL") >= 4, nc.peak_running("MKCOL")
    made = [p.rstrip("/") for m, p, st in nc.requests[before:] if m == "MKCOL" and st == 201 and "/uploads/" not in p]
    assert len(made) == len(set(made)), "a folder was created twice"
    for n, path in enumerate(made):  # every parent that had to be made was made before its child
        parent = path.rpartition("/")[0]
        assert parent not in made[n:], (path, parent)
    with db(tmp_path) as s:
        folders = [r for r in s.iter_items(drive) if r["is_folder"] and r["target_path"]]
    assert folders and all(r["status"] == "verified" for r in folders)
    for i in range(12):
        for j in range(2):
            assert any(p.endswith(f"/Team {i:02d}/Sub {j}") for p in made), (i, j)


def test_the_plan_refresh_lists_target_folders_several_at_a_time(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "users": 1, "files_per_drive": 4}))
    nc = nextcloud_sandbox
    drive = sorted(g.truth())[0]
    for i in range(10):
        g.mutate.add_folder(drive, "/", f"Unit {i}")
        g.mutate.add_file(drive, f"/Unit {i}", f"f{i}.txt", 100 + i)
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), targets=("alice",))
    assert run_cli("copy", cwd=tmp_path, env=env).returncode == 0
    copied = len([r for r in file_rows(tmp_path) if r["status"] == "verified"])
    fresh = {**env, "M365_MIGRATE_STATE": str(tmp_path / "second" / "migration.db")}  # knows nothing of that copy
    for step in ("discover", "scan"):
        assert run_cli(step, cwd=tmp_path, env=fresh).returncode == 0
    nc.delay("PROPFIND", 0.05)  # a slow server: listings asked for together are served together
    nc.reset_peaks()
    r = run_cli("--json", "plan", cwd=tmp_path, env=fresh)
    nc.delay("PROPFIND", 0)
    assert r.returncode in (0, 3), r.stdout + r.stderr
    assert nc.peak_running("PROPFIND") >= 4, nc.peak_running("PROPFIND")
    assert json.loads(r.stdout)["summary"]["already_files"] == copied  # every file the walk found, none missed


def test_verify_source_rechecks_the_current_hash(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "files_per_drive": 8}))
    nc = nextcloud_sandbox
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc))
    assert run_cli("copy", cwd=tmp_path, env=env).returncode == 0
    r = run_cli("verify", "--source", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [x for x in file_rows(tmp_path) if x["size"] > 0]
    changed, gone = rows[0], rows[1]
    g.mutate.modify(changed["drive_id"], changed["item_id"], size=changed["size"] + 10)
    g.mutate.delete(gone["drive_id"], gone["item_id"])
    r = run_cli("--json", "verify", "--source", cwd=tmp_path, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    problems = {x["item_id"]: x["problem"] for x in json.loads(r.stdout)["gaps"]}
    assert set(problems) == {changed["item_id"], gone["item_id"]}
    assert "changed at the source" in problems[changed["item_id"]]
    assert "no longer exists" in problems[gone["item_id"]]


def test_300_mb_file_goes_through_chunked_upload(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "users": 1, "files_per_drive": 3, "awkward_names": False}))
    nc = nextcloud_sandbox
    drive = sorted(g.truth())[0]
    big = g.mutate.add_file(drive, "/", "big.bin", 300 * 1024 * 1024)
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), targets=("alice",),
                             transfer='chunk_size = "64MiB"')
    t0 = time.monotonic()
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert time.monotonic() - t0 < 60
    chunks = [x for x in nc.requests if x[0] == "PUT" and x[1].startswith("/remote.php/dav/uploads/alice/")]
    assert len(chunks) == 5 and all(s == 201 for _m, _p, s in chunks)  # 300 MiB in 64 MiB chunks
    assert any(m == "MOVE" and p.startswith("/remote.php/dav/uploads/alice/") for m, p, _s in nc.requests)
    info = nc.file_info("alice", "big.bin")
    assert info["size"] == 300 * 1024 * 1024
    assert info["sha1"] == truth_by_id(g)[(drive, big["id"])]["sha1"]
    assert_target_matches_truth(g, nc, file_rows(tmp_path))


@pytest.mark.parametrize(("bulk", "rate", "seed"), [(False, 300_000, 20261129), (True, 300_000, 7)])
def test_kill_9_at_random_points_then_resume_sends_no_verified_file_again(tmp_path, graph_sandbox_factory,
                                                                         nextcloud_sandbox, bulk, rate, seed):
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "files_per_drive": 30}))
    nc = nextcloud_sandbox
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc),
                             transfer=f"bulk_upload = {str(bulk).lower()}\nworkers = 3")
    # slow bodies, so that every kill lands in the middle of transfers
    g.faults.set(route="download", bytes_per_second=rate)
    rng = random.Random(seed)
    # (request index at the kill, {target URL: (etag, upload time)} of the files verified by then)
    kills: list[tuple[int, dict[str, tuple]]] = []
    for _ in range(3):
        kill_copy_after(tmp_path, env, nc, ("PUT", "POST"), rng.uniform(0.1, 1.0))
        with db(tmp_path) as s:
            done = {f"/remote.php/dav/files/{r['target_user']}{r['target_path']}": _stamp(nc, r) for d in s.drives()
                    for r in s.iter_items(d["id"], statuses=("verified",), files_only=True)}
        kills.append((len(nc.requests), done))
    assert all(a.keys() <= b.keys() for (_i, a), (_j, b) in zip(kills, kills[1:], strict=False)), \
        "a verified file regressed"
    assert 0 < len(kills[-1][1]) < len(file_rows(tmp_path)), "the kills landed mid-copy"
    g.faults.clear()
    r = run_cli("--json", "copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = file_rows(tmp_path)
    by_url = {f"/remote.php/dav/files/{r['target_user']}{r['target_path']}": r for r in rows}
    for mark, done in kills:
        resent = [p for m, p, _s in nc.requests[mark:] if m == "PUT" and p in done]
        assert resent == [], f"verified before a kill, sent again: {resent[:3]}"
        # bulk requests do not show their files' paths: the stored file must be the very same upload
        rewritten = [u for u, stamp in done.items() if _stamp(nc, by_url[u]) != stamp]
        assert rewritten == [], f"verified before a kill, written again: {rewritten[:3]}"
    assert_target_matches_truth(g, nc, rows)
    # nothing duplicated or left over: the target holds exactly the planned files
    for user in ("alice", "bob"):
        home = Path(nc.data_dir) / "users" / user / "files"
        stored = {p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file()}
        want = {x["target_path"].lstrip("/") for x in rows if x["target_user"] == user}
        assert stored == want, (sorted(stored - want)[:5], sorted(want - stored)[:5])


def test_resume_reads_the_in_flight_rows_from_folder_listings(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    """Rows a kill left in flight are settled by listing their folders: those whose bytes landed (size and the
    SHA1 recorded before they left) are finalised without a write, the others sent again; no look per file."""
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "users": 1, "files_per_drive": 60}))
    nc = nextcloud_sandbox
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), targets=("alice",))
    assert run_cli("copy", cwd=tmp_path, env=env).returncode == 0
    rows = [x for x in file_rows(tmp_path) if x["size"] > 0]
    assert all(x["target_checksum"] for x in rows)
    # the PROPFINDs of a rerun with nothing in flight, to compare with
    before = len(nc.requests)
    assert run_cli("copy", cwd=tmp_path, env=env).returncode == 0
    idle = sum(1 for x in nc.requests[before:] if x[0] == "PROPFIND")
    # what a kill during the uploads leaves: rows in flight, some of whose bytes landed and some not
    landed, lost = rows[:20], rows[20:26]
    with db(tmp_path) as s:
        for x in landed + lost:
            s.db.execute("UPDATE items SET status = 'transferring' WHERE drive_id = ? AND item_id = ?",
                         (x["drive_id"], x["item_id"]))
        s.db.conn.commit()
    with httpx.Client(auth=("alice", nc.app_passwords["alice"])) as c:
        for x in lost:
            assert c.delete(nc.dav_url("alice", x["target_path"].lstrip("/"))).status_code == 204
    before = len(nc.requests)
    r = run_cli("--json", "copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert (out["resumed_verified"], out["resumed_resent"]) == (len(landed), len(lost))
    reqs = nc.requests[before:]
    folders = {x["target_path"].rstrip("/").rpartition("/")[0] for x in landed + lost}
    propfinds = sum(1 for x in reqs if x[0] == "PROPFIND")
    # one listing per folder in flight, plus one check after each re-sent file's upload
    assert propfinds - idle <= len(folders) + len(lost), (propfinds, idle, len(folders))
    writes = [x for x in reqs if x[0] in ("PUT", "POST", "MOVE")]
    assert 1 <= len(writes) <= len(lost), writes  # only the lost files are written again
    assert_target_matches_truth(g, nc, file_rows(tmp_path))


def _stored_chunks(nc) -> set[str]:
    """Names of the chunks the Nextcloud sandbox stored for alice's uploads so far."""
    return {path.rsplit("/", 1)[-1] for m, path, st in nc.requests
            if m == "PUT" and path.startswith("/remote.php/dav/uploads/alice/") and st == 201}


def _copy_killed_mid_upload(tmp_path, graph_sandbox_factory, nc, *, size: int, transfer: str, rate: int,
                            chunks: int):
    """One user with one large file; `copy` is killed -9 once `chunks` chunks are stored. Returns (g, env, drive,
    big file)."""
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "users": 1, "files_per_drive": 2, "awkward_names": False}))
    drive = sorted(g.truth())[0]
    big = g.mutate.add_file(drive, "/", "big.bin", size)
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), targets=("alice",),
                             transfer=transfer)
    g.faults.set(route="download", bytes_per_second=rate)
    exe = Path(sys.executable).with_name("m365-migrate")
    p = subprocess.Popen([str(exe), "copy"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(_stored_chunks(nc)) < chunks and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
    assert p.poll() is None, "the copy finished before the kill; slow it down"
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    time.sleep(0.3)  # let the server finish the requests of the dead client
    return g, env, drive, big


def test_a_killed_chunked_upload_resumes_after_the_chunks_the_server_has(tmp_path, graph_sandbox_factory,
                                                                           nextcloud_sandbox):
    nc = nextcloud_sandbox
    size = 48 * 1024 * 1024
    g, env, drive, big = _copy_killed_mid_upload(  # about 8 s for the big file
        tmp_path, graph_sandbox_factory, nc, size=size, transfer='chunk_size = "5MiB"\nchunk_parallel = 2',
        rate=6 * 1024 * 1024, chunks=4)
    before_kill = _stored_chunks(nc)
    assert {"00001", "00002", "00003", "00004"} <= before_kill and len(before_kill) < 10, before_kill
    with db(tmp_path) as s:
        session = s.upload_session(drive, big["id"])
    assert session is not None and session["chunk_size"] == 5 * 1024 * 1024

    g.faults.clear()
    mark, sent_before = len(nc.requests), g.stats().get("bytes_sent", 0)
    r = run_cli("--json", "copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    again = [(m, path.rsplit("/", 1)[-1]) for m, path, _s in nc.requests[mark:]
             if path.startswith(f"/remote.php/dav/uploads/alice/{session['transfer_id']}")]
    resent = {n for m, n in again if m == "PUT"}
    assert resent and not (resent & {"00001", "00002", "00003", "00004"}), sorted(resent)
    assert ("MOVE", ".file") in again and ("MKCOL", session["transfer_id"]) not in again
    # only the rest of the file came from the source, and the whole file was read back from the target
    assert g.stats().get("bytes_sent", 0) - sent_before <= size - 4 * 5 * 1024 * 1024 + 2 * 1024 * 1024
    assert any(m == "GET" and path == "/remote.php/dav/files/alice/big.bin" for m, path, _s in nc.requests[mark:])
    info = nc.file_info("alice", "big.bin")
    assert info["size"] == size and info["sha1"] == truth_by_id(g)[(drive, big["id"])]["sha1"]
    assert info["checksum"] == f"SHA1:{info['sha1']}"  # the server hashed the assembled file; ours matched
    rows = file_rows(tmp_path)
    assert_target_matches_truth(g, nc, rows)
    assert next(x for x in rows if x["item_id"] == big["id"])["status"] == "verified"
    with db(tmp_path) as s:
        assert s.upload_session_count() == 0
    assert json.loads(r.stdout).get("resumed_bytes", 0) >= 4 * 5 * 1024 * 1024


def test_a_source_changed_after_the_kill_is_uploaded_afresh_not_resumed(tmp_path, graph_sandbox_factory,
                                                                          nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, env, drive, big = _copy_killed_mid_upload(
        tmp_path, graph_sandbox_factory, nc, size=30 * 1024 * 1024,
        transfer='chunk_size = "5MiB"\nchunk_parallel = 1', rate=4 * 1024 * 1024, chunks=2)
    g.faults.clear()
    with db(tmp_path) as s:
        old = s.upload_session(drive, big["id"])
    assert old is not None
    g.mutate.modify(drive, big["id"])  # same size, new bytes: the kept chunks are not this file any more
    assert run_cli("scan", cwd=tmp_path, env=env).returncode in (0, 3)
    mark = len(nc.requests)
    r = run_cli("--json", "copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    folders = {path.split("/")[5] for m, path, _s in nc.requests[mark:] if m == "MKCOL" and "/uploads/" in path}
    assert folders and old["transfer_id"] not in folders, folders
    info = nc.file_info("alice", "big.bin")
    assert info["sha1"] == truth_by_id(g)[(drive, big["id"])]["sha1"]
    assert_target_matches_truth(g, nc, file_rows(tmp_path))


def test_bad_accounts_are_listed_together_before_any_byte_moves(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "users": 3, "files_per_drive": 5}))
    nc = nextcloud_sandbox
    # alice: a wrong app password; bob: none in the credentials file; nosuchuser: not a Nextcloud user
    passwords = {"alice": "wrong-" + nc.app_passwords["alice"], "admin": nc.admin[1],
                 "nosuchuser": "whatever-app-password"}
    env, upns = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc, passwords),
                                targets=("alice", "bob", "nosuchuser"))
    before = len(nc.requests)
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    for line in ("alice: the app password was refused", "bob: no app password", "'nosuchuser' does not exist"):
        assert line in r.stderr, r.stderr
    assert [x for x in nc.requests[before:] if x[0] in ("PUT", "MKCOL", "MOVE", "POST")] == []


def test_generic_webdav_target_apache(tmp_path, graph_sandbox_factory, apache_dav):
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "users": 1, "sites": 1, "files_per_drive": 15}))
    user, pw = apache_dav.auth
    env = library_to_webdav(tmp_path, g, apache_dav)
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    truth = truth_by_id(g)
    rows = file_rows(tmp_path)
    assert len(rows) >= 10 and all(x["status"] == "verified" for x in rows)
    base = apache_dav.url.rstrip("/")
    with httpx.Client(auth=(user, pw)) as c:
        for x in rows:
            resp = c.get(base + quote(x["target_path"]))
            assert resp.status_code == 200, x["target_path"]
            assert hashlib.sha1(resp.content).hexdigest() == truth[(x["drive_id"], x["item_id"])]["sha1"], x["path"]
    r = run_cli("verify", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
