"""Source grants per item, each with its own plan (action and detail); planned shares are in store.shares."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict
from typing import Any

from migrate.models import Grant
from migrate.store.base import StoreBase, utcnow


class PermissionsMixin(StoreBase):
    """Permission methods of the state store."""

    def replace_permissions(self, drive_id: str, item_id: str, grants: Iterable[Grant]) -> int:
        """Store the item's current grants, dropping ones that vanished at the source; plans of kept ones stay."""
        now, keep = utcnow(), []
        with self.atomic():
            for g in grants:
                row = asdict(g)
                row["roles"] = ",".join(g.roles)
                cols = ", ".join([*row, "updated_at"])
                marks = ", ".join("?" for _ in range(len(row) + 1))
                sets = ", ".join(f"{k}=excluded.{k}" for k in [*row, "updated_at"])
                self.db.execute(
                    f"INSERT INTO permissions ({cols}) VALUES ({marks}) "
                    f"ON CONFLICT(drive_id, item_id, perm_id) DO UPDATE SET {sets}",
                    [*row.values(), now],
                )
                keep.append(g.perm_id)
            marks = ", ".join("?" for _ in keep) or "''"
            self.db.execute(
                f"DELETE FROM permissions WHERE drive_id = ? AND item_id = ? AND perm_id NOT IN ({marks})",
                [drive_id, item_id, *keep],
            )
        return len(keep)

    def iter_permissions(self, drive_id: str | None = None) -> Iterator[dict[str, Any]]:
        sql = "SELECT * FROM permissions" + (" WHERE drive_id = ?" if drive_id else "") + " ORDER BY id"
        yield from self.query(sql, (drive_id,) if drive_id else ())

    def update_permission(self, row_id: int, **fields: Any) -> None:
        with self.atomic():
            self.db["permissions"].update(row_id, {**fields, "updated_at": utcnow()})
