"""The IMAP target of mail: a small byte-exact client over the standard library, plus the helpers mail needs.

Public API: ImapSettings, ImapLogin, ImapSession (with ImapFolder, FolderStatus, AppendedUid, MessageInfo), mutf7_encode,
mutf7_decode, keyword, internaldate, crlf, CrlfHasher. Errors live in migrate.errors (MailboxFull, ImapRefused,
FolderNameRefused, FolderMissing, ImapBusy, ImapConnectionLost, MailLoginRefused, TargetNotTrusted).
"""

from .codec import internaldate, keyword, mutf7_decode, mutf7_encode, parse_internaldate
from .crlf import CrlfHasher, RawHasher, crlf
from .session import SPECIAL_USE, ImapSession
from .types import AppendedUid, FolderStatus, ImapFolder, ImapLogin, ImapSettings, MessageInfo

__all__ = [
    "SPECIAL_USE", "AppendedUid", "CrlfHasher", "FolderStatus", "ImapFolder", "ImapLogin", "ImapSession",
    "ImapSettings", "MessageInfo", "RawHasher", "crlf", "internaldate", "keyword", "mutf7_decode", "mutf7_encode",
    "parse_internaldate",
]
