"""Inventory end to end against the Graph sandbox over HTTPS, with the real SDK and azure-identity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migrate.backends.graph import GraphOptions, open_source
from migrate.engine.files.scan import scan
from migrate.models import Drive, DriveKind
from migrate.sandbox.graph import TenantSpec
from migrate.session import Selection
from migrate.store import StateStore
from tests.conftest import run_cli
from tests.inventory_support import assert_matches_truth, settings_for, stored, write_config

SPEC = dict(seed=11, users=3, sites=1, teams=1, files_per_drive=30, max_depth=3, no_mysite_users=1)


def _discover_and_scan(tmp_path: Path, g, *extra: str) -> tuple[dict, Path, dict]:
    env = write_config(tmp_path, g)
    r = run_cli("--json", "discover", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    r = run_cli("--json", "scan", *extra, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), tmp_path / "state" / "migration.db", env


def _engine_scan(tmp_path: Path, g, *, full: bool = False, listener=None, page_size: int = 999, workers: int = 3):
    """Scan in-process (to read the pacer's figures); discover first when the store is new."""
    env = write_config(tmp_path, g)
    settings = settings_for(tmp_path, env)
    src = open_source(settings, env=env, options=GraphOptions(page_size=page_size, workers=workers))
    store = StateStore(settings.state_path)
    try:
        if not store.drives():
            from migrate.engine.discover import discover

            discover(store, src, settings.mappings)
        summary = scan(store, src, Selection(), workers=workers, full=full, listener=listener,
                       source_stats=src.stats)
        return summary, store, src
    except BaseException:
        store.close()
        src.close()
        raise


def test_discover_and_scan_match_the_tenant(tmp_path, graph_sandbox_factory):
    g = graph_sandbox_factory(TenantSpec(seed=7, users=4, sites=2, teams=2, files_per_drive=40, max_depth=4,
                                         no_mysite_users=1, awkward_names=True, onenote=True), tls=True)
    summary, db, env = _discover_and_scan(tmp_path, g)
    assert not summary["attention"] and summary["items"] > 0
    with StateStore(db) as store:
        kinds = {d["kind"] for d in store.drives()}
        assert kinds == {"onedrive", "library", "team"}
        assert len(store.drives()) == len(g.tenant.drive_list)
        assert all(d["scan_state"] == "scanned" and d["delta_link"] for d in store.drives())
        users = store.users()
        assert len(users) == len(g.tenant.users) and sum(1 for u in users if not u["has_drive"]) == 1
        n = assert_matches_truth(store, g)
        assert n > 300
        # awkward names survive byte for byte; OneNote notebooks are recorded as packages
        paths = [r["path"] for d in store.drives() for r in stored(store, d["id"]).values()]
        assert any("ü" * 20 in p for p in paths) and any(len(p.rsplit("/", 1)[-1]) > 200 for p in paths)
        assert any(r["package_type"] == "oneNote" for d in store.drives() for r in stored(store, d["id"]).values())
        # only shared items had their permissions read (and each library's root once, for its site groups)
        shared = sum(1 for d in store.drives() for r in stored(store, d["id"]).values() if r["shared"])
        libraries = [d for d in store.drives() if d["kind"] != "onedrive"]
        assert shared and g.stats()["requests"].get("permissions", 0) == shared + len(libraries)
        assert all(store.drive_access(d["id"]) for d in libraries)
        perm_items = {(p["drive_id"], p["item_id"]) for p in store.iter_permissions()}
        assert len(perm_items) == shared
        assert {p["kind"] for p in store.iter_permissions()} >= {"owner", "link"}
        assert store.metrics("scan.items_per_s")
    users_csv = (tmp_path / "mappings" / "users.csv").read_text()
    assert "adele.vance@contoso.onmicrosoft.com,adele.vance," in users_csv
    assert "groupfolder:" in (tmp_path / "mappings" / "sites.csv").read_text()
    # the inventory report lists every item
    r = run_cli("report", "inventory", "--format", "json", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == n and {"drive_id", "item_id", "path", "kind", "size", "mtime", "quick_xor_hash"} <= set(rows[0])
    # a second discover keeps edited rows and adds nothing new
    edited = users_csv.replace("adele.vance@contoso.onmicrosoft.com,adele.vance,", "adele.vance@contoso.onmicrosoft.com,anna,pilot")
    (tmp_path / "mappings" / "users.csv").write_text(edited)
    r = run_cli("--json", "discover", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["users_suggested"] == 0
    assert (tmp_path / "mappings" / "users.csv").read_text() == edited
    with StateStore(db) as store:
        assert [d["batch"] for d in store.drives(batches=["pilot"])] == ["pilot"]
    r = run_cli("--json", "scan", "--batch", "pilot", cwd=tmp_path, env=env)
    assert r.returncode == 0 and len(json.loads(r.stdout)["drives"]) == 1


def test_kill_minus_9_mid_scan_resumes_from_the_checkpoint(tmp_path, graph_sandbox_factory):
    g = graph_sandbox_factory(TenantSpec(**SPEC), tls=True, page_size=10)
    env = write_config(tmp_path, g, workers=1)
    env["M365_GRAPH_PAGE_SIZE"] = "10"
    assert run_cli("discover", cwd=tmp_path, env=env).returncode == 0
    # slow pages, so the kill lands between two of them, and pages are committed (every second at least) mid-drive
    g.faults.set(route="delta", delay=0.5)
    exe = Path(sys.executable).with_name("m365-migrate")
    proc = subprocess.Popen([str(exe), "-q", "scan", "--workers", "1"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = tmp_path / "state" / "migration.db"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            time.sleep(0.1)
            if db.exists():
                with StateStore(db) as s:
                    if s.scalar("SELECT count(*) FROM drives WHERE scan_state='scanned'") >= 1 and \
                            s.scalar("SELECT count(*) FROM drives WHERE scan_link IS NOT NULL") >= 1:
                        break
        else:
            pytest.fail("the scan never reached a mid-drive checkpoint")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    first = g.stats()["requests"]["delta"]
    with StateStore(db) as s:
        saved = s.scalar("SELECT count(*) FROM items")
        interrupted = [d["id"] for d in s.drives() if d["scan_link"]]
    assert saved > 0 and interrupted
    g.faults.clear()
    r = run_cli("--json", "scan", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    modes = {d["drive_id"]: d["mode"] for d in out["drives"]}
    assert all(modes[i] == "resume" for i in interrupted)
    second = g.stats()["requests"]["delta"] - first
    total_pages = sum(-(-(len(rows) + 1) // 10) for rows in g.truth().values())
    assert second < total_pages, (second, total_pages)  # the rerun did not start over
    with StateStore(db) as s:
        assert s.scalar("SELECT count(*) FROM (SELECT drive_id, item_id FROM items GROUP BY 1, 2 HAVING count(*) > 1)") == 0
        assert_matches_truth(s, g)
        assert all(d["scan_state"] == "scanned" for d in s.drives())


def test_throttling_storm_honours_retry_after(tmp_path, graph_sandbox_factory):
    g = graph_sandbox_factory(TenantSpec(**SPEC), tls=True, page_size=20)
    g.faults.set(route="*", status=429, rate=0.3, retry_after="0.15", seed=3)
    summary, store, src = _engine_scan(tmp_path, g)
    try:
        assert not summary.attention
        g.faults.clear()
        assert_matches_truth(store, g)
        st = src.pacer.stats
        assert st.throttled > 0 and st.throttled == g.stats()["throttled"]
        assert set(st.retry_afters) == {0.15}  # fractional Retry-After parsed, not replaced by a backoff
        assert st.waited >= 0.1
    finally:
        store.close()
        src.close()


def test_expired_access_tokens_are_refreshed_once(tmp_path, graph_sandbox_factory):
    g = graph_sandbox_factory(TenantSpec(**SPEC), tls=True, page_size=10, token_lifetime=2)
    g.faults.set(route="delta", delay=0.3)

    class Expire:
        pages = 0

        def drive_started(self, drive, mode):
            pass

        def items(self, drive_id, n):
            Expire.pages += 1
            if Expire.pages in (2, 6):
                g.expire_access_tokens()  # revoked mid-run: every request meets 401 until a new token comes

        def drive_finished(self, result):
            pass

    summary, store, src = _engine_scan(tmp_path, g, listener=Expire(), workers=2, page_size=10)
    try:
        assert not summary.attention and summary.seconds > 2  # outlived the 2 s tokens
        assert src.tokens.refreshes >= 1
        assert g.stats()["requests"]["token"] >= 3
        assert_matches_truth(store, g)
    finally:
        store.close()
        src.close()


def test_410_resync_reconciles_and_keeps_copy_status(tmp_path, graph_sandbox_factory):
    g = graph_sandbox_factory(TenantSpec(**SPEC), tls=True)
    summary, store, src = _engine_scan(tmp_path, g)
    try:
        drive_id = g.tenant.drive_list[0].id
        # the first enumeration began on an empty drive: its end skipped the walk for items it did not see again
        assert store.drive(drive_id)["prior_items"] == 0
        files = [r for r in stored(store, drive_id).values() if not r["is_folder"]]
        keep, gone = files[0], files[1]
        for st in ("transferring", "uploaded", "verified"):
            store.transition(drive_id, keep["item_id"], st)
        g.mutate.delete(drive_id, gone["item_id"])
        g.mutate.add_file(drive_id, "/", "after-410.txt", 321)
        g.expire_delta_tokens()
        summary = scan(store, src, Selection(drive_ids=(drive_id,)), workers=1, source_stats=src.stats)
        assert [d.mode for d in summary.drives] == ["resync"] and not summary.attention
        assert store.drive(drive_id)["prior_items"] == 1  # a resync walks them (and finds `gone` below)
        assert_matches_truth(store, g, [drive_id])
        assert store.item(drive_id, gone["item_id"])["deleted"] == 1
        assert store.item(drive_id, keep["item_id"])["status"] == "verified"
        # the new delta link works: nothing changed, nothing re-enumerated
        summary = scan(store, src, Selection(drive_ids=(drive_id,)), workers=1)
        assert [d.mode for d in summary.drives] == ["delta"] and summary.items <= 1
    finally:
        store.close()
        src.close()


def test_rescan_picks_up_exactly_the_changes(tmp_path, graph_sandbox_factory):
    g = graph_sandbox_factory(TenantSpec(**SPEC), tls=True)
    summary, store, src = _engine_scan(tmp_path, g)
    try:
        d = g.tenant.drive_list[0]
        rows = stored(store, d.id)
        folders = sorted((r for r in rows.values() if r["is_folder"] and "/" not in r["path"]
                          and any(c["parent_id"] == r["item_id"] for c in rows.values())), key=lambda r: r["path"])
        files = [r for r in rows.values() if not r["is_folder"] and r["package_type"] is None]
        renamed = folders[0]
        victim, moved, changed = files[-1], files[-2], files[-3]
        added = g.mutate.add_file(d.id, "/", "brand new.txt", 777)
        g.mutate.modify(d.id, changed["item_id"], size=4321)
        g.mutate.rename(d.id, renamed["item_id"], renamed["name"] + " (renamed)")
        g.mutate.move(d.id, moved["item_id"], folders[1]["item_id"])
        g.mutate.delete(d.id, victim["item_id"])
        summary = scan(store, src, Selection(), workers=3)
        by_drive = {r.drive_id: r for r in summary.drives}
        assert by_drive[d.id].mode == "delta"
        assert all(r.items == 0 for i, r in by_drive.items() if i != d.id)  # untouched drives cost one request
        assert by_drive[d.id].items < 20  # changed items and their ancestors, not the drive
        assert_matches_truth(store, g)
        after = stored(store, d.id)
        below = [r for r in after.values() if r["path"].startswith(renamed["name"] + " (renamed)/")]
        assert below and not any(r["path"].startswith(renamed["name"] + "/") for r in after.values())
        assert after[added["id"]]["size"] == 777 and after[changed["item_id"]]["size"] == 4321
        assert after[moved["item_id"]]["path"].startswith(folders[1]["path"] + "/")
        assert store.item(d.id, victim["item_id"])["deleted"] == 1
    finally:
        store.close()
        src.close()


def test_empty_pages_and_shuffled_order(tmp_path, graph_sandbox_factory):
    g = graph_sandbox_factory(TenantSpec(**SPEC), tls=True, shuffle_delta=True, empty_pages=True, page_size=7)
    summary, store, src = _engine_scan(tmp_path, g, page_size=7)
    try:
        assert not summary.attention
        assert sum(d.pages for d in summary.drives) > summary.items / 7
        assert_matches_truth(store, g)
        assert not any(d.orphans for d in summary.drives)
    finally:
        store.close()
        src.close()


def test_wrong_secret_exits_4_with_what_to_check(tmp_path, graph_sandbox_factory):
    g = graph_sandbox_factory(TenantSpec(**SPEC), tls=True)
    env = write_config(tmp_path, g)
    assert run_cli("discover", cwd=tmp_path, env=env).returncode == 0
    env["M365_CLIENT_SECRET"] = "not-the-secret"
    for cmd in ("discover", "scan"):
        r = run_cli(cmd, cwd=tmp_path, env=env)
        assert r.returncode == 4, (cmd, r.stdout, r.stderr)
        assert "tenant_id" in r.stderr and "client secret" in r.stderr
        assert "not-the-secret" not in r.stderr + r.stdout


def test_vanished_drive_is_recorded_and_the_rest_complete(tmp_path, graph_sandbox_factory):
    g = graph_sandbox_factory(TenantSpec(**SPEC), tls=True)
    env = write_config(tmp_path, g)
    assert run_cli("discover", cwd=tmp_path, env=env).returncode == 0
    gone = "b!" + "Z" * 64
    with StateStore(tmp_path / "state" / "migration.db") as s:
        s.upsert_drives([Drive(gone, DriveKind.LIBRARY, "Deleted library")])
    r = run_cli("--json", "scan", cwd=tmp_path, env=env)
    assert r.returncode == 3, r.stderr
    out = json.loads(r.stdout)
    assert out["vanished"] == [gone] and out["attention"]
    with StateStore(tmp_path / "state" / "migration.db") as s:
        d = s.drive(gone)
        assert d["scan_state"] == "vanished" and "404" in d["last_error"]
        assert all(x["scan_state"] == "scanned" for x in s.drives() if x["id"] != gone)
        assert_matches_truth(s, g)
    r = run_cli("scan", cwd=tmp_path, env=env)
    assert r.returncode == 3 and "no longer exist" in r.stdout
