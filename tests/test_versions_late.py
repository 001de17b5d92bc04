"""History turned on after the files were copied, through the real CLI: Graph sandbox → Nextcloud sandbox.

Files copied with `versions = "none"` (or a smaller N) get their earlier versions put *under* their current bytes
when versions are turned on (or raised): replayed oldest first, then the current bytes restored server-side from
the copy the first overwrite kept, so the target ends with exactly the source's versions — no stray version of
the current bytes, no byte of the current file sent again, the same file id — and a second run sends nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from migrate.engine.files.versions_late import CHANGED_AT_TARGET
from tests.conftest import run_cli
from tests.copy_support import db, file_rows
from tests.test_versions_e2e import _small_migration, assert_histories, expected, target_versions, versioned

WRITES = ("PUT", "PROPPATCH", "MOVE", "POST", "PATCH")


def _set_versions(tmp_path, value: str) -> None:
    cfg = tmp_path / "m365-migrate.toml"
    text = cfg.read_text()
    assert "versions = " in text
    cfg.write_text("\n".join(f"versions = {value}" if line.startswith("versions = ") else line
                             for line in text.splitlines()) + "\n")


def test_files_copied_before_versions_were_on_get_their_history_underneath(tmp_path, graph_sandbox_factory,
                                                                          nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, _drive, env = _small_migration(tmp_path, graph_sandbox_factory, nc, 'versions = "none"\nworkers = 2')
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    files = versioned(g)
    rows = {(x["drive_id"], x["item_id"]): x for x in file_rows(tmp_path)}
    fids = {k: nc.file_info(rows[k]["target_user"], rows[k]["target_path"].lstrip("/"))["fileid"] for k in files}

    _set_versions(tmp_path, '"all"')
    r = run_cli("plan", cwd=tmp_path, env=env)
    assert f"{len(files)} files were copied before versions were enabled" in r.stdout, r.stdout
    assert "the next `copy` or `sync` puts their history under them" in r.stdout, r.stdout
    late = f"not carried yet: {len(files)} files were copied before versions were enabled (or raised); run `copy`"
    r = run_cli("status", cwd=tmp_path, env=env)
    assert late in r.stdout, r.stdout
    r = run_cli("verify", cwd=tmp_path, env=env)
    assert r.returncode == 0 and late in r.stdout, r.stdout + r.stderr  # counted like files not copied yet
    downloads = g.stats()["requests"].get("download", 0)
    r = run_cli("--json", "copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    n = assert_histories(g, nc, tmp_path)  # exactly the source's versions, times, bytes and labels
    # the earlier versions were downloaded once each; the current bytes were not fetched (nor sent) again
    assert g.stats()["requests"].get("download", 0) == downloads + n
    for k in files:  # the same file (id, shares) — the history went under it
        assert nc.file_info(rows[k]["target_user"], rows[k]["target_path"].lstrip("/"))["fileid"] == fids[k]
    with db(tmp_path) as s:
        assert s.version_counts()["by_status"] == {"carried": n}
    r = run_cli("--json", "verify", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["versions_checked"] == n + len(files)
    r = run_cli("status", cwd=tmp_path, env=env)
    assert f"earlier versions: carried {n}" in r.stdout and "not carried yet" not in r.stdout, r.stdout
    before = len(nc.requests)
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [x for x in nc.requests[before:] if x[0] in WRITES] == []
    r = run_cli("sync", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [x for x in nc.requests[before:] if x[0] in WRITES] == []


def test_a_raised_number_adds_the_older_versions_below_those_already_carried(tmp_path, graph_sandbox_factory,
                                                                            nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, _drive, env = _small_migration(tmp_path, graph_sandbox_factory, nc, "versions = 1", edits=3)
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {(x["drive_id"], x["item_id"]): x for x in file_rows(tmp_path)}
    for k, it in versioned(g).items():  # the newest earlier version only
        assert target_versions(nc, "alice", rows[k]["target_path"]) == expected(g, it)[-2:]
    _set_versions(tmp_path, '"all"')
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_histories(g, nc, tmp_path)
    r = run_cli("verify", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_kill_in_the_middle_resumes_with_the_next_step(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    """A refusal after the first overwrite landed stops the file half-way (an earlier version is current at the
    target); the next run carries on from the target's current time and ends exact."""
    nc = nextcloud_sandbox
    g, drive, env = _small_migration(tmp_path, graph_sandbox_factory, nc, 'versions = "none"\nworkers = 1', edits=3)
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    _set_versions(tmp_path, '"all"')
    first = sorted(versioned(g).values(), key=lambda it: it.id)[0]
    name = g.tenant.drives[drive].path_of(first).rsplit("/", 1)[1]
    nc.fault("PUT", 403, count=1, path_contains=name, after=True)  # the first overwrite lands, its answer is lost
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "version history" in r.stdout, r.stdout
    with db(tmp_path) as s:
        vs = [dict(v) for d in s.drives() for it in s.items_with_versions(d["id"], ("sent", "pending"))
              for v in s.versions_of(d["id"], it["item_id"])]
        assert any(v["current"] and v["status"] == "sent" for v in vs), [(v["current"], v["status"]) for v in vs]
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_histories(g, nc, tmp_path)
    r = run_cli("verify", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_file_changed_at_the_target_is_left_alone_and_listed(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    nc = nextcloud_sandbox
    g, _drive, env = _small_migration(tmp_path, graph_sandbox_factory, nc, 'versions = "none"')
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    k, it = sorted(versioned(g).items())[0]
    row = next(x for x in file_rows(tmp_path) if (x["drive_id"], x["item_id"]) == k)
    real = Path(nc.file_info("alice", row["target_path"].lstrip("/"))["path"])
    real.write_bytes(b"a person's edit")  # as a Nextcloud client's upload would leave it
    _set_versions(tmp_path, '"all"')
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"not carried ({len(it.old_versions)}): {CHANGED_AT_TARGET}" in r.stdout, r.stdout
    assert real.read_bytes() == b"a person's edit"
    assert len(target_versions(nc, "alice", row["target_path"])) == 1, "nothing was put under their edit"


def test_a_sync_edit_before_versions_were_on_keeps_one_version_of_our_copy(tmp_path, graph_sandbox_factory,
                                                                          nextcloud_sandbox):
    """Copied with "none", edited at the source, then versions turned on and `sync` run: the overwrite keeps our
    first copy as a version at the target (Nextcloud does that whatever we ask); the history put under the new
    bytes uses that version in its turn instead of sending it again, so each source version is there once."""
    nc = nextcloud_sandbox
    g, drive, env = _small_migration(tmp_path, graph_sandbox_factory, nc, 'versions = "none"')
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    it = sorted(versioned(g).values(), key=lambda x: x.id)[0]
    g.mutate.modify(drive, it.id, size=it.content.size + 11)
    _set_versions(tmp_path, '"all"')
    downloads = g.stats()["requests"].get("download", 0)
    r = run_cli("sync", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_histories(g, nc, tmp_path)
    # every earlier version of every file once, plus the edit's new bytes, minus our first copy of the edited
    # file, which the target kept as a version when sync overwrote it
    assert g.stats()["requests"].get("download", 0) - downloads == sum(len(x.old_versions)
                                                                       for x in versioned(g).values())
    r = run_cli("verify", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_kill_9_while_history_goes_under_then_rerun_is_exact(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    """kill -9 at random points of the late replay (mid-version, between an overwrite and its label, around the
    final restore); the reruns carry on from the target's current time and end with exactly the source's history,
    `verify` exits 0 and one more run writes nothing."""
    import random

    from migrate.sandbox.graph import TenantSpec
    from tests.copy_support import kill_copy_after, nextcloud_target, setup_migration
    from tests.test_versions_e2e import VSPEC

    g = graph_sandbox_factory(TenantSpec(**{**VSPEC, "files_per_drive": 60}))
    nc = nextcloud_sandbox
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc),
                             transfer='versions = "none"\nworkers = 2')
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    _set_versions(tmp_path, '"all"')
    g.faults.set(route="download", bytes_per_second=200_000)
    rng = random.Random(2024)
    mid = 0
    for _ in range(3):
        kill_copy_after(tmp_path, env, nc, ("MOVE",), rng.uniform(0.05, 0.8))
        with db(tmp_path) as s:  # files left half-way: an earlier version current at the target
            mid += sum(1 for d in s.drives() for it in s.items_with_versions(d["id"], ("sent",))
                       if any(v["current"] and v["status"] == "sent" for v in s.versions_of(d["id"], it["item_id"])))
    assert mid, "no kill landed in the middle of a file's late replay"
    g.faults.clear()
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_histories(g, nc, tmp_path)
    r = run_cli("verify", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    before = len(nc.requests)
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [x for x in nc.requests[before:] if x[0] in WRITES] == []
