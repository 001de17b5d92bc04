"""When things go wrong (issue 25), through the real CLI against the sandboxes: an endpoint that answers nothing
ends the command within its fault budget with exit 4 naming the URL and the key; a target that dies mid-copy
stops the run (not thousands of item failures) and the rerun resumes; Ctrl-C ends a stalled command at the first
press; the lock comes before the network; the state works read-only for reading commands; exit codes follow the
one table. Every fault budget here is a few seconds (`[transfer] unreachable_after` through the environment).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migrate.sandbox.graph import TenantSpec
from migrate.sandbox.nextcloud import NextcloudSandbox
from tests.conftest import run_cli
from tests.copy_support import (
    SPEC,
    assert_target_matches_truth,
    db,
    file_rows,
    nextcloud_target,
    setup_migration,
)

BUDGET = {"M365_MIGRATE_TRANSFER_UNREACHABLE_AFTER": "3"}
FEW = {**SPEC, "users": 2, "files_per_drive": 12}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_popen(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    exe = Path(sys.executable).with_name("m365-migrate")
    return subprocess.Popen([str(exe), *args], cwd=cwd, env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(cond, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def verified_files(tmp_path: Path) -> int:
    """Files verified so far, read while a command writes (read-only connection, WAL)."""
    import sqlite3

    con = sqlite3.connect(f"file:{tmp_path / 'state' / 'migration.db'}?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM items WHERE status = 'verified' AND is_folder = 0").fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        con.close()


def statuses(tmp_path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in file_rows(tmp_path):
        out[r["status"]] = out.get(r["status"], 0) + 1
    return out


def assert_unreachable(r: subprocess.CompletedProcess[str], url: str, key: str) -> None:
    out = r.stdout + r.stderr
    assert r.returncode == 4, out
    assert url in r.stderr and key in r.stderr and "answered nothing" in r.stderr, out
    assert "retry 1 of" in r.stderr and "giving up in" in r.stderr, out   # shown while it happens, without -v
    assert "unexpected error" not in out and "Traceback" not in out


# --- an endpoint that answers nothing ----------------------------------------------------------------------------
@pytest.fixture
def world(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**FEW))
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nextcloud_sandbox))
    return g, nextcloud_sandbox, env


@pytest.mark.parametrize("command", ["doctor", "plan", "copy", "verify", "share", "sync"])
def test_a_closed_target_port_ends_with_exit_4_naming_url_and_key(tmp_path, world, command):
    g, nc, env = world
    url = f"http://127.0.0.1:{closed_port()}"
    t0 = time.monotonic()
    r = run_cli(command, cwd=tmp_path, env={**env, **BUDGET, "M365_MIGRATE_TARGET_URL": url}, timeout=60)
    took = time.monotonic() - t0
    if command == "doctor":   # every check runs; the target's is the one that fails
        assert r.returncode == 4 and "[FAIL] target" in r.stdout and url in r.stdout, r.stdout + r.stderr
        assert "[target] url" in r.stdout
    else:
        assert_unreachable(r, url, "[target] url")
    assert took < 20, took
    with db(tmp_path) as s:
        last = s.runs(1)
    if command not in ("doctor",):
        assert last[0]["command"] == command and last[0]["status"] == "failed", last


def test_graph_on_a_closed_port_ends_scan_with_exit_4(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**FEW))
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nextcloud_sandbox), scan=False)
    url = f"http://127.0.0.1:{closed_port()}/v1.0"
    r = run_cli("scan", cwd=tmp_path, env={**env, **BUDGET, "M365_MIGRATE_SOURCE_GRAPH_URL": url}, timeout=60)
    assert_unreachable(r, url, "[source] graph_url")
    with db(tmp_path) as s:
        assert s.runs(1)[0]["command"] == "scan" and s.runs(1)[0]["status"] == "failed"


def test_graph_vanishing_mid_scan_stops_with_exit_4_and_keeps_what_was_stored(tmp_path, graph_sandbox_factory,
                                                                              nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "users": 2, "files_per_drive": 300, "max_depth": 3}))
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nextcloud_sandbox), scan=False)
    g.faults.set(route="delta", delay=0.3)
    env = {**env, **BUDGET, "M365_GRAPH_PAGE_SIZE": "10"}
    proc = cli_popen("scan", cwd=tmp_path, env=env)
    state = tmp_path / "state" / "migration.db"

    def stored() -> int:
        import sqlite3

        con = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
        try:
            return con.execute("SELECT count(*) FROM items").fetchone()[0]
        except sqlite3.Error:
            return 0
        finally:
            con.close()

    wait_for(lambda: stored() >= 20 or proc.poll() is not None, what="the first pages stored")
    g.stop()
    t0 = time.monotonic()
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 20
    assert_unreachable(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), g.graph_url,
                       "[source] graph_url")
    kept = stored()
    assert kept >= 20, kept
    with db(tmp_path) as s:
        assert s.runs(1)[0]["status"] == "failed"
        assert all(d["delta_link"] is None for d in s.drives() if d["kind"] == "onedrive")  # not finished


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
def test_a_target_dying_mid_copy_stops_the_run_and_the_rerun_resumes(tmp_path, graph_sandbox_factory, bulk):
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "users": 2, "files_per_drive": 30}))
    data = tmp_path / "nc"
    port = closed_port()  # a fixed port (not 0): cheroot then binds with SO_REUSEADDR, so the restart can bind again
    nc = NextcloudSandbox(users=["alice", "bob"], data_dir=data, port=port).start()
    try:
        env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc),
                                 transfer=f"bulk_upload = {'true' if bulk else 'false'}\nworkers = 2")
        nc.delay("PUT", 0.15)
        nc.delay("POST", 1.0)
        proc = cli_popen("copy", cwd=tmp_path, env={**env, **BUDGET})
        enough = 1 if bulk else 6
        wait_for(lambda: verified_files(tmp_path) >= enough or proc.poll() is not None, what="some files copied")
        nc.stop()
        t0 = time.monotonic()
        out, err = proc.communicate(timeout=90)
        assert time.monotonic() - t0 < 25, err
        assert_unreachable(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), nc.url, "[target] url")
        counts = statuses(tmp_path)
        assert counts.get("verified", 0) >= enough and "transferring" not in counts and "uploaded" not in counts, \
            counts
        # the target going away is one cause, not a list of item failures: at most the files in flight failed
        assert counts.get("failed", 0) <= 2, counts
        nc = NextcloudSandbox(users=["alice", "bob"], data_dir=data, port=port).start()
        r = run_cli("copy", cwd=tmp_path, env={**env, **BUDGET}, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert_target_matches_truth(g, nc, file_rows(tmp_path))
    finally:
        nc.stop()


# --- Ctrl-C ------------------------------------------------------------------------------------------------------
def test_ctrl_c_during_a_stalled_request_stops_at_the_first_press(tmp_path, world):
    g, nc, env = world
    r = run_cli("plan", cwd=tmp_path, env=env)
    assert r.returncode in (0, 3), r.stdout + r.stderr
    nc.delay("PUT", 20)
    nc.delay("POST", 20)
    proc = cli_popen("copy", cwd=tmp_path, env=env)
    wait_for(lambda: nc.peak_running("PUT") + nc.peak_running("POST") >= 1, what="an upload in flight")
    time.sleep(0.3)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    took = time.monotonic() - t0
    assert proc.returncode == 130, out + err
    assert took < 8, took   # the watchdog's grace is 5 s; without it the stalled request held the run for 20 s
    assert "run the same command again to resume" in err and "Traceback" not in err
    with db(tmp_path) as s:
        assert s.runs(1)[0]["status"] == "interrupted"
    nc.delay("PUT", 0)
    nc.delay("POST", 0)
    time.sleep(0.5)
    r = run_cli("copy", cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_target_matches_truth(g, nc, file_rows(tmp_path))


def test_a_second_ctrl_c_during_a_stalled_scan_ends_it_at_once(tmp_path, graph_sandbox_factory, nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**FEW))
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nextcloud_sandbox), scan=False)
    g.faults.set(route="delta", delay=30)
    proc = cli_popen("scan", cwd=tmp_path, env=env)
    wait_for(lambda: g.stats()["requests"].get("delta", 0) >= 1, what="a delta request in flight")
    time.sleep(0.3)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert time.monotonic() - t0 < 3 and "interrupted again" in err, err   # not the watchdog's 5 s
    assert err.count("run the same command again to resume") == 1, err
    with db(tmp_path) as s:
        assert s.runs(1)[0]["command"] == "scan" and s.runs(1)[0]["status"] == "interrupted"
    g.faults.clear()
    r = run_cli("scan", cwd=tmp_path, env=env, timeout=120)
    assert r.returncode in (0, 3), r.stdout + r.stderr


def test_ctrl_c_while_retrying_an_unreachable_target_is_immediate(tmp_path, world):
    g, nc, env = world
    url = f"http://127.0.0.1:{closed_port()}"
    proc = cli_popen("copy", cwd=tmp_path, env={**env, "M365_MIGRATE_TARGET_URL": url,
                                                 "M365_MIGRATE_TRANSFER_UNREACHABLE_AFTER": "120"})
    assert proc.stderr is not None
    seen = ""
    while "retry 1 of" not in seen:   # the retry message, shown while it happens
        line = proc.stderr.readline()
        assert line, seen
        seen += line
    time.sleep(1)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + seen + err
    assert time.monotonic() - t0 < 3
    assert "stopping now" not in err   # no watchdog needed: the retry pause itself ended
    with db(tmp_path) as s:
        assert s.runs(1)[0]["status"] == "interrupted"


# --- order of checks, two writers ---------------------------------------------------------------------------------
HOLDER = """
import sys, time
from pathlib import Path
from migrate.session import Run
with Run(Path(sys.argv[1]), "copy"):
    print("locked", flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("command", ["copy", "scan", "verify", "plan", "sync"])
def test_a_second_writer_gets_exit_2_naming_the_first_before_any_network(tmp_path, world, command):
    g, nc, env = world
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "state" / "migration.db")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        dead = f"http://127.0.0.1:{closed_port()}"
        t0 = time.monotonic()
        r = run_cli(command, cwd=tmp_path, env={**env, "M365_MIGRATE_TARGET_URL": dead,
                                                "M365_MIGRATE_SOURCE_GRAPH_URL": dead + "/v1.0"}, timeout=60)
        assert r.returncode == 2, r.stdout + r.stderr
        assert time.monotonic() - t0 < 5
        assert f"in use by pid {holder.pid}" in r.stderr and "(copy)" in r.stderr, r.stderr
        assert "unreachable" not in r.stderr and "answered nothing" not in r.stderr
    finally:
        holder.kill()
        holder.wait()


