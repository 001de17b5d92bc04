"""Version history (issue 24) through the real CLI: Graph sandbox → Nextcloud sandbox.

A copy with `versions = "all"` leaves every file's earlier versions at the target in order, named by the
source's times, byte-identical and labelled; `verify` checks them (exit 3 on a gap); a second run sends
nothing and asks Graph nothing; a kill -9 in the middle of the replay resumes without duplicates.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from migrate.engine.files.transfer import expected_mtime
from migrate.engine.files.versions import EMPTY, SUPERSEDED, label_for
from migrate.sandbox.graph import TenantSpec
from tests.conftest import run_cli
from tests.copy_support import SPEC, db, file_rows, kill_copy_after, nextcloud_target, setup_migration

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


def test_kill_9_during_the_replay_then_rerun_leaves_exactly_the_source_history(tmp_path, graph_sandbox_factory,
                                                                                nextcloud_sandbox):
    """The acceptance journey on the sandbox: kills land between a version's upload and its label, mid-body, and
    between files; the rerun resumes with the next version, and the target ends with exactly the source's
    versions (no duplicate, none out of order), `verify` exits 0, and a third run sends nothing."""
    g = graph_sandbox_factory(TenantSpec(**{**VSPEC, "files_per_drive": 60}))
    nc = nextcloud_sandbox
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc),
                             transfer='versions = "all"\nworkers = 2')
    g.faults.set(route="download", bytes_per_second=200_000)
    rng = random.Random(24)
    mid = 0
    for _ in range(3):
        kill_copy_after(tmp_path, env, nc, ("PROPPATCH",), rng.uniform(0.05, 0.8))
        with db(tmp_path) as s:
            mid += sum(1 for d in s.drives() for it in s.items_with_versions(d["id"], ("pending", "sent"))
                       if any(v["status"] == "carried" for v in s.versions_of(d["id"], it["item_id"])))
    assert mid, "no kill landed in the middle of a file's history"
    g.faults.clear()
    r = run_cli("--json", "copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_histories(g, nc, tmp_path)
    r = run_cli("verify", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    before = len(nc.requests)
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [x for x in nc.requests[before:] if x[0] in ("PUT", "PROPPATCH", "MOVE", "POST")] == []


def _small_migration(tmp_path, graph_sandbox_factory, nc, transfer: str, edits: int = 2, same_size: bool = False):
    """`_small_tenant_all_edited`, discovered and scanned, its OneDrive mapped to alice; returns (g, drive, env)."""
    g, drive = _small_tenant_all_edited(graph_sandbox_factory, edits, same_size)
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), targets=("alice",),
                             transfer=transfer)
    return g, drive, env


def _small_tenant_all_edited(graph_sandbox_factory, edits: int = 2, same_size: bool = False):
    """One OneDrive of a few files, each edited `edits` times at the source (so each has earlier versions)."""
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "users": 1, "files_per_drive": 4, "awkward_names": False}))
    (drive,) = g.truth()
    for t in g.truth()[drive]:
        if not t["is_folder"]:
            for n in range(edits):
                g.mutate.modify(drive, t["id"], size=t["size"] if same_size else t["size"] + 100 + n)
    return g, drive


def test_a_version_the_source_no_longer_has_is_listed_and_the_file_still_copied(tmp_path, graph_sandbox_factory,
                                                                                nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, drive, env = _small_migration(tmp_path, graph_sandbox_factory, nc, 'versions = "all"\nworkers = 1\nbulk_upload = false')
    # the first bytes read are the first file's oldest version (workers = 1): Graph no longer has them
    g.faults.set(route="download", status=404, count=1)
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "missing at the source (1)" in r.stdout and "HTTP 404" in r.stdout
    with db(tmp_path) as s:
        counts = s.version_counts()
        assert counts["by_status"]["missing"] == 1 and set(counts["by_status"]) == {"carried", "missing"}
        rows = [r_ for d in s.drives() for r_ in s.iter_items(d["id"], files_only=True)]
    assert all(x["status"] == "verified" for x in rows)
    r = run_cli("status", cwd=tmp_path, env=env)
    assert "missing at the source (1)" in r.stdout, r.stdout
    r = run_cli("verify", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_expired_listing_url_falls_back_to_the_version_content_route(tmp_path, graph_sandbox_factory):
    """graph-api.md §5.1/§7: a downloadUrl used after its expiry answers 401; `…/versions/{id}/content` gives a
    fresh one (302). The current version's content is refused there by design."""
    from migrate.backends.graph import open_source
    from migrate.backends.graph.client import SourceRefused
    from tests.inventory_support import settings_for, write_config

    g, drive = _small_tenant_all_edited(graph_sandbox_factory)
    g.set_option(download_url_ttl=1)
    it = next(i for i in g.tenant.drives[drive].items.values() if i.kind == "file" and i.old_versions)
    env = write_config(tmp_path, g)
    with open_source(settings_for(tmp_path, env), env=env) as src:
        listing = src.list_versions(drive, it.id)
        assert [v.id for v in listing] == ["3.0", "2.0", "1.0"]
        assert [v.size for v in listing] == [it.content.size] + [v.content.size for v in reversed(it.old_versions)]
        time.sleep(1.5)  # the listing's URLs have expired
        before = g.stats()["requests"].get("version_content", 0)
        with src.open_version(drive, it.id, listing[2]) as chunks:
            assert b"".join(chunks) == it.old_versions[0].content.read()
        assert g.stats()["requests"].get("version_content", 0) == before + 1
        cur = type(listing[0])(listing[0].id, listing[0].mtime, listing[0].size)  # no URL: asks …/content
        try:
            with src.open_version(drive, it.id, cur) as chunks:
                b"".join(chunks)
            raise AssertionError("the current version's content was served")
        except SourceRefused as exc:
            assert "current version" in str(exc)


