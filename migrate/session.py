"""One command's run as a library object: the locked state store, the run record and its final status."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.errors import MigrateError
from migrate.store import RunLock, StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which drives a command works on (`--batch`, `--drive`, `--user`); empty means all."""

    batches: tuple[str, ...] = ()
    drive_ids: tuple[str, ...] = ()
    users: tuple[str, ...] = ()

    def drives(self, store: StateStore) -> list[dict[str, Any]]:
        return store.drives(drive_ids=self.drive_ids, batches=self.batches, owners=self.users)


@dataclass
class Run:
    """Open with `with Run(path, "scan") as run:`; a second run on the same database fails fast (LockedError)."""

    state_path: Path
    command: str
    args: dict[str, Any] = field(default_factory=dict)
    store: StateStore = field(init=False)
    summary: dict[str, Any] = field(default_factory=dict)
    _lock: RunLock | None = field(default=None, init=False)

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
            self.store.start_run(self.command, self.args)
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
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
        try:
            if self.store.run_id is not None:
                self.store.finish_run(self.store.run_id, status, self.summary)
            self.store.close()
        finally:
            if self._lock:
                self._lock.release()
