"""Version history per file: the source versions listed, and what became of each at the target (issue 24)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from migrate.store.base import DK_OF, StoreBase, utcnow

VERSION_STATES = ("pending", "sent", "carried", "missing", "not-carried")


class VersionsMixin(StoreBase):
    """The `item_versions` table: one row per source version of a file, in replay order."""

    def versions_of(self, drive_id: str, item_id: str) -> list[dict[str, Any]]:
        """Every recorded version of one file, oldest first (the current one last)."""
        return self.query(f"SELECT * FROM item_versions WHERE dk = {DK_OF} AND item_id = ? ORDER BY seq",
                          (drive_id, item_id))

    def save_version_list(self, drive_id: str, item_id: str, rows: Iterable[dict[str, Any]]) -> None:
        """Replace the recorded listing of one file (oldest first); rows carry version_id, current, mtime, size,
        author, source_etag, status and reason. Rows already carried keep their state when listed again."""
        dk = self.drive_key(drive_id)
        with self.atomic():
            done = {r["version_id"]: r for r in self.query(
                "SELECT * FROM item_versions WHERE dk = ? AND item_id = ? AND status = 'carried'", (dk, item_id))}
            self.db.execute("DELETE FROM item_versions WHERE dk = ? AND item_id = ?", (dk, item_id))
            now = utcnow()
            for seq, r in enumerate(rows):
                old = done.get(r["version_id"])
                keep = old is not None and old["mtime"] == r["mtime"] and old["size"] == r["size"]
                self.db.execute(
                    "INSERT INTO item_versions (dk, item_id, seq, version_id, current, mtime, size, author, "
                    "source_etag, status, reason, sha1, label, target_mtime, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (dk, item_id, seq, r["version_id"], int(bool(r.get("current"))), r["mtime"], r["size"],
                     r.get("author") or "", r.get("source_etag"), "carried" if keep else r["status"],
                     None if keep else r.get("reason"), old["sha1"] if keep else None,
                     old["label"] if keep else None, old["target_mtime"] if keep else None, now))

    def set_version(self, drive_id: str, item_id: str, seq: int, **fields: Any) -> None:
        """Update one version row (status, reason, sha1, label, target_mtime)."""
        fields["updated_at"] = utcnow()
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.atomic():
            self.db.execute(f"UPDATE item_versions SET {sets} WHERE dk = {DK_OF} AND item_id = ? AND seq = ?",
                            [*fields.values(), drive_id, item_id, seq])

    def items_with_versions(self, drive_id: str, statuses: Iterable[str] = ("carried",)) -> Iterator[dict[str, Any]]:
        """Live files of the drive that have version rows in one of `statuses`, with the item's columns; found
        from the version rows (index on dk, status), so a drive's other items are never walked."""
        sts = list(statuses)
        yield from self._items_where(drive_id, f"status IN ({', '.join('?' for _ in sts)})", sts)

    def items_with_late_history(self, drive_id: str, late_prefix: str, settled_reason: str
                                ) -> Iterator[dict[str, Any]]:
        """Live files of the drive whose history may still go under them (engine.versions_late): a current row
        `sent` (interrupted), or an earlier row not carried for a reason starting with `late_prefix` or for a
        smaller N than now (a "beyond …" reason other than `settled_reason`, the one the policy in force gives)."""
        yield from self._items_where(
            drive_id, "((current = 1 AND status = 'sent') OR (current = 0 AND status = 'not-carried' AND "
            "(substr(reason, 1, ?) = ? OR (reason LIKE 'beyond [transfer] versions = %' AND reason != ?))))",
            [len(late_prefix), late_prefix, settled_reason])

    def _items_where(self, drive_id: str, cond: str, params: list[Any]) -> Iterator[dict[str, Any]]:
        ids_sql = (f"SELECT DISTINCT item_id FROM item_versions WHERE dk = {DK_OF} AND {cond} "
                   "AND item_id > ? ORDER BY item_id LIMIT 500")
        last = ""
        while True:
            ids = [r["item_id"] for r in self.query(ids_sql, (drive_id, *params, last))]
            if not ids:
                return
            yield from self.query(f"SELECT * FROM items WHERE dk = {DK_OF} AND deleted = 0 AND item_id IN "
                                  f"({', '.join('?' for _ in ids)}) ORDER BY item_id", (drive_id, *ids))
            last = ids[-1]

    def version_counts(self, drive_ids: Iterable[str] | None = None) -> dict[str, Any]:
        """Earlier versions by state (the current versions are counted by the items), and not carried by reason."""
        where, params = "v.current = 0", []
        ids = list(drive_ids) if drive_ids is not None else None
        if ids is not None:
            if not ids:
                return {"by_status": {}, "bytes": {}, "not_carried": {}, "missing": {}}
            where += f" AND v.dk IN (SELECT dk FROM drives WHERE id IN ({', '.join('?' for _ in ids)}))"
            params = ids
        rows = self.query(f"SELECT v.status, count(*) AS n, coalesce(sum(v.size), 0) AS b FROM item_versions v "
                          f"WHERE {where} GROUP BY v.status", params)
        why = self.query(f"SELECT v.status, v.reason, count(*) AS n FROM item_versions v WHERE {where} "
                         "AND v.status IN ('not-carried', 'missing') GROUP BY v.status, v.reason", params)
        return {"by_status": {r["status"]: r["n"] for r in rows}, "bytes": {r["status"]: r["b"] for r in rows},
                "not_carried": {r["reason"] or "": r["n"] for r in why if r["status"] == "not-carried"},
                "missing": {r["reason"] or "": r["n"] for r in why if r["status"] == "missing"}}

    def version_rows(self, drive_ids: Iterable[str], statuses: Iterable[str]) -> list[dict[str, Any]]:
        """Version rows in `statuses` with their item's path and target, for reports (bounded by the caller)."""
        ids, sts = list(drive_ids), list(statuses)
        if not ids or not sts:
            return []
        return self.query(
            "SELECT d.id AS drive_id, v.item_id, i.path, i.target_user, i.target_path, v.version_id, v.mtime, "
            "v.size, v.author, v.status, v.reason FROM item_versions v JOIN drives d ON d.dk = v.dk "
            "JOIN items i ON i.dk = v.dk AND i.item_id = v.item_id "
            f"WHERE d.id IN ({', '.join('?' for _ in ids)}) AND v.status IN ({', '.join('?' for _ in sts)}) "
            "AND v.current = 0 ORDER BY v.dk, v.item_id, v.seq LIMIT 10000", [*ids, *sts])

    def candidate_history(self, drive_ids: Iterable[str], statuses: Iterable[str] = ("pending", "failed", "conflict")
                          ) -> list[dict[str, Any]]:
        """Per drive: live files whose source facts allow earlier versions (etag/ctag counter above 1) and whose
        versions are not listed yet, with their bytes: what `plan` estimates from (versions.estimate)."""
        ids, sts = list(drive_ids), list(statuses)
        if not ids or not sts:
            return []
        return self.query(
            "SELECT d.id AS drive_id, i.item_id, i.size, i.etag, i.ctag, i.status, i.target_user FROM items i "
            f"JOIN drives d ON d.dk = i.dk WHERE d.id IN ({', '.join('?' for _ in ids)}) AND i.deleted = 0 "
            f"AND i.is_folder = 0 AND i.target_path IS NOT NULL AND i.status IN ({', '.join('?' for _ in sts)}) "
            "AND NOT EXISTS (SELECT 1 FROM item_versions v WHERE v.dk = i.dk AND v.item_id = i.item_id)", [*ids, *sts])

    def unlisted_history(self, drive_id: str, page: int = 500) -> Iterator[dict[str, Any]]:
        """Verified live files of one drive that have no version rows and whose tags do not say "never edited"
        (a counter of 1 in the cTag, or in the eTag when there is no cTag): what may still want its history put
        under it. Paged by rowid along the (dk, status) index, so memory stays flat whatever the drive's size."""
        never = ("(coalesce(i.ctag, '') LIKE '%,1\"' OR coalesce(i.ctag, '') LIKE '%,1' OR "
                 "(coalesce(i.ctag, '') = '' AND (coalesce(i.etag, '') LIKE '%,1\"' OR "
                 "coalesce(i.etag, '') LIKE '%,1')))")
        last = 0
        while True:
            rows = self.query(
                f"SELECT i.* FROM items i WHERE i.dk = {DK_OF} AND i.status = 'verified' AND i.id > ? "
                f"AND i.deleted = 0 AND i.is_folder = 0 AND i.target_path IS NOT NULL AND NOT {never} "
                "AND NOT EXISTS (SELECT 1 FROM item_versions v WHERE v.dk = i.dk AND v.item_id = i.item_id) "
                "ORDER BY i.id LIMIT ?", (drive_id, last, page))
            yield from rows
            if len(rows) < page:
                return
            last = rows[-1]["id"]

    def listed_history(self, drive_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Per drive and target user: listed earlier versions still to carry (pending/sent), count and bytes."""
        ids = list(drive_ids)
        if not ids:
            return []
        return self.query(
            "SELECT d.id AS drive_id, i.target_user, count(*) AS n, coalesce(sum(v.size), 0) AS bytes, "
            "count(DISTINCT v.item_id) AS files FROM item_versions v JOIN drives d ON d.dk = v.dk "
            "JOIN items i ON i.dk = v.dk AND i.item_id = v.item_id "
            f"WHERE d.id IN ({', '.join('?' for _ in ids)}) AND v.current = 0 AND v.status IN ('pending', 'sent') "
            "GROUP BY d.id, i.target_user", ids)
