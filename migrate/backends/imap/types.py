"""Typed records of the IMAP target: how to reach the server, who signs in, and what the server answers."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from migrate.errors import ConfigError

IMAPS_PORT = 993
IMAP_PORT = 143


@dataclass(frozen=True)
class ImapSettings:
    """From `[mail]`: `imaps://host[:993]` is implicit TLS, `imap://host[:143]` needs STARTTLS; plain IMAP without
    TLS is allowed only to a loopback address (tests). `ca_bundle` adds trust; verification is never off."""

    url: str
    ca_bundle: str = ""
    timeout: float = 60.0

    def endpoint(self) -> Endpoint:
        """The parsed URL; raises ConfigError naming the setting when it is not an IMAP URL."""
        parts = urlsplit(self.url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname:
            raise ConfigError(f"[mail] url = {self.url!r} is not an IMAP server address",
                              hint='write it as "imaps://mail.example.org" (or "imap://…" for STARTTLS)')
        if parts.path not in ("", "/") or parts.query or parts.username:
            raise ConfigError(f"[mail] url = {self.url!r} may hold only a host and a port",
                              hint="sign-in names belong to [mail] login/master_user, not the URL")
        try:
            port = parts.port or (IMAPS_PORT if parts.scheme == "imaps" else IMAP_PORT)
        except ValueError as exc:
            raise ConfigError(f"[mail] url = {self.url!r} has an invalid port") from exc
        return Endpoint(host=parts.hostname, port=port, implicit_tls=parts.scheme == "imaps")


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    implicit_tls: bool

    @property
    def loopback(self) -> bool:
        """True for 127.0.0.0/8, ::1 and `localhost`: only there may a session run without TLS."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class ImapLogin:
    """Who signs in: the mailbox's user with its own password, or a master user (`master`) with the master password,
    acting as `user` (Dovecot's `user*master` or SASL PLAIN's authorisation identity)."""

    user: str
    password: str = field(repr=False)
    master: str | None = None

    def __repr__(self) -> str:
        master = f", master={self.master!r}" if self.master else ""
        return f"ImapLogin(user={self.user!r}{master}, password=<hidden>)"


@dataclass(frozen=True)
class ImapFolder:
    """A folder as LIST shows it: `name` is the UTF-8 path with the server's separator; `attrs` as sent
    (`\\\\HasChildren`, `\\\\Noselect`, `\\\\Sent`, ...)."""

    name: str
    attrs: frozenset[str]

    @property
    def selectable(self) -> bool:
        low = {a.lower() for a in self.attrs}
        return not ({"\\noselect", "\\nonexistent"} & low)


@dataclass(frozen=True)
class FolderStatus:
    uidvalidity: int
    uidnext: int
    messages: int


@dataclass(frozen=True)
class AppendedUid:
    """Where an APPEND landed (RFC 4315 APPENDUID): valid only while the folder keeps this UIDVALIDITY."""

    uidvalidity: int
    uid: int


@dataclass(frozen=True)
class MessageInfo:
    """What `fetch_info` reads of a stored message: enough to check flags, date and size without its bytes."""

    flags: frozenset[str]
    internaldate: datetime
    size: int
