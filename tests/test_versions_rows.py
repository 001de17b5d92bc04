"""A mapping row's own `versions` (users.csv / sites.csv) through the real CLI: Graph sandbox → Nextcloud sandbox.

The configuration says "none"; one OneDrive's row says "all". `plan` counts only that drive's versions (and shows
the policy per batch), `copy` carries only its history, `verify` checks it, `sync` turns an edit on that drive into
a labelled version and leaves the other drive's edit unlabelled; `--versions` on the command line wins over the
rows for that run; a bad value is refused naming file, line and column.
"""

from __future__ import annotations

import json
from pathlib import Path

from migrate.engine.files.transfer import expected_mtime
from migrate.sandbox.graph import TenantSpec
from tests.conftest import run_cli
from tests.copy_support import SPEC, db, file_rows, nextcloud_target, setup_migration
from tests.test_versions_e2e import expected, target_versions


def _tenant(graph_sandbox_factory):
    """Two OneDrives of a few files, every file edited twice at the source (two earlier versions each)."""
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "users": 2, "files_per_drive": 4, "awkward_names": False}))
    for drive, items in g.truth().items():
        for t in items:
            if not t["is_folder"]:
                for n in range(2):
                    g.mutate.modify(drive, t["id"], size=t["size"] + 100 + n)
    return g


def _rows(tmp_path: Path, upns: list[str], versions: dict[str, str], batches: dict[str, str] | None = None) -> None:
    users = dict(zip(upns, ("alice", "bob"), strict=False))
    batches = batches or {}
    (tmp_path / "mappings" / "users.csv").write_text(
        "source_upn,target_user,batch,versions\n"
        + "".join(f"{u},{t},{batches.get(t, 'wave1')},{versions.get(t, '')}\n" for u, t in users.items()))


def _plan(tmp_path, env, *args) -> dict:
    r = run_cli("--json", "plan", *args, cwd=tmp_path, env=env)
    assert r.returncode in (0, 3), r.stdout + r.stderr
    folder = Path(json.loads(r.stdout)["reports"])
    return {**json.loads((folder / "plan.json").read_text()), "md": (folder / "plan.md").read_text()}




