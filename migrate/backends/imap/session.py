"""ImapSession: one connection signed in to one mailbox, with the operations a mail migration needs.

Not thread-safe: one session per worker. Folder names are UTF-8 paths with the server's separator on this side
and modified UTF-7 on the wire. Every NO/BAD becomes a typed error (refusal.py); a broken connection raises
ImapConnectionLost and leaves the session closed, and the caller opens a new one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import BinaryIO

from migrate.errors import ConfigError, FolderNameRefused, ImapRefused

from .codec import internaldate as format_internaldate
from .codec import mutf7_decode, mutf7_encode, parse_internaldate, quote
from .connect import connect, sign_in
from .parse import Response
from .refusal import refusal
from .types import AppendedUid, FolderStatus, ImapFolder, ImapLogin, ImapSettings, MessageInfo
from .wire import Literal, Sink, Wire

SPECIAL_USE = ("\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", "\\All", "\\Flagged")
_UIDS_PER_COMMAND = 1000  # keeps a UID set well under Dovecot's 64 KiB command line


class ImapSession:
    """See the package docstring; open with `ImapSession.open(settings, login)`, close with `close()` or `with`."""

    def __init__(self, wire: Wire, capabilities: frozenset[str], user: str) -> None:
        self._wire = wire
        self.capabilities = capabilities
        self.user = user
        self.separator = "/"
        self.prefix = ""  # the personal namespace's prefix ("" on Dovecot's default, "INBOX." on some servers)
        self._selected: str | None = None

    @classmethod
    def open(cls, settings: ImapSettings, login: ImapLogin) -> ImapSession:
        wire, caps = connect(settings)
        try:
            caps = sign_in(wire, caps, login)
            if "UIDPLUS" not in caps:
                raise ConfigError(f"the IMAP server {wire.where} lacks UIDPLUS (RFC 4315): without it the migration "
                                  "cannot record where each message landed, and a rerun could store it twice",
                                  hint="use an IMAP server with UIDPLUS (Dovecot has it)")
            session = cls(wire, caps, login.user)
            session._discover_namespace()
        except BaseException:
            wire.close()
            raise
        return session

    def __repr__(self) -> str:
        return f"ImapSession(user={self.user!r}, server={self._wire.where!r})"

    def __enter__(self) -> ImapSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._wire.closed

    # --- plumbing ------------------------------------------------------------------------------------------------

    def _run(self, command: str, parts: list[bytes | Literal], folder: str = "",
             router=None) -> tuple[Response, list[Response]]:
        tagged, untagged = self._wire.run(parts, router)
        if not tagged.ok:
            raise refusal(tagged, command, folder)
        return tagged, untagged

    @staticmethod
    def _name(folder: str) -> bytes:
        return quote(mutf7_encode(folder)).encode("ascii")

    def _select(self, folder: str, *, fresh: bool = False) -> None:
        """SELECT `folder` unless it is selected; with `fresh`, a selected folder is brought up to date by NOOP,
        since a server shows another session's new messages to a selected folder only at such a point."""
        if self._selected == folder:
            if fresh:
                self._run("NOOP", [b"NOOP"], folder)
            return
        self._selected = None
        self._run("SELECT", [b"SELECT ", self._name(folder)], folder)
        self._selected = folder

    def _discover_namespace(self) -> None:
        if "NAMESPACE" in self.capabilities:
            _, untagged = self._run("NAMESPACE", [b"NAMESPACE"])
            for r in untagged:
                personal = r.data[0] if r.kind == "NAMESPACE" and r.data else None
                if personal:
                    prefix, sep = personal[0][0], personal[0][1]
                    self.prefix, self.separator = prefix or "", sep or self.separator
                    return
        _, untagged = self._run("LIST", [b'LIST "" ""'])
        for r in untagged:
            if r.kind == "LIST" and len(r.data) >= 2 and r.data[1]:
                self.separator = r.data[1]

    # --- folders -------------------------------------------------------------------------------------------------

    def folders(self) -> list[ImapFolder]:
        """Every folder, with its attributes (special-use ones included where the server has RFC 6154)."""
        # RETURN (SPECIAL-USE) is RFC 6154's; a server without SPECIAL-USE may refuse it, so plain LIST there
        cmd = b'LIST "" "*" RETURN (SPECIAL-USE)' if "SPECIAL-USE" in self.capabilities else b'LIST "" "*"'
        _, untagged = self._run("LIST", [cmd])
        out: list[ImapFolder] = []
        for r in untagged:
            if r.kind not in ("LIST", "XLIST") or len(r.data) < 3:
                continue
            attrs, raw = r.data[0] or [], r.data[2]
            raw = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else str(raw)
            try:
                name = mutf7_decode(raw)
            except ValueError:
                name = raw  # a name another client wrote badly: shown as the server has it
            out.append(ImapFolder(name=name, attrs=frozenset(str(a) for a in attrs)))
        return out

    def special_use(self) -> dict[str, str]:
        """{"\\\\Sent": "Sent", ...}: the first folder the server marks with each special-use attribute."""
        found: dict[str, str] = {}
        wanted = {a.lower(): a for a in SPECIAL_USE}
        for folder in self.folders():
            for attr in folder.attrs:
                key = wanted.get(attr.lower())
                if key and key not in found:
                    found[key] = folder.name
        return found

    def create(self, name: str) -> None:
        """Create `name` (parents implicit); a folder that already exists is not an error (resume)."""
        try:
            encoded = self._name(name)
        except ValueError as exc:
            raise FolderNameRefused(f"the folder name {name!r} cannot be sent to the IMAP server", folder=name) \
                from exc
        tagged, _ = self._wire.run([b"CREATE ", encoded])
        if tagged.ok or tagged.code == "ALREADYEXISTS":
            return
        err = refusal(tagged, "CREATE", name)
        text = tagged.text.lower()
        if type(err) is ImapRefused and (tagged.code == "CANNOT" or "mutf-7" in text or "too long" in text
                                         or "invalid" in text or tagged.kind == "BAD"):
            raise FolderNameRefused(f"the IMAP server cannot take the folder name {name!r}: {tagged.text.strip()}",
                                    code=tagged.code, folder=name,
                                    hint="the folder gets another name by the name rules and is listed") from None
        raise err

    def rename(self, old: str, new: str) -> None:
        """RENAME `old` to `new` (UTF-8 paths; parents of `new` implicit). Its subfolders move with it and the
        server keeps its UIDVALIDITY and UIDs (Dovecot does), so recorded UIDs stay valid. A name the server
        cannot take is a FolderNameRefused, a missing `old` a FolderMissing, a taken `new` an ImapRefused with
        code ALREADYEXISTS."""
        try:
            parts = [b"RENAME ", self._name(old), b" ", self._name(new)]
        except ValueError as exc:
            raise FolderNameRefused(f"the folder name {new!r} cannot be sent to the IMAP server", folder=new) \
                from exc
        if self._selected is not None and (self._selected == old or self._selected.startswith(old + self.separator)):
            self._selected = None   # the selected folder's name is gone: select again by its new name
        tagged, _ = self._wire.run(parts)
        if tagged.ok:
            return
        err = refusal(tagged, "RENAME", old)
        text = tagged.text.lower()
        if type(err) is ImapRefused and tagged.code != "ALREADYEXISTS" and (
                tagged.code == "CANNOT" or "mutf-7" in text or "too long" in text or "invalid" in text):
            raise FolderNameRefused(f"the IMAP server cannot take the folder name {new!r}: {tagged.text.strip()}",
                                    code=tagged.code, folder=new) from None
        raise err

    def delete(self, name: str) -> None:
        """DELETE an (empty) folder. The caller checks it is empty first: IMAP DELETE takes the messages with it."""
        if self._selected == name:
            self._run("CLOSE", [b"CLOSE"], name)   # leave it first; CLOSE expunges nothing we did not mark
            self._selected = None
        self._run("DELETE", [b"DELETE ", self._name(name)], name)

    def status(self, name: str) -> FolderStatus:
        _, untagged = self._run("STATUS", [b"STATUS ", self._name(name), b" (UIDVALIDITY UIDNEXT MESSAGES)"], name)
        for r in untagged:
            if r.kind == "STATUS" and len(r.data) >= 2:
                items = r.data[1]
                values = {str(items[i]).upper(): int(items[i + 1]) for i in range(0, len(items) - 1, 2)}
                return FolderStatus(uidvalidity=values["UIDVALIDITY"], uidnext=values["UIDNEXT"],
                                    messages=values["MESSAGES"])
        raise ImapRefused(f"the IMAP server gave no STATUS for folder {name!r}", folder=name)

    # --- messages ------------------------------------------------------------------------------------------------

    def append(self, name: str, message: BinaryIO, size: int, flags: Iterable[str],
               internaldate: datetime | None) -> AppendedUid:
        """APPEND `size` bytes read from `message` (streamed, exactly as they are) with flags and INTERNALDATE.

        The literal is synchronizing: the server may refuse before any byte is sent ([OVERQUOTA] → MailboxFull,
        [TRYCREATE] → FolderMissing, BAD flags → ImapRefused) and the connection stays usable.
        Raises ImapRefused if the server has no UIDPLUS (no APPENDUID to record).
        """
        date = b" " + format_internaldate(internaldate).encode("ascii") if internaldate else b""
        head = b"APPEND " + self._name(name) + b" (" + _flags(flags, name) + b")" + date + b" {%d}" % size
        tag = self._wire.next_tag()
        untagged: list[Response] = []
        tagged = self._wire.send_literal_from(tag, tag.encode() + b" " + head, message, size, untagged)
        if not tagged.ok:
            raise refusal(tagged, "APPEND", name)
        if tagged.code != "APPENDUID":
            raise ImapRefused(f"the IMAP server stored a message in {name!r} without telling its UID (no UIDPLUS)",
                              folder=name)
        validity, uid = tagged.code_args.split()[:2]
        return AppendedUid(uidvalidity=int(validity), uid=int(uid))

    def uids(self, name: str) -> list[int]:
        self._select(name, fresh=True)
        return self._search(name, [b"UID SEARCH ALL"])

    def search_message_id(self, name: str, message_id: str) -> list[int]:
        """UIDs in `name` whose Message-ID header contains `message_id` (the server matches substrings)."""
        self._select(name, fresh=True)
        if message_id.isascii() and "\r" not in message_id and "\n" not in message_id:
            return self._search(name, [b"UID SEARCH HEADER Message-ID ", quote(message_id).encode("ascii")])
        return self._search(name, [b"UID SEARCH CHARSET UTF-8 HEADER Message-ID ",
                                   Literal(message_id.encode("utf-8"))])

    def _search(self, name: str, parts: list[bytes | Literal]) -> list[int]:
        _, untagged = self._run("SEARCH", parts, name)
        found: list[int] = []
        for r in untagged:
            if r.kind == "SEARCH":
                found.extend(int(x) for x in r.data if x and str(x).isdigit())
        return sorted(found)

    def fetch_digest(self, name: str, uid: int) -> tuple[int, str] | None:
        """(length, sha256 hex) of the message's full bytes (BODY.PEEK[], \\Seen untouched), streamed into the
        hash; None when the UID is gone. The length is the one of the hashed bytes; RFC822.SIZE must agree.
        A miss is asked once more after a NOOP, in case the message came from another session since SELECT."""
        reselected = self._selected != name
        self._select(name)
        found = self._digest(name, uid)
        if found is None and not reselected:
            self._run("NOOP", [b"NOOP"], name)
            found = self._digest(name, uid)
        return found

    def _digest(self, name: str, uid: int) -> tuple[int, str] | None:
        sha = hashlib.sha256()
        sizes: list[int] = []

        def route(before: bytes, n: int) -> Sink | None:
            # Only our UID FETCH asks for BODY[]; unasked FETCH responses carry flags, never a body.
            if before.rstrip().upper().endswith(b"BODY[]"):
                sizes.append(n)
                return sha
            return None

        _, untagged = self._run("FETCH", [b"UID FETCH %d (UID RFC822.SIZE BODY.PEEK[])" % uid], name, route)
        bodies = [r for r in self._fetched(untagged) if "BODY[]" in r]
        if not bodies:
            return None
        if len(bodies) != 1 or bodies[0].get("UID") != str(uid):
            raise ImapRefused(f"the IMAP server answered a FETCH of UID {uid} in {name!r} with another message",
                              folder=name)
        size = sizes[0]
        if bodies[0].get("RFC822.SIZE") not in (None, str(size)):
            raise ImapRefused(f"the IMAP server gave {size} bytes for UID {uid} in {name!r} but "
                              f"RFC822.SIZE {bodies[0]['RFC822.SIZE']}", folder=name)
        return size, sha.hexdigest()

    def fetch_flags(self, name: str, uids: Iterable[int]) -> dict[int, frozenset[str]]:
        """Flags and keywords per UID (\\Recent left out: it is the server's, per session); gone UIDs are absent."""
        return {uid: info.flags for uid, info in self.fetch_info(name, uids).items()}

    def fetch_info(self, name: str, uids: Iterable[int]) -> dict[int, MessageInfo]:
        """Flags, INTERNALDATE and RFC822.SIZE per UID, in batches; UIDs no longer there are absent."""
        self._select(name, fresh=True)
        out: dict[int, MessageInfo] = {}
        for uid_set in _uid_sets(uids):
            _, untagged = self._run("FETCH", [b"UID FETCH " + uid_set + b" (UID FLAGS INTERNALDATE RFC822.SIZE)"],
                                    name)
            for r in self._fetched(untagged):
                if {"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE"} <= r.keys():
                    out[int(r["UID"])] = MessageInfo(
                        flags=frozenset(str(f) for f in r["FLAGS"] if str(f).lower() != "\\recent"),
                        internaldate=parse_internaldate(r["INTERNALDATE"]), size=int(r["RFC822.SIZE"]))
        return out

    @staticmethod
    def _fetched(untagged: list[Response]) -> Iterator[dict]:
        for r in untagged:
            if r.kind == "FETCH" and r.data and isinstance(r.data[0], list):
                items = r.data[0]
                yield {str(items[i]).upper(): items[i + 1] for i in range(0, len(items) - 1, 2)}

    def store_flags(self, name: str, uid: int, add: Iterable[str], remove: Iterable[str]) -> None:
        self._select(name)
        for sign, flags in ((b"+", list(add)), (b"-", list(remove))):
            if flags:
                self._run("STORE", [b"UID STORE %d " % uid + sign + b"FLAGS.SILENT (" + _flags(flags, name) + b")"],
                          name)

    def move(self, name: str, uid: int, dest: str) -> int | None:
        """Move one message; its UID in `dest` from COPYUID, or None if the server did not say (or it was gone)."""
        self._select(name)
        if "MOVE" in self.capabilities:
            tagged, untagged = self._run("MOVE", [b"UID MOVE %d " % uid, self._name(dest)], dest)
        else:
            tagged, untagged = self._run("COPY", [b"UID COPY %d " % uid, self._name(dest)], dest)
            self._run("STORE", [b"UID STORE %d +FLAGS.SILENT (\\Deleted)" % uid], name)
            self._run("EXPUNGE", [b"UID EXPUNGE %d" % uid], name)
        for r in [tagged, *untagged]:
            if r.code == "COPYUID":
                _validity, _src, dst = r.code_args.split()[:3]
                return int(dst) if dst.isdigit() else None
        return None

    def quota(self) -> tuple[int, int] | None:
        """(used KiB, limit KiB) of INBOX's quota root; None when the server has no QUOTA or no storage limit."""
        if "QUOTA" not in self.capabilities:
            return None
        _, untagged = self._run("GETQUOTAROOT", [b"GETQUOTAROOT INBOX"])
        for r in untagged:
            if r.kind == "QUOTA" and len(r.data) >= 2 and isinstance(r.data[1], list):
                res = r.data[1]
                for i in range(0, len(res) - 2, 3):
                    if str(res[i]).upper() == "STORAGE":
                        return int(res[i + 1]), int(res[i + 2])
        return None

    def noop(self) -> None:
        self._run("NOOP", [b"NOOP"])

    def close(self) -> None:
        """LOGOUT, then close the socket; never raises (a dead connection is simply closed)."""
        if self._wire.closed:
            return
        self._wire.logging_out = True
        try:
            self._wire.run([b"LOGOUT"])
        except Exception:  # noqa: BLE001 - logging out of a broken connection has nothing left to report
            pass
        finally:
            self._wire.close()


