"""A first run as a newcomer makes it (issue 26 point 8): one OneDrive marked "not migrated" in users.csv, the
rest scanned, copied, shared and verified, output read in a log file (stderr is not a terminal here).

Real CLI in subprocesses against the Graph sandbox and the Nextcloud sandbox.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from migrate.sandbox.graph import GraphSandbox, TenantSpec
from migrate.sandbox.nextcloud import NextcloudSandbox
from tests.conftest import run_cli
from tests.copy_support import db, nextcloud_target, setup_migration, write_users

SPEC = TenantSpec(seed=21, users=3, sites=0, teams=0, files_per_drive=8, max_depth=2, no_mysite_users=0,
                  malware_files=0, onenote=False, shares=False, versions=False, awkward_names=False)


@pytest.fixture(scope="module")
def journey(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("newcomer")
    with GraphSandbox(SPEC) as g, NextcloudSandbox(users=["alice", "bob"]) as nc:
        env, upns = setup_migration(tmp, g, target=nextcloud_target(tmp, nc), scan=False)
        write_users(tmp, {upns[0]: "alice", upns[1]: "bob", upns[2]: ""})  # the third: not migrated
        steps = {"scan": run_cli("scan", cwd=tmp, env=env)}
        for step in ("plan", "copy", "share", "verify"):
            steps[step] = run_cli(step, cwd=tmp, env=env)
        steps["status"] = run_cli("status", cwd=tmp, env=env)
        steps["status_json"] = run_cli("status", "--json", cwd=tmp, env=env)
        yield {"tmp": tmp, "env": env, "upns": upns, "steps": steps, "g": g}


def test_scan_leaves_out_a_drive_whose_target_is_blank(journey) -> None:
    r, skipped = journey["steps"]["scan"], journey["upns"][2]
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"not scanned: 1 drive(s) not migrated (blank target in users.csv / sites.csv): OneDrive of {skipped}" \
        in r.stdout, r.stdout
    with db(journey["tmp"]) as s:
        drives = {d["owner_upn"]: d for d in s.drives()}
        assert drives[skipped]["scan_state"] == "new" and not s.has_items(drives[skipped]["id"])
        assert all(drives[u]["scan_state"] == "scanned" for u in journey["upns"][:2])


def test_scan_lines_name_the_owner_and_progress_is_plain_lines_in_a_log(journey) -> None:
    r = journey["steps"]["scan"]
    for upn in journey["upns"][:2]:
        assert f"OneDrive of {upn}: " in r.stdout, r.stdout
    assert "\r" not in r.stderr and "\r" not in journey["steps"]["copy"].stderr  # no bar redraws in a log
    assert ": :" not in r.stderr + r.stdout
    done = [line for line in r.stderr.splitlines() if line.startswith("scan: ")]
    assert len(done) == 2 and done[-1].startswith("scan: 2/2 drives done; OneDrive of "), r.stderr


def test_status_after_the_batch_is_done_does_not_ask_for_a_scan(journey) -> None:
    for step in ("copy", "share", "verify"):
        assert journey["steps"][step].returncode == 0, journey["steps"][step].stdout
    r = journey["steps"]["status"]
    assert r.returncode == 0, r.stderr
    next_line = r.stdout.strip().splitlines()[-1]
    assert next_line.startswith("next: ") and "`m365-migrate scan`" not in next_line, r.stdout
    row = next(line for line in r.stdout.splitlines() if journey["upns"][2] in line)
    assert "not migrated" in row, row


def test_status_json_has_every_count_also_for_an_unscanned_drive(journey) -> None:
    data = json.loads(journey["steps"]["status_json"].stdout)
    statuses = ["pending", "transferring", "uploaded", "verified", "failed", "skipped", "conflict"]
    for d in data["drives"]:
        assert sorted(d["counts"]) == sorted(statuses), d["counts"]
    blank = next(d for d in data["drives"] if d["owner"] == journey["upns"][2])
    assert blank["migrated"] is False and all(c == {"files": 0, "bytes": 0} for c in blank["counts"].values())
    assert data["totals"]["verified"]["files"] > 0 and data["totals"]["pending"] == {"files": 0, "bytes": 0}


def test_the_state_database_is_created_private(journey) -> None:
    state = Path(journey["tmp"]) / "state"
    for name in ("migration.db", "migration.db-wal", "migration.db-shm"):
        if (state / name).exists():
            assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE((state / "migration.db").stat().st_mode) == 0o600


def test_a_drive_not_migrated_is_scanned_when_named(journey) -> None:
    upn = journey["upns"][2]
    r = run_cli("scan", "--user", upn, cwd=journey["tmp"], env=journey["env"])
    assert r.returncode == 0 and f"OneDrive of {upn}: " in r.stdout and "not scanned" not in r.stdout, r.stdout
    with db(journey["tmp"]) as s:
        assert next(d for d in s.drives() if d["owner_upn"] == upn)["scan_state"] == "scanned"
