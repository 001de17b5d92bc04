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
