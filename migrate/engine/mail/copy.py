"""`copy --what mail`: APPEND every scanned message with its flags and received time; a rerun sends nothing twice.

Mailboxes run in parallel; inside one, at most [mail] connections messages at once, each on its own IMAP
session. A message's MIME is spooled to a temporary file while it is hashed (never held in memory), the ledger
row goes to `appending` with that digest, then the APPEND streams the file; APPENDUID is recorded with `done`.
A row found in `appending` (a run killed in between, or a folder whose UIDVALIDITY changed) is looked for first:
by Message-ID (or among the folder's UIDs the ledger does not know), compared by length and SHA-256 of the
CRLF-normalised bytes, and adopted when it is there. [OVERQUOTA] stops that mailbox (exit 5 at the end); a
message Graph no longer has is listed and skipped. Nothing here sends mail: IMAP APPEND only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrate.engine.mail.boxes import Mailbox, imap_pacer, imap_settings, login_source, mailboxes
from migrate.engine.mail.scan import MailClient
from migrate.engine.mail.target import prepare_folders
from migrate.engine.summary import StepSummary
from migrate.errors import (
    AuthError,
    Fatal,
    ItemNotFound,
    MailLoginRefused,
    MigrateError,
    TargetFull,
    TargetNotTrusted,
    Terminal,
    TransientError,
)
from migrate.store.mail import flag_text

if TYPE_CHECKING:
    from migrate.config import Settings
    from migrate.mapping import Mappings
    from migrate.store import StateStore
    from migrate.store.mail import MailMessageRow

log = logging.getLogger(__name__)
TODO = ("new", "appending", "failed")
UNKNOWN_UIDS_CHECKED = 200   # a message without Message-ID is looked for among at most this many unknown UIDs


@dataclass
class MailCopySummary(StepSummary):
    mailboxes: int = 0
    appended: int = 0
    adopted: int = 0            # found already at the server after an interrupted run: not appended again
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)      # too large, no longer at the source
    failed: list[str] = field(default_factory=list)
    folders_created: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    uidvalidity_changed: list[str] = field(default_factory=list)
    full: list[str] = field(default_factory=list)         # mailboxes stopped by [OVERQUOTA]
    refused_login: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0
    tick = None   # not a field: called once per message handled (the progress bar), never stored or reported

    @property
    def attention(self) -> bool:
        return bool(self.failed or self.skipped or self.full or self.refused_login or self.uidvalidity_changed)


def copy_mail(store: StateStore, source: Any, settings: Settings, mappings: Mappings, *, upns: tuple[str, ...] = (),
              workers: int = 4, say: Any = None, interval: float | None = None, progress: Any = None
              ) -> MailCopySummary:
    """Copy every scanned, carried message of the mapped mailboxes (resumable, idempotent).

    Raises the worst mailbox-level error after every mailbox had its turn: MailboxFull/TargetFull (exit 5) when
    a mailbox is full, AuthError (exit 4) when a sign-in was refused; the summary lists them all."""

    say = say or (lambda m: None)
    s = MailCopySummary()
    if progress is not None:
        s.tick = progress.step
    started, before = time.monotonic(), sum(source.client.counts.values())
    boxes, s.unmapped = mailboxes(store, mappings, upns)
    s.mailboxes = len(boxes)
    imap, login_for, pacer = imap_settings(settings), login_source(settings), imap_pacer(settings)

    each_mailbox(boxes, s, source.client, lambda box, client: copy_mailbox(
        store, client, Sessions(imap, login_for(box.imap_user), pacer), box, settings, s),
        interval=interval, workers=workers, say=say, done="copied", thread="mail-copy")
    s.requests = sum(source.client.counts.values()) - before
    s.seconds = round(time.monotonic() - started, 3)
    return s


def each_mailbox(boxes: list[Mailbox], s: Any, source_client: Any, body: Callable[[Mailbox, MailClient], None], *,
                 interval: float | None, workers: int, say: Callable[[str], None], done: str, thread: str) -> None:
    """`body(box, client)` for every mailbox, `workers` at a time, each with its own paced Graph client.

    A full mailbox, a refused sign-in or another mailbox-level failure is noted in the summary `s` and the other
    mailboxes go on; what ends the whole run (Fatal, e.g. Graph unreachable) is raised."""
    from migrate.engine.groupware.steps import MAILBOX_INTERVAL

    def one(box: Mailbox) -> None:
        client = MailClient(source_client, box.upn, MAILBOX_INTERVAL if interval is None else interval)
        try:
            body(box, client)
            say(f"mail: {done} the mailbox of {box.upn}")
        except TargetFull as exc:
            s.note("full", f"{box.upn} ({box.imap_user}): {exc.message}")
        except AuthError as exc:
            if not _is_login(exc):
                raise
            s.note("refused_login", f"{box.upn} ({box.imap_user}): {exc.message}")
        except MigrateError as exc:
            if isinstance(exc, Fatal):
                raise
            s.note("failed", f"{box.upn}: {exc}; stopped here, run again to resume")
        finally:
            client.close()

    with ThreadPoolExecutor(max(1, workers), thread_name_prefix=thread) as pool:
        for f in [pool.submit(one, b) for b in boxes]:
            f.result()


def _is_login(exc: AuthError) -> bool:
    """A refusal of this mailbox's sign-in (or of the server's certificate): the other mailboxes go on."""
    return isinstance(exc, MailLoginRefused | TargetNotTrusted)


def raise_mailbox_errors(s: Any) -> None:
    """After the summary is shown: a full mailbox is exit 5, a refused sign-in exit 4 (what to do is named)."""
    from migrate.errors import AuthError as Auth
    from migrate.errors import TargetFull as Full

    if getattr(s, "full", None):
        raise Full("mailbox full at the IMAP server, stopped there: " + "; ".join(s.full),
                   hint="raise the quota of these users at the server (above the source mailbox size plus 10 %), "
                   "then run the same command again: what was copied stays, the rest follows")
    if getattr(s, "refused_login", None):
        raise Auth("the IMAP server refused the sign-in of: " + "; ".join(s.refused_login),
                   hint="check the user names (users.csv target_user / imap_user), the master user and its password "
                   "([mail] master_user, M365_MIGRATE_IMAP_MASTER_PASSWORD) or the passwords in [mail] credentials; "
                   "`m365-migrate doctor` signs in to each mailbox")


class Sessions:
    """One IMAP session per worker thread of a mailbox (sessions are not thread-safe), all closed at the end.
    `call` runs an operation through the run's IMAP pacer: a transient failure drops the session (the retry opens
    a new one), so a broken connection never serves the next message."""

    def __init__(self, imap: Any, login: Any, pacer: Any = None) -> None:
        from migrate.backends.imap import ImapSession
        from migrate.transport.pacer import Pacer

        self.open_one = lambda: ImapSession.open(imap, login)
        self.pacer = pacer or Pacer("imap", max_attempts=3)
        self.local = threading.local()
        self.all: list[Any] = []
        self.lock = threading.Lock()

    def call(self, fn: Any, *, what: str = "") -> Any:
        def attempt() -> Any:
            try:
                return fn(self.get())
            except TransientError:
                self.drop()
                raise

        return self.pacer.call(attempt, what=what or "IMAP")

    def get(self) -> Any:
        sess = getattr(self.local, "session", None)
        if sess is None:
            sess = self.open_one()
            self.local.session = sess
            with self.lock:
                self.all.append(sess)
        return sess

    def drop(self) -> None:
        """Close this thread's session (broken, or not needed any more); the next call opens a new one."""
        sess = getattr(self.local, "session", None)
        self.local.session = None
        if sess is not None:
            with self.lock:
                if sess in self.all:
                    self.all.remove(sess)
            with contextlib.suppress(Exception):
                sess.close()

    def close(self) -> None:
        for sess in self.all:
            with contextlib.suppress(Exception):
                sess.close()


