"""The IMAP side of one mailbox: decide each carried folder's name, create what is missing, watch UIDVALIDITY."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrate.engine.mail.folders import FolderIn, map_folders, path_parts
from migrate.errors import MigrateError

if TYPE_CHECKING:
    from migrate.store import StateStore
    from migrate.store.mail import MailFolderRow

log = logging.getLogger(__name__)


@dataclass
class FolderSetup:
    """What preparing a mailbox's folders did: folders by row id with their target, and what to tell people."""

    targets: dict[int, str] = field(default_factory=dict)     # mail_folders.id → IMAP folder (UTF-8)
    created: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)           # folders the server would not create at all
    uidvalidity_changed: list[str] = field(default_factory=list)


def placed_of(r: MailFolderRow) -> str:
    """The source place a folder's IMAP name was decided for: [parent id, name] (a change: moved in Outlook)."""
    return json.dumps([r.parent_id, path_parts(r.path)[-1]], ensure_ascii=False)


def _inputs(rows: list[MailFolderRow], free: str | None = None) -> list[FolderIn]:
    """The mapping's view; every folder made at the server keeps its name, except `free` (a source id to name
    afresh: renamed or moved in Outlook)."""
    return [FolderIn(r.source_id, r.parent_id, path_parts(r.path)[-1], r.well_known, r.skip_reason is None,
                     r.target_name if r.created and r.source_id != free else None) for r in rows]


def prepare_folders(store: StateStore, session: Any, user_id: str, upn: str, *, create: bool = True) -> FolderSetup:
    """Map every carried folder of the mailbox to its IMAP folder and (with `create`) make the missing ones.

    A name the server refuses ([CANNOT], too long) is mapped again under the stricter rules and tried once more;
    if that is refused too the folder is listed and its messages wait. A folder whose UIDVALIDITY changed since
    we wrote into it (deleted and recreated at the server) has its messages marked `appending`: the next copy
    looks for each one by Message-ID and digest before it appends anything."""
    from migrate.errors import FolderNameRefused

    rows = [r for r in store.mail_folders() if r.user_id == user_id]
    setup = FolderSetup()
    special = session.special_use()
    sep = session.separator or "/"
    existing = {f.name.casefold(): f.name for f in session.folders()}
    strict: set[str] = set()
    for _round in range(2):
        mapped = map_folders(_inputs(rows), special, sep, strict=frozenset(strict))
        retry = False
        for r in rows:
            out = mapped.get(r.source_id)
            if out is None:
                continue
            name = out.target
            if r.held == "gone":   # deleted at the server by a person: its messages wait (sync reports it)
                continue
            if not create or (r.created and r.target_name == name):
                setup.targets[r.id] = name
                continue
            try:
                if name.casefold() not in existing and name.upper() != "INBOX":
                    session.create(name)
                    existing[name.casefold()] = name
                    setup.created.append(f"{upn}: {name}")
                    store.audit("mail.create", f"{r.imap_user}/{name}", source=r.source_id)
            except FolderNameRefused as exc:
                if r.source_id in strict:
                    setup.refused.append(f"{upn}: {' / '.join(path_parts(r.path))}: {exc.message}")
                    store.set_mail_folder(r.id, last_error=exc.message[:500])
                    continue
                strict.add(r.source_id)
                retry = True
                continue
            st = session.status(name)
            store.set_mail_folder(r.id, target_name=name, rename_reason=out.reason, created=1,
                                  uidvalidity=st.uidvalidity, last_error=None, placed=placed_of(r))
            if out.reason and "server's" not in out.reason:
                setup.renamed.append(f"{upn}: {' / '.join(path_parts(r.path))} → {name} ({out.reason})")
            setup.targets[r.id] = name
        if not retry:
            break
        rows = [r for r in store.mail_folders() if r.user_id == user_id]
    if create:
        check_uidvalidity(store, session, user_id, upn, setup)
    return setup


def check_uidvalidity(store: StateStore, session: Any, user_id: str, upn: str, setup: FolderSetup) -> None:
    """A folder whose UIDVALIDITY is not the one we recorded: our UIDs there mean nothing any more."""
    for r in store.mail_folders():
        if r.user_id != user_id or r.id not in setup.targets or r.uidvalidity is None:
            continue
        try:
            now = session.status(setup.targets[r.id]).uidvalidity
        except MigrateError as exc:
            log.info("status of %s failed: %s", setup.targets[r.id], exc)
            continue
        if now != r.uidvalidity:
            setup.uidvalidity_changed.append(f"{upn}: {setup.targets[r.id]} (was {r.uidvalidity}, now {now})")
            n = store.reset_mail_uids(r.id)
            store.set_mail_folder(r.id, uidvalidity=now)
            store.audit("mail.uidvalidity-changed", f"{r.imap_user}/{setup.targets[r.id]}", was=r.uidvalidity,
                        now=now, messages=n)
