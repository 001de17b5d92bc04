"""Drives, discovered users and runs: the bookkeeping around the items."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from migrate.models import Drive
from migrate.store.base import DK_OF, StoreBase, utcnow

# enumerating = a full enumeration (first scan, --full, or after 410) whose unseen items become deleted
DRIVE_SCAN_STATES = ("new", "scanning", "enumerating", "scanned", "failed", "vanished")


class DrivesMixin(StoreBase):
    """Drive, user and run methods of the state store."""

    def upsert_drives(self, drives: Iterable[Drive]) -> int:
        """Record discovered drives; a rediscovered drive keeps its scan state, batch and target."""
        now, n = utcnow(), 0
        with self.atomic():
            for d in drives:
                row = asdict(d)
                row["kind"] = str(d.kind)
                cols = ", ".join(row)
                marks = ", ".join("?" for _ in row)
                updates = ", ".join(f"{k}=excluded.{k}" for k in row if k != "id")
                self.db.execute(
                    f"INSERT INTO drives ({cols}, discovered_at, updated_at) VALUES ({marks}, ?, ?) "
                    f"ON CONFLICT(id) DO UPDATE SET {updates}, updated_at=excluded.updated_at",
                    [*row.values(), now, now],
                )
                n += 1
        return n

    def upsert_users(self, users: Iterable[dict[str, Any]]) -> int:
        now, n = utcnow(), 0
        with self.atomic():
            for u in users:
                self.db["users"].upsert({**u, "discovered_at": now}, pk="id")
                n += 1
        return n

    def drive(self, drive_id: str) -> dict[str, Any] | None:
        return self.query_one("SELECT * FROM drives WHERE id = ?", (drive_id,))

    def drives(
        self,
        *,
        drive_ids: Iterable[str] = (),
        batches: Iterable[str] = (),
        owners: Iterable[str] = (),
    ) -> list[dict[str, Any]]:
        """Drives matching every given selection (`--drive`, `--batch`, `--user`); all drives when none is given."""
        where, params = [], []
        for col, values in (("id", drive_ids), ("batch", batches)):
            values = list(values)
            if values:
                where.append(f"{col} IN ({', '.join('?' for _ in values)})")
                params += values
        owners = [o.lower() for o in owners]
        if owners:
            where.append(f"lower(owner_upn) IN ({', '.join('?' for _ in owners)})")
            params += owners
        sql = "SELECT * FROM drives" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY kind, name, id"
        return self.query(sql, params)

    def update_drive(self, drive_id: str, **fields: Any) -> None:
        with self.atomic():
            self.db["drives"].update(drive_id, {**fields, "updated_at": utcnow()})

    def set_drive_batches(self, batches: dict[str, str]) -> int:
        """Set drives.batch from the mapping files (drive id -> batch name, '' for none); returns rows changed."""
        now, n = utcnow(), 0
        with self.atomic():
            for drive_id, batch in batches.items():
                n += self.db.execute("UPDATE drives SET batch = ?, updated_at = ? WHERE id = ? AND batch != ?",
                                     (batch, now, drive_id, batch)).rowcount
        return n

    def set_not_migrated(self, not_migrated: set[str]) -> int:
        """Mark the drives whose mapping row has a blank target (and unmark every other); returns rows changed."""
        now, n = utcnow(), 0
        with self.atomic():
            for (drive_id,) in self.db.execute("SELECT id FROM drives").fetchall():
                flag = int(drive_id in not_migrated)
                n += self.db.execute("UPDATE drives SET not_migrated = ?, updated_at = ? WHERE id = ? "
                                     "AND not_migrated != ?", (flag, now, drive_id, flag)).rowcount
        return n

    def users(self) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM users ORDER BY upn")

    # runs -------------------------------------------------------------------------------------------
    def start_run(self, command: str, args: dict[str, Any] | None = None) -> int:
        with self.atomic():
            run_id = self.db["runs"].insert(
                {
                    "command": command,
                    "args": json.dumps(args or {}, default=str, sort_keys=True),
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "started_at": utcnow(),
                    "status": "running",
                }
            ).last_pk
        self.run_id = int(run_id)
        return self.run_id

    def finish_run(self, run_id: int, status: str, summary: dict[str, Any] | None = None) -> None:
        with self.atomic():
            self.db["runs"].update(
                run_id,
                {"ended_at": utcnow(), "status": status, "summary": json.dumps(summary or {}, default=str)},
            )

    def finish_run_if_free(self, run_id: int, status: str, summary: dict[str, Any] | None, *,
                           timeout: float) -> bool:
        """finish_run, unless another thread holds the store for longer than `timeout` (a hard exit must not
        wait on a worker); False when it could not be recorded (the next run then finds it 'running')."""
        if not self._lock.acquire(timeout=timeout):
            return False
        try:
            self.finish_run(run_id, status, summary)
            return True
        finally:
            self._lock.release()

    def ru_spent_since(self, since: str) -> float:
        """Graph resource units that runs started since `since` spent (their books, kept in each run's summary)."""
        return float(self.scalar("SELECT coalesce(sum(json_extract(summary, '$.graph.ru')), 0) FROM runs "
                                 "WHERE started_at >= ? AND json_valid(summary)", (since,)) or 0)

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))

    def run_last_activity(self, run_id: int) -> str | None:
        """When a run last wrote an audit record or a metric (read newest first: the latest run's is near the end)."""
        rows = self.query(
            "SELECT MAX(ts) AS ts FROM (SELECT (SELECT ts FROM audit WHERE run_id = ? ORDER BY seq DESC LIMIT 1) AS ts "
            "UNION ALL SELECT (SELECT recorded_at FROM metrics WHERE run_id = ? ORDER BY id DESC LIMIT 1))",
            (run_id, run_id))
        return rows[0]["ts"] if rows else None

    def close_dead_runs(self) -> int:
        """Mark every run still recorded as running as interrupted. Call only while holding the run lock: then
        no such run can be alive (its process was killed, or its machine stopped, before it recorded its end)."""
        dead = self.query("SELECT id, started_at FROM runs WHERE status = 'running'")
        with self.atomic():
            for r in dead:
                self.db.execute(
                    "UPDATE runs SET status = 'interrupted', ended_at = ?, summary = ? WHERE id = ?",
                    (self.run_last_activity(r["id"]) or r["started_at"],
                     json.dumps({"error": "its process ended without recording its end (killed, or the machine "
                                          "stopped); found by the next run"}), r["id"]))
        return len(dead)

    def record_metric(self, name: str, value: float, unit: str = "") -> None:
        with self.atomic():
            self.db["metrics"].insert(
                {"run_id": getattr(self, "run_id", None), "name": name, "value": value, "unit": unit,
                 "recorded_at": utcnow()}
            )

    def metrics(self, name: str, limit: int = 50) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM metrics WHERE name = ? ORDER BY id DESC LIMIT ?", (name, limit))

    def replace_drive_access(self, drive_id: str, grants: Iterable[Any]) -> int:
        """Who the drive's root grants access to (models.Grant records), replacing what an earlier scan saw."""
        now, n = utcnow(), 0
        with self.atomic():
            self.db.execute("DELETE FROM drive_access WHERE drive_id = ?", (drive_id,))
            for g in grants:
                self.db.execute(
                    "INSERT OR REPLACE INTO drive_access (drive_id, perm_id, kind, roles, grantee_id, grantee_name, "
                    "grantee_email, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (drive_id, g.perm_id, g.kind, ",".join(g.roles), g.grantee_id, g.grantee_name,
                     g.grantee_email, now))
                n += 1
            self.db.execute("UPDATE drives SET access_read_at = ? WHERE id = ?", (now, drive_id))
        return n

    def drive_access(self, drive_id: str) -> list[dict[str, Any]] | None:
        """The drive root's grants as the last scan read them; None when no scan read them yet."""
        rows = self.query("SELECT * FROM drive_access WHERE drive_id = ? ORDER BY perm_id", (drive_id,))
        if rows:
            return rows
        seen = self.query_one("SELECT access_read_at FROM drives WHERE id = ?", (drive_id,))
        return [] if seen and seen["access_read_at"] else None

    def root_item_id(self, drive_id: str) -> str | None:
        """The item id of the drive's root folder, once a scan recorded it."""
        row = self.query_one(f"SELECT item_id FROM items WHERE dk = {DK_OF} AND parent_id IS NULL AND deleted = 0 "
                             "LIMIT 1", (drive_id,))
        return row["item_id"] if row else None

    def record_team_folder(self, mount_point: str, folder_id: int) -> None:
        """Remember a team folder this tool created (only those get the site's groups from the tool)."""
        with self.atomic():
            self.db.execute("INSERT OR IGNORE INTO team_folders_created (mount_point, folder_id, created_at) "
                            "VALUES (?, ?, ?)", (mount_point, folder_id, utcnow()))

    def created_team_folders(self) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for r in self.query("SELECT mount_point, folder_id FROM team_folders_created"):
            out.setdefault(r["mount_point"], set()).add(int(r["folder_id"]))
        return out