def copy_mailbox(store: StateStore, client: Any, sessions: Sessions, box: Mailbox, settings: Settings,
                 s: MailCopySummary) -> None:
    try:
        setup = sessions.call(lambda sess: prepare_folders(store, sess, box.user_id, box.upn),
                              what=f"folders of {box.imap_user}")
        sessions.drop()   # the workers open their own: at most [mail] connections at once
        for name in ("created", "renamed", "uidvalidity_changed"):
            for text in getattr(setup, name):
                s.note("folders_created" if name == "created" else name, text)
        for text in setup.refused:
            s.note("failed", f"{text}: its messages wait (rename the folder in Outlook, or change the server's layout)")
        copy_messages(store, client, sessions, box, setup.targets, settings, s)
    finally:
        sessions.close()


def copy_messages(store: StateStore, client: Any, sessions: Sessions, box: Mailbox, targets: dict[int, str],
                  settings: Settings, s: MailCopySummary, *, statuses: tuple[str, ...] = TODO) -> None:
    """Every message of the carried folders in `statuses`, [mail] connections at a time."""
    width = settings.mail.connections
    stop = threading.Event()
    fatal: list[BaseException] = []
    gate = threading.BoundedSemaphore(width * 2)

    def work(row: MailMessageRow, folder: str, folder_id: int) -> None:
        try:
            if not stop.is_set():
                copy_one(store, client, sessions, box, row, folder, folder_id, settings, s)
        except (TargetFull, AuthError) as exc:
            stop.set()
            fatal.append(exc)
        except BaseException as exc:   # noqa: BLE001 - carried to the mailbox's thread
            stop.set()
            fatal.append(exc)
        finally:
            gate.release()
            if s.tick is not None:
                s.tick()

    with ThreadPoolExecutor(width, thread_name_prefix="mail-append") as pool:
        for folder_id, folder in targets.items():
            for row in store.iter_mail_messages(folder_id=folder_id, statuses=statuses):
                if stop.is_set():
                    break
                gate.acquire()
                pool.submit(work, row, folder, folder_id)
    if fatal:
        raise fatal[0]


