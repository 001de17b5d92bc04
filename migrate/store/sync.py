"""What we placed where, and the changes `sync` finds and applies: queries over the placed_* columns.

The placed_* columns are filled by a trigger the moment an item becomes `verified` (store/schema.py m005), and
changed here only by `sync`, which moves, replaces or deletes our own writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from migrate.store.base import DK_OF, StoreBase, utcnow

# A live item whose source differs from what we copied, a deleted one we placed, or one never placed.
_CONTENT_CHANGED = ("(i.is_folder = 0 AND (i.size IS NOT i.placed_source_size "
                    "OR i.quick_xor_hash IS NOT i.placed_source_hash "
                    "OR abs(coalesce(i.mtime, 0) - coalesce(i.placed_source_mtime, 0)) >= 1))")
_MOVED = "(i.path IS NOT i.placed_source_path)"
_RELAID = "(i.target_path IS NOT i.placed_path OR i.target_user IS NOT i.placed_user)"
_WAITING = {
    "deleted": "i.deleted = 1 AND i.placed_path IS NOT NULL",
    "new": "i.deleted = 0 AND i.placed_path IS NULL AND i.status IN ('pending', 'failed') AND i.parent_id IS NOT NULL",
    "moved": f"i.deleted = 0 AND i.placed_path IS NOT NULL AND i.parent_id IS NOT NULL AND {_MOVED}",
    "edited": f"i.deleted = 0 AND i.placed_path IS NOT NULL AND {_CONTENT_CHANGED}",
}


class SyncMixin(StoreBase):
    """Sync methods of the state store."""

    def iter_sync_candidates(self, drive_id: str, page: int = 2000) -> Iterator[dict[str, Any]]:
        """Items of a drive whose target may have to change: new, moved or renamed (at the source or by the
        layout), edited, or deleted since we placed them. Paged by id; the drive root is left out."""
        where = " OR ".join(f"({w})" for w in (*_WAITING.values(),
                                                f"i.deleted = 0 AND i.placed_path IS NOT NULL AND {_RELAID}"))
        sql = (f"SELECT i.* FROM items i WHERE i.dk = {DK_OF} AND ({where}) AND i.parent_id IS NOT NULL "
               f"AND i.id > ? ORDER BY i.id LIMIT {int(page)}")
        for rows in self.keyset_pages(sql, (drive_id,)):
            yield from rows

    def waiting_changes(self, drive_id: str) -> dict[str, int]:
        """Changes recorded by `scan` that `sync` has not applied yet: {new, moved, edited, deleted}."""
        cols = ", ".join(f"coalesce(sum(CASE WHEN {w} THEN 1 ELSE 0 END), 0) AS {k}" for k, w in _WAITING.items())
        row = self.query_one(f"SELECT {cols} FROM items i WHERE i.dk = {DK_OF}", (drive_id,))
        return {k: int(row[k]) if row else 0 for k in _WAITING}

    def waiting_items(self, drive_ids: Iterable[str], limit: int = 200) -> list[dict[str, Any]]:
        """Up to `limit` items with a change `sync` has not applied, with the kind of change (for reports)."""
        ids = list(drive_ids)
        if not ids:
            return []
        kind = "CASE " + " ".join(f"WHEN {w} THEN '{k}'" for k, w in _WAITING.items()) + " END"
        marks = ", ".join("?" for _ in ids)
        return self.query(
            f"SELECT * FROM (SELECT i.drive_id, i.item_id, i.path, i.is_folder, i.size, {kind} AS change "
            f"FROM items i WHERE i.dk IN (SELECT dk FROM drives WHERE id IN ({marks}))) WHERE change IS NOT NULL LIMIT ?", (*ids, int(limit)))

    # sharing changes -------------------------------------------------------------------------------------------
    def drives_shared_before(self, drive_ids: Iterable[str]) -> list[str]:
        """Drives whose planned shares `share` has already worked on (some planned share has a status)."""
        ids = list(drive_ids)
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        rows = self.query(f"SELECT DISTINCT drive_id FROM planned_shares WHERE drive_id IN ({marks}) "
                          "AND status IS NOT NULL ORDER BY drive_id", ids)
        return [r["drive_id"] for r in rows]

    def audit_head(self) -> dict[str, Any]:
        """The last audit record's sequence number and hash: names the exact trail a report was made with."""
        row = self.query_one("SELECT seq, ts, hash FROM audit ORDER BY seq DESC LIMIT 1")
        return dict(row) if row else {"seq": 0, "ts": None, "hash": None}

    def placed_at_path(self, user: str, path: str) -> dict[str, Any] | None:
        """The item we placed at `user:path`, if any."""
        return self.query_one("SELECT * FROM items WHERE placed_user IS ? AND placed_path = ? LIMIT 1",
                              (user, path))

    def placed_below(self, user: str, folder: str) -> list[dict[str, Any]]:
        """Every item we placed inside `user:folder` (not the folder itself)."""
        return self.query("SELECT * FROM items WHERE placed_user IS ? AND substr(placed_path, 1, ?) = ?",
                          (user, len(folder) + 1, folder + "/"))

    def set_placed(self, drive_id: str, item_id: str, **fields: Any) -> None:
        """Update placed_* facts after sync moved or replaced an item (keys without the `placed_` prefix)."""
        cols = {f"placed_{k}": v for k, v in fields.items()}
        cols["updated_at"] = utcnow()
        with self.atomic():
            self.db.execute(f"UPDATE items SET {', '.join(f'{k} = ?' for k in cols)} "
                            f"WHERE dk = {DK_OF} AND item_id = ?", [*cols.values(), drive_id, item_id])

    def release_placed(self, drive_id: str, item_id: str) -> None:
        """Forget that we placed this item (deleted by us, kept under policy, or now a person's file)."""
        with self.atomic():
            self.db.execute("UPDATE items SET placed_user = NULL, placed_path = NULL, placed_etag = NULL, "
                            f"updated_at = ? WHERE dk = {DK_OF} AND item_id = ?", (utcnow(), drive_id, item_id))

    def move_placed_prefix(self, user: str, old: str, new: str) -> int:
        """A folder we placed at `old` is now at `new`: so is everything we placed inside it."""
        with self.atomic():
            return int(self.db.execute(
                "UPDATE items SET placed_path = ? || substr(placed_path, ?), updated_at = ? "
                "WHERE placed_user IS ? AND substr(placed_path, 1, ?) = ?",
                (new, len(old) + 1, utcnow(), user, len(old) + 1, old + "/")).rowcount)

    def release_placed_below(self, user: str, folder: str) -> int:
        """A folder of ours is gone (deleted by us or by a person): nothing inside it is placed any more."""
        with self.atomic():
            return int(self.db.execute(
                "UPDATE items SET placed_user = NULL, placed_path = NULL, placed_etag = NULL, updated_at = ? "
                "WHERE placed_user IS ? AND (placed_path = ? OR substr(placed_path, 1, ?) = ?)",
                (utcnow(), user, folder, len(folder) + 1, folder + "/")).rowcount)

    def pin_name(self, drive_id: str, item_id: str, name: str | None, target_path: str | None = None) -> None:
        """Keep `name` as this item's target name (a conflict name), whatever later layouts compute."""
        fields: dict[str, Any] = {"pinned_name": name, "updated_at": utcnow()}
        if target_path is not None:
            fields["target_path"] = target_path
        with self.atomic():
            self.db.execute(f"UPDATE items SET {', '.join(f'{k} = ?' for k in fields)} "
                            f"WHERE dk = {DK_OF} AND item_id = ?", [*fields.values(), drive_id, item_id])

    def settle_source_paths(self, drive_id: str) -> int:
        """Items whose target already matches (e.g. an NFC/NFD rename, a renamed drive root) need no MOVE: their
        placed source path follows the source, so they stop counting as waiting."""
        with self.atomic():
            return int(self.db.execute(
                f"UPDATE items SET placed_source_path = path WHERE dk = {DK_OF} AND deleted = 0 "
                "AND placed_path IS NOT NULL AND path IS NOT placed_source_path AND target_path IS placed_path "
                "AND target_user IS placed_user", (drive_id,)).rowcount)

    def record_change(self, drive_id: str, item_id: str, kind: str, outcome: str, *, is_folder: bool = False,
                      source_path: str = "", user: str = "", from_path: str | None = None,
                      to_path: str | None = None, **detail: Any) -> None:
        with self.atomic():
            self.db.execute(
                "INSERT INTO sync_changes (run_id, drive_id, item_id, kind, is_folder, source_path, target_user, "
                "from_path, to_path, outcome, detail, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (getattr(self, "run_id", None), drive_id, item_id, kind, int(is_folder), source_path, user or "",
                 from_path, to_path, outcome, json.dumps(detail, sort_keys=True, default=str), utcnow()))

    def sync_changes(self, run_ids: Iterable[int] = (), outcomes: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Recorded changes (all runs, or the given ones), with `detail` decoded."""
        where, params = [], []
        for col, values in (("run_id", list(run_ids)), ("outcome", list(outcomes))):
            if values:
                where.append(f"{col} IN ({', '.join('?' for _ in values)})")
                params += values
        rows = self.query("SELECT * FROM sync_changes" + (" WHERE " + " AND ".join(where) if where else "")
                          + " ORDER BY id", params)
        for r in rows:
            r["detail"] = json.loads(r["detail"] or "{}")
        return rows