_FLAG = re.compile(r"\\?[^\x00-\x20\x7f-\U0010ffff(){%*\"\\\]]+")


def _flags(flags: Iterable[str], folder: str) -> bytes:
    """A flag list for the wire; a flag that is not an IMAP atom is refused here, before anything is sent."""
    out = []
    for flag in flags:
        if not _FLAG.fullmatch(flag):
            raise ImapRefused(f"{flag!r} cannot be an IMAP flag or keyword (not an atom)", folder=folder)
        out.append(flag)
    return " ".join(out).encode("ascii")


def _uid_sets(uids: Iterable[int]) -> Iterator[bytes]:
    """UID sets (`1:5,9`) of at most _UIDS_PER_COMMAND UIDs each, ranges compressed."""
    ordered = sorted(set(uids))
    for start in range(0, len(ordered), _UIDS_PER_COMMAND):
        part = ordered[start:start + _UIDS_PER_COMMAND]
        ranges: list[str] = []
        lo = prev = part[0]
        for u in part[1:]:
            if u != prev + 1:
                ranges.append(f"{lo}:{prev}" if lo != prev else str(lo))
                lo = u
            prev = u
        ranges.append(f"{lo}:{prev}" if lo != prev else str(lo))
        yield ",".join(ranges).encode("ascii")
