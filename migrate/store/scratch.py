"""What a target walk found, held in a temp table of the state database instead of in memory.

A plan refresh compares every planned path with what the target holds. Kept as a dict, a target that already
holds a million files (a re-run after weeks of pre-staging) costs several hundred MB; in a temp table (SQLite
spills it to a temp file) memory stays flat whatever the tree.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from migrate.models import RemoteEntry
from migrate.store.base import StoreBase

_TABLES = itertools.count(1)
_BATCH = 2000


class EntryTable:
    """A keyed set of RemoteEntry rows: `get(key)`, `key in table`, `len(table)`."""

    def __init__(self, store: StoreBase, name: str) -> None:
        self._store, self._name, self._n = store, name, 0

    def fill(self, entries: Iterable[RemoteEntry], key: Callable[[RemoteEntry], str]) -> None:
        """Add `entries` (streamed, written a batch at a time) under `key(entry)`; a repeated key keeps the last."""
        batch: list[tuple[Any, ...]] = []
        for e in entries:
            batch.append((key(e), e.path, int(e.is_folder), e.size, e.mtime, e.etag, "\n".join(e.checksums)))
            if len(batch) >= _BATCH:
                self._insert(batch)
                batch = []
        self._insert(batch)
        self._n = int(self._store.scalar(f"SELECT count(*) FROM temp.{self._name}"))

    def _insert(self, batch: list[tuple[Any, ...]]) -> None:
        if batch:
            with self._store.atomic() as db:
                db.conn.executemany(f"INSERT OR REPLACE INTO temp.{self._name} VALUES (?, ?, ?, ?, ?, ?, ?)", batch)

    def get(self, key: str) -> RemoteEntry | None:
        with self._store._lock:
            row = self._store.db.execute(f"SELECT path, is_folder, size, mtime, etag, checksums FROM temp.{self._name} "
                                         "WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return RemoteEntry(path=row[0], is_folder=bool(row[1]), size=row[2], mtime=row[3], etag=row[4],
                           checksums=tuple(c for c in (row[5] or "").split("\n") if c))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __len__(self) -> int:
        return self._n


class ScratchMixin(StoreBase):
    """Temp tables for one command's working sets that must not grow memory with the tenant."""

    @contextmanager
    def entry_table(self) -> Iterator[EntryTable]:
        name = f"entries_{next(_TABLES)}"
        with self._lock:
            self.db.execute(f"CREATE TEMP TABLE {name} (key TEXT PRIMARY KEY, path TEXT, is_folder INTEGER, "
                            "size INTEGER, mtime REAL, etag TEXT, checksums TEXT)")
        try:
            yield EntryTable(self, name)
        finally:
            with self._lock:
                self.db.execute(f"DROP TABLE IF EXISTS temp.{name}")
