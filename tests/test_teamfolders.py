"""Libraries mapped to `groupfolder:NAME` land in that team folder or stop before any write (issue 16).

Real CLI in a subprocess against the Graph sandbox and the Nextcloud sandbox, whose team folders are mounted
only for members of their groups: a non-member writing `/<NAME>/x` gets a plain folder in its own home.
"""

from __future__ import annotations

import json
import shutil
import unicodedata
from pathlib import Path

import pytest

from migrate.sandbox.graph import TenantSpec
from migrate.sandbox.nextcloud import NextcloudSandbox
from tests.conftest import run_cli
from tests.copy_support import db, nextcloud_target, setup_migration
from tests.fixtures_nextcloud import dav_session, propfind

# One Team site with one library, no OneDrive mapped: only the library is copied.
SPEC = dict(seed=5, users=2, sites=0, teams=1, files_per_drive=12, max_depth=2, no_mysite_users=0,
            malware_files=0, onenote=False, shares=False, versions=False)
MIGRATION_GROUP = "m365-migration"


@pytest.fixture
def nc():
    with NextcloudSandbox(users=["alice", "bob", "carol"],
                          groups={"staff": ["alice", "bob"], "nc-owners": ["carol"], "nc-members": ["alice"],
                                  "nc-visitors": ["bob"]}) as server:
        yield server


def _setup(tmp_path: Path, graph_sandbox_factory, nc, *, extra: str = ""):
    g = graph_sandbox_factory(TenantSpec(**SPEC))
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc) + extra, targets=())
    with db(tmp_path) as s:
        lib = next(d for d in s.drives() if d["kind"] != "onedrive")
    site = g.tenant.sites[0].display_name
    m = tmp_path / "mappings"
    (m / "sites.csv").write_text(f"source,target,batch\n{lib['id']},groupfolder:Projects,wave1\n")
    (m / "groups.csv").write_text(f"source_group,target_group\n{site} Owners,nc-owners\n{site} Members,nc-members\n"
                                  f"{site} Visitors,nc-visitors\n")
    return g, env, lib


def _writes(nc) -> list[tuple[str, str, int]]:
    return [r for r in nc.requests if r[0] in ("PUT", "MKCOL", "MOVE", "POST", "DELETE", "PROPPATCH")]


def _admin_home_has(nc, name: str) -> bool:
    return (nc.data_dir / "users" / "admin" / "files" / name).exists()


