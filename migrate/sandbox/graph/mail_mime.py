"""MIME of the sandbox's messages, as `$value` gives it (reference mail.md §1.4): generated per request, CRLF.

Each message kind is built from a small description (subject, people, dates, kind) and a seed, so the bytes are
the same on every call unless `variant` is given (Exchange converts on request and may choose new boundaries:
`variant` changes every boundary, nothing else). `lf=True` gives the LF-only form a stand-in should also offer.
A large message is never built in memory: `big_chunks` yields its base64 body a slice at a time and
`big_length` knows its size beforehand (Content-Length).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from email.header import Header
from email.utils import format_datetime

CRLF = b"\r\n"
PNG = base64.b64decode(  # a 1x1 PNG (inline image)
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
LINE = 57            # raw bytes per base64 line (76 characters)
SLICE = LINE * 1024  # raw bytes per streamed slice of a large body


@dataclass(frozen=True)
class Envelope:
    """What a message's MIME is made from (the Graph JSON carries the same facts)."""

    kind: str
    subject: str
    sender: tuple[str, str]                  # (display name, address)
    to: tuple[tuple[str, str], ...]
    sent: dt.datetime
    received: dt.datetime | None             # None: never delivered (drafts, sent copies have no Received chain)
    message_id: str | None                   # without <>; None for drafts
    seed: str                                # everything random in the body derives from this
    in_reply_to: str | None = None
    payload: int = 0                         # size of the attachment of a large message (bytes, before base64)
    cc: tuple[tuple[str, str], ...] = ()


def _addr(name: str, address: str) -> str:
    if not name:
        return address
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        return f"{Header(name, 'utf-8').encode()} <{address}>"
    return f'"{name}" <{address}>' if any(c in name for c in ",.;:@") else f"{name} <{address}>"


def _word(text: str) -> str:
    """RFC 2047 for a header text with non-ASCII characters, folded with CRLF."""
    try:
        text.encode("ascii")
        return text
    except UnicodeEncodeError:
        return Header(text, "utf-8", maxlinelen=76).encode(linesep="\r\n")


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", CRLF)


def _qp(text: str) -> bytes:
    import quopri

    return quopri.encodestring(text.encode("utf-8")).replace(b"\r\n", b"\n").replace(b"\n", CRLF)


def _boundary(env: Envelope, n: int, variant: int) -> str:
    h = hashlib.sha1(f"{env.seed}:{n}:{variant}".encode()).hexdigest()
    return f"_{n:03d}_{h[:28].upper()}_"


def _headers(env: Envelope, extra: list[tuple[str, str]]) -> list[tuple[str, str | bytes]]:
    rng = random.Random(env.seed)
    out: list[tuple[str, str | bytes]] = []
    if env.received is not None:
        when = format_datetime(env.received)
        out.append(("Received", f"from AM9PR07MB{rng.randrange(1000, 9999)}.eurprd07.prod.outlook.com\r\n "
                    f"(2603:10a6:20b:{rng.randrange(100, 999):x}::{rng.randrange(9):x}) by "
                    f"DB9PR07MB{rng.randrange(1000, 9999)}.eurprd07.prod.outlook.com with HTTPS; {when}"))
        out.append(("Received", f"from mail{rng.randrange(1, 9)}.example.org (198.51.100.{rng.randrange(2, 250)})"
                    f"\r\n by AM9PR07MB.mail.protection.outlook.com (10.167.16.{rng.randrange(2, 250)}) with "
                    f"Microsoft SMTP Server (version=TLS1_2,\r\n cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id "
                    f"15.20.8{rng.randrange(100, 999)}.12; {when}"))
    out.append(("From", _addr(*env.sender)))
    out.append(("To", ", ".join(_addr(n, a) for n, a in env.to)))
    if env.cc:
        out.append(("CC", ", ".join(_addr(n, a) for n, a in env.cc)))
    if env.kind == "raw8bit":   # 8-bit UTF-8 in a header, as some senders still do (no RFC 2047)
        out.append(("Subject", env.subject.encode("utf-8")))
    else:
        out.append(("Subject", _word(env.subject)))
    out.append(("Thread-Topic", _word(env.subject.removeprefix("Re: ").removeprefix("AW: "))))
    out.append(("Thread-Index", base64.b64encode(hashlib.sha1(env.seed.encode()).digest()[:22]).decode()))
    out.append(("Date", format_datetime(env.sent)))
    if env.message_id:
        out.append(("Message-ID", f"<{env.message_id}>"))
    if env.in_reply_to:
        out.append(("References", f"<{env.in_reply_to}>"))
        out.append(("In-Reply-To", f"<{env.in_reply_to}>"))
    out.append(("Accept-Language", "de-DE, en-US"))
    out.append(("Content-Language", "de-DE"))
    out.append(("X-MS-Has-Attach", "yes" if env.kind in ("attach", "fwd", "big", "smime_enc", "smime_sig")
                else ""))
    out.append(("X-MS-Exchange-Organization-SCL", "-1" if env.kind != "spam" else "9"))
    out.append(("X-MS-TNEF-Correlator", ""))
    if env.kind == "spam":   # an unfolded header line far over 998 characters, as some filters write them
        out.append(("X-Spam-Report", " ".join(f"rule{i:04d}={rng.randrange(100)}" for i in range(140))))
    out.extend(extra)
    out.append(("MIME-Version", "1.0"))
    return out


