"""Changes made "in Outlook" between runs (what mail delta tests need): new mail, flags, moves, deletions, folders.

Call through `GraphSandbox.call(g.mail_mutations.<op>, ...)` or `g.mail_mutate(op, ...)` (or POST
/_sandbox/mail-mutate {"op": ..., ...}). Users are given by id or UPN, folders by id, well-known name or path of
display names ("Inbox/Projekte"), messages by immutable id. Every change is logged for the per-folder delta.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from . import mail_mime
from .mail import ICON, VERB, Folder, Mailboxes, MailStore, message_data
from .mutate import MutationError
from .tenant import User


class MailMutations:
    OPS = ("deliver", "set_flags", "move_message", "delete_message", "add_folder", "rename_folder", "move_folder",
           "delete_folder", "expire_delta", "set_options")

    def __init__(self, mailboxes: Mailboxes) -> None:
        self.mb = mailboxes

    def _box(self, user: str | User) -> MailStore:
        u = user if isinstance(user, User) else self.mb.tenant.user(user)
        if u is None:
            raise MutationError(f"no user {user!r}")
        return self.mb.mailbox(u)

    @staticmethod
    def _folder(box: MailStore, ref: str) -> Folder:
        f = box.folder(ref) or box.by_path(ref)
        if f is None:
            raise MutationError(f"no mail folder {ref!r} in the mailbox of {box.user.upn}")
        return f

    @staticmethod
    def _msg(box: MailStore, message_id: str) -> Any:
        m = box.messages.get(message_id)
        if m is None:
            raise MutationError(f"no message {message_id!r} in the mailbox of {box.user.upn}")
        return m

    def deliver(self, user: str | User, folder: str = "inbox", subject: str = "Neue Nachricht", kind: str = "alt",
                sender: tuple[str, str] | None = None, size_mb: int = 0) -> str:
        """A new message (kind as generated: plain, alt, attach, inline, smime_enc, invite, raw8bit, ...; size_mb
        makes it a large streamed one of about that many MiB); returns its immutable id."""
        from .mail import _Gen

        box = self._box(user)
        f = self._folder(box, folder)
        gen = _Gen(self.mb.tenant, box.user, self.mb.spec)
        gen.n = 1000 + box.order
        env = gen.env("big" if size_mb else kind, subject, sender=sender,
                      payload=mail_mime.payload_for(size_mb * 1024 * 1024))
        return box.add(f, env, message_data(env, is_read=False, is_draft=kind == "draft")).id

    def set_flags(self, user: str | User, message_id: str, *, is_read: bool | None = None, flag: str | None = None,
                  categories: list[str] | None = None, last_verb: int | None = None) -> str:
        """Read state, follow-up flag (notFlagged | flagged | complete), categories, last verb (102/103/104)."""
        box = self._box(user)
        m = self._msg(box, message_id)
        if is_read is not None:
            m.data["isRead"] = bool(is_read)
        if flag is not None:
            if flag not in ("notFlagged", "flagged", "complete"):
                raise MutationError(f"flag must be notFlagged, flagged or complete, not {flag!r}")
            m.data["flag"] = {"flagStatus": flag}
        if categories is not None:
            m.data["categories"] = list(categories)
        if last_verb is not None:
            m.props[VERB] = str(last_verb)
            m.props[ICON] = "262" if last_verb == 104 else "261"
        m.data["lastModifiedDateTime"] = f"2026-12-{10 + box.seq % 18:02d}T09:00:00Z"
        box.touch(m.folder, m.id)
        return str(m.id)

    def move_message(self, user: str | User, message_id: str, folder: str) -> str:
        """A move keeps the immutable id: the old folder's delta reports it removed, the new one's added."""
        box = self._box(user)
        m = self._msg(box, message_id)
        dest = self._folder(box, folder)
        if dest.id == m.folder:
            raise MutationError("the message is already in that folder")
        old = m.folder
        m.folder = dest.id
        box.touch(old, m.id)
        box.touch(dest.id, m.id)
        return str(m.id)

    def delete_message(self, user: str | User, message_id: str) -> str:
        """Gone for good (purged): `$value` answers 404, the folder's delta reports `@removed`."""
        box = self._box(user)
        m = self._msg(box, message_id)
        del box.messages[m.id]
        box.touch(m.folder, m.id)
        return str(m.id)

    def add_folder(self, user: str | User, parent: str, name: str, hidden: bool = False) -> str:
        box = self._box(user)
        p = self._folder(box, parent)
        self._free(box, p, name)
        return box.new_folder(p.id, name, hidden=hidden).id

    @staticmethod
    def _free(box: MailStore, parent: Folder, name: str, ignore: Folder | None = None) -> None:
        if not name:
            raise MutationError("a folder needs a name")
        if any(c is not ignore and c.name.lower() == name.lower() for c in box.children(parent.id)):
            raise MutationError(f"ErrorFolderExists: {name!r}")

    def rename_folder(self, user: str | User, folder: str, name: str) -> str:
        box = self._box(user)
        f = self._folder(box, folder)
        if f.well_known or f.parent_id is None:
            raise MutationError("a well-known folder cannot be renamed")
        self._free(box, box.folders[f.parent_id], name, ignore=f)
        f.name = name
        box.touch_folder(f.id)
        return f.id

    def move_folder(self, user: str | User, folder: str, parent: str) -> str:
        box = self._box(user)
        f, dest = self._folder(box, folder), self._folder(box, parent)
        node: Folder | None = dest
        while node is not None:
            if node is f:
                raise MutationError("cannot move a folder into itself")
            node = box.folders.get(node.parent_id) if node.parent_id else None
        if f.well_known:
            raise MutationError("a well-known folder cannot be moved")
        self._free(box, dest, f.name, ignore=f)
        f.parent_id = dest.id
        box.touch_folder(f.id)
        return f.id

    def delete_folder(self, user: str | User, folder: str) -> str:
        """The folder, its subfolders and their messages (their delta tokens die with them: 404)."""
        box = self._box(user)
        f = self._folder(box, folder)
        if f.well_known:
            raise MutationError("a well-known folder cannot be deleted")
        stack = [f]
        while stack:
            x = stack.pop()
            stack.extend(box.children(x.id))
            for m in box.in_folder(x.id):
                del box.messages[m.id]
                box.touch(x.id, m.id)
            del box.folders[x.id]
            box.touch_folder(x.id)
        return f.id

    def expire_delta(self, user: str | User | None = None, folder: str | None = None) -> None:
        """Every delta token (and nextLink) of the folder, of the user's mailbox (its folder delta too) or of every
        mailbox → 410."""
        if user is None:
            self.mb.epoch += 1
            return
        box = self._box(user)
        if folder is None:
            box.folder_epoch += 1
        for f in [self._folder(box, folder)] if folder else list(box.folders.values()):
            box.epochs[f.id] = box.epochs.get(f.id, 0) + 1

    def set_options(self, **changes: Any) -> dict[str, Any]:
        """mime_mode: stable | regenerate (new boundaries on every `$value`) | lf (LF-only line ends)."""
        known = {f.name for f in dataclasses.fields(self.mb.options)}
        if set(changes) - known:
            raise MutationError(f"unknown mail options {sorted(set(changes) - known)}; expected {sorted(known)}")
        if changes.get("mime_mode", "stable") not in ("stable", "regenerate", "lf"):
            raise MutationError("mime_mode must be stable, regenerate or lf")
        for k, v in changes.items():
            setattr(self.mb.options, k, v)
        return dataclasses.asdict(self.mb.options)

    def apply(self, op: str, **kwargs: Any) -> Any:
        if op not in self.OPS:
            raise MutationError(f"unknown mail op {op!r}; expected one of {self.OPS}")
        if op == "deliver" and isinstance(kwargs.get("sender"), list):
            kwargs["sender"] = tuple(kwargs["sender"])
        return getattr(self, op)(**kwargs)
