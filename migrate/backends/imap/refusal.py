"""The one place that turns an IMAP NO/BAD into our typed errors (so exit codes and retries follow)."""

from __future__ import annotations

from migrate.errors import FolderMissing, ImapBusy, ImapRefused, MailboxFull, MigrateError

from .parse import Response

_BUSY = frozenset({"LIMIT", "INUSE", "UNAVAILABLE"})
_MISSING = frozenset({"TRYCREATE", "NONEXISTENT"})


def refusal(resp: Response, command: str, folder: str) -> MigrateError:
    """The error for a tagged NO/BAD of `command` on `folder` (UTF-8 name, may be "")."""
    said = f"{resp.kind} {'[' + resp.code + '] ' if resp.code else ''}{resp.text.strip()}".strip()
    where = f" on folder {folder!r}" if folder else ""
    if resp.code == "OVERQUOTA":
        return MailboxFull(f"the IMAP server refused {command}{where}: the mailbox is full ({said})",
                           hint="raise the user's quota at the server, then run again: nothing was lost")
    if resp.code in _BUSY:
        return ImapBusy(f"the IMAP server is busy and refused {command}{where} ({said})")
    if resp.code in _MISSING or (not resp.code and resp.kind == "NO" and _says_missing(resp.text)):
        return FolderMissing(f"the folder {folder!r} does not exist at the IMAP server ({said})",
                             code=resp.code, folder=folder)
    return ImapRefused(f"the IMAP server refused {command}{where}: {said}", code=resp.code, folder=folder)


def _says_missing(text: str) -> bool:
    """Dovecot 2.3 answers STATUS of a missing folder with a bare `NO Mailbox doesn't exist: X` (no code)."""
    low = text.lower()
    return "mailbox doesn't exist" in low or "mailbox does not exist" in low
