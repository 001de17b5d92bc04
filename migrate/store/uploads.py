"""Chunked uploads in progress: what a later run needs to send only the chunks the server is missing."""

from __future__ import annotations

from typing import Any

from migrate.store.base import StoreBase, utcnow


class UploadsMixin(StoreBase):
    """Upload-session methods of the state store (one session per item at most)."""

    def upload_session(self, drive_id: str, item_id: str) -> dict[str, Any] | None:
        return self.query_one("SELECT * FROM upload_sessions WHERE drive_id = ? AND item_id = ?", (drive_id, item_id))

    def save_upload_session(self, drive_id: str, item_id: str, *, target_user: str, target_path: str,
                            transfer_id: str, size: int, chunk_size: int, source_version: str) -> None:
        """Recorded before the first chunk leaves, so a kill at any point leaves a session to resume."""
        with self.atomic():
            self.db.execute(
                "INSERT OR REPLACE INTO upload_sessions (drive_id, item_id, target_user, target_path, transfer_id, "
                "size, chunk_size, source_version, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (drive_id, item_id, target_user, target_path, transfer_id, size, chunk_size, source_version,
                 utcnow()),
            )

    def drop_upload_session(self, drive_id: str, item_id: str) -> None:
        with self.atomic():
            self.db.execute("DELETE FROM upload_sessions WHERE drive_id = ? AND item_id = ?", (drive_id, item_id))

    def upload_session_count(self) -> int:
        return int(self.scalar("SELECT count(*) FROM upload_sessions") or 0)
