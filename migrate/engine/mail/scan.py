"""`scan --what mail`: each mapped mailbox's folder tree, and per folder the message delta, into the ledger.

Mailboxes run in parallel, each through its own pacer under Outlook's per-mailbox limits (10,000 requests per
10 minutes, 4 at once; the groupware steps use the same). A folder with a stored delta link reads only the
changes; an expired link (410) reads the folder again from the start and reconciles with the ledger, which is
keyed on the immutable id, so nothing is added twice. Hidden folders and Outlook's artefacts are recorded (the
plan lists them) but their messages are not read.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from migrate.engine.mail.boxes import Mailbox, mailboxes
from migrate.engine.mail.folders import skip_reason
from migrate.engine.summary import StepSummary
from migrate.errors import AuthError, DeltaExpired, Fatal, MigrateError
from migrate.store.mail import MessageFacts, flag_text

if TYPE_CHECKING:
    from migrate.config import MailSettings
    from migrate.mapping import Mappings
    from migrate.store import StateStore

log = logging.getLogger(__name__)
ANSWERED_VERBS = (102, 103)   # PidTagLastVerbExecuted: reply to sender, reply to all
FORWARDED_VERB = 104
ANSWERED_ICONS, FORWARDED_ICONS = (261,), (262,)   # PidTagIconIndex fallback (mail.md §1.6)


@dataclass
class MailScanSummary(StepSummary):
    mailboxes: int = 0
    folders: int = 0
    messages: int = 0
    new: int = 0
    changed: int = 0
    removed: int = 0
    restarted: list[str] = field(default_factory=list)     # folders read again after an expired delta link
    not_carried: list[str] = field(default_factory=list)   # folders left out, with the reason
    unmapped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    archives: list[dict[str, Any]] = field(default_factory=list)   # online archives: never readable, listed
    archive_note: str = ""
    requests: int = 0
    seconds: float = 0.0

    @property
    def attention(self) -> bool:
        return bool(self.failed)


def iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def want_flags(meta: Any) -> set[str]:
    """The IMAP flags and keywords a message should carry (mail.md §1.6, §2.11); never \\Deleted or \\Recent."""
    from migrate.backends.imap import keyword

    flags: set[str] = set()
    if meta.is_read:
        flags.add("\\Seen")
    if meta.flag_status == "flagged":
        flags.add("\\Flagged")
    if meta.is_draft:
        flags.add("\\Draft")
    verb, icon = getattr(meta, "last_verb", None), getattr(meta, "icon_index", None)
    if verb in ANSWERED_VERBS or (verb is None and icon in ANSWERED_ICONS):
        flags.add("\\Answered")
    if verb == FORWARDED_VERB or (verb is None and icon in FORWARDED_ICONS):
        flags.add("$Forwarded")
    for cat in meta.categories or ():
        kw = keyword(cat)
        if kw:
            flags.add(kw)
    return flags


def facts_of(meta: Any) -> MessageFacts:
    """The ledger's view of a listed message; INTERNALDATE is receivedDateTime, else sent, else created (§1.7)."""
    received = meta.received or meta.sent or meta.created
    kind = (meta.odata_type or "message").rsplit(".", 1)[-1]
    return MessageFacts(meta.id, meta.internet_message_id, iso(received), flag_text(want_flags(meta)), meta.size,
                        kind, meta.change_key)


class MailClient:
    """The Graph client seen through one mailbox's pacer (Outlook's per-mailbox limits), for the mail reader."""

    def __init__(self, client: Any, upn: str, interval: float) -> None:
        from migrate.engine.groupware.steps import MailboxClient

        self.inner = MailboxClient(client, upn, interval)
        self.client, self.pacer, self.request_once = client, self.inner.pacer, client.request_once

    def get_json(self, path: str, **kw: Any) -> dict[str, Any]:
        return self.client.get_json(path, pacer=self.pacer, **kw)

    def open_stream(self, path: str, **kw: Any) -> Any:
        return self.client.open_stream(path, pacer=self.pacer, **kw)

    def __getattr__(self, name: str) -> Any:   # anything else the reader asks of a Graph client
        return getattr(self.client, name)

    def close(self) -> None:
        self.inner.close()


def scan_mail(store: StateStore, source: Any, mappings: Mappings, mail: MailSettings, *, upns: tuple[str, ...] = (),
              workers: int = 4, say: Any = None, interval: float | None = None) -> MailScanSummary:
    """Read every mapped mailbox's folders and message delta into the state database (idempotent, resumable)."""
    from migrate.engine.groupware.steps import MAILBOX_INTERVAL

    say = say or (lambda m: None)
    s = MailScanSummary()
    started, before = time.monotonic(), sum(source.client.counts.values())
    boxes, s.unmapped = mailboxes(store, mappings, upns)
    s.mailboxes = len(boxes)

    def one(box: Mailbox) -> None:
        client = MailClient(source.client, box.upn, MAILBOX_INTERVAL if interval is None else interval)
        try:
            scan_mailbox(store, client, box, mail, s)
            say(f"mail: scanned the mailbox of {box.upn}")
        except AuthError as exc:
            raise AuthError(f"{box.upn}: {exc.message}", hint="the app needs the Graph application permission "
                            "Mail.Read (admin consent), scoped to the migration mailboxes") from exc
        except MigrateError as exc:
            if isinstance(exc, Fatal):
                raise
            s.note("failed", f"{box.upn}: {exc}")
            log.warning("mail scan of %s failed: %s", box.upn, exc)
        finally:
            client.close()

    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="mail-scan") as pool:
        for f in [pool.submit(one, b) for b in boxes]:
            f.result()
    online_archives(source, boxes, s)
    s.requests = sum(source.client.counts.values()) - before
    s.seconds = round(time.monotonic() - started, 3)
    return s


