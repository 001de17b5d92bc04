"""A second run on the same database fails fast naming the holder; a dead holder's lock is taken over."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migrate.errors import LockedError
from migrate.session import Run

HOLDER = """
import sys, time
from pathlib import Path
from migrate.session import Run
with Run(Path(sys.argv[1]), "copy"):
    print("locked", flush=True)
    time.sleep(60)
"""


def _start_holder(state_path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(state_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_process_fails_fast_naming_holder(state_path: Path) -> None:
    proc = _start_holder(state_path)
    try:
        t0 = time.monotonic()
        with pytest.raises(LockedError) as info, Run(state_path, "scan"):
            pass
        assert time.monotonic() - t0 < 2
        msg = str(info.value)
        assert f"pid {proc.pid}" in msg and socket.gethostname() in msg and "copy" in msg and "since" in msg
    finally:
        proc.kill()
        proc.wait()


def test_cli_exit_code_for_lock(state_path: Path, cli, tmp_path) -> None:
    proc = _start_holder(state_path)
    try:
        # status only reads and takes no lock; a write command would be refused (exit 2). Use a Run directly
        # through a tiny script to observe the exit code mapping at the CLI boundary.
        r = subprocess.run(
            [sys.executable, "-c",
             "import sys\nfrom migrate.cli import main\nfrom migrate.session import Run\nfrom pathlib import Path\n"
             "import migrate.cli as c\n"
             "@c.app.command('hold-test')\n"
             "def _h():\n    Run(Path(sys.argv[1]), 'x').__enter__()\n"
             "main(['hold-test'])", str(state_path)],
            capture_output=True, text=True, timeout=60,
        )
        assert r.returncode == 2, r.stderr
        assert "in use by pid" in r.stderr and "Traceback" not in r.stderr
    finally:
        proc.kill()
        proc.wait()


def test_killed_holder_leaves_a_stale_lock_that_is_taken_over(state_path: Path, caplog) -> None:
    proc = _start_holder(state_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    lockfile = Path(str(state_path) + ".lock")
    assert str(proc.pid) in lockfile.read_text()  # the dead holder's record is still there
    with caplog.at_level("WARNING"), Run(state_path, "scan") as run:
        assert run.store.run_id is not None
    assert f"stale lock left by pid {proc.pid}" in caplog.text


def test_lock_released_after_a_run(state_path: Path) -> None:
    with Run(state_path, "scan"):
        pass
    with Run(state_path, "copy") as run:
        runs = run.store.runs()
    assert [r["command"] for r in runs] == ["copy", "scan"]
    assert runs[1]["status"] == "ok"