def copy_one(store: StateStore, client: Any, sessions: Sessions, box: Mailbox, row: MailMessageRow, folder: str,
             folder_id: int, settings: Settings, s: MailCopySummary) -> None:
    """One message: find it if an earlier run appended it, else spool, hash, mark `appending`, APPEND, record."""
    from migrate.backends.graph import mail as graph_mail
    from migrate.backends.imap import CrlfHasher

    where = f"{box.upn}: {folder}: {row.internet_message_id or row.message_id}"
    limit = settings.mail.max_message_size
    if limit and row.size and row.size > limit:
        _skip(store, row, s, where, f"larger than [mail] max_message_size ({row.size:,} > {limit:,} bytes)")
        return
    if row.status == "appending" and row.sha256 and row.target_folder_id is not None:
        target = folder if row.target_folder_id == folder_id else store.mail_folder(row.target_folder_id)
        name = target if isinstance(target, str) else (target.target_name if target else None)
        tid = int(row.target_folder_id)
        if name and sessions.call(lambda sess: _adopt(store, sess, box, row, name, tid, s), what=where):
            return
    try:
        # spooled beside the state database, not in /tmp (often a RAM disk): a 150 MB message stays on disk
        with tempfile.TemporaryFile(prefix="mail-spool-", dir=settings.state_path.parent) as spool:
            hasher = CrlfHasher()
            size = 0
            with graph_mail.message_mime(client, box.user_id, row.message_id) as chunks:
                for chunk in chunks:
                    spool.write(chunk)
                    hasher.update(chunk)
                    size += len(chunk)
            if limit and size > limit:
                _skip(store, row, s, where, f"larger than [mail] max_message_size ({size:,} > {limit:,} bytes)")
                return
            if size == 0:
                _skip(store, row, s, where, "Exchange gives no MIME for this item (empty export)")
                return
            flags = sorted(row.want_flags)
            store.set_mail_message(row.id, status="appending", sha256=hasher.hexdigest(), length=hasher.length,
                                   target_folder_id=folder_id, flags=flag_text(flags), attempts=row.attempts + 1)
            pending = store.mail_message(row.id)
            tries = [0]

            def append(sess: Any) -> Any:
                # a retry after a dropped connection first looks for what the lost attempt may have stored
                tries[0] += 1
                if tries[0] > 1 and pending is not None and _adopt(store, sess, box, pending, folder, folder_id, s):
                    return None
                spool.seek(0)
                return sess.append(folder, spool, size, flags, _when(row.received))

            got = sessions.call(append, what=where)
            if got is None:
                return
    except ItemNotFound:
        store.set_mail_message(row.id, status="skipped", gone=1, reason="no longer in the mailbox at the source "
                               "(deleted after the scan)")
        s.note("skipped", f"{where}: no longer in the mailbox at the source (deleted after the scan)")
        return
    except (TargetFull, AuthError):
        raise
    except (Terminal, TransientError) as exc:
        reason = str(exc).splitlines()[0][:300]
        store.set_mail_message(row.id, status="failed", reason=reason)
        store.audit("mail.append-failed", f"{box.imap_user}/{folder}", message=row.internet_message_id,
                    error=reason)
        s.note("failed", f"{where}: {reason}")
        return
    store.set_mail_message(row.id, status="done", uidvalidity=got.uidvalidity, uid=got.uid, reason=None)
    store.audit("mail.append", f"{box.imap_user}/{folder}", uid=got.uid, uidvalidity=got.uidvalidity,
                message=row.internet_message_id, sha256=hasher.hexdigest(), length=hasher.length,
                flags=flag_text(flags), received=row.received)
    s.add("appended")
    s.add("bytes", size)


def _when(received: str | None) -> dt.datetime:
    if not received:
        return dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(received.replace("Z", "+00:00"))


def _skip(store: StateStore, row: MailMessageRow, s: MailCopySummary, where: str, why: str) -> None:
    store.set_mail_message(row.id, status="skipped", reason=why)
    s.note("skipped", f"{where}: {why}")


def _adopt(store: StateStore, session: Any, box: Mailbox, row: MailMessageRow, folder: str, folder_id: int,
           s: MailCopySummary) -> bool:
    """Is the message of an interrupted APPEND at the server? Found by Message-ID (or, without one, among the
    UIDs the ledger does not know), compared by length and SHA-256; recorded as done when it is."""
    status = session.status(folder)
    if row.internet_message_id:
        candidates = session.search_message_id(folder, row.internet_message_id)
    else:
        known = store.mail_uids(folder_id)
        candidates = [u for u in session.uids(folder) if u not in known][-UNKNOWN_UIDS_CHECKED:]
    for uid in candidates:
        digest = session.fetch_digest(folder, uid)
        if digest is not None and digest == (row.length, row.sha256):
            if store.mail_uid_taken(folder_id, uid, row.id):
                continue
            store.set_mail_message(row.id, status="done", uidvalidity=status.uidvalidity, uid=uid, reason=None)
            store.audit("mail.adopt", f"{box.imap_user}/{folder}", uid=uid, uidvalidity=status.uidvalidity,
                        message=row.internet_message_id, sha256=row.sha256)
            s.add("adopted")
            return True
    return False
