"""Items and their status: bulk upserts from the scanner and atomic state-machine transitions for the engine."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from migrate.errors import IllegalTransition
from migrate.models import ItemStatus
from migrate.store.base import StoreBase, utcnow
from migrate.store.states import check_transition

# Columns the scanner owns; status and target columns are never touched by a rescan.
SOURCE_COLUMNS = (
    "parent_id", "name", "path", "is_folder", "size", "mtime", "ctime", "quick_xor_hash", "sha1", "etag",
    "ctag", "mime_type", "package_type", "shared", "malware", "deleted", "scan_generation",
)


class ItemsMixin(StoreBase):
    """Item methods of the state store."""

    def upsert_items(self, drive_id: str, rows: Iterable[dict[str, Any]]) -> int:
        """Insert new items as pending and refresh the source columns of known ones, in one transaction.

        Keys of each row: `item_id` plus any of SOURCE_COLUMNS. Missing keys keep the stored value.
        """
        now, n = utcnow(), 0
        with self.atomic():
            for row in rows:
                cols = [c for c in SOURCE_COLUMNS if c in row]
                names = ", ".join(["drive_id", "item_id", *cols, "updated_at"])
                marks = ", ".join("?" for _ in range(len(cols) + 3))
                sets = ", ".join(f"{c}=excluded.{c}" for c in [*cols, "updated_at"])
                self.db.execute(
                    f"INSERT INTO items ({names}) VALUES ({marks}) "
                    f"ON CONFLICT(drive_id, item_id) DO UPDATE SET {sets}",
                    [drive_id, row["item_id"], *(row[c] for c in cols), now],
                )
                n += 1
        return n

    def item(self, drive_id: str, item_id: str) -> dict[str, Any] | None:
        return self.query_one("SELECT * FROM items WHERE drive_id = ? AND item_id = ?", (drive_id, item_id))

    def iter_items(
        self,
        drive_id: str | None = None,
        *,
        statuses: Iterable[str] = (),
        include_deleted: bool = False,
        files_only: bool = False,
        page: int = 2000,
    ) -> Iterator[dict[str, Any]]:
        """Stream items in primary-key order, one page at a time, so a large tenant never sits in memory."""
        where, params = ["id > ?"], [0]
        if drive_id is not None:
            where.append("drive_id = ?")
            params.append(drive_id)
        statuses = list(statuses)
        if statuses:
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params += statuses
        if not include_deleted:
            where.append("deleted = 0")
        if files_only:
            where.append("is_folder = 0")
        sql = f"SELECT * FROM items WHERE {' AND '.join(where)} ORDER BY id LIMIT {int(page)}"
        while True:
            rows = self.query(sql, params)
            if not rows:
                return
            yield from rows
            params[0] = rows[-1]["id"]

    def transition(
        self, drive_id: str, item_id: str, new: ItemStatus | str, *, expect: str | None = None, **fields: Any
    ) -> None:
        """Move one item to `new` (with extra column updates) if the state machine allows it, atomically.

        `expect`, when given, is the status the caller believes the item has; a different one raises, so two
        workers can never both claim an item.
        """
        with self.atomic():
            row = self.db.execute(
                "SELECT status FROM items WHERE drive_id = ? AND item_id = ?", (drive_id, item_id)
            ).fetchone()
            if row is None:
                raise IllegalTransition(f"item {drive_id}/{item_id} is not in the state database")
            old = row[0]
            if expect is not None and old != expect:
                raise IllegalTransition(f"item {drive_id}/{item_id}: expected status {expect}, found {old}")
            check_transition(old, new, what=f"item {drive_id}/{item_id}")
            fields = {**fields, "status": str(new), "updated_at": utcnow()}
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.db.execute(
                f"UPDATE items SET {sets} WHERE drive_id = ? AND item_id = ?",
                [*fields.values(), drive_id, item_id],
            )

    def update_item(self, drive_id: str, item_id: str, **fields: Any) -> None:
        """Change non-status columns (target path, notes); status changes go through `transition`."""
        if "status" in fields:
            raise IllegalTransition("use transition() to change an item's status")
        with self.atomic():
            fields["updated_at"] = utcnow()
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.db.execute(
                f"UPDATE items SET {sets} WHERE drive_id = ? AND item_id = ?", [*fields.values(), drive_id, item_id]
            )

    def status_counts(self, drive_id: str | None = None) -> dict[str, dict[str, int]]:
        """{status: {"files": n, "bytes": n}} over live files (folders are not counted)."""
        sql = (
            "SELECT status, count(*) AS files, coalesce(sum(size), 0) AS bytes FROM items "
            "WHERE deleted = 0 AND is_folder = 0" + (" AND drive_id = ?" if drive_id else "") + " GROUP BY status"
        )
        rows = self.query(sql, (drive_id,) if drive_id else ())
        return {r["status"]: {"files": r["files"], "bytes": r["bytes"]} for r in rows}

    def failures(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.query(
            "SELECT drive_id, item_id, path, status, attempts, last_error FROM items "
            "WHERE status IN ('failed', 'conflict') AND deleted = 0 ORDER BY updated_at DESC LIMIT ?",
            (limit,),
        )
