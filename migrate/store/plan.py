"""Queries the plan step needs: siblings grouped by folder, bulk target updates, per-drive plan totals."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from migrate.store.base import DK_OF, StoreBase, utcnow

_CHILD_COLS = "id, item_id, parent_id, name, path, is_folder, size, sha1, package_type, malware, status, " \
              "target_user, target_path, target_etag, last_error, shared"
# The facts of an item the layout reads, first its parent: an item whose value differs from its `laid_sig` has
# changed since the last layout (new, renamed, moved, deleted, edited).
LAID_SIG = ("coalesce(parent_id, '') || char(31) || name || char(31) || deleted || char(31) || is_folder || "
            "char(31) || malware || char(31) || coalesce(package_type, '') || char(31) || size")


class PlanMixin(StoreBase):
    """Plan methods of the state store."""

    def iter_sibling_groups(self, drive_id: str, page: int = 5000) -> Iterator[tuple[str | None, list[dict[str, Any]]]]:
        """(parent_id, live children) for every folder of a drive, one folder at a time, the root's first.

        Pages by (parent_id, id), the order of the items_drive_parent index, so memory holds one page plus the
        folder being assembled, never the drive, and each page is one index range (ordering by an expression
        of parent_id instead sorted the whole drive for every page, which grew with the square of the drive).
        """
        roots = self.query(f"SELECT {_CHILD_COLS} FROM items WHERE dk = {DK_OF} AND deleted = 0 "
                           "AND parent_id IS NULL ORDER BY id", (drive_id,))
        if roots:
            yield None, roots
        del roots
        sql = (
            f"SELECT {_CHILD_COLS}, parent_id AS pkey FROM items "
            f"WHERE dk = {DK_OF} AND deleted = 0 AND (parent_id, id) > (?, ?) "
            f"ORDER BY parent_id, id LIMIT {int(page)}"
        )
        for group in self.keyset_groups(sql, (drive_id,), "pkey", ("", -1)):
            yield group[0]["parent_id"], group

    def set_targets(self, rows: Iterable[tuple[str | None, str | None, int]], *, laid: bool = False) -> int:
        """Bulk update of (target_user, target_path, row id); one transaction per call.

        An item with a pinned name (a conflict name `sync` gave it beside a person's file) keeps that name in
        whatever folder the layout puts it. `laid`: the layout computed these, so record what it saw (LAID_SIG)
        and the path before the pin, for the next incremental layout."""
        now = utcnow()
        params = [(user, path, now, row_id) for user, path, row_id in rows]
        laid_cols = f", laid_path = ?2, laid_sig = {LAID_SIG}" if laid else ""
        with self.atomic():
            self.db.conn.executemany(
                "UPDATE items SET target_user = ?1, target_path = CASE WHEN pinned_name IS NOT NULL "
                "AND ?2 IS NOT NULL AND instr(?2, '/') > 0 THEN rtrim(?2, replace(?2, '/', '')) || pinned_name "
                f"ELSE ?2 END, updated_at = ?3{laid_cols} WHERE id = ?4",
                params,
            )
        return len(params)

    def unlaid(self, drive_id: str) -> list[dict[str, Any]]:
        """Items whose layout facts changed since the last layout (with the parent they were laid under)."""
        return self.query(f"SELECT id, item_id, parent_id, deleted, is_folder, laid_sig FROM items "
                          f"WHERE dk = {DK_OF} AND laid_sig IS NOT {LAID_SIG} AND NOT (deleted = 1 AND laid_sig "
                          "IS NULL)", (drive_id,))

    def sibling_group(self, drive_id: str, parent_id: str) -> list[dict[str, Any]]:
        """The live children of one folder, in the order a full layout reads them."""
        return self.query(f"SELECT {_CHILD_COLS}, laid_path FROM items WHERE dk = {DK_OF} AND deleted = 0 "
                          "AND parent_id = ? ORDER BY id", (drive_id, parent_id))

    def live_item(self, drive_id: str, item_id: str) -> dict[str, Any] | None:
        return self.query_one(f"SELECT item_id, parent_id, is_folder, laid_path FROM items WHERE dk = {DK_OF} "
                              "AND item_id = ? AND deleted = 0", (drive_id, item_id))

    def mark_laid(self, drive_id: str, digest: str) -> None:
        """After a layout: deleted items are laid as deleted, and the drive remembers the settings' digest."""
        with self.atomic():
            self.db.execute(f"UPDATE items SET laid_sig = {LAID_SIG}, laid_path = NULL WHERE dk = {DK_OF} "
                            f"AND deleted = 1 AND laid_sig IS NOT {LAID_SIG}", (drive_id,))
            self.db.execute("UPDATE drives SET laid_digest = ? WHERE id = ?", (digest, drive_id))

    def laid_digest(self, drive_id: str) -> str | None:
        return self.scalar("SELECT laid_digest FROM drives WHERE id = ?", (drive_id,))

    def clear_drive_targets(self, drive_id: str) -> None:
        """A drive that is not (or no longer) migrated: no item keeps a target (copy then leaves them alone)."""
        with self.atomic():
            self.db.execute(
                f"UPDATE items SET target_user = NULL, target_path = NULL WHERE dk = {DK_OF} AND status = 'pending'",
                (drive_id,),
            )
            self.db.execute("UPDATE drives SET laid_digest = NULL WHERE id = ?", (drive_id,))  # lay it out whole next

    def drive_totals(self, drive_id: str) -> dict[str, int]:
        """Live files and bytes of a drive, what has a target path, folders, and items with the shared facet."""
        row = self.query_one(
            "SELECT "
            "coalesce(sum(is_folder = 0), 0) AS files, coalesce(sum(CASE WHEN is_folder = 0 THEN size END), 0) AS bytes, "
            "coalesce(sum(is_folder = 0 AND target_path IS NOT NULL), 0) AS planned_files, "
            "coalesce(sum(CASE WHEN is_folder = 0 AND target_path IS NOT NULL THEN size END), 0) AS planned_bytes, "
            "coalesce(sum(is_folder = 1), 0) AS folders, coalesce(sum(shared = 1), 0) AS shared, "
            "coalesce(sum(is_folder = 0 AND status = 'verified'), 0) AS verified_files, "
            "coalesce(max(CASE WHEN is_folder = 0 THEN size END), 0) AS largest "
            f"FROM items WHERE dk = {DK_OF} AND deleted = 0",
            (drive_id,),
        )
        return {k: int(v or 0) for k, v in (row or {}).items()}

    def set_permission_plans(self, rows: Iterable[tuple[str, dict[str, Any], int]]) -> int:
        """Bulk update of (plan_action, plan_detail as JSON, permission row id)."""
        now, n = utcnow(), 0
        with self.atomic():
            for action, detail, row_id in rows:
                self.db.execute(
                    "UPDATE permissions SET plan_action = ?, plan_detail = ?, updated_at = ? WHERE id = ?",
                    (action, json.dumps(detail, sort_keys=True, ensure_ascii=False), now, row_id),
                )
                n += 1
        return n

    def last_run_summary(self, command: str, statuses: tuple[str, ...] = ("ok", "attention")) -> dict[str, Any] | None:
        """The summary (parsed JSON) of the newest finished run of `command`, with its id and times."""
        marks = ", ".join("?" for _ in statuses)
        row = self.query_one(
            f"SELECT id, started_at, ended_at, summary FROM runs WHERE command = ? AND status IN ({marks}) "
            "ORDER BY id DESC LIMIT 1",
            (command, *statuses),
        )
        if row is None:
            return None
        return {"run_id": row["id"], "started_at": row["started_at"], "ended_at": row["ended_at"],
                "summary": json.loads(row["summary"] or "{}")}