def test_sync_carries_a_source_edit_as_one_new_labelled_version_over_ours(tmp_path, graph_sandbox_factory,
                                                                          nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, drive, env = _small_migration(tmp_path, graph_sandbox_factory, nc, 'versions = "all"', edits=1)
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_histories(g, nc, tmp_path)
    once, twice = sorted(versioned(g).values(), key=lambda it: it.id)[:2]
    g.mutate.modify(drive, once.id, size=once.content.size + 3)
    g.mutate.modify(drive, twice.id, size=twice.content.size + 5)
    skipped = twice.version_label
    g.mutate.modify(drive, twice.id, size=twice.content.size + 7)  # edited twice between two passes
    r = run_cli("sync", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {r_["item_id"]: r_ for r_ in file_rows(tmp_path)}
    assert target_versions(nc, "alice", rows[once.id]["target_path"]) == expected(g, once)
    want = [v for v in expected(g, twice) if v[2].split(",")[0] != f"Microsoft 365 version {skipped}"]
    assert target_versions(nc, "alice", rows[twice.id]["target_path"]) == want
    with db(tmp_path) as s:
        assert s.version_counts()["not_carried"] == {SUPERSEDED: 1}
    r = run_cli("verify", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_plan_and_doctor_say_what_carrying_versions_costs(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    """Per batch: files asked (only those whose eTag counter allows history), earlier versions, bytes and RU
    (2 per listing + 1 per version downloaded from the listing's URL); `--versions N` caps it; doctor names the
    quota each account's versions will use."""
    g = graph_sandbox_factory(TenantSpec(**VSPEC))
    nc = nextcloud_sandbox
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), transfer='versions = "all"')
    its = versioned(g).values()
    n = sum(len(it.old_versions) for it in its)
    size = sum(len(it.old_versions) * it.content.size for it in its)
    r = run_cli("--json", "plan", cwd=tmp_path, env=env)
    assert r.returncode in (0, 3), r.stdout + r.stderr
    doc = json.loads((Path(json.loads(r.stdout)["reports"]) / "plan.json").read_text())
    assert doc["versions"]["batches"] == [{"batch": "wave1", "files_asked": len(its), "versions": n,
                                           "bytes": size, "ru": 2 * len(its) + n}]
    assert "## Version history" in (Path(json.loads(r.stdout)["reports"]) / "plan.md").read_text()
    r = run_cli("--json", "plan", "--versions", "1", cwd=tmp_path, env=env)
    doc = json.loads((Path(json.loads(r.stdout)["reports"]) / "plan.json").read_text())
    assert doc["versions"]["totals"]["versions"] == len(its)
    r = run_cli("plan", "--versions", "none", cwd=tmp_path, env=env)
    assert 'version history: not carried ([transfer] versions = "none")' in r.stdout
    r = run_cli("doctor", cwd=tmp_path, env=env)
    assert "versions count against the owners' quota: alice up to" in r.stdout, r.stdout
    r = run_cli("plan", "--versions", "most", cwd=tmp_path, env=env)
    assert r.returncode == 2 and "option transfer.versions" in r.stdout + r.stderr and "none" in r.stdout + r.stderr


def test_a_library_in_a_team_folder_gets_its_history_too(tmp_path, graph_sandbox_factory):
    """Team folders keep versions in their own backend (§9.2 point 6): the same replay, names and labels."""
    from migrate.sandbox.nextcloud import NextcloudSandbox

    spec = {**SPEC, "users": 2, "teams": 1, "files_per_drive": 30, "versions": True}
    g = graph_sandbox_factory(TenantSpec(**spec))
    with NextcloudSandbox(users=["alice", "bob"], groups={"staff": ["alice", "bob"]}) as nc:
        nc.add_group("m365-migration", ["admin"])
        fid = nc.create_team_folder("Projects", groups={"staff": 31, "m365-migration": 31})
        env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), targets=(),
                                 transfer='versions = "all"')
        with db(tmp_path) as s:
            lib = next(d for d in s.drives() if d["kind"] != "onedrive")
        (tmp_path / "mappings" / "sites.csv").write_text(f"source,target,batch\n{lib['id']},groupfolder:Projects,w\n")
        r = run_cli("copy", cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        its = {k: v for k, v in versioned(g).items() if k[0] == lib["id"]}
        assert its, "the library has files with earlier versions"
        rows = {(x["drive_id"], x["item_id"]): x for x in file_rows(tmp_path)}
        for key, it in its.items():
            row = rows[key]
            assert row["target_path"].startswith("/Projects/") and row["target_user"] == "admin"
            assert target_versions(nc, "admin", row["target_path"]) == expected(g, it)
            assert (nc.data_dir / "__groupfolders" / str(fid) / "files" / row["target_path"][10:]).is_file()
        r = run_cli("verify", cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("same_size", [False, True])
def test_a_version_that_landed_unrecorded_is_ours_on_the_next_run(tmp_path, graph_sandbox_factory,
                                                                  nextcloud_sandbox, same_size):
    """The server stored a version but the answer was lost (here a 403 after the write): the plan refresh and the
    adoption check of the next run must recognise the bytes as ours (size and SHA1 recorded before they left),
    not as a conflict, also when every version has the current one's size."""
    nc = nextcloud_sandbox
    g, drive, env = _small_migration(tmp_path, graph_sandbox_factory, nc,
                                     'versions = "all"\nworkers = 1\nbulk_upload = false', same_size=same_size)
    first = sorted(versioned(g).values(), key=lambda it: it.id)[0]
    name = g.tenant.drives[drive].path_of(first).rsplit("/", 1)[1]
    nc.fault("PUT", 403, count=1, path_contains=name, after=True)
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_histories(g, nc, tmp_path)


def test_files_copied_before_versions_were_asked_for_are_counted_not_replayed(tmp_path, graph_sandbox_factory,
                                                                               nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, _drive, env = _small_migration(tmp_path, graph_sandbox_factory, nc, 'versions = "none"')
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    before = len(nc.requests)
    r = run_cli("copy", "--versions", "all", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [x for x in nc.requests[before:] if x[0] in ("PUT", "PROPPATCH")] == [], "no history after the fact"
    r = run_cli("plan", "--versions", "all", cwd=tmp_path, env=env)
    assert f"{len(versioned(g))} files were copied before versions were asked for" in r.stdout, r.stdout


def test_a_large_version_streams_in_chunks_and_is_carried_whole(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    """A version above the small-file limit is never held whole: it streams from Graph into a chunked upload."""
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "users": 1, "files_per_drive": 1, "awkward_names": False}))
    (drive,) = g.truth()
    big = g.mutate.add_file(drive, "root", "big.bin", size=11 * 1024 * 1024 + 5)
    g.mutate.modify(drive, big["id"], size=6 * 1024 * 1024 + 7)
    nc = nextcloud_sandbox
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), targets=("alice",),
                             transfer='versions = "all"\nsmall_file_limit = "1MiB"\nchunk_size = "5MiB"')
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_histories(g, nc, tmp_path)
    assert any(m == "MOVE" and "/uploads/" in p for m, p, _s in nc.requests), "the large version went in chunks"
    r = run_cli("verify", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_empty_and_identical_versions_go_as_nextcloud_keeps_them(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    """A file created empty, then saved twice with the same bytes (a change of properties), then edited: the empty
    version is not sent (Nextcloud keeps no version of an empty file) and is listed with that reason; the two
    identical versions are carried as two versions, as Nextcloud keeps one per upload."""
    from migrate.sandbox.graph.tenant import Version

    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "users": 1, "files_per_drive": 3, "awkward_names": False}))
    (drive,) = g.truth()
    d = g.tenant.drives[drive]
    it = next(i for i in d.items.values() if i.kind == "file" and i.content is not None and i.content.size)
    t0, same = it.modified - 4 * 86400, d.new_content(300)
    it.old_versions = [Version("1.0", d.new_content(0), t0, it.modified_by),
                       Version("2.0", same, t0 + 86400, it.modified_by),
                       Version("3.0", same, t0 + 2 * 86400, it.modified_by)]
    it.etag_n = it.ctag_n = 4
    nc = nextcloud_sandbox
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), targets=("alice",),
                             transfer='versions = "all"')
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"not carried (1): {EMPTY}" in r.stdout, r.stdout
    row = next(x for x in file_rows(tmp_path) if x["item_id"] == it.id)
    want = [v for v in expected(g, it) if v[1] > 0]
    assert target_versions(nc, "alice", row["target_path"]) == want
    assert want[0][3] == want[1][3] and len(want) == 3
    r = run_cli("verify", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
