"""Mail rows: the source mail folders of each mailbox (mail_folders) and the message ledger (mail_messages).

The ledger is keyed on (user, immutable message id): a folder read again from the start (an expired delta link)
refreshes rows instead of adding any, and a message moved at the source keeps its row (only `folder_id`
changes). Status machine per message: new → appending → done | failed | skipped | removed. `appending` is
recorded before the APPEND, so a run killed after the APPEND but before the record looks for what landed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from migrate.store.base import StoreBase, utcnow

MAIL_STATUSES = ("new", "appending", "done", "failed", "skipped", "removed")


def flag_text(flags: Iterable[str]) -> str:
    """Flags as stored: sorted, space-separated (one canonical text, so equal sets compare equal)."""
    return " ".join(sorted(set(flags)))


def flag_set(text: str | None) -> frozenset[str]:
    return frozenset((text or "").split())


@dataclass(frozen=True, slots=True)
class MailFolderRow:
    """One source mail folder and where it goes on the IMAP server."""

    id: int
    user_id: str
    upn: str
    source_id: str
    parent_id: str | None
    path: str                  # display names from the top, joined by " / " (for people; the target has its own)
    well_known: str | None
    hidden: bool
    total: int
    unread: int
    imap_user: str | None
    target_name: str | None    # the IMAP folder (UTF-8, server separator); None = not decided or not carried
    rename_reason: str | None  # why target_name differs from the source name
    skip_reason: str | None    # why the folder is not carried (hidden, outbox, policy); None = carried
    uidvalidity: int | None
    created: bool
    delta_link: str | None
    scan_state: str
    scan_generation: int
    gone: bool
    last_error: str | None
    placed: str | None = None  # JSON [source parent id, name] when target_name was set (a change = moved in Outlook)
    held: str | None = None    # 'renamed' | 'gone' (by a person at the server) | 'kept' (by policy): not ours to move

    @classmethod
    def of(cls, r: dict[str, Any]) -> MailFolderRow:
        return cls(r["id"], r["user_id"], r["upn"], r["source_id"], r["parent_id"], r["path"], r["well_known"],
                   bool(r["hidden"]), r["total"], r["unread"], r["imap_user"], r["target_name"], r["rename_reason"],
                   r["skip_reason"], r["uidvalidity"], bool(r["created"]), r["delta_link"], r["scan_state"],
                   r["scan_generation"], bool(r["gone"]), r["last_error"], r.get("placed"), r.get("held"))


@dataclass(frozen=True, slots=True)
class MailMessageRow:
    """One message of the ledger: where it is at the source, where we put it, and what we put there."""

    id: int
    user_id: str
    message_id: str
    folder_id: int
    internet_message_id: str | None
    received: str | None
    want_flags: frozenset[str]    # the flags the source has now
    flags: frozenset[str] | None  # the flags we set at the target (None: nothing written yet)
    size: int | None              # the source's approximate size
    kind: str
    sha256: str | None
    length: int | None
    target_folder_id: int | None
    uidvalidity: int | None
    uid: int | None
    status: str
    reason: str | None
    attempts: int
    gone: bool

    @classmethod
    def of(cls, r: dict[str, Any]) -> MailMessageRow:
        return cls(r["id"], r["user_id"], r["message_id"], r["folder_id"], r["internet_message_id"], r["received"],
                   flag_set(r["want_flags"]), None if r["flags"] is None else flag_set(r["flags"]), r["size"],
                   r["kind"], r["sha256"], r["length"], r["target_folder_id"], r["uidvalidity"], r["uid"],
                   r["status"], r["reason"], r["attempts"], bool(r["gone"]))


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What a scan learnt of one message (from the Graph listing), ready for the ledger."""

    message_id: str
    internet_message_id: str | None
    received: str | None
    want_flags: str
    size: int | None
    kind: str
    change_key: str | None