def test_missing_team_folder_stops_plan_and_copy(tmp_path: Path, graph_sandbox_factory, nc) -> None:
    _, env, _ = _setup(tmp_path, graph_sandbox_factory, nc)
    r = run_cli("plan", cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "sites.csv:2: groupfolder:Projects: the team folder 'Projects' does not exist" in r.stderr
    assert "occ groupfolders:create Projects" in r.stderr and f"occ group:adduser {MIGRATION_GROUP} admin" in r.stderr
    assert "create_team_folders = true" in r.stderr and "Traceback" not in r.stderr
    before = len(nc.requests)
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert not _writes(nc) and not _admin_home_has(nc, "Projects"), nc.requests[before:]
    r = run_cli("doctor", cwd=tmp_path, env=env)
    assert "[FAIL] team folders: sites.csv:2: groupfolder:Projects" in r.stdout


def test_writer_not_a_member_stops_before_any_write(tmp_path: Path, graph_sandbox_factory, nc) -> None:
    """The issue's case: the folder exists for `staff`, the service account (an admin) is not in it."""
    _, env, _ = _setup(tmp_path, graph_sandbox_factory, nc)
    fid = nc.create_team_folder("Projects", groups={"staff": 31})
    r = run_cli("plan", cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert (f"sites.csv:2: groupfolder:Projects: the team folder 'Projects' (id {fid}, groups: staff: read write "
            "share delete) is not mounted for the writing account 'admin'") in r.stderr
    assert f"occ groupfolders:group {fid} {MIGRATION_GROUP} read write share delete" in r.stderr
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert not _writes(nc) and not _admin_home_has(nc, "Projects")
    assert not any((nc.data_dir / "__groupfolders" / str(fid) / "files").iterdir())


def test_writer_read_only_stops(tmp_path: Path, graph_sandbox_factory, nc) -> None:
    _, env, _ = _setup(tmp_path, graph_sandbox_factory, nc)
    nc.add_group(MIGRATION_GROUP, ["admin"])
    nc.create_team_folder("Projects", groups={"staff": 31, MIGRATION_GROUP: 1})
    r = run_cli("plan", cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "'admin' sees the team folder 'Projects'" in r.stderr and "read-only" in r.stderr
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 2 and not _writes(nc)


def test_prepared_by_admin_lands_in_team_folder(tmp_path: Path, graph_sandbox_factory, nc) -> None:
    _, env, lib = _setup(tmp_path, graph_sandbox_factory, nc)
    nc.add_group(MIGRATION_GROUP, ["admin"])
    fid = nc.create_team_folder("Projects", groups={"staff": 31, MIGRATION_GROUP: 31})
    r = run_cli("plan", cwd=tmp_path, env=env)
    assert r.returncode in (0, 3), r.stdout + r.stderr
    assert "team folder Projects (sites.csv:2): admin sees team folder (writable); copy will: none" in r.stdout
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    _assert_in_team_folder(tmp_path, nc, fid, lib["id"], reader="alice")
    assert not _admin_home_has(nc, "Projects")


def _assert_in_team_folder(tmp_path: Path, nc, fid: int, drive_id: str, *, reader: str) -> None:
    with db(tmp_path) as s:
        rows = [r for r in s.iter_items(drive_id, files_only=True) if r["target_path"]]
    assert rows and all(r["status"] == "verified" for r in rows)
    root = nc.data_dir / "__groupfolders" / str(fid) / "files"
    for r in rows:
        assert r["target_path"].startswith("/Projects/")
        assert (root / r["target_path"][len("/Projects/"):]).is_file(), r["target_path"]
    # a member of the folder's groups sees the files through WebDAV
    seen, resp = propfind(dav_session(nc, reader), nc.dav_url(reader, "Projects"), depth="infinity")
    assert resp.status_code == 207
    files = {h.split(f"/files/{reader}", 1)[1] for h in seen if not h.endswith("/")}
    assert {unicodedata.normalize("NFC", r["target_path"]) for r in rows} <= files


def test_create_team_folders_creates_grants_and_rerun_changes_nothing(tmp_path: Path, graph_sandbox_factory,
                                                                       nc) -> None:
    _, env, lib = _setup(tmp_path, graph_sandbox_factory, nc, extra="create_team_folders = true\n")
    r = run_cli("plan", cwd=tmp_path, env=env)
    assert r.returncode in (0, 3), r.stdout + r.stderr
    assert "copy will: create team folder 'Projects'; give 'admin' access through group 'm365-migration'" in r.stdout
    assert "give group 'nc-owners' read write share delete and ACL management" in r.stdout
    assert "give group 'nc-members' read write delete" in r.stdout and "give group 'nc-visitors' read" in r.stdout
    assert not _writes(nc), "plan wrote to the target"
    plan = json.loads((tmp_path / "state" / "reports" / "plan-latest" / "team_folders.json").read_text())
    assert plan[0]["action"] == "create" and plan[0]["team_folder"] == "Projects"

    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    folder = next(f for f in nc.state.folders.values() if f.mount_point == "Projects")
    assert folder.groups == {MIGRATION_GROUP: 31, "nc-owners": 31, "nc-members": 15, "nc-visitors": 1}
    assert {"type": "group", "id": "nc-owners"} in folder.manage
    assert nc.state.user_groups("admin") == ["admin", MIGRATION_GROUP]  # never a business group
    _assert_in_team_folder(tmp_path, nc, folder.id, lib["id"], reader="bob")  # bob: visitors, read only
    assert not _admin_home_has(nc, "Projects")
    with db(tmp_path) as s:
        actions = [a["action"] for a in s.iter_audit()]
    assert {"group-create", "group-add-member", "teamfolder-create", "teamfolder-grant",
            "teamfolder-acl-manager"} <= set(actions)

    before = len(nc.requests)
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not [x for x in nc.requests[before:] if x[0] not in ("PROPFIND", "GET", "OPTIONS")], nc.requests[before:]
    assert len(nc.state.folders) == 1
    r = run_cli("verify", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_lookalike_folder_is_a_gap_and_copy_stops_the_drive(tmp_path: Path, graph_sandbox_factory, nc) -> None:
    """After the writer loses the mount, the same bytes in a look-alike `/Projects` of its home are not verified."""
    _, env, lib = _setup(tmp_path, graph_sandbox_factory, nc)
    nc.add_group(MIGRATION_GROUP, ["admin"])
    fid = nc.create_team_folder("Projects", groups={"staff": 31, MIGRATION_GROUP: 31})
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    # the admin takes the migration group off the folder; a look-alike with the very same files sits in the home
    del nc.state.folders[fid].groups[MIGRATION_GROUP]
    shutil.copytree(nc.data_dir / "__groupfolders" / str(fid) / "files",
                    nc.data_dir / "users" / "admin" / "files" / "Projects")
    r = run_cli("verify", cwd=tmp_path, env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "outside its team folder: team folder 'Projects' is not mounted for 'admin'" in r.stdout
    assert "checked" in r.stdout and " 0 whole" in r.stdout
    before = len(nc.requests)
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stdout + r.stderr  # the refreshed plan stops it before any write
    assert not [x for x in nc.requests[before:] if x[0] in ("PUT", "MKCOL", "MOVE", "POST")]


def test_copy_guard_stops_a_drive_whose_mount_is_gone(tmp_path: Path, nc, store) -> None:
    """Defence in depth: the mount vanishes after the plan; copy_drives stops that drive before any write, and the
    same `confirm_mount` is what `sync` calls before its first write."""
    from migrate.backends import open_target
    from migrate.engine.files.pool import copy_drives
    from migrate.engine.files.teamfolders import TeamFolderNotMounted, confirm_mount
    from migrate.models import Drive, DriveKind

    nc.add_group(MIGRATION_GROUP, ["admin"])
    fid = nc.create_team_folder("Projects", groups={MIGRATION_GROUP: 31})
    store.upsert_drives([Drive("b!lib00001", DriveKind.LIBRARY, "Documents")])
    store.upsert_items("b!lib00001", [dict(item_id="r", parent_id=None, name="root", path="", is_folder=1),
                                      dict(item_id="d", parent_id="r", name="sub", path="/sub", is_folder=1),
                                      dict(item_id="f", parent_id="d", name="a.txt", path="/sub/a.txt", size=1)])
    store.set_targets([("admin", "/Projects/sub", store.item("b!lib00001", "d")["id"]),
                       ("admin", "/Projects/sub/a.txt", store.item("b!lib00001", "f")["id"])])
    store.update_drive("b!lib00001", target_user="admin", target_root="/Projects", target_mount="Projects")
    target = open_target("nextcloud", nc.url, {**nc.app_passwords, "admin": nc.admin[1]}, service_account="admin")
    try:
        confirm_mount(target, store.drive("b!lib00001"))  # mounted and writable: passes
        del nc.state.folders[fid].groups[MIGRATION_GROUP]
        with pytest.raises(TeamFolderNotMounted, match="not mounted for 'admin'"):
            confirm_mount(target, store.drive("b!lib00001"))
        before = len(nc.requests)
        with pytest.raises(TeamFolderNotMounted) as stopped:
            copy_drives(store, object(), target, [store.drive("b!lib00001")], workers=1,  # type: ignore[arg-type]
                        guard=lambda d: confirm_mount(target, d))
    finally:
        target.close()
    assert stopped.value.exit_code == 2
    assert "1 drive(s) stopped before any write" in str(stopped.value) and "look-alike" in str(stopped.value)
    assert [r[0] for r in nc.requests[before:]] == ["PROPFIND"]
    assert not _admin_home_has(nc, "Projects")
    assert store.item("b!lib00001", "f")["status"] == "pending"
    assert "not mounted" in store.drive("b!lib00001")["last_error"]


def test_create_interrupted_between_add_and_permissions_is_narrowed_on_rerun(tmp_path: Path, graph_sandbox_factory,
                                                                             nc) -> None:
    """Adding a group gives it every right until its permissions are set; a copy that dies in between must not
    leave the visitors with write access: the rerun narrows them to read."""
    _, env, lib = _setup(tmp_path, graph_sandbox_factory, nc, extra="create_team_folders = true\n")
    nc.fault("POST", 403, path_contains="/groups/nc-visitors", count=1)
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode != 0 and "nc-visitors" in r.stderr and "Traceback" not in r.stderr, r.stdout + r.stderr
    folder = next(f for f in nc.state.folders.values() if f.mount_point == "Projects")
    assert folder.groups["nc-visitors"] == 31  # what the server left: the group added with all rights
    r = run_cli("plan", cwd=tmp_path, env=env)
    assert "copy will: give group 'nc-visitors' read" in r.stdout, r.stdout + r.stderr
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert folder.groups == {MIGRATION_GROUP: 31, "nc-owners": 31, "nc-members": 15, "nc-visitors": 1}
    assert len(nc.state.folders) == 1
    _assert_in_team_folder(tmp_path, nc, folder.id, lib["id"], reader="carol")


def test_sync_writes_into_the_team_folder_and_stops_a_drive_whose_mount_is_gone(tmp_path: Path,
                                                                               graph_sandbox_factory, nc) -> None:
    """`sync` checks the mount before its first write: a new source file lands inside the team folder; once the
    writer loses the mount, the drive's changes wait (exit 2 like `copy`, the reason named) and nothing is
    written."""
    g, env, lib = _setup(tmp_path, graph_sandbox_factory, nc)
    nc.add_group(MIGRATION_GROUP, ["admin"])
    fid = nc.create_team_folder("Projects", groups={"staff": 31, MIGRATION_GROUP: 31})
    r = run_cli("copy", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    g.mutate.add_file(lib["id"], "/", "after-copy.txt", 321)
    r = run_cli("sync", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    _assert_in_team_folder(tmp_path, nc, fid, lib["id"], reader="alice")
    with db(tmp_path) as s:
        assert any(x["name"] == "after-copy.txt" and x["status"] == "verified"
                   for x in s.iter_items(lib["id"], files_only=True))

    del nc.state.folders[fid].groups[MIGRATION_GROUP]
    g.mutate.add_file(lib["id"], "/", "after-unmount.txt", 123)
    before = len(nc.requests)
    r = run_cli("sync", cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "team folder 'Projects' is not mounted for 'admin'" in r.stderr and "Traceback" not in r.stderr
    assert "run `m365-migrate plan`" in r.stderr
    assert not [x for x in nc.requests[before:] if x[0] in ("PUT", "MKCOL", "MOVE", "POST", "DELETE")]
    assert not _admin_home_has(nc, "Projects")
    with db(tmp_path) as s:
        assert "not mounted" in s.drive(lib["id"])["last_error"]


def test_doctor_says_each_problem_once(tmp_path: Path, graph_sandbox_factory, nc) -> None:
    """Two missing team folders: one short entry each, the shared admin commands once. A credentials file others
    can read and a broken mapping file: each error once, the checks that need them skipped, not repeated."""
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "teams": 2}))
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), targets=())
    with db(tmp_path) as s:
        libs = [d for d in s.drives() if d["kind"] != "onedrive"]
    (tmp_path / "mappings" / "sites.csv").write_text(
        f"source,target,batch\n{libs[0]['id']},groupfolder:Projects,\n{libs[1]['id']},groupfolder:Archive,\n")
    r = run_cli("doctor", cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    team = r.stdout[r.stdout.index("[FAIL] team folders"):]
    assert team.count("does not exist on the target") == 2 and team.count("occ groupfolders:create") == 2
    assert team.count(f"occ group:adduser {MIGRATION_GROUP} admin") == 1 and team.count("create_team_folders") == 1
    assert len(team.strip().splitlines()) <= 2 * 2 + 2, team
    assert "[ok] state database:" in r.stdout and "drives recorded" in r.stdout

    creds = tmp_path / "pw.csv"
    creds.chmod(0o644)
    (tmp_path / "mappings" / "users.csv").write_text("source_upn,target_usr,batch\n")
    r = run_cli("doctor", cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout.count(f"chmod 600 {creds}") == 1 and r.stdout.count("unknown column 'target_usr'") == 1, r.stdout
    assert "[FAIL] secrets" in r.stdout and "[FAIL] mapping files" in r.stdout
    assert "[skip] target: not checked until the secrets check above passes" in r.stdout
    assert "[skip] team folders: not checked until the mapping files check above passes" in r.stdout

    garbage = tmp_path / "other.db"
    garbage.write_text("not a database at all, " * 100)
    r = run_cli("--state", str(garbage), "--json", "doctor", cwd=tmp_path, env=env)
    state = next(c for c in json.loads(r.stdout)["checks"] if c["check"] == "state database")
    assert not state["ok"] and f"the state database {garbage} cannot be read" in state["detail"], state
    assert "restore it from a backup" in state["detail"] and r.returncode == 2