def online_archives(source: Any, boxes: list[Mailbox], s: MailScanSummary) -> None:
    """Which mapped mailboxes have an online archive (the mailbox usage report): the v1.0 mail API cannot read
    them, so the plan lists them. Needs Reports.Read.All; without it the plan says the check was not made."""
    from migrate.backends.graph import mail as graph_mail

    try:
        rows = graph_mail.archive_mailboxes(source.client)
    except MigrateError as exc:
        if isinstance(exc, Fatal) and not isinstance(exc, AuthError):
            raise
        s.archive_note = (f"online archives not checked: {exc.message} (grant the app Reports.Read.All to have "
                          "the plan list them)")
        return
    mapped = {b.upn.lower() for b in boxes}
    concealed = any(r.concealed for r in rows)
    for r in rows:
        if r.has_archive and (r.upn.lower() in mapped or r.concealed):
            s.archives.append({"user": r.upn, "primary_bytes": r.primary_bytes, "items": r.items,
                               "report_date": r.report_date, "concealed": r.concealed})
    if concealed:
        s.archive_note = ("the usage report conceals user names (Microsoft 365 admin centre, Reports, privacy "
                          "setting): archives are listed by hash")


def scan_mailbox(store: StateStore, client: Any, box: Mailbox, mail: MailSettings, s: MailScanSummary) -> None:
    from migrate.backends.graph import mail as graph_mail

    seen: list[str] = []
    skipped: set[str] = set()
    for f in graph_mail.mail_folders(client, box.user_id, hidden=True):
        row = store.upsert_mail_folder(user_id=box.user_id, upn=box.upn, source_id=f.id, parent_id=f.parent_id,
                                       path=json.dumps(list(f.path), ensure_ascii=False), well_known=f.well_known,
                                       hidden=f.hidden, total=f.total, unread=f.unread, imap_user=box.imap_user)
        seen.append(f.id)
        why = skip_reason(well_known=f.well_known, hidden=f.hidden, hidden_folders=mail.hidden_folders,
                          deleted_items=mail.deleted_items, junk=mail.junk)
        if why is None and f.parent_id in skipped:
            why = "inside a folder that is not carried"
        if why != row.skip_reason:
            store.set_mail_folder(row.id, skip_reason=why)
        if why:
            skipped.add(f.id)
            s.note("not_carried", f"{box.upn}: {' / '.join(f.path)}: {why} ({f.total} items)")
            continue
        s.add("folders")
        scan_folder(store, client, box, row.id, row.delta_link, s, label=" / ".join(f.path))
    if seen:
        s.add("removed", store.mark_mail_folders_gone(box.user_id, seen))


def scan_folder(store: StateStore, client: Any, box: Mailbox, folder_id: int, link: str | None,
                s: MailScanSummary, *, label: str = "") -> None:
    """The folder's changes since `link`, or all of it (link None, or expired: read again and reconcile)."""
    row = store.mail_folder(folder_id)
    assert row is not None
    if link:
        try:
            _read(store, client, box, row.source_id, folder_id, link, row.scan_generation, s, full=False)
            return
        except DeltaExpired:
            s.note("restarted", f"{box.upn}: {label}")
            log.info("delta link of %s / %s expired: reading the folder again", box.upn, label)
    gen = store.begin_mail_folder_scan(folder_id)
    delta_link = _read(store, client, box, row.source_id, folder_id, None, gen, s, full=True)
    s.add("removed", store.finish_mail_folder_scan(folder_id, gen, delta_link))


def _read(store: StateStore, client: Any, box: Mailbox, source_folder: str, folder_id: int, link: str | None,
          gen: int, s: MailScanSummary, *, full: bool) -> str | None:
    from migrate.backends.graph import mail as graph_mail

    delta_link = None
    for page in graph_mail.message_delta(client, box.user_id, source_folder, link):
        facts = [facts_of(m) for m in page.messages]
        new, changed = store.upsert_mail_messages(folder_id, box.user_id, gen, facts)
        s.add("messages", len(facts))
        s.add("new", new)
        s.add("changed", changed)
        if page.removed:
            s.add("removed", store.mark_mail_removed(folder_id, list(page.removed)))
        delta_link = page.delta_link or delta_link
    if not full and delta_link:
        store.set_mail_folder(folder_id, delta_link=delta_link)
    return delta_link
