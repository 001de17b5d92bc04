"""Mail copy when the IMAP server drops its connections mid-run (`doveadm kick`): retried on new sessions through
the pacer, and every message ends at the server exactly once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from migrate.sandbox.graph import GraphSandbox
from tests.conftest import run_cli
from tests.mail_e2e_support import assert_one_copy_each, setup_mail
from tests.mail_graph_support import spec


def test_dropped_connections_mid_copy_are_retried_without_duplicates(tmp_path, dovecot):
    user = dovecot.fresh_user()
    with GraphSandbox(spec(users=1, mail_bulk=300), outlook_delay=0.01) as g:
        env, _ = setup_mail(tmp_path, g, dovecot, [user])
        assert run_cli("scan", "--what", "mail", cwd=tmp_path, env=env).returncode == 0
        exe = Path(sys.executable).with_name("m365-migrate")
        proc = subprocess.Popen([str(exe), "--json", "copy", "--what", "mail"], cwd=tmp_path,
                                env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        db_path = tmp_path / "state" / "migration.db"
        kicks, deadline = 0, time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and kicks < 3:
            time.sleep(0.3)
            try:
                done = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True).execute(
                    "SELECT COUNT(*) FROM mail_messages WHERE status='done'").fetchone()[0]
            except sqlite3.Error:
                continue
            if done >= 40 * (kicks + 1):
                out = dovecot.doveadm("kick", user, check=False)
                kicks += bool(out.strip())
        out, err = proc.communicate(timeout=300)
        assert kicks >= 1, "no session was kicked: nothing was tested"
        data = json.loads(out[out.index("{"):])
        assert proc.returncode == 0 and data["failed"] == [], (data, err[-2000:])
        appended = sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM mail_messages WHERE status='done'").fetchone()[0]
        assert assert_one_copy_each(db_path, dovecot, user) == appended > 300
        assert run_cli("verify", "--what", "mail", cwd=tmp_path, env=env).returncode == 0


def test_doctor_names_refused_sign_ins_and_small_quotas(tmp_path, dovecot):
    with GraphSandbox(spec(users=2)) as g:
        env, _ = setup_mail(tmp_path, g, dovecot, ["bob", "nosuchuser"])
        assert run_cli("scan", "--what", "mail", cwd=tmp_path, env=env).returncode == 0
        r = run_cli("--json", "doctor", cwd=tmp_path, env=env)
        checks = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
        box = checks["IMAP mailboxes"]
        assert not box["ok"] and "nosuchuser" in box["detail"] and "quota too small" in box["detail"], box
        assert "→ bob:" in box["detail"] and r.returncode == 4   # a refused sign-in outranks the small quota


def test_tls_is_verified_with_the_configured_ca(tmp_path, dovecot_tls):
    with GraphSandbox(spec(users=1)) as g:
        user = dovecot_tls.fresh_user()
        env, _ = setup_mail(tmp_path, g, dovecot_tls, [user])
        cfg = tmp_path / "m365-migrate.toml"
        text = cfg.read_text()
        url = f"imaps://localhost:{dovecot_tls.tls_port}"
        cfg.write_text(text.replace(dovecot_tls.settings().url, url))
        r = run_cli("--json", "doctor", cwd=tmp_path, env=env)
        server = {c["check"]: c for c in json.loads(r.stdout)["checks"]}["IMAP server"]
        assert not server["ok"] and "certificate" in server["detail"].lower(), server   # not trusted: nothing sent
        cfg.write_text(cfg.read_text().replace('[mail]\n', f'[mail]\nca_bundle = "{dovecot_tls.ca_file}"\n'))
        r = run_cli("--json", "doctor", cwd=tmp_path, env=env)
        server = {c["check"]: c for c in json.loads(r.stdout)["checks"]}["IMAP server"]
        assert server["ok"] and "TLS from the start" in server["detail"], server
        assert run_cli("scan", "--what", "mail", cwd=tmp_path, env=env).returncode == 0
        r = run_cli("--json", "copy", "--what", "mail", cwd=tmp_path, env=env)
        assert json.loads(r.stdout[r.stdout.index("{"):])["appended"] > 5, r.stdout + r.stderr


def test_a_folder_recreated_at_the_server_is_found_by_its_uidvalidity(tmp_path, dovecot):
    user = dovecot.fresh_user()
    with GraphSandbox(spec(users=1)) as g:
        env, _ = setup_mail(tmp_path, g, dovecot, [user])
        for step in ("scan", "copy"):
            assert run_cli(step, "--what", "mail", cwd=tmp_path, env=env).returncode in (0, 3)
        db_path = tmp_path / "state" / "migration.db"
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        names = [n for (n,) in db.execute(
            "SELECT f.target_name FROM mail_folders f JOIN mail_messages m ON m.target_folder_id=f.id "
            "WHERE m.status='done' AND f.well_known IS NULL GROUP BY f.id ORDER BY COUNT(*) DESC")]
        leaf = next(n for n in names if not any(o.startswith(n + "/") for o in names))
        n = db.execute("SELECT COUNT(*) FROM mail_messages m JOIN mail_folders f ON f.id=m.target_folder_id "
                       "WHERE f.target_name=? AND m.status='done'", (leaf,)).fetchone()[0]
        dovecot.doveadm("mailbox", "delete", "-u", user, leaf)
        dovecot.doveadm("mailbox", "create", "-u", user, leaf)
        r = run_cli("verify", "--what", "mail", cwd=tmp_path, env=env)
        assert r.returncode == 3 and "UIDVALIDITY" in r.stdout and leaf in r.stdout, r.stdout + r.stderr
        data = _json_of(run_cli("--json", "copy", "--what", "mail", cwd=tmp_path, env=env))
        assert data["appended"] == n and any(leaf in x for x in data["uidvalidity_changed"]), data
        assert run_cli("verify", "--what", "mail", cwd=tmp_path, env=env).returncode == 0
        assert assert_one_copy_each(db_path, dovecot, user) > 5


def _json_of(r):
    return json.loads(r.stdout[r.stdout.index("{"):])


def test_ctrl_c_mid_copy_exits_130_and_the_rerun_resumes(tmp_path, dovecot):
    import signal

    user = dovecot.fresh_user()
    with GraphSandbox(spec(users=1, mail_bulk=300), outlook_delay=0.01) as g:
        env, _ = setup_mail(tmp_path, g, dovecot, [user])
        assert run_cli("scan", "--what", "mail", cwd=tmp_path, env=env).returncode == 0
        exe = Path(sys.executable).with_name("m365-migrate")
        proc = subprocess.Popen([str(exe), "copy", "--what", "mail"], cwd=tmp_path, env={**os.environ, **env},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        db_path = tmp_path / "state" / "migration.db"
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                done = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True).execute(
                    "SELECT COUNT(*) FROM mail_messages WHERE status='done'").fetchone()[0]
            except sqlite3.Error:
                continue
            if done >= 40:
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
        left = sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM mail_messages WHERE status IN ('new', "
                                                "'appending')").fetchone()[0]
        assert left > 50, "the copy had finished before the interrupt: nothing was tested"
        r = run_cli("--json", "copy", "--what", "mail", cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        appended = sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM mail_messages WHERE status='done'").fetchone()[0]
        assert assert_one_copy_each(db_path, dovecot, user) == appended > 300
