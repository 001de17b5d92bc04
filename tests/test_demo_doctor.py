"""`demo` runs the whole journey on the sandboxes; `doctor` proves a configuration and names what is wrong."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from migrate.demo import _configure
from migrate.sandbox.graph import GraphSandbox, TenantSpec
from migrate.sandbox.nextcloud import NextcloudSandbox


def test_demo_runs_the_journey_and_everything_copied_is_verified(cli, tmp_path) -> None:
    r = cli("demo", "--folder", str(tmp_path / "run"), cwd=tmp_path, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for step in ("init", "doctor", "discover", "scan", "plan", "copy", "share", "verify", "status"):
        assert f"$ m365-migrate {step}" in r.stdout
    db = sqlite3.connect(tmp_path / "run" / "state" / "migration.db")
    counts = dict(db.execute("SELECT status, count(*) FROM items WHERE is_folder = 0 AND deleted = 0 GROUP BY status"))
    assert counts.get("verified", 0) > 100
    assert counts.get("failed", 0) == 0
    assert counts.get("pending", 0) == 0  # what plan leaves out is `skipped` with its reason, not waiting
    reasons = [r for (r,) in db.execute("SELECT last_error FROM items WHERE status = 'skipped'")]
    assert reasons and all(r.startswith("plan: ") for r in reasons)
    shares = dict(db.execute("SELECT coalesce(status, '-'), count(*) FROM planned_shares GROUP BY status"))
    assert shares.get("created", 0) > 0 and set(shares) == {"created"}, shares
    runs = dict(db.execute("SELECT command, status FROM runs ORDER BY id"))  # the last run of each command
    assert runs["verify"] == "ok" and runs["copy"] in ("ok", "attention")
    # after the copy, five source changes; the dry run records nothing, the sync applies them, verify passes
    assert "$ m365-migrate sync --dry-run" in r.stdout and "$ m365-migrate sync\n" in r.stdout
    syncs = db.execute("SELECT status, summary FROM runs WHERE command = 'sync'").fetchall()
    assert len(syncs) == 1 and syncs[0][0] == "ok", syncs
    found = json.loads(syncs[0][1])
    assert (found["edit"], found["move"], found["new-file"], found["delete"]) == (1, 2, 1, 1), found
    sync_at = r.stdout.index("$ m365-migrate sync\n")
    assert "applied:" in r.stdout[sync_at:] and "renamed in Microsoft 365.txt" in r.stdout[sync_at:]
    last_verify = r.stdout.rindex("$ m365-migrate verify\n")
    assert last_verify > sync_at and "0 with gaps" in r.stdout[last_verify:]
    verified = db.execute("SELECT status FROM items WHERE name = 'new in Microsoft 365.txt'").fetchall()
    assert verified == [("verified",)], verified
    assert "checked" in r.stdout and "0 with gaps" in r.stdout
    assert "$ m365-migrate copy --what calendars,contacts" in r.stdout
    assert re.search(r"a rescan takes at least \d+ (s|min)", r.stdout) and " 0.0 min" not in r.stdout, r.stdout
    gw = dict(db.execute("SELECT status, count(*) FROM gw_objects WHERE deleted = 0 GROUP BY status"))
    assert gw.get("verified", 0) > 50 and gw.get("failed", 0) == 0 and gw.get("pending", 0) == 0, gw


@pytest.fixture(scope="module")
def sandboxes():
    with GraphSandbox(TenantSpec(seed=3, users=2, sites=0, teams=0, files_per_drive=5, max_depth=2), tls=True) as g:
        uids = [u.upn.split("@")[0].lower().replace(".", "-") for u in g.tenant.users]
        with NextcloudSandbox(users=uids, groups={"staff": [*uids, "admin"]}) as nc:
            yield g, nc, uids


def _setup(cli, tmp_path, g, nc, uids):
    assert cli("init", cwd=tmp_path).returncode == 0
    _configure(tmp_path, g, nc, [u.upn for u in g.tenant.users], uids)
    return {"M365_CLIENT_SECRET": g.client_secret, "M365_MIGRATE_CONFIG": str(tmp_path / "m365-migrate.toml")}


def test_doctor_passes_on_a_good_configuration(cli, tmp_path, sandboxes) -> None:
    g, nc, uids = sandboxes
    env = _setup(cli, tmp_path, g, nc, uids)
    r = cli("doctor", "--json", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)  # an object, like every other command's --json
    assert doc["ok"] is True and doc["exit_code"] == 0
    checks = {c["check"]: c for c in doc["checks"]}
    assert all(c["ok"] for c in checks.values())
    assert "chunked upload" in checks["target"]["detail"]


def test_doctor_names_a_wrong_secret_with_exit_4(cli, tmp_path, sandboxes) -> None:
    g, nc, uids = sandboxes
    env = {**_setup(cli, tmp_path, g, nc, uids), "M365_CLIENT_SECRET": "wrong-secret-value"}
    r = cli("doctor", cwd=tmp_path, env=env)
    assert r.returncode == 4, r.stdout + r.stderr
    assert "[FAIL] Microsoft Graph" in r.stdout and "wrong-secret-value" not in r.stdout + r.stderr
    assert "[ok] target" in r.stdout  # every check runs, not only up to the first failure


def test_doctor_lists_a_wrong_app_password(cli, tmp_path, sandboxes) -> None:
    g, nc, uids = sandboxes
    env = _setup(cli, tmp_path, g, nc, uids)
    creds = tmp_path / "secrets" / "app-passwords.csv"
    creds.write_text(creds.read_text().replace(nc.app_passwords[uids[0]], "not-the-password"))
    r = cli("doctor", cwd=tmp_path, env=env)
    assert r.returncode == 4, r.stdout + r.stderr  # refused, like a wrong client secret (one exit-code table)
    assert "[FAIL] target" in r.stdout and uids[0] in r.stdout
    nc.reset_bruteforce()


def test_doctor_lists_missing_settings_with_exit_2(cli, tmp_path) -> None:
    assert cli("init", cwd=tmp_path).returncode == 0
    r = cli("doctor", cwd=tmp_path)
    assert r.returncode == 2
    assert "[FAIL] configuration" in r.stdout and "tenant_id is not set" in r.stdout


def test_a_second_demo_starts_from_nothing_and_never_clears_foreign_files(tmp_path) -> None:
    from migrate.demo import MARKER, _fresh
    from migrate.errors import ConfigError

    folder = tmp_path / "demo-run"
    (folder / "state").mkdir(parents=True)
    (folder / "state" / "migration.db").write_text("yesterday's sandboxes")
    (folder / "m365-migrate.toml").write_text("[source]\n")
    _fresh(folder)
    assert sorted(p.name for p in folder.iterdir()) == [MARKER]  # the old state would describe vanished files
    (folder / "my notes.txt").write_text("not the demo's")
    with pytest.raises(ConfigError, match="my notes.txt"):
        _fresh(folder)
    assert (folder / "my notes.txt").exists()
