"""Version history (issue 24) through the real CLI: Graph sandbox → Nextcloud sandbox.

A copy with `versions = "all"` leaves every file's earlier versions at the target in order, named by the
source's times, byte-identical and labelled; `verify` checks them (exit 3 on a gap); a second run sends
nothing and asks Graph nothing; a kill -9 in the middle of the replay resumes without duplicates.
"""

from __future__ import annotations

import json

from migrate.engine.transfer import expected_mtime
from migrate.engine.versions import label_for
from migrate.sandbox.graph import TenantSpec
from tests.conftest import run_cli
from tests.copy_support import SPEC, db, file_rows, nextcloud_target, setup_migration

VSPEC = {**SPEC, "versions": True}


def versioned(g) -> dict[tuple[str, str], object]:
    """(drive id, item id) → sandbox item, for every source file with earlier versions."""
    return {(d, it.id): it for d, drive in g.tenant.drives.items() for it in drive.items.values()
            if it.kind == "file" and it.old_versions}


def target_versions(nc, user: str, path: str) -> list[tuple[int, int, str | None, bytes]]:
    """(timestamp, size, label, bytes or b'' for the current) of a target file, oldest first."""
    info = nc.file_info(user, path.lstrip("/"))
    fid = info["fileid"]
    with nc.state.lock:
        recs = {ts: dict(r) for ts, r in nc.state.versions.get(fid, {}).items()}
    out = []
    folder = nc.state.data_dir / "versions" / str(fid)
    for ts, rec in recs.items():
        f = folder / ts
        if f.is_file() and int(ts) != info["mtime"]:
            out.append((int(ts), f.stat().st_size, rec.get("label"), f.read_bytes()))
    out.append((info["mtime"], info["size"], recs.get(str(info["mtime"]), {}).get("label"), b""))
    return sorted(out)


def expected(g, it) -> list[tuple[int, int, str, bytes]]:
    out = [(expected_mtime(v.modified), v.content.size, label_for(v.label, g.tenant.identity(v.modified_by)
            ["displayName"], v.modified), v.content.read()) for v in it.old_versions]
    out.append((expected_mtime(it.modified), it.content.size,
                label_for(it.version_label, g.tenant.identity(it.modified_by)["displayName"], it.modified), b""))
    return out


def assert_histories(g, nc, tmp_path) -> int:
    rows = {(r["drive_id"], r["item_id"]): r for r in file_rows(tmp_path)}
    n = 0
    for key, it in versioned(g).items():
        r = rows[key]
        assert r["status"] == "verified", r
        assert target_versions(nc, r["target_user"], r["target_path"]) == expected(g, it), r["path"]
        n += len(it.old_versions)
    return n


def test_copy_carries_every_version_in_order_labelled_and_verify_checks_them(tmp_path, graph_sandbox_factory,
                                                                              nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**VSPEC))
    nc = nextcloud_sandbox
    assert len(versioned(g)) >= 5, "the tenant has files with earlier versions"
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), transfer='versions = "all"')

    r = run_cli("--json", "copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    carried = assert_histories(g, nc, tmp_path)
    with db(tmp_path) as s:
        counts = s.version_counts()
    assert counts["by_status"] == {"carried": carried}
    # Graph was asked for versions only for files whose facts allow history (the eTag counter above 1)
    stats = g.stats()["requests"]
    assert stats.get("versions", 0) == len(versioned(g))
    assert stats.get("version_content", 0) == 0, "the listing's download URLs were used"

    r = run_cli("--json", "verify", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["versions_checked"] == carried + len(versioned(g))

    # a second run sends nothing to the target and asks Graph for no version
    before, graph_before = len(nc.requests), g.stats()["requests"]
    r = run_cli("--json", "copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    writes = [x for x in nc.requests[before:] if x[0] in ("PUT", "PROPPATCH", "MOVE", "POST")]
    assert writes == []
    graph_after = g.stats()["requests"]
    assert [graph_after.get(k, 0) - graph_before.get(k, 0) for k in ("versions", "version_content", "download")] \
        == [0, 0, 0]

    # a version lost at the target is a gap: exit 3, named
    key, it = next(iter(versioned(g).items()))
    row = next(x for x in file_rows(tmp_path) if (x["drive_id"], x["item_id"]) == key)
    fid = nc.file_info(row["target_user"], row["target_path"].lstrip("/"))["fileid"]
    (nc.state.data_dir / "versions" / str(fid) / str(expected_mtime(it.old_versions[0].modified))).unlink()
    r = run_cli("--json", "verify", cwd=tmp_path, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    gaps = json.loads(r.stdout)["gaps"]
    assert [g_["problem"] for g_ in gaps] == [f"version {it.old_versions[0].label} "
                                              f"({expected_mtime(it.old_versions[0].modified)}) is not at the target"]
