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
        with self._temp_tables([name], [f"CREATE TEMP TABLE {name} (key TEXT PRIMARY KEY, path TEXT, "
                                        "is_folder INTEGER, size INTEGER, mtime REAL, etag TEXT, checksums TEXT)"]):
            yield EntryTable(self, name)

    @contextmanager
    def folder_table(self) -> Iterator[FolderTable]:
        """A layout's folders and their paths (FolderTable), dropped when the layout is done."""
        name = f"folders_{next(_TABLES)}"
        with self._temp_tables([name, f"{name}_groups", f"{name}_paths"], [
            f"CREATE TEMP TABLE {name} (item_id TEXT PRIMARY KEY, parent_id TEXT, name TEXT, "
            "left_out INTEGER NOT NULL DEFAULT 0)",
            f"CREATE INDEX temp.{name}_parent ON {name}(parent_id)",
            f"CREATE TEMP TABLE {name}_groups (parent_id TEXT PRIMARY KEY, top INTEGER)",
            f"CREATE TEMP TABLE {name}_paths (item_id TEXT PRIMARY KEY, path TEXT, why TEXT)",
        ]):
            yield FolderTable(self, name)

    @contextmanager
    def _temp_tables(self, names: list[str], ddl: list[str]) -> Iterator[None]:
        """Create temp tables for the length of a block, dropped however it ends."""
        with self._lock:
            for statement in ddl:
                self.db.execute(statement)
        try:
            yield
        finally:
            with self._lock:
                for t in names:
                    self.db.execute(f"DROP TABLE IF EXISTS temp.{t}")


class FolderTable:
    """The folders of one drive's layout (parent, target name, left out), then their target paths, in temp
    tables: a drive of a million items has ~150,000 folders, ~100 MB as Python dicts (layout_drive)."""

    def __init__(self, store: StoreBase, name: str) -> None:
        self._store, self._name = store, name
        self._folders: list[tuple[str, str, str, int]] = []
        self._groups: list[tuple[str, int]] = []

    def add_group(self, parent_id: str, top: bool, folders: Iterable[tuple[str, str, bool]]) -> None:
        """One sibling group: its parent, whether all its children sit at the drive root, and its folders as
        (item id, target name, left out)."""
        self._groups.append((parent_id, int(top)))
        self._folders += [(fid, parent_id, name, int(left_out)) for fid, name, left_out in folders]
        if len(self._folders) >= _BATCH or len(self._groups) >= _BATCH:
            self.flush()

    def rename(self, folders: Iterable[tuple[str, str]]) -> None:
        """New target names for (item id, name)."""
        self.flush()
        with self._store.atomic() as db:
            db.conn.executemany(f"UPDATE temp.{self._name} SET name = ?2 WHERE item_id = ?1", list(folders))

    def flush(self) -> None:
        with self._store.atomic() as db:
            db.conn.executemany(f"INSERT OR REPLACE INTO temp.{self._name} VALUES (?, ?, ?, ?)", self._folders)
            db.conn.executemany(f"INSERT OR REPLACE INTO temp.{self._name}_groups VALUES (?, ?)", self._groups)
        self._folders, self._groups = [], []

    def parents_not_folders(self, roots: set[str]) -> Iterator[tuple[str, bool]]:
        """(parent id, top) of every group whose parent is neither a folder of the drive nor in `roots`."""
        self.flush()
        rows = self._store.query(f"SELECT parent_id, top FROM temp.{self._name}_groups g WHERE NOT EXISTS "
                                 f"(SELECT 1 FROM temp.{self._name} f WHERE f.item_id = g.parent_id)")
        return ((r["parent_id"], bool(r["top"])) for r in rows if r["parent_id"] not in roots)

    def resolve_paths(self, roots: dict[str, str], gaps: dict[str, str], *, left_out_why: str) -> None:
        """Target path of every folder reachable from `roots` ({id: path}); below a gap ({id: why}) or a left
        out folder, path NULL and the reason. Paths join like layout._join."""
        n = self._name
        with self._store.atomic() as db:
            db.conn.executemany(f"INSERT OR REPLACE INTO temp.{n}_paths VALUES (?, ?, '')", list(roots.items()))
            db.conn.executemany(f"INSERT OR REPLACE INTO temp.{n}_paths VALUES (?, NULL, ?)", list(gaps.items()))
            db.conn.execute(
                f"""WITH RECURSIVE p(item_id, path, why, depth) AS (
                        SELECT item_id, path, why, 0 FROM temp.{n}_paths
                        UNION ALL
                        SELECT f.item_id,
                               CASE WHEN p.path IS NULL OR f.left_out THEN NULL
                                    WHEN f.name = '' THEN coalesce(nullif(p.path, ''), '/')
                                    ELSE rtrim(p.path, '/') || '/' || f.name END,
                               CASE WHEN p.path IS NULL THEN p.why WHEN f.left_out THEN ?1 ELSE '' END,
                               p.depth + 1
                          FROM p JOIN temp.{n} f ON f.parent_id = p.item_id
                         WHERE p.depth < 100000)
                    INSERT OR IGNORE INTO temp.{n}_paths SELECT item_id, path, why FROM p WHERE depth > 0""",
                (left_out_why,))

    def path(self, folder_id: str) -> tuple[str | None, str] | None:
        """(target path or None, why) of a folder, root or gap; None when it was not reached."""
        with self._store._lock:
            row = self._store.db.execute(f"SELECT path, why FROM temp.{self._name}_paths WHERE item_id = ?",
                                         (folder_id,)).fetchone()
        return None if row is None else (row[0], row[1])
