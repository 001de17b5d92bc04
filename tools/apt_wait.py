"""Run an apt command once no other apt/dpkg run holds the package manager's locks, waiting a bounded time.

`make test` installs Apache and Chromium with apt-get. On a machine where unattended-upgrades or an admin's apt
run holds the dpkg frontend lock (or the lists lock), apt-get fails at once; this waits for the locks instead,
saying who holds them, then runs the command. A lock taken again between our look and apt's own (apt-get update
has no lock timeout of its own) makes the command fail while the lock is held: then it waits and runs it again,
within the same bound. Only the standard library: it runs before the virtual environment is installed.

    apt_wait.py [--timeout SECONDS] [--lock PATH]... -- COMMAND [ARG]...
"""

from __future__ import annotations

import argparse
import fcntl
import os
import struct
import subprocess
import sys
import time

LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock",
         "/var/cache/apt/archives/lock")
FLOCK = "hhqqi4x"          # struct flock on Linux: l_type, l_whence, l_start, l_len, l_pid (+ padding)
TIMED_OUT = 75             # EX_TEMPFAIL: try again later


def holder(path: str) -> int | None:
    """The pid holding a write lock on `path` (apt and dpkg use fcntl locks), asked with F_GETLK so the lock
    is never taken here (taking it would make the very apt run we wait for fail). None: free, or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None        # missing (never locked) or not ours to read: apt will say what is wrong
    try:
        query = struct.pack(FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        kind, _w, _s, _l, pid = struct.unpack(FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, query))
    except OSError:
        return None
    finally:
        os.close(fd)
    return None if kind == fcntl.F_UNLCK else pid


def process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def held(locks: list[str]) -> list[tuple[str, int]]:
    return [(p, pid) for p in locks if (pid := holder(p)) is not None]


def wait_free(locks: list[str], deadline: float, say_every: float = 10.0) -> list[tuple[str, int]]:
    """Wait until no lock is held or the deadline passes; returns what is still held (empty: go)."""
    last_said = 0.0
    while True:
        busy = held(locks)
        now = time.monotonic()
        if not busy or now >= deadline:
            return busy
        if now - last_said >= say_every:
            who = ", ".join(f"{p} by pid {pid} ({process_name(pid)})" for p, pid in busy)
            print(f"apt_wait: another package manager run holds {who}; waiting, at most {deadline - now:.0f} s "
                  "more", file=sys.stderr, flush=True)
            last_said = now
        time.sleep(min(1.0, max(0.05, deadline - now)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait at most (default 600)")
    parser.add_argument("--lock", action="append", help="a lock file to wait for (repeatable; default: apt's and "
                                                        "dpkg's)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    locks = args.lock or list(LOCKS)
    deadline = time.monotonic() + args.timeout
    while True:
        busy = wait_free(locks, deadline)
        if busy:
            who = ", ".join(f"{p} by pid {pid} ({process_name(pid)})" for p, pid in busy)
            print(f"apt_wait: after {args.timeout:.0f} s another package manager run still holds {who}. Let it "
                  f"finish (or stop it), then run the same command again; nothing was installed.", file=sys.stderr)
            return TIMED_OUT
        rc = subprocess.call(command)
        if rc == 0 or not held(locks) or time.monotonic() >= deadline:
            return rc
        print("apt_wait: the command failed while another run took the lock again; waiting for it",
              file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
