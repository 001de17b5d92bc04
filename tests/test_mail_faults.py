"""Mail when things go wrong, through the CLI against the Graph sandbox and a real Dovecot: connections dropped by
the server mid-copy (`doveadm kick`), Ctrl-C, a folder recreated at the server (UIDVALIDITY), refused sign-ins and
small quotas in doctor, TLS verified with the configured CA. Every message ends at the server exactly once."""

from __future__ import annotations

import json
import sqlite3

from migrate.sandbox.graph import GraphSandbox
from tests.conftest import run_cli
from tests.dovecot_support import SMALL_QUOTA
from tests.mail_e2e_support import BackgroundCopy, assert_one_copy_each, setup_mail
from tests.mail_graph_support import spec


def test_dropped_connections_mid_copy_are_retried_without_duplicates(tmp_path, dovecot):
    user = dovecot.fresh_user()
    with GraphSandbox(spec(users=1, mail_bulk=300), outlook_delay=0.01) as g:
        env, _ = setup_mail(tmp_path, g, dovecot, [user])
        assert run_cli("scan", "--what", "mail", cwd=tmp_path, env=env).returncode == 0
        bg = BackgroundCopy(tmp_path, env)
        kicks = 0
        while kicks < 3 and bg.wait_done(40 * (kicks + 1)):
            kicks += bool(dovecot.doveadm("kick", user, check=False).strip())
        out, err = bg.finish()
        assert kicks >= 1, "no session was kicked: nothing was tested"
        data = json.loads(out[out.index("{"):])
        assert bg.proc.returncode == 0 and data["failed"] == [], (data, err[-2000:])
        assert assert_one_copy_each(bg.db_path, dovecot, user) == bg.count() > 300


def test_doctor_names_refused_sign_ins_and_small_quotas(tmp_path, dovecot):
    with GraphSandbox(spec(users=2)) as g:
        small = dovecot.fresh_user(SMALL_QUOTA)
        env, _ = setup_mail(tmp_path, g, dovecot, [small, "nosuchuser"])
        assert run_cli("scan", "--what", "mail", cwd=tmp_path, env=env).returncode == 0
        r = run_cli("--json", "doctor", cwd=tmp_path, env=env)
        checks = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
        box = checks["IMAP mailboxes"]
        assert not box["ok"] and "nosuchuser" in box["detail"] and "quota too small" in box["detail"], box
        assert f"→ {small}:" in box["detail"] and r.returncode == 4   # a refused sign-in outranks the small quota


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
        bg = BackgroundCopy(tmp_path, env)
        assert bg.wait_done(40)
        bg.proc.send_signal(signal.SIGINT)
        _, err = bg.finish(120)
        assert bg.proc.returncode == 130 and "Traceback" not in err, err[-2000:]
        assert bg.count("status IN ('new', 'appending')") > 50, "the copy had finished: nothing was tested"
        r = run_cli("--json", "copy", "--what", "mail", cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert assert_one_copy_each(bg.db_path, dovecot, user) == bg.count() > 300