def _head(fields: list[tuple[str, str | bytes]]) -> bytes:
    lines = []
    for k, v in fields:
        raw = v if isinstance(v, bytes) else v.encode("utf-8")
        lines.append(k.encode() + (b": " + raw if raw else b":"))
    return CRLF.join(lines) + CRLF


def _part(ctype: str, body: bytes, *, cte: str | None = None, extra: tuple[str, ...] = ()) -> bytes:
    head = [f"Content-Type: {ctype}"] + ([f"Content-Transfer-Encoding: {cte}"] if cte else []) + list(extra)
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _multi(subtype: str, boundary: str, parts: list[bytes], params: str = "") -> bytes:
    """A multipart entity (its own Content-Type line first)."""
    out = [f'Content-Type: multipart/{subtype};\r\n\tboundary="{boundary}"{params}\r\n\r\n'.encode()]
    for p in parts:
        out.append(f"--{boundary}\r\n".encode() + p + CRLF)
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


def _text(env: Envelope) -> str:
    rng = random.Random(env.seed + ":text")
    words = ["Grüße", "Übersicht", "Änderung", "Termin", "Bericht", "Straße", "Größe", "naïve", "café", "Zoë",
             "Mitteilung", "Abstimmung", "Entwurf", "Projekt", "Frist", "Angebot", "Rückfrage", "€", "½"]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randrange(6, 14))) for _ in range(rng.randrange(3, 8))]
    return "Hallo,\r\n\r\n" + "\r\n".join(lines) + "\r\n\r\nViele Grüße\r\n" + env.sender[0] + "\r\n"


def _html(text: str, img_cid: str | None = None) -> str:
    body = "".join(f"<p>{line}</p>" for line in text.split("\r\n") if line)
    img = f'<p><img src="cid:{img_cid}" alt="Logo" width="1" height="1"></p>' if img_cid else ""
    return ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head>'
            f'<body><div style="font-family:Calibri">{body}{img}</div></body></html>')


def _alternative(env: Envelope, variant: int, n: int, img_cid: str | None = None) -> bytes:
    text = _text(env)
    return _multi("alternative", _boundary(env, n, variant), [
        _part('text/plain; charset="utf-8"', _qp(text), cte="quoted-printable"),
        _part('text/html; charset="utf-8"', _qp(_html(text, img_cid)), cte="quoted-printable")])


