"""Helpers of the mail journey tests: a configured folder (Graph sandbox + real Dovecot), and truth from both ends."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import run_cli
from tests.copy_support import write_users
from tests.inventory_support import write_config

MASTER_ENV = "M365_MIGRATE_IMAP_MASTER_PASSWORD"


def setup_mail(tmp: Path, g: Any, dovecot: Any, targets: list[str], *, extra: str = "",
               master_password: str | None = None) -> tuple[dict[str, str], list[str]]:
    """Config ([source] → the sandbox, [mail] → Dovecot with its master user), discover, users.csv mapping the
    sandbox's users (sorted by UPN) to `targets`. Returns (env, upns)."""
    from tests.dovecot_support import MASTER_PASSWORD, MASTER_USER

    env = write_config(tmp, g)
    cfg = tmp / "m365-migrate.toml"
    cfg.write_text(cfg.read_text() + f'\n[mail]\nurl = "{dovecot.settings().url}"\nlogin = "master"\n'
                   f'master_user = "{MASTER_USER}"\n{extra}\n')
    env[MASTER_ENV] = MASTER_PASSWORD if master_password is None else master_password
    r = run_cli("discover", cwd=tmp, env=env)
    assert r.returncode == 0, r.stderr
    upns = sorted(u.upn for u in g.tenant.users)[: len(targets)]
    write_users(tmp, dict(zip(upns, targets, strict=True)))
    return env, upns


def as_json(r: Any) -> dict[str, Any]:
    assert r.returncode in (0, 3), r.stdout + r.stderr
    return json.loads(r.stdout[r.stdout.index("{"):])


def graph_mime(g: Any, user_id: str, message_id: str) -> bytes:
    """The MIME the sandbox serves for a message (its $value), read as a client would."""
    import ssl

    verify = ssl.create_default_context(cafile=str(g.ca_path)) if g.ca_path else True
    with httpx.Client(base_url=g.graph_url, timeout=60, verify=verify,
                      headers={"Authorization": f"Bearer {g.issue_token()}"}) as c:
        r = c.get(f"/users/{user_id}/messages/{message_id}/$value")
        r.raise_for_status()
        return r.content


def crlf_digest(data: bytes) -> tuple[int, str]:
    """Length and SHA-256 of the bytes as Dovecot gives them back: every bare LF as CRLF (reference §2.10)."""
    norm = re.sub(rb"(?<!\r)\n", b"\r\n", data)
    return len(norm), hashlib.sha256(norm).hexdigest()


def server_messages(dovecot: Any, user: str) -> dict[str, list[dict[str, str]]]:
    """Per folder (UTF-8 name), the server's messages: uid, flags, INTERNALDATE, Message-ID (doveadm)."""
    out: dict[str, list[dict[str, str]]] = {}
    for folder in dovecot.doveadm("mailbox", "list", "-u", user).splitlines():
        folder = folder.strip()
        if not folder:
            continue
        text = dovecot.doveadm("-f", "tab", "fetch", "-u", user, "uid flags date.received hdr.message-id",
                               "mailbox", folder, "all")
        lines = text.splitlines()
        rows = []
        for line in lines[1:]:
            parts = line.split("\t")
            parts += [""] * (4 - len(parts))
            rows.append({"uid": parts[0], "flags": parts[1], "received": parts[2], "message_id": parts[3].strip()})
        out[folder] = rows
    return out


def expected_flags(data: dict[str, Any], props: dict[str, str]) -> set[str]:
    """The flags a message must carry, from the sandbox's Graph properties (written apart from the engine's)."""
    flags = set()
    if data.get("isRead"):
        flags.add("\\Seen")
    if data.get("isDraft"):
        flags.add("\\Draft")
    if (data.get("flag") or {}).get("flagStatus") == "flagged":
        flags.add("\\Flagged")
    verb, icon = props.get("Integer 0x1081"), props.get("Integer 0x1080")
    if verb in ("102", "103") or (verb is None and icon == "261"):
        flags.add("\\Answered")
    if verb == "104" or (verb is None and icon == "262"):
        flags.add("$Forwarded")
    return flags


def received_text(data: dict[str, Any]) -> str:
    """receivedDateTime as doveadm prints date.received (the server runs in UTC)."""
    when = data.get("receivedDateTime") or data.get("sentDateTime") or data.get("createdDateTime")
    t = dt.datetime.fromisoformat(when.replace("Z", "+00:00")).astimezone(dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S")


def assert_one_copy_each(db_path: Path, dovecot: Any, user: str) -> int:
    """Per folder of `user`, the server holds exactly the messages the ledger says we put there (no duplicate,
    no gap); Message-IDs cannot say this (a list mail delivered twice shares one). Returns how many."""
    import sqlite3

    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    total = 0
    for folder, msgs in server_messages(dovecot, user).items():
        ours = sorted(str(u) for (u,) in db.execute(
            "SELECT m.uid FROM mail_messages m JOIN mail_folders f ON f.id=m.target_folder_id WHERE f.imap_user=? "
            "AND f.target_name=? AND m.status IN ('done','removed')", (user, folder)))
        assert sorted(m["uid"] for m in msgs) == ours, (user, folder, len(msgs), len(ours))
        total += len(ours)
    return total


class BackgroundCopy:
    """`copy --what mail` of one bulk mailbox (300 messages, Outlook slowed a little) running as a child process,
    for tests that interrupt it: `wait_done(n)` waits until the ledger records n messages appended."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        import os
        import subprocess
        import sys

        self.db_path = tmp / "state" / "migration.db"
        exe = Path(sys.executable).with_name("m365-migrate")
        self.proc = subprocess.Popen([str(exe), "--json", "copy", "--what", "mail"], cwd=tmp,
                                     env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)

    def count(self, where: str = "status='done'") -> int:
        import sqlite3

        try:
            return sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True).execute(
                f"SELECT COUNT(*) FROM mail_messages WHERE {where}").fetchone()[0]
        except sqlite3.Error:
            return 0

    def wait_done(self, n: int, timeout: float = 120) -> bool:
        import time

        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            if self.count() >= n:
                return True
            time.sleep(0.2)
        return False

    def finish(self, timeout: float = 300) -> tuple[str, str]:
        return self.proc.communicate(timeout=timeout)