def test_a_config_error_comes_before_the_lock(tmp_path, world):
    g, nc, env = world
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "state" / "migration.db")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        (tmp_path / "mappings" / "users.csv").write_text("source_upn,target_user,batch\nnot-an-upn,alice,\n")
        r = run_cli("copy", cwd=tmp_path, env=env)
        assert r.returncode == 2 and "users.csv:2" in r.stderr and "in use by" not in r.stderr, r.stderr
    finally:
        holder.kill()
        holder.wait()


# --- read-only state ----------------------------------------------------------------------------------------------
def read_only(folder: Path, *args: str) -> list[str]:
    """Run `args` with `folder` bind-mounted read-only in a private mount namespace (root ignores chmod)."""
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    return ["unshare", "-m", "sh", "-c", script, str(folder), *args]


def _run_ro(folder: Path, tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).with_name("m365-migrate"))
    return subprocess.run(read_only(folder, exe, *args), cwd=tmp_path, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def can_mount():
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root (the suite runs as root)")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    assert probe.returncode == 0, f"unshare -m failed: {probe.stderr!r}"


def test_reading_commands_work_on_a_read_only_state_and_writers_refuse(tmp_path, world, can_mount):
    g, nc, env = world
    assert run_cli("plan", cwd=tmp_path, env=env).returncode in (0, 3)
    assert run_cli("copy", cwd=tmp_path, env=env).returncode == 0
    state = tmp_path / "state"
    assert not (state / "migration.db-wal").exists()   # closed cleanly: no -wal/-shm beside it (the hard case)
    for args in (("status",), ("--json", "status"), ("report", "inventory", "--format", "json"),
                 ("report", "plan", "-o", str(tmp_path / "out")), ("audit", "verify"),
                 ("audit", "export", "--format", "csv")):
        r = _run_ro(state, tmp_path, env, *args)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    r = _run_ro(state, tmp_path, env, "audit", "verify")
    assert "audit trail intact" in r.stdout
    for command in ("copy", "scan", "verify", "plan"):
        r = _run_ro(state, tmp_path, env, command)
        assert r.returncode == 2, (command, r.stdout, r.stderr)
        assert "read-only" in r.stderr and str(state) in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_folder_given_as_state_is_named_as_such(tmp_path, world):
    g, nc, env = world
    for args in (("status",), ("audit", "verify"), ("copy",)):
        r = run_cli("--state", str(tmp_path / "state"), *args, cwd=tmp_path, env=env)
        assert r.returncode == 2, r.stderr
        assert "is a folder" in r.stderr and "migration.db" in r.stderr and "damaged" not in r.stderr, r.stderr


# --- accounts that do not exist, credentials rows, exit codes, one message per cause ------------------------------
@pytest.mark.parametrize("command", ["scan", "copy"])
def test_a_wrong_client_secret_is_said_once_with_exit_4(tmp_path, world, command):
    g, nc, env = world
    r = run_cli(command, cwd=tmp_path, env={**env, "M365_CLIENT_SECRET": "wrong-secret-value"})
    assert r.returncode == 4, r.stdout + r.stderr
    assert (r.stdout + r.stderr).count("AADSTS7000215") == 1, r.stderr
    assert "wrong-secret-value" not in r.stdout + r.stderr



def test_doctor_names_every_mapped_account_missing_at_the_target(tmp_path, world):
    g, nc, env = world
    users = (tmp_path / "mappings" / "users.csv").read_text().splitlines()
    upn = users[1].split(",")[0]
    (tmp_path / "mappings" / "users.csv").write_text(
        "source_upn,target_user,batch\n" + f"{upn},dave,wave1\n")
    (tmp_path / "mappings" / "groups.csv").write_text("source_group,target_group\nStaff,staff\nOthers,nobody\n")
    r = run_cli("doctor", cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "[FAIL] mapped accounts" in r.stdout
    assert "users.csv:2: Nextcloud user 'dave' does not exist" in r.stdout, r.stdout
    assert "groups.csv:3: Nextcloud group 'nobody' does not exist" in r.stdout, r.stdout
    assert "'staff'" not in r.stdout


def test_a_service_account_without_credentials_row_is_exit_2_naming_it(tmp_path, world):
    g, nc, env = world
    creds = tmp_path / "pw.csv"
    creds.write_text("".join(line + "\n" for line in creds.read_text().splitlines() if not line.startswith("admin,")))
    for command in ("plan", "copy", "doctor"):
        r = run_cli(command, cwd=tmp_path, env=env)
        out = r.stdout + r.stderr
        assert r.returncode == 2, (command, out)
        assert "[target] service_account is 'admin'" in out and "credentials file has no row" in out, out