def _ics(env: Envelope) -> bytes:
    start = env.sent + dt.timedelta(days=7)
    lines = ["BEGIN:VCALENDAR", "METHOD:REQUEST", "PRODID:Microsoft Exchange Server 2010", "VERSION:2.0",
             "BEGIN:VEVENT", f"ORGANIZER;CN={env.sender[0]}:mailto:{env.sender[1]}",
             *[f"ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN={n}:mailto:{a}" for n, a in env.to],
             f"SUMMARY;LANGUAGE=de-DE:{env.subject}", f"DTSTART:{start:%Y%m%dT%H%M%S}Z",
             f"DTEND:{start + dt.timedelta(hours=1):%Y%m%dT%H%M%S}Z",
             f"UID:040000008200E00074C5B7101A82E008{hashlib.md5(env.seed.encode()).hexdigest().upper()}",
             "CLASS:PUBLIC", "PRIORITY:5", f"DTSTAMP:{env.sent:%Y%m%dT%H%M%S}Z", "TRANSP:OPAQUE",
             "STATUS:CONFIRMED", "SEQUENCE:0", "LOCATION;LANGUAGE=de-DE:Raum 2.14 (Übergröße)", "END:VEVENT",
             "END:VCALENDAR"]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _body(env: Envelope, variant: int) -> tuple[list[tuple[str, str]], bytes]:
    """(extra headers, the entity from its Content-Type line on) of a message kind."""
    rng = random.Random(env.seed + ":body")
    k = env.kind
    if k in ("plain", "raw8bit", "draft", "spam"):
        return [], _part('text/plain; charset="utf-8"', _text(env).encode("utf-8"), cte="8bit")
    if k == "mixedeol":     # an old message whose body has bare LFs and a bare CR among CRLF lines
        body = _text(env).encode("utf-8") + b"Zeile mit LF\nnoch eine\nund ein CR\rEnde\r\n"
        return [], _part('text/plain; charset="utf-8"', body, cte="8bit")
    if k == "alt":
        return [], _alternative(env, variant, 1)
    if k == "attach":
        pdf = b"%PDF-1.4\n" + rng.randbytes(rng.randrange(8_000, 40_000)) + b"\n%%EOF\n"
        note = "Anhang: Übersicht der Änderungen\r\n".encode()
        return [], _multi("mixed", _boundary(env, 2, variant), [
            _alternative(env, variant, 1),
            _part('application/pdf; name="Angebot 2026.pdf"', _b64(pdf), cte="base64",
                  extra=('Content-Description: Angebot 2026.pdf',
                         'Content-Disposition: attachment; filename="Angebot 2026.pdf"; size=' + str(len(pdf)))),
            _part("text/plain; name*=utf-8''%C3%9Cbersicht.txt", _b64(note), cte="base64",
                  extra=("Content-Disposition: attachment; filename*=utf-8''%C3%9Cbersicht.txt",))])
    if k == "inline":
        cid = f"image001.png@01DA{hashlib.sha1(env.seed.encode()).hexdigest()[:12].upper()}"
        return [], _multi("related", _boundary(env, 2, variant), [
            _alternative(env, variant, 1, cid),
            _part('image/png; name="image001.png"', _b64(PNG), cte="base64",
                  extra=("Content-Description: image001.png",
                         'Content-Disposition: inline; filename="image001.png"; size=' + str(len(PNG)),
                         f"Content-ID: <{cid}>"))], params='; type="multipart/alternative"')
    if k in ("smime_enc", "smime_sig"):
        kind = "enveloped-data" if k == "smime_enc" else "signed-data"
        blob = b"\x30\x82" + rng.randbytes(rng.randrange(3_000, 6_000))
        return [], _part(f'application/pkcs7-mime; smime-type={kind}; name="smime.p7m"', _b64(blob), cte="base64",
                         extra=('Content-Disposition: attachment; filename="smime.p7m"',))
    if k == "invite":
        text = _text(env)
        return [("Thread-Class", "IPM.Schedule.Meeting.Request")], _multi("alternative", _boundary(env, 1, variant), [
            _part('text/plain; charset="utf-8"', _qp(text), cte="quoted-printable"),
            _part('text/html; charset="utf-8"', _qp(_html(text)), cte="quoted-printable"),
            _part('text/calendar; charset="utf-8"; method=REQUEST', _b64(_ics(env)), cte="base64")])
    if k == "fwd":
        inner = _head([("From", _addr("Jürgen Weiß", "juergen@example.org")), ("Subject", _word("Ursprüngliche Nachricht")),
                       ("Date", format_datetime(env.sent - dt.timedelta(days=3))),
                       ("Message-ID", f"<inner.{hashlib.sha1(env.seed.encode()).hexdigest()[:16]}@example.org>"),
                       ("MIME-Version", "1.0")]) + CRLF.join([b'Content-Type: text/plain; charset="utf-8"',
                                                             b"Content-Transfer-Encoding: 8bit", b"",
                                                             "Der ursprüngliche Text.\r\n".encode()])
        return [], _multi("mixed", _boundary(env, 2, variant), [
            _alternative(env, variant, 1),
            _part("message/rfc822", inner, extra=('Content-Disposition: attachment; filename="Ursprüngliche '
                                                  'Nachricht.eml"',))])
    raise ValueError(f"unknown message kind {k!r}")


def render(env: Envelope, *, variant: int = 0, lf: bool = False) -> bytes:
    """The whole message (not for kind "big": use big_chunks)."""
    extra, entity = _body(env, variant)
    data = _head(_headers(env, extra)) + entity
    return data.replace(CRLF, b"\n") if lf else data


# ---------------------------------------------------------------------------------------------- large messages
def _big_parts(env: Envelope, variant: int) -> tuple[bytes, bytes]:
    """(everything before the attachment's base64 body, everything after it)."""
    b = _boundary(env, 2, variant)
    head = _head(_headers(env, [])) + (
        f'Content-Type: multipart/mixed;\r\n\tboundary="{b}"\r\n\r\n--{b}\r\n'
        'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n').encode() + \
        _text(env).encode("utf-8") + (
        f'\r\n--{b}\r\nContent-Type: application/octet-stream; name="Messdaten.bin"\r\n'
        'Content-Transfer-Encoding: base64\r\n'
        'Content-Disposition: attachment; filename="Messdaten.bin"\r\n\r\n').encode()
    return head, f"\r\n--{b}--\r\n".encode()


def _b64_length(n: int) -> int:
    full, rest = divmod(n, LINE)
    return full * 78 + ((rest + 2) // 3 * 4 + 2 if rest else 0)


def payload_for(total: int) -> int:
    """The attachment size that makes a large message about `total` bytes long (base64 adds 78/57)."""
    return total * LINE // 78


def big_length(env: Envelope, variant: int = 0) -> int:
    head, tail = _big_parts(env, variant)
    return len(head) + _b64_length(env.payload) - 2 + len(tail)   # the last CRLF of the body is the tail's


def big_chunks(env: Envelope, variant: int = 0) -> Iterator[bytes]:
    """The large message a slice at a time; the attachment bytes come from a seeded stream, never held whole."""
    head, tail = _big_parts(env, variant)
    yield head
    seed = zlib.crc32(env.seed.encode())
    rng = random.Random(seed)
    left = env.payload
    while left > 0:
        n = min(SLICE, left)
        left -= n
        enc = _b64(rng.randbytes(n))
        yield enc[:-2] if left == 0 else enc
    yield tail
