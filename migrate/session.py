"""One command's run as a library object: the locked state store, the run record and its final status."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.errors import MigrateError, StateError
from migrate.store import RunLock, StateStore
from migrate.transport import interrupt

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which drives a command works on (`--batch`, `--drive`, `--user`); empty means all."""

    batches: tuple[str, ...] = ()
    drive_ids: tuple[str, ...] = ()
    users: tuple[str, ...] = ()

    def drives(self, store: StateStore) -> list[dict[str, Any]]:
        return store.drives(drive_ids=self.drive_ids, batches=self.batches, owners=self.users)

    def to_scan(self, store: StateStore) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(drives to scan, drives left out): a drive whose mapping row has a blank target is not migrated, so
        reading it spends Graph resource units on data that will not move; it is scanned only when named
        (--drive, --user)."""
        named = set(self.drive_ids) | {u.lower() for u in self.users}
        scan, left_out = [], []
        for d in self.drives(store):
            if d.get("not_migrated") and d["id"] not in named and (d["owner_upn"] or "").lower() not in named:
                left_out.append(d)
            else:
                scan.append(d)
        return scan, left_out


@dataclass
class Run:
    """Open with `with Run(path, "scan") as run:`; a second run on the same database fails fast (LockedError)."""

    state_path: Path
    command: str
    args: dict[str, Any] = field(default_factory=dict)
    store: StateStore = field(init=False)
    summary: dict[str, Any] = field(default_factory=dict)
    source: Any = None   # a Graph source: its requests are paced to the tenant's budget, its books kept with the run
    budget: Any = field(default=None, init=False)
    _lock: RunLock | None = field(default=None, init=False)
    _unregister: Any = field(default=None, init=False, repr=False)

    def __enter__(self) -> Run:
        self._lock = RunLock(self.state_path, self.command).acquire()
        try:
            self.store = StateStore(self.state_path)
            if self._lock.stale_from:
                holder = self._lock.stale_from
                log.warning(
                    "took over a stale lock left by pid %s on %s (%s, since %s)",
                    holder.get("pid"), holder.get("host"), holder.get("command"), holder.get("since"),
                )
            self.store.close_dead_runs()         # we hold the lock: a run still marked running is dead
            self.store.start_run(self.command, self.args)
            if self.source is not None:
                from migrate.engine import meter

                self.budget = meter.start(self.store, self.source, getattr(self.source, "source_settings", None))
        except BaseException as exc:
            if "store" in self.__dict__ and self.store.run_id is not None:
                self.__exit__(type(exc), exc, exc.__traceback__)   # the run is recorded as failed, not 'running'
            else:
                self._lock.release()
            raise
        self._unregister = interrupt.on_hard_exit(self._abandon)
        return self

    def _abandon(self) -> None:
        """On a hard exit after Ctrl-C (workers still waiting on the network): record the run as interrupted,
        if the store is free within a second; the lock goes with the process either way."""
        if self.store.run_id is not None:
            self.store.finish_run_if_free(self.store.run_id, "interrupted", self.summary, timeout=1.0)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if self._unregister is not None:
            self._unregister()
        if exc_type is None:
            status = "attention" if self.summary.get("attention") else "ok"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "interrupted"
        elif isinstance(exc, MigrateError):
            status = "failed"
            self.summary.setdefault("error", str(exc).splitlines()[0])
        else:
            status = "crashed"
            self.summary.setdefault("error", f"{exc_type.__name__}: {exc}")
        if self.source is not None:
            from migrate.engine import meter

            files = self.summary.get("files_verified")
            self.summary["graph"] = meter.books(self.source, self.budget, files if isinstance(files, int) else None)
        try:
            if self.store.run_id is not None:
                self.store.finish_run(self.store.run_id, status, self.summary)
            self.store.close()
        finally:
            if self._lock:
                self._lock.release()


@contextmanager
def scratch_copy(state_path: Path, command: str) -> Iterator[Path]:
    """A throwaway copy of the state database, for a dry run that must leave the real one as it was (no run
    record, no refreshed plan, no change rows). Taken with SQLite's backup API (consistent under WAL) while the
    real database is locked, so no other run changes it meanwhile; the copy is deleted afterwards."""
    if not Path(state_path).exists():
        raise StateError(f"no state database at {state_path}",
                         hint="run `m365-migrate discover` first, or pass --state with the right path")
    lock = RunLock(Path(state_path), command).acquire()
    folder = Path(tempfile.mkdtemp(prefix="m365-migrate-dry-"))
    try:
        copy = folder / Path(state_path).name
        src = sqlite3.connect(f"file:{state_path}?mode=ro", uri=True)
        dst = sqlite3.connect(str(copy))
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        yield copy
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        lock.release()


@contextmanager
def state_for(state_path: Path, command: str, dry_run: bool) -> Iterator[Path]:
    """The database a command works on: the real one, or for a dry run a scratch copy (see scratch_copy)."""
    if not dry_run:
        yield state_path
        return
    with scratch_copy(state_path, f"{command} --dry-run") as copy:
        yield copy