def test_a_row_with_its_own_versions_is_followed_by_plan_copy_verify_and_sync(tmp_path, graph_sandbox_factory,
                                                                              nextcloud_sandbox):
    g = _tenant(graph_sandbox_factory)
    nc = nextcloud_sandbox
    env, upns = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), transfer='versions = "none"')
    _rows(tmp_path, upns, {"alice": "all"}, {"alice": "records", "bob": "staff"})
    with db(tmp_path) as s:
        owner = {d["id"]: d["owner_upn"] for d in s.drives()}
    alice_drive = next(d for d, u in owner.items() if u == upns[0])
    alice_files = [it for it in g.tenant.drives[alice_drive].items.values() if it.kind == "file" and it.old_versions]
    assert alice_files

    doc = _plan(tmp_path, env)
    by_batch = {b["batch"]: b for b in doc["versions"]["batches"]}
    n = sum(len(it.old_versions) for it in alice_files)
    assert by_batch["records"] == {"batch": "records", "policy": "all", "files_asked": len(alice_files),
                                   "versions": n, "bytes": sum(len(it.old_versions) * it.content.size
                                                               for it in alice_files),
                                   "ru": 2 * len(alice_files) + n}
    assert by_batch["staff"]["policy"] == "none" and by_batch["staff"]["versions"] == 0
    drives = {d["drive_id"]: d for d in doc["drives"]}
    assert drives[alice_drive]["versions"] == "all" and drives[alice_drive]["versions_from"] == "users.csv:2"
    assert "1 drive(s) follow the versions column of their mapping row" in doc["md"]
    assert "| records | all |" in doc["md"], doc["md"]
    r = run_cli("doctor", cwd=tmp_path, env=env)  # the quota the row's versions will use, not "none"
    assert "1 drive(s) follow the versions column of their mapping row" in r.stdout, r.stdout
    assert "versions count against the owners' quota: alice up to" in r.stdout and "bob up to" not in r.stdout

    r = run_cli("--json", "copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {(x["drive_id"], x["item_id"]): x for x in file_rows(tmp_path)}
    for (d, i), row in rows.items():
        it = g.tenant.drives[d].items[i]
        got = target_versions(nc, row["target_user"], row["target_path"])
        if d == alice_drive and it.old_versions:
            assert got == expected(g, it), row["path"]
        else:  # the configured "none": the current bytes only, no earlier version at the target
            assert [v[0] for v in got] == [expected_mtime(it.modified)], row["path"]
    with db(tmp_path) as s:
        assert s.version_counts()["by_status"] == {"carried": n}
    r = run_cli("--json", "verify", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["versions_checked"] == n + len(alice_files)

    # sync: an edit on alice's drive becomes one more labelled version; bob's is carried as the current bytes
    bob_drive = next(d for d in owner if d != alice_drive and owner[d] == upns[1])
    a = alice_files[0]
    b = next(it for it in g.tenant.drives[bob_drive].items.values() if it.kind == "file" and it.old_versions)
    g.mutate.modify(alice_drive, a.id, size=a.content.size + 9)
    g.mutate.modify(bob_drive, b.id, size=b.content.size + 9)
    r = run_cli("sync", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {x["item_id"]: x for x in file_rows(tmp_path)}
    assert target_versions(nc, "alice", rows[a.id]["target_path"]) == expected(g, a)
    assert target_versions(nc, "bob", rows[b.id]["target_path"])[-1][2] is None, "bob's row follows \"none\""
    r = run_cli("verify", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_versions_flag_wins_over_the_rows_for_that_run(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g = _tenant(graph_sandbox_factory)
    nc = nextcloud_sandbox
    env, upns = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), transfer='versions = "all"')
    _rows(tmp_path, upns, {"alice": "none", "bob": "1"})
    doc = _plan(tmp_path, env)
    assert [(b["batch"], b["policy"]) for b in doc["versions"]["batches"]] == [("wave1", "none, 1")]
    with_flag = _plan(tmp_path, env, "--versions", "all")
    assert with_flag["versions"]["batches"][0]["policy"] == "all"
    assert with_flag["versions"]["totals"]["versions"] > doc["versions"]["totals"]["versions"] > 0
    before = len(nc.requests)
    r = run_cli("copy", "--versions", "none", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not [x for x in nc.requests[before:] if x[0] == "PROPPATCH"], "no version was labelled"
    with db(tmp_path) as s:
        assert s.version_counts()["by_status"] == {}


def test_a_bad_versions_value_names_file_line_and_column(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g = _tenant(graph_sandbox_factory)
    env, upns = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nextcloud_sandbox))
    _rows(tmp_path, upns, {"bob": "most"})
    r = run_cli("plan", cwd=tmp_path, env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "users.csv:3:" in out and "versions: expected" in out and "'most'" in out, out
    (tmp_path / "mappings" / "sites.csv").write_text("source,target,batch,versions\nb!abcdefghijkl,/x,w,501\n")
    _rows(tmp_path, upns, {})
    r = run_cli("copy", cwd=tmp_path, env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 2 and "sites.csv:2:" in out and "'501'" in out, out


def test_a_row_turned_to_all_after_the_copy_gets_its_history_underneath(tmp_path, graph_sandbox_factory,
                                                                        nextcloud_sandbox):
    """status and verify follow the row too: only that drive's files are counted as waiting for their history,
    and the next copy puts it under them (engine.versions_late)."""
    from tests.test_versions_e2e import versioned

    g = _tenant(graph_sandbox_factory)
    nc = nextcloud_sandbox
    env, upns = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), transfer='versions = "none"')
    _rows(tmp_path, upns, {})
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    with db(tmp_path) as s:
        alice_drive = next(d["id"] for d in s.drives() if d["owner_upn"] == upns[0])
    alice = {k: it for k, it in versioned(g).items() if k[0] == alice_drive}
    _rows(tmp_path, upns, {"alice": "all"})
    late = f"not carried yet: {len(alice)} files were copied before versions were enabled"
    for cmd in ("status", "verify"):
        r = run_cli(cmd, cwd=tmp_path, env=env)
        assert r.returncode == 0 and late in r.stdout, r.stdout + r.stderr
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {(x["drive_id"], x["item_id"]): x for x in file_rows(tmp_path)}
    for k, it in versioned(g).items():
        got = target_versions(nc, rows[k]["target_user"], rows[k]["target_path"])
        assert got == (expected(g, it) if k in alice else [(expected_mtime(it.modified), it.content.size, None,
                                                             b"")]), rows[k]["path"]
    r = run_cli("verify", cwd=tmp_path, env=env)
    assert r.returncode == 0 and "not carried yet" not in r.stdout, r.stdout + r.stderr
