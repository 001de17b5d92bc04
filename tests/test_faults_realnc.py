"""Issue 25's target faults against a real Nextcloud named by M365_MIGRATE_TEST_NEXTCLOUD (as the conformance suite:
"URL ADMIN ADMIN_APPPW USER USER_APPPW OTHER_USER OTHER_APPPW"), through the CLI: a mapped user missing at the
target, a service account without its credentials row, the target going away mid-copy (a loopback TCP forwarder
in front of the server is closed, then opened again on the same port: the real server itself keeps running for
everyone else), and Ctrl-C during a copy. Files go below a folder of their own (`[target] prefix`) in USER's and
OTHER_USER's homes; it is deleted, and purged from the trash bin, afterwards.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest

from migrate.sandbox.graph import GraphSandbox, TenantSpec
from tests.conformance.rigs import real_server
from tests.conftest import run_cli
from tests.copy_support import SPEC, db, file_rows, write_credentials, write_users
from tests.inventory_support import write_config
from tests.test_faults import assert_unreachable, cli_popen, closed_port, wait_for

REAL = real_server()  # tests/conftest.py collects this file only when a real server is named


class Forwarder:
    """A TCP forwarder on 127.0.0.1 to the real server: `close()` is the server going away (listener and every
    connection closed), `open()` brings it back on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = closed_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> Forwarder:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()
        return self

    def _accept(self, s: socket.socket) -> None:
        while True:
            try:
                client, _ = s.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for x in (a, b):
                with contextlib.suppress(OSError):
                    x.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()


def _real_url_via(port: int) -> str:
    assert REAL is not None
    parts = urlsplit(REAL["url"])
    return f"{parts.scheme}://127.0.0.1:{port}{parts.path}".rstrip("/")


@pytest.fixture
def real_world(tmp_path):
    """Graph sandbox → the real server's USER and OTHER_USER, below a fresh prefix; cleaned afterwards."""
    assert REAL is not None
    prefix = f"m365-faults-{uuid.uuid4().hex[:8]}"
    users = {REAL["user"]: REAL["user_pw"], REAL["other"]: REAL["other_pw"]}
    with GraphSandbox(TenantSpec(**{**SPEC, "files_per_drive": 24})) as g:
        env = write_config(tmp_path, g)
        creds = write_credentials(tmp_path, {**users, REAL["admin"]: REAL["admin_pw"]})
        cfg = tmp_path / "m365-migrate.toml"
        cfg.write_text(cfg.read_text() + f'\n[target]\nkind = "nextcloud"\nurl = "{REAL["url"]}"\n'
                       f'credentials = "{creds}"\nservice_account = "{REAL["admin"]}"\nprefix = "{prefix}"\n')
        assert run_cli("discover", cwd=tmp_path, env=env).returncode == 0
        assert run_cli("scan", cwd=tmp_path, env=env).returncode in (0, 3)
        with db(tmp_path) as s:
            upns = sorted(d["owner_upn"] for d in s.drives() if d["kind"] == "onedrive")[:2]
        write_users(tmp_path, dict(zip(upns, users, strict=True)))
        try:
            yield g, env, users, prefix
        finally:
            for uid, pw in users.items():
                _purge(uid, pw, prefix)


def _purge(uid: str, pw: str, prefix: str) -> None:
    """Delete the test's folder and its trash-bin entry (the server is left as it was found)."""
    assert REAL is not None
    base, up = REAL["url"], urlsplit(REAL["url"])
    with httpx.Client(auth=(uid, pw), timeout=60) as c:
        c.request("DELETE", f"{base}/remote.php/dav/files/{quote(uid)}/{prefix}")
        r = c.request("PROPFIND", f"{base}/remote.php/dav/trashbin/{quote(uid)}/trash", headers={"Depth": "1"})
        for href in r.text.split("<d:href>")[1:]:
            href = href.split("</d:href>")[0]
            if prefix in href:
                c.request("DELETE", f"{up.scheme}://{up.netloc}{href}")


def test_real_doctor_names_a_mapped_user_missing_at_the_server(tmp_path, real_world):
    g, env, users, prefix = real_world
    rows = (tmp_path / "mappings" / "users.csv").read_text().splitlines()
    ghost = f"m365-nobody-{uuid.uuid4().hex[:6]}"
    rows[2] = f"{rows[2].split(',')[0]},{ghost},wave1"
    (tmp_path / "mappings" / "users.csv").write_text("\n".join(rows) + "\n")
    r = run_cli("doctor", cwd=tmp_path, env=env, timeout=180)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"users.csv:3: Nextcloud user '{ghost}' does not exist" in r.stdout, r.stdout
    assert "[ok] target" in r.stdout


def test_real_service_account_without_row_is_exit_2_before_any_request(tmp_path, real_world):
    g, env, users, prefix = real_world
    write_credentials(tmp_path, users)   # the admin's row is gone
    r = run_cli("plan", cwd=tmp_path, env=env, timeout=180)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"[target] service_account is '{REAL['admin']}'" in r.stderr and "no row" in r.stderr


def test_real_target_going_away_mid_copy_stops_with_exit_4_and_the_rerun_resumes(tmp_path, real_world):
    g, env, users, prefix = real_world
    up = urlsplit(REAL["url"])
    fwd = Forwarder((up.hostname or "127.0.0.1", up.port or (443 if up.scheme == "https" else 80))).open()
    url = _real_url_via(fwd.port)
    env = {**env, "M365_MIGRATE_TARGET_URL": url, "M365_MIGRATE_TRANSFER_UNREACHABLE_AFTER": "5",
           "M365_MIGRATE_TRANSFER_BULK_UPLOAD": "false", "M365_MIGRATE_TRANSFER_WORKERS": "2"}
    # slow enough to be mid-copy when the target goes; files in flight end with their download (up to ~10 s)
    g.faults.set(route="download", bytes_per_second=200_000)
    try:
        proc = cli_popen("copy", cwd=tmp_path, env=env)
        wait_for(lambda: sum(1 for r in file_rows(tmp_path) if r["status"] == "verified") >= 3
                 or proc.poll() is not None, timeout=240, what="three files copied")
        fwd.close()
        t0 = time.monotonic()
        out, err = proc.communicate(timeout=120)
        assert time.monotonic() - t0 < 40, err
        assert_unreachable(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), url, "[target] url")
        counts = {r["status"] for r in file_rows(tmp_path)}
        assert "transferring" not in counts and "uploaded" not in counts, counts
        g.faults.clear()
        fwd.open()
        r = run_cli("copy", cwd=tmp_path, env=env, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        r = run_cli("verify", cwd=tmp_path, env=env, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        assert {x["status"] for x in file_rows(tmp_path)} == {"verified"}
    finally:
        fwd.close()


def test_real_ctrl_c_during_a_copy_stops_at_the_first_press_and_resumes(tmp_path, real_world):
    g, env, users, prefix = real_world
    g.faults.set(route="download", bytes_per_second=20_000)
    proc = cli_popen("copy", cwd=tmp_path, env={**env, "M365_MIGRATE_TRANSFER_BULK_UPLOAD": "false"})
    wait_for(lambda: any(r["status"] == "verified" for r in file_rows(tmp_path)) or proc.poll() is not None,
             timeout=240, what="a file copied")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert time.monotonic() - t0 < 8
    g.faults.clear()
    r = run_cli("copy", cwd=tmp_path, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert {x["status"] for x in file_rows(tmp_path)} == {"verified"}
    assert Path(tmp_path / "state" / "migration.db").exists()
