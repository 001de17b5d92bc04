"""A mail copy shows one bar over its messages on a terminal (and nothing of it in a pipe or with --json)."""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
import termios
from pathlib import Path

from migrate.sandbox.graph import GraphSandbox
from tests.conftest import run_cli
from tests.mail_e2e_support import setup_mail
from tests.mail_graph_support import spec


def _copy_on_a_terminal(tmp: Path, env: dict[str, str]) -> tuple[int, str]:
    """`copy --what mail` with stderr on a pseudo-terminal (as an admin at a console sees it)."""
    exe = Path(sys.executable).with_name("m365-migrate")
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))   # a new pty has 0 columns
    proc = subprocess.Popen([str(exe), "copy", "--what", "mail"], cwd=tmp, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:   # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    proc.communicate(timeout=300)
    os.close(master)
    return proc.returncode, seen.decode(errors="replace")


def test_mail_copy_bar_counts_every_message(tmp_path, dovecot):
    with GraphSandbox(spec()) as g:
        env, upns = setup_mail(tmp_path, g, dovecot, [dovecot.fresh_user()])
        assert run_cli("scan", "--what", "mail", cwd=tmp_path, env=env).returncode in (0, 3)
        code, err = _copy_on_a_terminal(tmp_path, env)
    assert code in (0, 3), err
    import sqlite3

    with sqlite3.connect(tmp_path / "state" / "migration.db") as db:
        done = db.execute("SELECT COUNT(*) FROM mail_messages WHERE status IN ('done','skipped','failed')").fetchone()[0]
    assert done > 0
    final = [part for part in err.replace("\n", "\r").split("\r") if part.startswith("mail copy")][-1]
    assert f"{done}/{done}" in final, final
