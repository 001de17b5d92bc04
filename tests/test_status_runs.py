"""`status` tells a running run from a dead one: a `copy` killed with -9 shows as interrupted, with when and the
command that resumes it, in text and `--json`; the next run records it as interrupted for good."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from migrate.sandbox.graph import TenantSpec
from migrate.status import resume_command
from tests.conftest import run_cli
from tests.copy_support import SPEC, db, nextcloud_target, setup_migration


def _writes(nc, start: int) -> int:
    return sum(1 for m, _p, _s in nc.requests[start:] if m in ("PUT", "POST"))


def test_a_killed_copy_is_shown_as_interrupted_with_the_command_that_resumes_it(tmp_path, graph_sandbox_factory,
                                                                                 nextcloud_sandbox):
    g = graph_sandbox_factory(TenantSpec(**{**SPEC, "files_per_drive": 30}))
    nc = nextcloud_sandbox
    env, _ = setup_migration(tmp_path, g, target=nextcloud_target(tmp_path, nc), transfer="workers = 2")
    g.faults.set(route="download", bytes_per_second=100_000)      # slow: the copy is caught mid-way
    exe = Path(sys.executable).with_name("m365-migrate")
    start = len(nc.requests)
    p = subprocess.Popen([str(exe), "copy", "--batch", "wave1"], cwd=tmp_path, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and p.poll() is None and _writes(nc, start) < 2:
            time.sleep(0.05)
        assert p.poll() is None, "the copy finished before the checks; slow it down"

        # alive: running, and the next step says so
        live = run_cli("status", "--json", cwd=tmp_path, env=env)
        assert live.returncode == 0, live.stderr
        data = json.loads(live.stdout)
        run = data["recent_runs"][0]
        assert (run["command"], run["status"], run["alive"], run["pid"]) == ("copy", "running", True, p.pid)
        assert "`copy` is running" in data["next_step"] and str(p.pid) in data["next_step"]
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    g.faults.clear()

    # dead: interrupted, when, and how to resume, in --json …
    r = run_cli("status", "--json", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    run = data["recent_runs"][0]
    assert (run["command"], run["status"], run["alive"]) == ("copy", "interrupted", False)
    assert run["interrupted_at"] >= run["started_at"]
    assert run["resume"] == "m365-migrate copy --batch wave1"
    assert data["next_step"].startswith("`copy` was interrupted at ")
    assert data["next_step"].endswith("run `m365-migrate copy --batch wave1` again to resume")
    assert "plan" not in data["next_step"]
    # … and in text
    text = run_cli("status", cwd=tmp_path, env=env)
    assert text.returncode == 0, text.stderr
    assert "(running)" not in text.stdout
    assert f"last run: copy interrupted at {run['interrupted_at']}" in text.stdout
    assert f"its process, pid {p.pid} on" in text.stdout and "is gone" in text.stdout
    assert "next: `copy` was interrupted at" in text.stdout
    with db(tmp_path) as s:
        assert s.runs()[0]["status"] == "running", "status only reads; the record stays as the dead run left it"

    # the next run records the dead one as interrupted (it holds the lock, so nothing else can be running)
    again = run_cli("copy", "--batch", "wave1", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    with db(tmp_path) as s:
        latest, dead = s.runs()[:2]
    assert (latest["command"], latest["status"]) == ("copy", "ok")
    assert (dead["pid"], dead["status"]) == (p.pid, "interrupted")
    assert dead["ended_at"] == run["interrupted_at"]
    after = json.loads(run_cli("status", "--json", cwd=tmp_path, env=env).stdout)
    assert after["recent_runs"][0]["status"] == "ok" and "interrupted" not in after["next_step"]


def test_an_interrupted_run_after_ctrl_c_says_how_to_go_on(tmp_path) -> None:
    """Ctrl-C records the run as interrupted itself; status says so the same way."""
    from migrate.session import Run

    state = tmp_path / "state" / "migration.db"
    try:
        with Run(state, "sync", {"batch": ["wave1", "wave2"], "drive": [], "user": ["a@x.org"]}):
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    (tmp_path / "m365-migrate.toml").write_text("")
    r = run_cli("--state", str(state), "status", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(r.stdout)
    assert data["recent_runs"][0]["status"] == "interrupted"
    assert data["next_step"].endswith(
        "run `m365-migrate sync --batch wave1 --batch wave2 --user a@x.org` again to resume")


def test_resume_command_for_groupware_and_other_steps() -> None:
    assert resume_command("copy-calendars+contacts", {"user": ["a@x.org"]}) == \
        "m365-migrate copy --what calendars,contacts --user a@x.org"
    assert resume_command("cutover", {"batch": "pilot"}) == "m365-migrate cutover --batch pilot"
