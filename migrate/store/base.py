"""Opening the state database: WAL, migrations, one writer, and the small helpers every table module uses."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from migrate.errors import StateError
from migrate.store.schema import migrations


# A drive's items are found by its small integer key (`items.dk`, see schema m012), never by the long Graph id:
# `WHERE dk = (SELECT dk FROM drives WHERE id = ?)` takes the Graph id as its parameter and still uses the
# items indexes (SQLite evaluates the uncorrelated subquery once). Statements run once per row take the key
# itself (`StoreBase.drive_key`). `dk_of("p.drive_id")` is the same lookup for a column of another table.
def dk_of(drive_id_sql: str) -> str:
    return f"(SELECT dk FROM drives WHERE id = {drive_id_sql})"


DK_OF = dk_of("?")


def read_only_state(path: Path, exc: OSError | sqlite3.DatabaseError) -> StateError:
    """The refusal of a writing command whose state location cannot be written (read-only storage, rights)."""
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return StateError(f"the state location {Path(path).parent} is read-only ({why}): this command records its "
                      "progress there", hint="run it with --state on writable storage (copy the database there); "
                      "status, report and audit read a read-only copy as it is")


def open_error(path: Path, exc: sqlite3.DatabaseError) -> StateError:
    """What an SQLite error on opening means for the user: read-only storage, no access, or a damaged file."""
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text:
        return read_only_state(path, exc)
    if "unable to open" in text:
        return StateError(f"cannot open the state database {path}: {exc}",
                          hint="check that the file and its folder can be read (and, for commands that write, "
                          "written) by this user, and that the folder exists")
    return StateError(f"cannot open state database {path}: {exc}",
                      hint="check that the file is an m365-migrate state database and is not damaged")


def utcnow() -> str:
    """Timestamps in the store: ISO 8601, UTC, to the microsecond (sortable as text)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _private(path: Path) -> None:
    """The database holds names, paths and grants: create it 0600 (SQLite gives its -wal and -shm files the
    database's mode), and take group and world access away from one an earlier version created 0644."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except FileExistsError:
        pass
    except OSError:
        return  # not ours to create (read-only folder): sqlite3 says what is wrong
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if p.stat().st_mode & 0o077:
                p.chmod(0o600)
        except OSError:
            pass  # not there, or not ours to change


class StoreBase:
    """One connection shared by the threads of a run, with every write serialised by one lock.

    SQLite allows one writer at a time anyway; doing the serialisation here keeps transactions short and
    turns 'database is locked' from a random runtime failure into ordinary waiting.
    """

    _atomic_depth = 0  # atomic() blocks open (by the thread holding the lock)

    def __init__(self, path: Path, *, create: bool = True, readonly: bool = False) -> None:
        """Open (and migrate) the database; `readonly` for commands that only read it (status, reports, audit),
        which then work on a read-only copy too (an auditor's). Raises StateError naming what is wrong."""
        self.path = Path(path)
        if self.path.is_dir():
            raise StateError(f"the state database {self.path} is a folder",
                             hint=f"pass the database file itself, e.g. --state {self.path / 'migration.db'}")
        if (not create or readonly) and not self.path.exists():
            raise StateError(
                f"no state database at {self.path}",
                hint="run `m365-migrate discover` first, or pass --state with the right path",
            )
        self._lock = threading.RLock()
        self._drive_keys: dict[str, int] = {}
        self.readonly = readonly
        if readonly:
            self._open_readonly()
            return
        if str(self.path) != ":memory:":
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise read_only_state(self.path, exc) from None
            _private(self.path)
        try:
            conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
            conn.execute("PRAGMA busy_timeout = 30000")
            self.db = Database(conn)
            if str(self.path) != ":memory:":
                self.db.enable_wal()
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute("PRAGMA foreign_keys = ON")
            with self._lock:
                migrations.apply(self.db)
        except sqlite3.DatabaseError as exc:
            raise open_error(self.path, exc) from exc

    def _open_readonly(self) -> None:
        """`mode=ro` sees what a running writer committed; where SQLite cannot even keep its shared-memory file
        beside the database (read-only storage), the copy is opened as immutable: nobody can change it there."""
        uri = self.path.resolve().as_uri()
        last: sqlite3.DatabaseError | None = None
        for flags in ("mode=ro", "immutable=1"):
            try:
                conn = sqlite3.connect(f"{uri}?{flags}", uri=True, check_same_thread=False, timeout=30)
                conn.execute("PRAGMA busy_timeout = 30000")
                self.db = Database(conn)
                self.db.execute("PRAGMA foreign_keys = ON")
                pending = migrations.pending(self.db)
            except sqlite3.DatabaseError as exc:
                last = exc
                continue
            if pending:
                self.db.conn.close()
                raise StateError(f"the state database {self.path} was written by an older m365-migrate (schema "
                                 f"steps missing: {', '.join(m.name for m in pending)}); reading commands do not "
                                 "change it", hint="run a writing command (e.g. `m365-migrate plan`) on it once, "
                                 "or on a writable copy")
            return
        assert last is not None
        raise open_error(self.path, last)

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()

    def __enter__(self) -> StoreBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def atomic(self) -> Iterator[Database]:
        """One write transaction; nested calls join the outer one."""
        with self._lock, self.db.atomic():
            self._atomic_depth += 1
            try:
                yield self.db
            finally:
                self._atomic_depth -= 1

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self.db.execute(sql, params)
            cols = [c[0] for c in cur.description or ()]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def query_one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def keyset_pages(self, sql: str, params: tuple[Any, ...] = ()) -> Iterator[list[dict[str, Any]]]:
        """Pages of `sql`, whose last parameter is the `id > ?` bound and which orders by that id with a LIMIT:
        memory holds one page, never the table."""
        last = 0
        while True:
            rows = self.query(sql, (*params, last))
            if not rows:
                return
            yield rows
            last = rows[-1]["id"]

    def keyset_groups(self, sql: str, params: tuple[Any, ...], key: str,
                      start: tuple[Any, int]) -> Iterator[list[dict[str, Any]]]:
        """Runs of rows with the same `key` from `sql`, whose last two parameters are the `(key, id) > (?, ?)`
        bound and which orders by (key, id) with a LIMIT: memory holds one page plus one run."""
        last, group = start, []
        while True:
            rows = self.query(sql, (*params, *last))
            if not rows:
                break
            for r in rows:
                if group and r[key] != group[0][key]:
                    yield group
                    group = []
                group.append(r)
            last = (rows[-1][key], rows[-1]["id"])
        if group:
            yield group

    def drive_key(self, drive_id: str) -> int:
        """The drive's `dk` (fixed once the drive is recorded), for statements run per row (the scan's upserts)."""
        keys = self._drive_keys
        if drive_id not in keys:
            dk = self.scalar("SELECT dk FROM drives WHERE id = ?", (drive_id,))
            if dk is None:
                raise StateError(f"drive {drive_id} is not in the state database",
                                 hint="run `m365-migrate discover` first")
            keys[drive_id] = int(dk)
        return keys[drive_id]

    def scalar(self, sql: str, params: Any = ()) -> Any:
        with self._lock:
            row = self.db.execute(sql, params).fetchone()
        return row[0] if row else None
