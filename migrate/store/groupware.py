"""Groupware rows: calendars/address books (gw_collections) and their objects (gw_objects), with typed records.

An object row holds the source JSON it was read as (zlib-compressed), so `plan`, `copy` and `verify` work from
the state database without reading Graph again; `source_hash` tells a changed object from an unchanged one.
Status machine per object: pending → uploaded → verified, or failed / unsupported (listed, never dropped); an
object deleted at the source ends as removed (sync deleted our copy) or kept ([policy] deletions = keep).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from migrate.store.base import StoreBase, utcnow

STATUSES = ("pending", "uploaded", "verified", "failed", "unsupported")
# Only on objects deleted at the source: `removed` = deleted at the target by sync, `kept` = left there by policy.
GONE = ("removed", "kept")


@dataclass(frozen=True, slots=True)
class GwCollection:
    """One source calendar or contact folder and where it goes (target user + collection URI)."""

    id: int
    user_id: str
    upn: str
    kind: str            # calendar | addressbook
    source_id: str
    name: str
    color: str
    target_user: str | None
    target_uri: str
    scan_state: str
    created: bool
    skip_reason: str | None
    target_name: str | None = None   # the display name the target collection carries
    delta_link: str | None = None    # Graph delta link after the last complete read (None: read in full)

    @classmethod
    def of(cls, row: dict[str, Any]) -> GwCollection:
        return cls(row["id"], row["user_id"], row["upn"], row["kind"], row["source_id"], row["name"], row["color"],
                   row["target_user"], row["target_uri"], row["scan_state"], bool(row["created"]), row["skip_reason"],
                   row["target_name"], row["delta_link"])


@dataclass(frozen=True, slots=True)
class GwObject:
    """One series/single event or contact, with its stored source payload and where it was written."""

    id: int
    collection_id: int
    source_id: str
    kind: str            # event | contact
    uid: str
    href: str
    title: str
    status: str
    target_etag: str | None
    body_sha256: str | None
    attempts: int
    payload: dict[str, Any]

    @classmethod
    def of(cls, row: dict[str, Any]) -> GwObject:
        return cls(row["id"], row["collection_id"], row["source_id"], row["kind"], row["uid"], row["href"],
                   row["title"], row["status"], row["target_etag"], row["body_sha256"], row["attempts"],
                   json.loads(zlib.decompress(row["payload"])))


def serialise_payload(payload: dict[str, Any]) -> tuple[str, bytes]:
    """The hash of what the source said, not when we read it (`read_at` is left out: an unchanged object stays
    unchanged), and the stored blob; the JSON is written once for both (it was a fifth of a scan's CPU)."""
    body = {k: v for k, v in payload.items() if k != "read_at"}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(text.encode()).hexdigest()
    if "read_at" in payload:
        text = text[:-1] + (", " if body else "") + '"read_at": ' + json.dumps(payload["read_at"]) + "}"
    return digest, zlib.compress(text.encode(), 6)


class GroupwareMixin(StoreBase):
    """Groupware tables of the state store."""

    def upsert_gw_collection(self, *, user_id: str, upn: str, kind: str, source_id: str, name: str, color: str,
                             target_user: str | None, target_uri: str, skip_reason: str | None = None) -> GwCollection:
        now = utcnow()
        with self.atomic():
            self.db.execute(
                "INSERT INTO gw_collections (user_id, upn, kind, source_id, name, color, target_user, target_uri, "
                "skip_reason, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(user_id, kind, source_id) DO "
                "UPDATE SET name=excluded.name, color=excluded.color, target_user=excluded.target_user, "
                "skip_reason=excluded.skip_reason, updated_at=excluded.updated_at",
                (user_id, upn, kind, source_id, name, color, target_user, target_uri, skip_reason, now))
            row = self.query_one("SELECT * FROM gw_collections WHERE user_id=? AND kind=? AND source_id=?",
                                 (user_id, kind, source_id))
        assert row is not None
        return GwCollection.of(row)

    def gw_collections(self, kinds: tuple[str, ...] = ("calendar", "addressbook"), upns: tuple[str, ...] = ()
                       ) -> list[GwCollection]:
        rows = self.query(f"SELECT * FROM gw_collections WHERE kind IN ({','.join('?' * len(kinds))}) "
                          "ORDER BY upn, kind, name, id", kinds)
        wanted = {u.lower() for u in upns}
        return [GwCollection.of(r) for r in rows if not wanted or r["upn"].lower() in wanted]

    def set_gw_collection(self, collection_id: int, **fields: Any) -> None:
        with self.atomic():
            self.db["gw_collections"].update(collection_id, {**fields, "updated_at": utcnow()})

    def begin_gw_scan(self, collection_id: int) -> int:
        """Start a full read of a collection; returns the generation its rows are stamped with."""
        with self.atomic():
            self.db.execute("UPDATE gw_collections SET scan_generation = scan_generation + 1, scan_state='scanning', "
                            "updated_at=? WHERE id=?", (utcnow(), collection_id))
            return int(self.scalar("SELECT scan_generation FROM gw_collections WHERE id=?", (collection_id,)))

    def finish_gw_scan(self, collection_id: int, generation: int) -> int:
        """Mark the collection scanned; objects not seen in this generation are deleted at the source."""
        with self.atomic():
            cur = self.db.execute("UPDATE gw_objects SET deleted=1, updated_at=? WHERE collection_id=? AND "
                                  "scan_generation < ? AND deleted=0", (utcnow(), collection_id, generation))
            self.db.execute("UPDATE gw_collections SET scan_state='scanned', updated_at=? WHERE id=?",
                            (utcnow(), collection_id))
            return cur.rowcount

    def gw_generation(self, collection_id: int) -> int:
        """The generation of the last full read (rows refreshed by a delta round keep it)."""
        return int(self.scalar("SELECT scan_generation FROM gw_collections WHERE id=?", (collection_id,)))

    def mark_gw_deleted(self, collection_id: int, source_ids: list[str]) -> int:
        """Objects a delta round reported gone at the source."""
        if not source_ids:
            return 0
        with self.atomic():
            cur = self.db.execute(f"UPDATE gw_objects SET deleted=1, updated_at=? WHERE collection_id=? AND deleted=0 "
                                  f"AND source_id IN ({','.join('?' * len(source_ids))})",
                                  (utcnow(), collection_id, *source_ids))
            return cur.rowcount

    def gw_instance_ledger(self, collection_id: int) -> tuple[set[str], dict[str, str]]:
        """Source ids of the live objects, and occurrence/exception id → series master id (for delta removals)."""
        known: set[str] = set()
        series_of: dict[str, str] = {}
        for obj in self.iter_gw_objects(collection_id):
            known.add(obj.source_id)
            for inst in obj.payload.get("instances") or ():
                series_of[str(inst.get("id"))] = obj.source_id
        return known, series_of

    def upsert_gw_objects(self, collection_id: int, generation: int, objects: list[dict[str, Any]]) -> int:
        """Insert or refresh objects (one page = one transaction); a changed source puts the row back to pending."""
        now, changed = utcnow(), 0
        serialised = [serialise_payload(o["payload"]) for o in objects]   # before taking the store's lock
        with self.atomic():
            for o, (h, blob) in zip(objects, serialised, strict=True):
                old = self.db.execute("SELECT id, source_hash, status FROM gw_objects WHERE collection_id=? AND "
                                      "source_id=?", (collection_id, o["source_id"])).fetchone()
                if old is None:
                    self.db.execute(
                        "INSERT INTO gw_objects (collection_id, source_id, kind, uid, href, title, source_hash, payload,"
                        " instances, scan_generation, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (collection_id, o["source_id"], o["kind"], o["uid"], o["href"], o["title"], h, blob,
                         o.get("instances", 0), generation, now))
                    changed += 1
                elif old[1] != h:
                    status = "pending"
                    self.db.execute("UPDATE gw_objects SET source_hash=?, payload=?, title=?, instances=?, "
                                    "scan_generation=?, deleted=0, status=?, updated_at=? WHERE id=?",
                                    (h, blob, o["title"], o.get("instances", 0), generation, status, now, old[0]))
                    changed += 1
                else:   # back at the source: a removed copy is written again, a kept one is ours again
                    self.db.execute("UPDATE gw_objects SET scan_generation=?, deleted=0, status=CASE status WHEN "
                                    "'removed' THEN 'pending' WHEN 'kept' THEN 'uploaded' ELSE status END WHERE id=?",
                                    (generation, old[0]))
        return changed

    def iter_gw_objects(self, collection_id: int, statuses: tuple[str, ...] = STATUSES, *, live: bool = True
                        ) -> Iterator[GwObject]:
        marks = ",".join("?" * len(statuses))
        sql = (f"SELECT * FROM gw_objects WHERE collection_id=? AND status IN ({marks})"
               + (" AND deleted=0" if live else "") + " AND id > ? ORDER BY id LIMIT 200")
        for page in self.keyset_pages(sql, (collection_id, *statuses)):
            for row in page:
                yield GwObject.of(row)

    def set_gw_object(self, object_id: int, **fields: Any) -> None:
        with self.atomic():
            self.db["gw_objects"].update(object_id, {**fields, "updated_at": utcnow()})

    def gw_counts(self, upns: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Objects per collection and status (live objects only), for plan, status and verify."""
        rows = self.query(
            "SELECT c.id, c.upn, c.kind, c.name, c.target_user, c.target_uri, c.skip_reason, o.status, "
            "COUNT(o.id) AS n, COALESCE(SUM(o.instances),0) AS instances FROM gw_collections c LEFT JOIN gw_objects o "
            "ON o.collection_id=c.id AND o.deleted=0 GROUP BY c.id, o.status ORDER BY c.upn, c.kind, c.name")
        wanted = {u.lower() for u in upns}
        return [r for r in rows if not wanted or r["upn"].lower() in wanted]

    def gw_problems(self, limit: int = 1000) -> list[dict[str, Any]]:
        return self.query(
            "SELECT c.upn, c.kind, c.name, o.title, o.status, o.last_error, o.notes FROM gw_objects o JOIN "
            "gw_collections c ON c.id=o.collection_id WHERE o.deleted=0 AND (o.status IN ('failed','unsupported') "
            "OR o.notes IS NOT NULL) ORDER BY c.upn, c.name, o.id LIMIT ?", (limit,))
