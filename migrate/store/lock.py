"""A per-database run lock: a second run fails fast naming the holder; a dead holder's lock is taken over."""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import socket
from pathlib import Path

from migrate.errors import LockedError, StateError


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """An exclusive `flock` on `<db>.lock`, holding who/where/since as JSON for the next contender to read.

    The kernel drops a flock when its process dies, so a lock file left by a killed run is stale by
    construction; `stale_from` then names the previous holder so the takeover can be reported.
    """

    def __init__(self, db_path: Path, command: str = "") -> None:
        self.path = Path(str(db_path) + ".lock")
        self.command = command
        self._fd: int | None = None
        self.stale_from: dict | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise LockedError naming the holder; StateError when the location is read-only."""
        from migrate.store.base import read_only_state

        if self.path.with_suffix("").is_dir():
            raise StateError(f"the state database {self.path.with_suffix('')} is a folder",
                             hint=f"pass the database file itself, e.g. --state "
                             f"{self.path.with_suffix('') / 'migration.db'}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise read_only_state(self.path, exc) from None
            raise StateError(f"cannot create the lock file {self.path}: {exc.strerror}",
                             hint="check the --state path and its folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            who = (
                f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}"
                f" ({holder.get('command') or 'unknown command'})"
                if holder
                else "another process"
            )
            raise LockedError(
                f"state database {self.path.with_suffix('')} is in use by {who}",
                hint="wait for that run to finish (m365-migrate status shows its progress), or stop it; "
                "a run that was killed releases the lock by itself",
            ) from None
        previous = _read_holder(fd)
        if previous and previous.get("pid") != os.getpid():
            self.stale_from = previous
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": self.command,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def run_alive(run: dict, db_path: Path) -> bool | None:
    """Whether a run recorded as running still runs, read without touching the lock (a dashboard polling
    `status` must never make a starting run fail): False when the lock file no longer names its pid and host, or
    names them on this host and that pid is gone; None when it names another host (that host can tell)."""
    try:
        fd = os.open(Path(str(db_path) + ".lock"), os.O_RDONLY)
    except OSError:
        return False
    try:
        holder = _read_holder(fd)
    finally:
        os.close(fd)
    if not holder or holder.get("pid") != run.get("pid") or holder.get("host") != run.get("host"):
        return False
    if holder.get("host") != socket.gethostname():
        return None
    return bool(holder.get("alive"))


def _read_holder(fd: int) -> dict | None:
    try:
        raw = os.pread(fd, 4096, 0)
        data = json.loads(raw.decode()) if raw.strip() else None
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("host") == socket.gethostname():
        pid = data.get("pid")
        data["alive"] = isinstance(pid, int) and _pid_alive(pid)
    return data if isinstance(data, dict) else None
