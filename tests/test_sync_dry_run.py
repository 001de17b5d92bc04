"""`sync --dry-run` through the CLI: it writes nothing at all, not to the target and not to the state database, so
dry runs can be repeated and the real run afterwards finds and lists exactly the same changes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from migrate.sandbox.graph import TenantSpec
from tests.conftest import run_cli
from tests.copy_support import db
from tests.sync_support import assert_target_equals_source, copied, loose, sync, verify_ok
from tests.test_share import SPEC as SHARE_SPEC
from tests.test_share import persons_share_before_share


def _dump(tmp_path: Path) -> list[str]:
    """Every row of the state database, as SQL."""
    (path,) = [p for p in tmp_path.rglob("*.db") if "reports" not in p.parts]
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def _kinds(out: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((c["kind"], c["item_id"]) for c in out["changes"])


def test_a_dry_run_leaves_the_state_database_as_it_was_and_the_real_run_lists_the_same(tmp_path,
                                                                                      graph_sandbox_factory,
                                                                                      nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, env, drive = copied(tmp_path, graph_sandbox_factory, nc)
    a, b, c, d = loose(g, drive)[:4]
    g.mutate.modify(drive, a["id"], size=a["size"] + 3)
    g.mutate.rename(drive, b["id"], "renamed.txt")
    g.mutate.delete(drive, c["id"])
    g.mutate.add_file(drive, "/", "brand-new.txt", 77)
    status_before = run_cli("status", cwd=tmp_path, env=env).stdout
    before = _dump(tmp_path)
    writes = len(nc.requests)
    first = sync(tmp_path, env, "--dry-run")
    assert _dump(tmp_path) == before
    second = sync(tmp_path, env, "--dry-run")
    assert _dump(tmp_path) == before
    assert not [x for x in nc.requests[writes:] if x[0] not in ("PROPFIND", "GET", "OPTIONS", "HEAD")]
    assert run_cli("status", cwd=tmp_path, env=env).stdout == status_before
    assert _kinds(first) == _kinds(second) and first["counts"] == second["counts"]
    assert {k for k, _ in _kinds(first)} >= {"edit", "move", "delete", "new-file"}, first["counts"]
    real = sync(tmp_path, env)
    assert _kinds(real) == _kinds(first) and real["counts"] == first["counts"]
    assert real["applied"]["deleted"] == 1 and real["applied"]["moved_files"] == 1
    assert_target_equals_source(g, nc, drive)
    verify_ok(tmp_path, env)
    assert d


def test_dry_runs_keep_listing_a_persons_share_left_and_announce_no_update_for_a_renamed_shared_file(
        tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    """A person's share whose grant is gone is listed by every dry run and by the real run (a dry run used to
    forget it in the state database); a shared file renamed at the source is no share "update" (the share
    follows the file at the target) in the dry run, and the real run agrees."""
    g = graph_sandbox_factory(TenantSpec(**SHARE_SPEC))
    nc = nextcloud_sandbox
    env, person, renamed, person_share = persons_share_before_share(tmp_path, g, nc)
    g.mutate.remove_permission(person["drive_id"], person["item_id"], json.loads(person["grants"])[0]["perm_id"])
    g.mutate.rename(renamed["drive_id"], renamed["item_id"], "renamed-shared.txt")
    before = _dump(tmp_path)
    for _ in range(2):
        dry = sync(tmp_path, env, "--dry-run")["shares"]
        assert [x["share_id"] for x in dry["left"]] == [person_share], dry
        assert dry["would_update"] == [] and dry["would_create"] == [], dry
        assert _dump(tmp_path) == before
    real = sync(tmp_path, env)
    assert [x["share_id"] for x in real["shares"]["left"]] == [person_share], real["shares"]
    assert real["shares"]["updated"] == 0 and real["shares"]["created"] == 0, real["shares"]
    assert real["counts"]["move"] == 1
    with db(tmp_path) as s:
        share_id = s.query_one("SELECT share_id FROM planned_shares WHERE id = ?", (renamed["id"],))["share_id"]
    assert share_id in {str(x["id"]) for x in nc.shares}  # the same share, following its file
