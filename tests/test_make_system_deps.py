"""`make test`'s system-dependency step waits, bounded, for another apt/dpkg run's locks, then installs.

The Makefile's own recipe runs, with the lock paths and apt-get pointed at a temporary lock file and a stand-in
that records its calls: another process holds the lock with an fcntl lock, as apt and dpkg do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOLDER = """
import fcntl, sys, time
f = open(sys.argv[1], "w")
fcntl.lockf(f, fcntl.LOCK_EX)          # F_SETLK, the lock apt-get and dpkg take
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""
FAKE_APT = """#!/bin/sh
echo "DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-} $*" >> "$APT_LOG"
"""


def _hold(lock: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def _make(tmp_path: Path, lock: Path, wait: int) -> tuple[subprocess.CompletedProcess[str], float, Path]:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    apt = tmp_path / "apt-get"
    apt.write_text(FAKE_APT)
    apt.chmod(0o755)
    log = tmp_path / "apt.log"
    env = {**os.environ, "APT_LOG": str(log)}
    t0 = time.monotonic()
    r = subprocess.run(["make", "-C", str(ROOT), f"{venv}/.system-deps", f"VENV={venv}", "SUDO=",
                        f"PYTHON={sys.executable}", f"APT_GET={apt}", f"APT_LOCKS={lock}", f"APT_WAIT={wait}",
                        "SYSTEM_DEPS_MISSING=yes"], capture_output=True, text=True, env=env, timeout=120)
    return r, time.monotonic() - t0, log


def _make_while_held(tmp_path: Path, hold: float, wait: int):
    """Run the recipe while another process holds the lock for `hold` seconds; returns (result, seconds, apt
    log, (lock path, holder pid))."""
    lock = tmp_path / "lock-frontend"
    holder = _hold(lock, hold)
    try:
        return (*_make(tmp_path, lock, wait), (lock, holder.pid))
    finally:
        holder.kill()
        holder.wait()


def test_install_waits_for_the_lock_then_runs(tmp_path) -> None:
    r, took, log, (lock, pid) = _make_while_held(tmp_path, 2.5, wait=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert took >= 2.0, f"did not wait for the lock ({took:.1f} s)"
    assert f"holds {lock} by pid {pid}" in r.stderr
    calls = log.read_text().splitlines()
    assert calls[0].endswith(" update -qq")
    assert calls[1].startswith("DEBIAN_FRONTEND=noninteractive ")
    assert "-o DPkg::Lock::Timeout=60 install -y -qq --no-install-recommends apache2 apache2-utils chromium dovecot-imapd" \
        in calls[1]
    assert (tmp_path / "venv" / ".system-deps").exists()


def test_a_lock_held_past_the_bound_stops_with_who_holds_it(tmp_path) -> None:
    r, took, log, (lock, pid) = _make_while_held(tmp_path, 60, wait=1)
    assert r.returncode != 0
    assert took < 30
    assert f"still holds {lock} by pid {pid} (python" in r.stderr
    assert "nothing was installed" in r.stderr and "Traceback" not in r.stderr
    assert not log.exists(), "apt-get ran although the lock was held"
    assert not (tmp_path / "venv" / ".system-deps").exists()


def test_a_lock_taken_again_between_the_look_and_the_command_is_waited_for(tmp_path) -> None:
    """The command fails because another run took the lock again: wait for it, then run the command again."""
    lock = tmp_path / "lock"
    marker = tmp_path / "tries"
    # the first try takes the lock for 1.5 s in the background (another apt run starting), then fails
    command = (f"import subprocess, sys, pathlib; p = pathlib.Path({str(marker)!r}); n = int(p.read_text() or 0) "
               f"if p.exists() else 0; p.write_text(str(n + 1))\n"
               f"if n == 0:\n"
               f"    subprocess.Popen([sys.executable, '-c', {HOLDER!r}, {str(lock)!r}, '1.5'], "
               f"stdout=subprocess.PIPE).stdout.readline(); sys.exit(100)\n")
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "apt_wait.py"), "--timeout", "30", "--lock", str(lock),
                        "--", sys.executable, "-c", command], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert marker.read_text() == "2"
    assert time.monotonic() - t0 >= 1.0
    assert "took the lock again" in r.stderr
