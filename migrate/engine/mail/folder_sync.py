"""Folder changes between two passes of `sync --what mail`: what changed in Outlook, carried at the IMAP server.

A folder renamed or moved in Outlook is renamed at the server (RENAME: its subfolders follow, UIDVALIDITY and
UIDs stay), with the mapping's name rules and collision suffixes; well-known folders are never renamed. A folder
a person renamed or deleted at the server since we made it is theirs: it is found again by its UIDVALIDITY and
messages follow it there (or, deleted, its messages wait), and an Outlook rename of it is a conflict, not a
RENAME. A folder deleted in Outlook follows [policy] deletions as its messages do: `keep` leaves it, `trash`
deletes it at the server once our messages went to Trash, and only when it is empty (nothing a person put there).
Every write is audited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from migrate.engine.mail.folders import SPECIAL, map_folders, path_parts, path_text
from migrate.engine.mail.target import _inputs, placed_of
from migrate.errors import FolderMissing, FolderNameRefused, ImapRefused

if TYPE_CHECKING:
    from migrate.engine.mail.boxes import Mailbox
    from migrate.store import StateStore
    from migrate.store.mail import MailFolderRow


def _ours(store: StateStore, box: Mailbox, *, live: bool = False) -> list[MailFolderRow]:
    return [r for r in store.mail_folders(live=live) if r.user_id == box.user_id]


def _mine(r: MailFolderRow) -> bool:
    """A folder we made at the server whose name we may change (never INBOX or a special-use folder)."""
    return bool(r.created and r.target_name and r.well_known not in SPECIAL and r.target_name.upper() != "INBOX")


def _under(name: str, top: str, sep: str) -> bool:
    return name.startswith(top + sep)


def _move_children(store: StateStore, box: Mailbox, old: str, new: str, sep: str) -> None:
    """The server moved the subfolders with their parent: their recorded names follow (gone ones too)."""
    for c in _ours(store, box):
        if c.target_name and _under(c.target_name, old, sep):
            store.set_mail_folder(c.id, target_name=new + c.target_name[len(old):])


def follow_server(store: StateStore, session: Any, box: Mailbox, s: Any) -> None:
    """Our folders no longer at the name we gave them: a person renamed or moved them at the server (found by
    UIDVALIDITY, which RENAME keeps: messages follow) or deleted them (their messages wait, reported)."""
    sep = session.separator or "/"
    names = {f.name.casefold() for f in session.folders()}
    by_validity: dict[int, list[str]] | None = None
    for r0 in sorted(_ours(store, box), key=lambda r: (r.target_name or "").count(sep)):
        r = store.mail_folder(r0.id)
        if r is None or not _mine(r) or r.held == "kept":
            continue
        name = r.target_name or ""
        here = name.casefold() in names
        if r.held == "gone":
            if here:   # made again at the server: ours again (UIDVALIDITY differs: found by Message-ID or appended)
                store.set_mail_folder(r.id, held=None, last_error=None)
                store.audit("mail.folder-back", f"{r.imap_user}/{name}", source=r.source_id)
            continue
        if here or r.gone:
            continue
        if by_validity is None:
            by_validity = {}
            for f in session.folders():
                if f.selectable:
                    try:
                        by_validity.setdefault(session.status(f.name).uidvalidity, []).append(f.name)
                    except FolderMissing:
                        continue
        found = by_validity.get(r.uidvalidity or -1, [])
        where = f"{box.upn}: {path_text(r.path)}"
        if len(found) == 1:
            store.set_mail_folder(r.id, target_name=found[0], held="renamed",
                                  rename_reason="renamed or moved at the server by a person: left there")
            _move_children(store, box, name, found[0], sep)
            store.audit("mail.folder-followed", f"{r.imap_user}/{name}", to=found[0], source=r.source_id)
            s.note("conflicts", f"{where}: renamed at the server by a person ({name} → {found[0]}): left there, "
                                "its messages go there")
        else:
            store.set_mail_folder(r.id, held="gone", last_error="deleted at the server by a person since we made it")
            store.audit("mail.folder-gone", f"{r.imap_user}/{name}", source=r.source_id)
            s.note("conflicts", f"{where}: {name} was deleted at the server by a person: left so; its messages are "
                                "not carried (create the folder again at the server to have them carried)")


def carry_renames(store: StateStore, session: Any, box: Mailbox, s: Any) -> None:
    """Folders renamed or moved in Outlook since their IMAP name was set: RENAME at the server, top-down."""
    sep = session.separator or "/"
    for r in _ours(store, box, live=True):
        if r.created and r.placed is None:   # made before placements were recorded: this is where it is
            store.set_mail_folder(r.id, placed=placed_of(r))
        if r.held == "kept" and r.skip_reason is None:   # back in Outlook (restored): ours again
            store.set_mail_folder(r.id, held=None)
    special = session.special_use()
    tried: set[int] = set()   # a RENAME refused is tried once a sync
    while True:
        rows = _ours(store, box, live=True)
        changed = [r for r in rows if _mine(r) and r.skip_reason is None and r.held != "gone"
                   and r.placed is not None and r.placed != placed_of(r) and r.id not in tried]
        if not changed:
            return
        r = min(changed, key=lambda x: (len(path_parts(x.path)), x.id))
        tried.add(r.id)
        where = f"{box.upn}: {path_text(r.path)}"
        if r.held == "renamed":
            s.note("conflicts", f"{where}: renamed or moved in Outlook, but a person renamed it at the server "
                                f"({r.target_name}): left there")
            store.set_mail_folder(r.id, placed=placed_of(r))
            continue
        _rename_one(store, session, box, r, rows, special, sep, s)


def _rename_one(store: StateStore, session: Any, box: Mailbox, r: MailFolderRow, rows: list[MailFolderRow],
                special: dict[str, str], sep: str, s: Any) -> None:
    old = r.target_name or ""
    where = f"{box.upn}: {path_text(r.path)}"
    ours = {x.target_name.casefold() for x in _ours(store, box) if x.created and x.target_name}
    others = [f.name for f in session.folders() if f.name.casefold() not in ours]
    try:
        now = session.status(old).uidvalidity
    except FolderMissing:
        now = None
    if now is None or (r.uidvalidity is not None and now != r.uidvalidity):
        s.note("conflicts", f"{where}: renamed or moved in Outlook, but {old} at the server is not the folder we "
                            "made (deleted or made again there): not renamed")
        store.set_mail_folder(r.id, placed=placed_of(r))
        return
    for strict in (frozenset(), frozenset({r.source_id})):
        out = map_folders(_inputs(rows, free=r.source_id), special, sep, strict=strict, taken=others).get(r.source_id)
        if out is None or out.target == old:   # nothing to do at the server (the same name under the rules)
            store.set_mail_folder(r.id, placed=placed_of(r))
            return
        try:
            session.rename(old, out.target)
        except FolderNameRefused as exc:
            if strict:
                s.note("failed", f"{where}: renamed in Outlook; the server refused the name {out.target!r} "
                                 f"({exc.message}): kept as {old}")
                return
            continue
        except ImapRefused as exc:
            s.note("failed", f"{where}: renamed in Outlook; RENAME {old} → {out.target} refused ({exc.message}): "
                             "kept as it was, tried again next sync")
            return
        store.set_mail_folder(r.id, target_name=out.target, placed=placed_of(r), rename_reason=out.reason)
        _move_children(store, box, old, out.target, sep)
        after = session.status(out.target).uidvalidity
        if after != now:   # a server that does not keep it: our UIDs there are void, found again by Message-ID
            store.reset_mail_uids(r.id)
            store.set_mail_folder(r.id, uidvalidity=after)
        store.audit("mail.folder-rename", f"{r.imap_user}/{old}", to=out.target, source=r.source_id,
                    uidvalidity=after)
        s.note("folders_renamed", f"{where}: {old} → {out.target}")
        return


def out_of_reach(store: StateStore, box: Mailbox) -> set[int]:
    """Folders we made that Outlook moved (themselves or a folder above them) into one that is not carried (a
    hidden folder, Deleted Items with deleted_items = false): handled like a deletion. A folder left out only
    because the settings changed since ([mail] hidden_folders, junk, ...) is not: nothing at the server changes."""
    rows = _ours(store, box, live=True)
    by_source = {r.source_id: r for r in rows}
    out: set[int] = set()
    for r in rows:
        if not (_mine(r) and r.skip_reason):
            continue
        node: MailFolderRow | None = r
        while node is not None:
            if node.created and node.placed not in (None, placed_of(node)):
                out.add(r.id)
                break
            node = by_source.get(node.parent_id or "")
    return out


def retire_folders(store: StateStore, session: Any, box: Mailbox, policy: str, s: Any) -> None:
    """Folders deleted in Outlook (or moved where they are not carried), after their messages were handled:
    `keep` leaves them; `trash` deletes each one that is empty at the server (deepest first), never one that
    holds anything (a person's message, a subfolder, a message changed at the server and so left there)."""
    sep = session.separator or "/"
    away = out_of_reach(store, box)
    retired = [r for r in _ours(store, box) if _mine(r) and (r.gone or r.id in away) and r.held is None]
    if not retired:
        return
    names = {f.name.casefold(): f.name for f in session.folders()}
    for r in sorted(retired, key=lambda x: -(x.target_name or "").count(sep)):
        name, where = r.target_name or "", f"{box.upn}: {path_text(r.path)}"
        why = "deleted in Outlook" if r.gone else "moved in Outlook into a folder that is not carried"
        if name.casefold() not in names:   # gone at the server too: nothing left to do
            store.set_mail_folder(r.id, created=0)
            continue
        if policy != "trash":
            store.set_mail_folder(r.id, held="kept")
            s.note("folders_kept", f"{where}: {why}; {name} kept at the server with its messages "
                                   f"([policy] deletions = {policy})")
            continue
        inside = [n for k, n in names.items() if _under(k, name.casefold(), sep)]
        held = session.status(name).messages
        if inside or held:
            store.set_mail_folder(r.id, held="kept")
            what = f"{held} messages" if held else f"subfolders ({', '.join(sorted(inside)[:3])})"
            s.note("folders_kept", f"{where}: {why}; {name} still holds {what} at the server (a person's, or "
                                   "changed there): kept")
            continue
        session.delete(name)
        names.pop(name.casefold(), None)
        store.set_mail_folder(r.id, created=0)
        store.audit("mail.folder-delete", f"{r.imap_user}/{name}", source=r.source_id, why=why)
        s.note("folders_deleted", f"{where}: {name} ({why}; empty at the server)")


def preview(store: StateStore, session: Any, box: Mailbox, policy: str, s: Any) -> None:
    """What a sync would do to the folders, for `--dry-run`: reads the server (LIST), writes nothing. A person's
    changes at the server are found only by the real run (they need a STATUS of every folder)."""
    sep = session.separator or "/"
    special = session.special_use()
    rows = _ours(store, box, live=True)
    mapped = map_folders(_inputs(rows), special, sep)
    for r in rows:
        out = mapped.get(r.source_id)
        if out is not None and not r.created:
            s.note("folders_created", f"{box.upn}: {out.target} (would be created)")
    for r in sorted(rows, key=lambda x: len(path_parts(x.path))):
        if _mine(r) and r.skip_reason is None and r.held is None and r.placed not in (None, placed_of(r)):
            out = map_folders(_inputs(rows, free=r.source_id), special, sep).get(r.source_id)
            if out is not None and out.target != r.target_name:
                s.note("folders_renamed", f"{box.upn}: {path_text(r.path)}: {r.target_name} → {out.target} "
                                          "(would be renamed)")
    away = out_of_reach(store, box)
    for r in _ours(store, box):
        if _mine(r) and (r.gone or r.id in away) and r.held is None:
            if policy == "trash":
                s.note("folders_deleted", f"{box.upn}: {path_text(r.path)}: {r.target_name} (would be deleted if "
                                          "empty at the server once our messages went to Trash)")
            else:
                s.note("folders_kept", f"{box.upn}: {path_text(r.path)}: {r.target_name} (would be kept: "
                                       f"[policy] deletions = {policy})")
