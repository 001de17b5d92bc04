"""Source grants per item and the share each one is planned to become."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from typing import Any

from migrate.models import Grant
from migrate.store.base import StoreBase, utcnow


class PermissionsMixin(StoreBase):
    """Permission methods of the state store."""

    def replace_permissions(self, drive_id: str, item_id: str, grants: Iterable[Grant]) -> int:
        """Store the item's current grants, dropping ones that vanished at the source; plans of kept ones stay.

        A vanished grant whose share was made is kept, marked `source_removed`, until `sync` has removed the share
        (only when we created it) and drops the row."""
        now, keep = utcnow(), []
        with self.atomic():
            for g in grants:
                row = asdict(g)
                row["roles"] = ",".join(g.roles)
                cols = ", ".join([*row, "updated_at"])
                marks = ", ".join("?" for _ in range(len(row) + 1))
                sets = ", ".join(f"{k}=excluded.{k}" for k in [*row, "updated_at"]) + ", source_removed = 0"
                self.db.execute(
                    f"INSERT INTO permissions ({cols}) VALUES ({marks}) "
                    f"ON CONFLICT(drive_id, item_id, perm_id) DO UPDATE SET {sets}",
                    [*row.values(), now],
                )
                keep.append(g.perm_id)
            marks = ", ".join("?" for _ in keep) or "''"
            self.db.execute(
                "UPDATE permissions SET source_removed = 1, updated_at = ? WHERE drive_id = ? AND item_id = ? "
                f"AND perm_id NOT IN ({marks}) AND share_status = 'created' AND share_id IS NOT NULL",
                [now, drive_id, item_id, *keep],
            )
            self.db.execute(
                f"DELETE FROM permissions WHERE drive_id = ? AND item_id = ? AND perm_id NOT IN ({marks}) "
                "AND source_removed = 0",
                [drive_id, item_id, *keep],
            )
        return len(keep)

    def iter_permissions(self, drive_id: str | None = None) -> Iterator[dict[str, Any]]:
        sql = "SELECT * FROM permissions" + (" WHERE drive_id = ?" if drive_id else "") + " ORDER BY id"
        yield from self.query(sql, (drive_id,) if drive_id else ())

    def update_permission(self, row_id: int, **fields: Any) -> None:
        with self.atomic():
            self.db["permissions"].update(row_id, {**fields, "updated_at": utcnow()})

    def iter_share_rows(self, drive_ids: Iterable[str], page: int = 2000) -> Iterator[dict[str, Any]]:
        """Permission rows planned as 'create' on the given drives, with their item's status (for `share`)."""
        ids = list(drive_ids)
        if not ids:
            return
        marks = ", ".join("?" for _ in ids)
        sql = (
            "SELECT p.id, p.drive_id, p.item_id, p.perm_id, p.plan_detail, p.share_id, p.share_status, "
            "i.status AS item_status, i.is_folder AS item_is_folder "
            "FROM permissions p LEFT JOIN items i ON i.drive_id = p.drive_id AND i.item_id = p.item_id "
            f"WHERE p.drive_id IN ({marks}) AND p.plan_action = 'create' AND p.source_removed = 0 AND p.id > ? "
            f"ORDER BY p.id LIMIT {int(page)}"
        )
        for rows in self.keyset_pages(sql, tuple(ids)):
            for r in rows:
                r["plan_detail"] = json.loads(r["plan_detail"] or "{}")
            yield from rows

    def share_counts(self, drive_ids: Iterable[str]) -> dict[str, int]:
        """{share_status ('not started' when none yet): n} over the shares the plan says to create."""
        ids = list(drive_ids)
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        rows = self.query(
            "SELECT coalesce(share_status, 'not started') AS s, count(*) AS n FROM permissions "
            f"WHERE plan_action = 'create' AND source_removed = 0 AND drive_id IN ({marks}) GROUP BY s", tuple(ids))
        return {r["s"]: int(r["n"]) for r in rows}

    def share_failures(self, drive_ids: Iterable[str], limit: int = 20) -> list[dict[str, Any]]:
        """Planned shares not made for a reason a person must look at (refused, broader than the source)."""
        ids = list(drive_ids)
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        rows = self.query(
            "SELECT drive_id, item_id, share_status, share_error, plan_detail FROM permissions "
            f"WHERE plan_action = 'create' AND share_status IN ('failed', 'refused-broader', 'existing-broader') "
            f"AND drive_id IN ({marks}) ORDER BY updated_at DESC LIMIT ?", (*ids, int(limit)))
        for r in rows:
            d = json.loads(r.pop("plan_detail") or "{}")
            r["owner"], r["path"], r["share_with"] = d.get("owner"), d.get("path"), d.get("share_with") or "a link"
        return rows

    def record_share(self, row_id: int, status: str, *, share_id: str | None = None, error: str | None = None,
                     audit: tuple[str, str, dict[str, Any]] | None = None) -> None:
        """Set a row's share status (and id, and why when it is not made), with its audit record, in one
        transaction: never one without the other."""
        with self.atomic():
            self.db.execute("UPDATE permissions SET share_status = ?, share_id = ?, share_error = ?, updated_at = ? "
                            "WHERE id = ?", (status, share_id, error, utcnow(), row_id))
            if audit is not None:
                action, subject, detail = audit
                self.audit(action, subject, **detail)  # type: ignore[attr-defined]  # AuditMixin, same store
