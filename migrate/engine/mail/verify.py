"""`verify --what mail`: per folder, the server's count against the ledger, and every message's digest.

Each recorded message is fetched by its UID (BODY.PEEK[], streamed into the hash: nothing is marked read) and
its length and SHA-256 compared with what was appended, CRLF-normalised as the server gives LF-only input back
(reference mail.md §2.10). A folder whose UIDVALIDITY is not the recorded one is a gap of its own: our UIDs there
mean nothing any more (the next copy looks for each message again). Gaps mark the row `failed`, so the next copy
carries the message again; verify itself writes nothing to the server.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from migrate.engine.mail.boxes import Mailbox, imap_settings, login_source, mailboxes
from migrate.engine.mail.folders import path_text
from migrate.engine.summary import StepSummary
from migrate.errors import MigrateError

if TYPE_CHECKING:
    from migrate.config import Settings
    from migrate.mapping import Mappings
    from migrate.store import StateStore

_LOCK = threading.Lock()


@dataclass
class MailVerifySummary(StepSummary):
    mailboxes: int = 0
    folders: int = 0
    checked: int = 0
    verified: int = 0
    missing: list[str] = field(default_factory=list)
    differ: list[str] = field(default_factory=list)
    count_gaps: list[str] = field(default_factory=list)     # the server holds fewer messages than the ledger
    uidvalidity_changed: list[str] = field(default_factory=list)
    not_copied: int = 0
    skipped: int = 0
    extra: int = 0        # messages at the server that are not ours (a person's, another tool's)
    failed: list[str] = field(default_factory=list)

    @property
    def attention(self) -> bool:
        return bool(self.missing or self.differ or self.count_gaps or self.uidvalidity_changed or self.not_copied
                    or self.failed)

    def merge(self, other: MailVerifySummary) -> None:
        with _LOCK:
            for k, v in asdict(other).items():
                if k != "mailboxes":
                    setattr(self, k, getattr(self, k) + v)



def verify_mail(store: StateStore, settings: Settings, mappings: Mappings, *, upns: tuple[str, ...] = (),
                workers: int = 4) -> MailVerifySummary:
    from migrate.backends.imap import ImapSession

    s = MailVerifySummary()
    boxes, _ = mailboxes(store, mappings, upns)
    s.mailboxes = len(boxes)
    imap, login_for = imap_settings(settings), login_source(settings)

    def one(box: Mailbox) -> None:
        part = MailVerifySummary()
        try:
            with ImapSession.open(imap, login_for(box.imap_user)) as session:
                verify_mailbox(store, session, box, part)
        except MigrateError as exc:
            part.failed.append(f"{box.upn}: {exc.message}")
        s.merge(part)

    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="mail-verify") as pool:
        list(pool.map(one, boxes))
    return s


def verify_mailbox(store: StateStore, session: Any, box: Mailbox, s: MailVerifySummary) -> None:
    folders = [f for f in store.mail_folders() if f.user_id == box.user_id]
    for f in folders:
        if f.skip_reason is not None:
            continue
        live = list(store.iter_mail_messages(folder_id=f.id, statuses=("new", "appending", "failed")))
        s.not_copied += len(live)
        s.skipped += sum(1 for _ in store.iter_mail_messages(folder_id=f.id, statuses=("skipped",)))
        if not f.target_name or not f.created:
            continue
        s.folders += 1
        status = session.status(f.target_name)
        label = f"{box.upn}: {f.target_name}"
        if f.uidvalidity is not None and status.uidvalidity != f.uidvalidity:
            s.uidvalidity_changed.append(f"{label}: UIDVALIDITY {f.uidvalidity} is now {status.uidvalidity} (the "
                                         "folder was recreated at the server); run copy to find or carry its "
                                         "messages again")
            continue
        ours = 0
        for row in store.iter_mail_messages(target_folder_id=f.id, statuses=("done",), gone=None):
            ours += 1
            s.checked += 1
            where = f"{label}: {row.internet_message_id or row.message_id} (UID {row.uid})"
            got = session.fetch_digest(f.target_name, int(row.uid or 0)) if row.uid else None
            if got is None:
                s.missing.append(where)
                store.set_mail_message(row.id, status="failed", reason="missing at the target (verify)")
            elif got != (row.length, row.sha256):
                s.differ.append(f"{where}: {got[0]} bytes at the server, {row.length} appended")
                store.set_mail_message(row.id, status="failed", reason="differs at the target (verify)")
            else:
                s.verified += 1
        if status.messages < ours:
            s.count_gaps.append(f"{label} ({path_text(f.path)}): {status.messages} messages at the server, "
                                f"{ours} in the ledger")
        else:
            s.extra += status.messages - ours