class MailMixin(StoreBase):
    """Mail tables of the state store."""

    def upsert_mail_folder(self, *, user_id: str, upn: str, source_id: str, parent_id: str | None, path: str,
                           well_known: str | None, hidden: bool, total: int, unread: int,
                           imap_user: str | None) -> MailFolderRow:
        with self.atomic():
            self.db.execute(
                "INSERT INTO mail_folders (user_id, upn, source_id, parent_id, path, well_known, hidden, total, unread,"
                " imap_user, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(user_id, source_id) DO UPDATE SET "
                "upn=excluded.upn, parent_id=excluded.parent_id, path=excluded.path, well_known=excluded.well_known, "
                "hidden=excluded.hidden, total=excluded.total, unread=excluded.unread, imap_user=excluded.imap_user, "
                "gone=0, updated_at=excluded.updated_at",
                (user_id, upn, source_id, parent_id, path, well_known, int(hidden), total, unread, imap_user, utcnow()))
            row = self.query_one("SELECT * FROM mail_folders WHERE user_id=? AND source_id=?", (user_id, source_id))
        assert row is not None
        return MailFolderRow.of(row)

    def mail_folders(self, upns: Iterable[str] = (), *, live: bool = True) -> list[MailFolderRow]:
        rows = self.query("SELECT * FROM mail_folders" + (" WHERE gone=0" if live else "") + " ORDER BY upn, path, id")
        wanted = {u.lower() for u in upns}
        return [MailFolderRow.of(r) for r in rows if not wanted or r["upn"].lower() in wanted]

    def mail_folder(self, folder_id: int) -> MailFolderRow | None:
        row = self.query_one("SELECT * FROM mail_folders WHERE id=?", (folder_id,))
        return MailFolderRow.of(row) if row else None

    def set_mail_folder(self, folder_id: int, **fields: Any) -> None:
        with self.atomic():
            self.db["mail_folders"].update(folder_id, {**fields, "updated_at": utcnow()})

    def mark_mail_folders_gone(self, user_id: str, seen: Iterable[str]) -> int:
        """Folders of this mailbox that the last walk did not find (deleted at the source), and the messages still
        recorded in them (deleted with the folder; one moved out first was already re-homed by its new folder's
        delta, read before this). Returns how many messages."""
        keep = list(seen)
        with self.atomic():
            self.db.execute(f"UPDATE mail_folders SET gone=1, updated_at=? WHERE user_id=? AND gone=0 AND "
                            f"source_id NOT IN ({','.join('?' * len(keep))})", (utcnow(), user_id, *keep))
            cur = self.db.execute("UPDATE mail_messages SET gone=1, updated_at=? WHERE gone=0 AND folder_id IN "
                                  "(SELECT id FROM mail_folders WHERE user_id=? AND gone=1)", (utcnow(), user_id))
            return cur.rowcount

    def begin_mail_folder_scan(self, folder_id: int) -> int:
        """Start reading a folder from the beginning; returns the generation its messages are stamped with."""
        with self.atomic():
            self.db.execute("UPDATE mail_folders SET scan_generation = scan_generation + 1, scan_state='scanning', "
                            "delta_link=NULL, updated_at=? WHERE id=?", (utcnow(), folder_id))
            return int(self.scalar("SELECT scan_generation FROM mail_folders WHERE id=?", (folder_id,)))

    def finish_mail_folder_scan(self, folder_id: int, generation: int, delta_link: str | None) -> int:
        """A full read ended: messages of this folder not seen in it are gone from it (deleted, or moved to a
        folder read later, which takes them back). Returns how many."""
        with self.atomic():
            cur = self.db.execute("UPDATE mail_messages SET gone=1, updated_at=? WHERE folder_id=? AND gone=0 AND "
                                  "scan_generation < ?", (utcnow(), folder_id, generation))
            self.db.execute("UPDATE mail_folders SET scan_state='scanned', delta_link=?, updated_at=? WHERE id=?",
                            (delta_link, utcnow(), folder_id))
            return cur.rowcount

    def upsert_mail_messages(self, folder_id: int, user_id: str, generation: int, facts: list[MessageFacts]
                             ) -> tuple[int, int]:
        """Record a page of messages (one transaction); returns (new, changed). A message already in the ledger
        (another folder, an earlier read) keeps its row: its source folder and flags are refreshed."""
        now, new, changed = utcnow(), 0, 0
        with self.atomic():
            for f in facts:
                old = self.db.execute("SELECT id, folder_id, want_flags, gone, status FROM mail_messages WHERE "
                                      "user_id=? AND message_id=?", (user_id, f.message_id)).fetchone()
                if old is None:
                    self.db.execute(
                        "INSERT INTO mail_messages (user_id, message_id, folder_id, internet_message_id, received, "
                        "want_flags, size, kind, change_key, scan_generation, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (user_id, f.message_id, folder_id, f.internet_message_id, f.received, f.want_flags, f.size,
                         f.kind, f.change_key, generation, now))
                    new += 1
                    continue
                if (old[1], old[2], old[3]) != (folder_id, f.want_flags, 0):
                    changed += 1
                # back at the source after a removal we carried out: appended again
                status = "new" if old[4] == "removed" else old[4]
                self.db.execute(
                    "UPDATE mail_messages SET folder_id=?, internet_message_id=?, received=?, want_flags=?, size=?, "
                    "change_key=?, scan_generation=?, gone=0, status=?, updated_at=? WHERE id=?",
                    (folder_id, f.internet_message_id, f.received, f.want_flags, f.size, f.change_key, generation,
                     status, now, old[0]))
        return new, changed

    def mark_mail_removed(self, folder_id: int, message_ids: list[str]) -> int:
        """Messages a folder's delta reported gone from it. Only rows still in that folder: a move reports the
        removal in the old folder and the addition in the new one, in either order."""
        if not message_ids:
            return 0
        with self.atomic():
            cur = self.db.execute(f"UPDATE mail_messages SET gone=1, updated_at=? WHERE folder_id=? AND gone=0 AND "
                                  f"message_id IN ({','.join('?' * len(message_ids))})",
                                  (utcnow(), folder_id, *message_ids))
            return cur.rowcount

    def iter_mail_messages(self, *, folder_id: int | None = None, target_folder_id: int | None = None,
                           statuses: tuple[str, ...] = MAIL_STATUSES, gone: bool | None = False
                           ) -> Iterator[MailMessageRow]:
        """Messages by source folder or by target folder, a page at a time (memory holds one page)."""
        where, params = [f"status IN ({','.join('?' * len(statuses))})"], list(statuses)
        if folder_id is not None:
            where.append("folder_id=?")
            params.append(folder_id)
        if target_folder_id is not None:
            where.append("target_folder_id=?")
            params.append(target_folder_id)
        if gone is not None:
            where.append("gone=?")
            params.append(int(gone))
        sql = f"SELECT * FROM mail_messages WHERE {' AND '.join(where)} AND id > ? ORDER BY id LIMIT 500"
        for page in self.keyset_pages(sql, tuple(params)):
            for row in page:
                yield MailMessageRow.of(row)

    def mail_message(self, row_id: int) -> MailMessageRow | None:
        row = self.query_one("SELECT * FROM mail_messages WHERE id=?", (row_id,))
        return MailMessageRow.of(row) if row else None

    def set_mail_message(self, row_id: int, **fields: Any) -> None:
        if "flags" in fields and not isinstance(fields["flags"], str | None):
            fields["flags"] = flag_text(fields["flags"])
        with self.atomic():
            self.db["mail_messages"].update(row_id, {**fields, "updated_at": utcnow()})

    def mail_uids(self, target_folder_id: int) -> set[int]:
        """The UIDs the ledger holds for messages we put into this folder."""
        return {r["uid"] for r in self.query("SELECT uid FROM mail_messages WHERE target_folder_id=? AND uid IS NOT "
                                             "NULL", (target_folder_id,))}

    def mail_uid_taken(self, target_folder_id: int, uid: int, row_id: int) -> bool:
        return self.scalar("SELECT 1 FROM mail_messages WHERE target_folder_id=? AND uid=? AND id<>?",
                           (target_folder_id, uid, row_id)) is not None

    def reset_mail_uids(self, target_folder_id: int) -> int:
        """The folder's UIDVALIDITY changed: the UIDs we recorded there are void. Its messages go back to
        `appending` (their digest kept), so the next copy finds each one by Message-ID and digest or appends it."""
        with self.atomic():
            cur = self.db.execute("UPDATE mail_messages SET status='appending', uid=NULL, uidvalidity=NULL, "
                                  "updated_at=? WHERE target_folder_id=? AND status='done'", (utcnow(), target_folder_id))
            return cur.rowcount

    def mail_counts(self, upns: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Messages and approximate bytes per folder and status (live messages), for plan and status."""
        rows = self.query(
            "SELECT f.id AS folder_id, f.upn, f.path, f.target_name, f.skip_reason, m.status, COUNT(m.id) AS n, "
            "COALESCE(SUM(m.size),0) AS bytes FROM mail_folders f LEFT JOIN mail_messages m ON m.folder_id=f.id "
            "AND m.gone=0 WHERE f.gone=0 GROUP BY f.id, m.status ORDER BY f.upn, f.path")
        wanted = {u.lower() for u in upns}
        return [r for r in rows if not wanted or r["upn"].lower() in wanted]

    def mail_problems(self, upns: Iterable[str] = (), limit: int = 1000) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT f.upn, f.path, m.message_id, m.internet_message_id, m.status, m.reason FROM mail_messages m "
            "JOIN mail_folders f ON f.id=m.folder_id WHERE m.gone=0 AND m.status IN ('failed','skipped','appending') "
            "ORDER BY f.upn, f.path, m.id LIMIT ?", (limit,))
        wanted = {u.lower() for u in upns}
        return [r for r in rows if not wanted or r["upn"].lower() in wanted]
