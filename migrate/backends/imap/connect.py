"""Opening a session: TCP, TLS (implicit or STARTTLS, always verified), greeting, sign-in.

TLS is required except to a loopback address, where a server that offers no STARTTLS is used in plain (the test
rig). Sign-in prefers SASL PLAIN, whose authorisation identity carries the master-user form in a standard way;
LOGIN with Dovecot's `user*master` is the fallback for servers without AUTH=PLAIN.
"""

from __future__ import annotations

import base64
import ssl

from migrate.errors import ConfigError, ImapConnectionLost, MailLoginRefused, TargetNotTrusted

from .parse import Response
from .refusal import refusal
from .types import Endpoint, ImapLogin, ImapSettings
from .wire import Literal, Wire

_LOGIN_CODES = frozenset({"AUTHENTICATIONFAILED", "AUTHORIZATIONFAILED", "EXPIRED", "PRIVACYREQUIRED",
                          "CONTACTADMIN", ""})


def tls_context(settings: ImapSettings) -> ssl.SSLContext:
    """The system's trust plus `ca_bundle`; host names checked; TLS 1.2 at least."""
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.ca_bundle:
        try:
            ctx.load_verify_locations(cafile=settings.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"[mail] ca_bundle = {settings.ca_bundle!r} cannot be read as PEM certificates: "
                              f"{exc}") from exc
    return ctx


def connect(settings: ImapSettings) -> tuple[Wire, frozenset[str]]:
    """A connection past the greeting and, where needed, STARTTLS; returns it with the pre-login capabilities."""
    endpoint: Endpoint = settings.endpoint()
    ctx = tls_context(settings)
    wire = Wire(endpoint, settings.timeout, ctx if endpoint.implicit_tls else None)
    try:
        greeting = wire.read_response()
        if greeting.tag != "*" or greeting.kind not in ("OK", "PREAUTH"):
            raise ImapConnectionLost(f"the IMAP server {wire.where} refused the connection: "
                                     f"{greeting.kind} {greeting.text}".strip(), where=wire.where)
        caps = capabilities_from(greeting) or capability(wire)
        if not endpoint.implicit_tls:
            if "STARTTLS" in caps:
                tagged, _ = wire.run([b"STARTTLS"])
                if not tagged.ok:
                    raise TargetNotTrusted(f"the IMAP server {wire.where} refused STARTTLS: {tagged.text}")
                if wire.buffered:  # bytes sent before the handshake would be read as if they came over TLS
                    raise TargetNotTrusted(f"the IMAP server {wire.where} sent data before the TLS handshake")
                wire.start_tls(ctx)
                caps = capability(wire)  # never trust what was said before TLS (RFC 3501 §6.2.1)
            elif not endpoint.loopback:
                raise TargetNotTrusted(
                    f"the IMAP server {wire.where} offers no STARTTLS: the password would travel unencrypted",
                    hint='use "imaps://…" if the server listens for implicit TLS (port 993), or enable STARTTLS')
        return wire, caps
    except BaseException:
        wire.close()
        raise


def capabilities_from(resp: Response) -> frozenset[str]:
    if resp.code == "CAPABILITY":
        return frozenset(w.upper() for w in resp.code_args.split())
    return frozenset()


def capability(wire: Wire) -> frozenset[str]:
    tagged, untagged = wire.run([b"CAPABILITY"])
    caps: set[str] = set()
    for r in untagged:
        if r.kind == "CAPABILITY":
            caps.update(str(w).upper() for w in r.data if w)
    return frozenset(caps)


def sign_in(wire: Wire, caps: frozenset[str], login: ImapLogin) -> frozenset[str]:
    """Authenticate; returns the post-login capabilities. Refusals name the user, never the password."""
    if "AUTH=PLAIN" in caps:
        authz, authc = (login.user, login.master) if login.master else ("", login.user)
        token = base64.b64encode(f"{authz}\0{authc}\0{login.password}".encode()).decode("ascii").encode()
        if "SASL-IR" in caps:
            tagged, untagged = wire.run([b"AUTHENTICATE PLAIN " + token])
        else:
            tagged, untagged = wire.run([b"AUTHENTICATE PLAIN"], on_continue=lambda _r: token)
    elif "LOGINDISABLED" in caps:
        raise TargetNotTrusted(f"the IMAP server {wire.where} does not allow signing in on this connection",
                               hint="use imaps:// or a server with STARTTLS")
    else:
        name = f"{login.user}*{login.master}" if login.master else login.user
        tagged, untagged = wire.run([b"LOGIN ", *_astring(name), b" ", *_astring(login.password)])
    if not tagged.ok:
        who = f"{login.user} (as master user {login.master})" if login.master else login.user
        if tagged.code in _LOGIN_CODES:
            raise MailLoginRefused(
                f"the IMAP server {wire.where} refused the sign-in of {who}: {tagged.text.strip()}",
                user=login.user,
                hint="check the password in the credentials file (or the master password) and that the user "
                     "exists at the server")
        raise refusal(tagged, "sign-in", "")
    caps_after = capabilities_from(tagged)
    for r in untagged:
        if r.kind == "CAPABILITY":
            caps_after = frozenset(str(w).upper() for w in r.data if w)
    return caps_after or capability(wire)


def _astring(text: str) -> list[bytes | Literal]:
    """A quoted string where one will do, else a literal (8-bit passwords)."""
    if text.isascii() and not any(c in text for c in '\r\n\0"\\'):
        return [b'"' + text.encode("ascii") + b'"']
    return [Literal(text.encode("utf-8"))]
