"""`sync --what mail`: carry what changed in Outlook since the last pass, never over a person's work.

The stored per-folder delta links are read (scan), then per mailbox: new mail is appended (as copy does); a
message moved in Outlook is moved at the server with UID MOVE; changed flags are set with UID STORE only when the
message still carries the flags we set (otherwise a person changed them at the target: left alone and reported
as a conflict); a message deleted in Outlook follows [policy] deletions: `keep` leaves it and lists it, `trash`
moves our copy into the server's Trash folder (never an expunge), unless a person changed it at the target.
Every write is audited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrate.engine.mail.boxes import Mailbox, imap_pacer, imap_settings, login_source
from migrate.engine.mail.copy import MailCopySummary, Sessions, copy_messages, each_mailbox
from migrate.engine.mail.scan import MailClient, MailScanSummary, scan_mail
from migrate.engine.mail.target import prepare_folders
from migrate.engine.summary import StepSummary
from migrate.errors import AuthError, Fatal, MigrateError, TargetFull
from migrate.store.mail import flag_text

if TYPE_CHECKING:
    from migrate.config import Settings
    from migrate.mapping import Mappings
    from migrate.store import StateStore
    from migrate.store.mail import MailMessageRow

SERVER_FLAGS = frozenset({"\\Recent"})   # set by the server for the session, not by a person


@dataclass
class MailSyncSummary(StepSummary):
    scan: dict[str, Any] = field(default_factory=dict)
    appended: int = 0
    moved: int = 0
    flags: int = 0
    trashed: int = 0
    kept: list[str] = field(default_factory=list)        # deleted in Outlook, kept at the server by policy
    folders_created: list[str] = field(default_factory=list)   # new in Outlook since the last pass
    folders_renamed: list[str] = field(default_factory=list)   # renamed or moved in Outlook: RENAME at the server
    folders_deleted: list[str] = field(default_factory=list)   # deleted in Outlook, empty at the server: deleted
    folders_kept: list[str] = field(default_factory=list)      # deleted in Outlook, kept at the server
    conflicts: list[str] = field(default_factory=list)   # changed by a person at the target: left alone
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    full: list[str] = field(default_factory=list)
    refused_login: list[str] = field(default_factory=list)
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def attention(self) -> bool:
        return bool(self.conflicts or self.failed or self.full or self.refused_login)


def sync_mail(store: StateStore, source: Any, settings: Settings, mappings: Mappings, *, upns: tuple[str, ...] = (),
              workers: int = 4, dry_run: bool = False, say: Any = None, interval: float | None = None,
              boxes: list[Mailbox] | None = None) -> MailSyncSummary:
    from migrate.engine.mail.boxes import mailboxes

    say = say or (lambda m: None)
    started = time.monotonic()
    s = MailSyncSummary(dry_run=dry_run)
    sc: MailScanSummary = scan_mail(store, source, mappings, settings.mail, upns=upns, workers=workers, say=say,
                                    interval=interval)
    s.scan = sc.to_dict()
    s.failed += sc.failed
    if boxes is None:
        boxes, _ = mailboxes(store, mappings, upns)
    imap, login_for, pacer = imap_settings(settings), login_source(settings), imap_pacer(settings)
    if dry_run:   # the folder changes to come, from the server's LIST; nothing is written
        from migrate.engine.mail.folder_sync import preview

        for box in boxes:
            sessions = Sessions(imap, login_for(box.imap_user), pacer)
            try:
                sessions.call(lambda sess, b=box: preview(store, sess, b, settings.policy.deletions, s),
                              what=f"folders of {box.imap_user}")
            except (AuthError, MigrateError) as exc:
                if isinstance(exc, Fatal) and not isinstance(exc, AuthError):
                    raise
                s.note("failed", f"{box.upn}: folder changes not previewed: {exc.message}")
            finally:
                sessions.close()
        s.seconds = round(time.monotonic() - started, 3)
        return s

    def body(box: Mailbox, client: MailClient) -> None:
        sessions = Sessions(imap, login_for(box.imap_user), pacer)
        try:
            sync_mailbox(store, client, sessions, box, settings, s)
        finally:
            sessions.close()

    each_mailbox(boxes, s, source.client, body, interval=interval, workers=workers, say=say, done="synced",
                 thread="mail-sync")
    s.seconds = round(time.monotonic() - started, 3)
    return s


def sync_mailbox(store: StateStore, client: Any, sessions: Sessions, box: Mailbox, settings: Settings,
                 s: MailSyncSummary) -> None:
    from migrate.engine.mail import folder_sync

    what = f"folders of {box.imap_user}"
    # a person's renames and deletions at the server first (they win), then new folders, then Outlook's renames
    sessions.call(lambda sess: folder_sync.follow_server(store, sess, box, s), what=what)
    setup = sessions.call(lambda sess: prepare_folders(store, sess, box.user_id, box.upn), what=what)
    for text in setup.created:
        s.note("folders_created", text)
    for text in setup.refused:
        s.note("failed", f"{text}: its messages wait (rename the folder in Outlook, or change the server's layout)")
    sessions.call(lambda sess: folder_sync.carry_renames(store, sess, box, s), what=what)
    now = {f.id: f.target_name for f in store.mail_folders() if f.user_id == box.user_id}
    targets = {fid: now.get(fid) or name for fid, name in setup.targets.items()}
    trash = sessions.call(lambda sess: sess.special_use().get("\\Trash"), what="special-use folders")
    trash_id = next((fid for fid, name in targets.items() if name == trash), None)
    policy = settings.policy.deletions
    # every folder we wrote into, also one deleted in Outlook since (its messages: deleted there, or moved out),
    # but not one a person deleted at the server (nothing of ours left there)
    written = {f.id: f.target_name for f in store.mail_folders(live=False)
               if f.user_id == box.user_id and f.created and f.target_name and f.held != "gone"}
    away = folder_sync.out_of_reach(store, box)
    for fid, here in written.items():
        for row in store.iter_mail_messages(target_folder_id=fid, statuses=("done",), gone=None):
            try:
                sessions.call(lambda sess, r=row, f=fid: _sync_one(store, sess, box, r, f, written, targets, away,
                                                                  trash, trash_id, policy, s),
                              what=f"{box.upn}: {_name(row)}")
            except (TargetFull, AuthError):
                raise
            except MigrateError as exc:
                if isinstance(exc, Fatal):
                    raise
                s.note("failed", f"{box.upn}: {here}: {_name(row)}: {exc.message}")
    sessions.call(lambda sess: folder_sync.retire_folders(store, sess, box, policy, s), what=what)
    sessions.drop()   # the copy's workers open their own: at most [mail] connections at once
    cs = MailCopySummary()
    copy_messages(store, client, sessions, box, targets, settings, cs)
    s.add("appended", cs.appended)
    for text in cs.failed:
        s.note("failed", text)
    for text in cs.skipped:
        s.note("skipped", text)


def _sync_one(store: StateStore, session: Any, box: Mailbox, row: MailMessageRow, fid: int, written: dict[int, str],
              targets: dict[int, str], away: set[int], trash: str | None, trash_id: int | None, policy: str,
              s: MailSyncSummary) -> None:
    """One message we wrote: deleted in Outlook, moved there, or its flags changed there. `written`: where we put
    messages (folders gone at the source included); `targets`: the carried folders now; `away`: folders Outlook
    moved where they are not carried."""
    here = written[fid]
    if row.gone:
        _deleted(store, session, box, row, here, trash, trash_id, policy, s)
        return
    if row.folder_id == fid and fid in away:   # its folder was moved in Outlook where it is not carried
        _deleted(store, session, box, row, here, trash, trash_id, policy, s,
                 why="its folder was moved in Outlook into a folder that is not carried")
        return
    if row.folder_id != fid:
        dest = targets.get(row.folder_id)
        if dest is None:   # moved into a folder that is not carried: like a deletion at the source
            _deleted(store, session, box, row, here, trash, trash_id, policy, s,
                     why="moved in Outlook into a folder that is not carried")
            return
        if not _unchanged(session, here, row):
            s.note("conflicts", f"{box.upn}: {here}: {_name(row)}: moved in Outlook to {dest}, but changed at the "
                                "target since we wrote it: left where it is")
            return
        new_uid = session.move(here, int(row.uid or 0), dest)
        status = session.status(dest)
        store.set_mail_message(row.id, target_folder_id=row.folder_id, uid=new_uid, uidvalidity=status.uidvalidity,
                               **({} if new_uid else {"status": "appending"}))
        store.audit("mail.move", f"{box.imap_user}/{here}", to=dest, uid=row.uid, new_uid=new_uid,
                    message=row.internet_message_id)
        s.add("moved")
        here = dest
        row = store_row(store, row.id)
    if row.flags is not None and row.want_flags != row.flags:
        _flags(store, session, box, row, here, s)


def store_row(store: StateStore, row_id: int) -> MailMessageRow:
    row = store.mail_message(row_id)
    assert row is not None
    return row


def _name(row: MailMessageRow) -> str:
    return row.internet_message_id or row.message_id


def _current(session: Any, folder: str, row: MailMessageRow) -> frozenset[str] | None:
    got = session.fetch_flags(folder, [int(row.uid or 0)]) if row.uid else {}
    flags = got.get(int(row.uid or 0))
    return None if flags is None else frozenset(flags) - SERVER_FLAGS


def _unchanged(session: Any, folder: str, row: MailMessageRow) -> bool:
    """The message is where we put it and carries exactly the flags we set: no person has touched it."""
    now = _current(session, folder, row)
    return now is not None and now == (row.flags or frozenset())


def _flags(store: StateStore, session: Any, box: Mailbox, row: MailMessageRow, folder: str, s: MailSyncSummary
           ) -> None:
    now = _current(session, folder, row)
    if now is None:
        s.note("conflicts", f"{box.upn}: {folder}: {_name(row)}: flags changed in Outlook, but the message is no "
                            "longer where we put it at the target (moved or deleted there): left alone")
        return
    ours = row.flags or frozenset()
    if now != ours:
        s.note("conflicts", f"{box.upn}: {folder}: {_name(row)}: flags changed in Outlook ({flag_text(row.want_flags)})"
                            f" and at the target ({flag_text(now)}); the target's are kept")
        return
    add, remove = row.want_flags - ours, ours - row.want_flags
    session.store_flags(folder, int(row.uid or 0), add, remove)
    store.set_mail_message(row.id, flags=flag_text(row.want_flags))
    store.audit("mail.flags", f"{box.imap_user}/{folder}", uid=row.uid, added=flag_text(add),
                removed=flag_text(remove), message=row.internet_message_id)
    s.add("flags")


def _deleted(store: StateStore, session: Any, box: Mailbox, row: MailMessageRow, folder: str, trash: str | None,
             trash_id: int | None, policy: str, s: MailSyncSummary, *, why: str = "deleted in Outlook") -> None:
    where = f"{box.upn}: {folder}: {_name(row)}"
    if policy != "trash" or not trash or folder == trash:
        if not (row.reason or "").startswith(why):   # listed once, when it happens
            store.set_mail_message(row.id, reason=f"{why}; kept at the target ([policy] deletions = {policy})")
            s.note("kept", f"{where}: {why}; kept")
        return
    if not _unchanged(session, folder, row):
        s.note("conflicts", f"{where}: {why}, but changed at the target since we wrote it: left where it is")
        store.set_mail_message(row.id, reason=f"{why}; changed at the target, left there")
        return
    new_uid = session.move(folder, int(row.uid or 0), trash)
    store.set_mail_message(row.id, status="removed", target_folder_id=trash_id, uid=new_uid,
                           reason=f"{why}; moved to {trash} at the target ([policy] deletions = trash)")
    store.audit("mail.trash", f"{box.imap_user}/{folder}", to=trash, uid=row.uid, new_uid=new_uid,
                message=row.internet_message_id)
    s.add("trashed")
