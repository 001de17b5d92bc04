"""Calendar attachments carried as files (gw_attachments): where each went, its file id, SHA1 and sharees.

Status per attachment: pending → uploaded → verified, or failed (retried by the next copy); an attachment gone
from its event ends as removed (its file deleted) or kept ([policy] deletions = keep).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from migrate.store.base import StoreBase, utcnow


@dataclass(frozen=True, slots=True)
class GwAttachment:
    """One attachment of one event that lives in its owner's Files (not inline in the event)."""

    id: int
    object_id: int
    source_id: str
    name: str
    kind: str                    # file | item
    source_size: int | None
    source_stamp: str | None     # what identifies this version at the source (size, time, name)
    target_user: str | None
    target_path: str | None
    file_id: str | None
    content_type: str | None
    size: int | None
    sha1: str | None
    has_preview: bool
    shared_with: tuple[str, ...]
    status: str
    last_error: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> GwAttachment:
        return cls(row["id"], row["object_id"], row["source_id"], row["name"], row["kind"], row["source_size"],
                   row["source_stamp"], row["target_user"], row["target_path"], row["file_id"], row["content_type"],
                   row["size"], row["sha1"], bool(row["has_preview"]), tuple(json.loads(row["shared_with"] or "[]")),
                   row["status"], row["last_error"])


class GwAttachmentsMixin(StoreBase):
    """The gw_attachments table."""

    def gw_attachments(self, object_id: int) -> list[GwAttachment]:
        return [GwAttachment.of(r) for r in self.query(
            "SELECT * FROM gw_attachments WHERE object_id=? ORDER BY id", (object_id,))]

    def upsert_gw_attachment(self, object_id: int, source_id: str, **fields: Any) -> GwAttachment:
        """Insert or update the row of (event, attachment); `shared_with` is given as a list."""
        if "shared_with" in fields:
            fields["shared_with"] = json.dumps(sorted(fields["shared_with"]))
        fields["updated_at"] = utcnow()
        with self.atomic():
            row = self.query_one("SELECT id FROM gw_attachments WHERE object_id=? AND source_id=?",
                                 (object_id, source_id))
            if row is None:
                self.db["gw_attachments"].insert({"object_id": object_id, "source_id": source_id, **fields})
            else:
                self.db["gw_attachments"].update(row["id"], fields)
            out = self.query_one("SELECT * FROM gw_attachments WHERE object_id=? AND source_id=?",
                                 (object_id, source_id))
        assert out is not None
        return GwAttachment.of(out)

    def gw_attachment_rows(self, statuses: tuple[str, ...] = ("uploaded", "verified", "failed", "pending"),
                           upns: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Attachment rows with their event and collection (for verify and status)."""
        marks = ",".join("?" * len(statuses))
        rows = self.query(
            "SELECT a.*, o.title, o.deleted AS object_deleted, c.upn, c.name AS collection FROM gw_attachments a "
            "JOIN gw_objects o ON o.id=a.object_id JOIN gw_collections c ON c.id=o.collection_id "
            f"WHERE a.status IN ({marks}) ORDER BY a.id", statuses)
        wanted = {u.lower() for u in upns}
        return [r for r in rows if not wanted or r["upn"].lower() in wanted]

    def gw_attachment_counts(self, upns: tuple[str, ...] = ()) -> dict[str, int]:
        """Attachments carried as files, by status (live events only); none in a database no command has
        migrated to this version yet (`status` opens it read-only)."""
        out: dict[str, int] = {}
        if "gw_attachments" not in self.db.table_names():
            return out
        for r in self.gw_attachment_rows(("pending", "uploaded", "verified", "failed", "unsupported", "removed",
                                          "kept"), upns):
            if not r["object_deleted"] or r["status"] in ("removed", "kept"):
                out[r["status"]] = out.get(r["status"], 0) + 1
        return out
