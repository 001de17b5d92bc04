"""Text forms IMAP insists on: modified UTF-7 folder names, keyword atoms, INTERNALDATE, quoted strings.

Dovecot 2.3 offers no UTF8=ACCEPT, so every folder name crosses the wire as modified UTF-7 (RFC 3501 §5.1.3);
keywords must be atoms (RFC 3501 §9), which Outlook categories often are not; and dates before 1970 wrap to 2106
on Dovecot's 32-bit time, so they are clamped here (reference mail.md §2.2, §2.6, §2.7).
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from datetime import UTC, datetime

_EPOCH_FLOOR = datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def mutf7_encode(name: str) -> str:
    """UTF-8 text → modified UTF-7: printable ASCII as is, `&` as `&-`, the rest as UTF-16BE in base64 with `,`."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


_SHIFTED = re.compile(r"&([^-]*)-")


def mutf7_decode(name: str) -> str:
    """Modified UTF-7 → UTF-8 text; raises ValueError on a malformed shift sequence (never guesses)."""

    def one(m: re.Match[str]) -> str:
        body = m.group(1)
        if not body:
            return "&"
        b64 = body.replace(",", "/")
        b64 += "=" * (-len(b64) % 4)
        try:
            return base64.b64decode(b64, validate=True).decode("utf-16-be")
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"not modified UTF-7: {name!r}") from exc

    decoded = _SHIFTED.sub(one, name)
    if "&" in _SHIFTED.sub("", name):
        raise ValueError(f"not modified UTF-7 (unterminated '&'): {name!r}")
    return decoded


# atom-specials (RFC 3501 §9) plus `]`, `%`, `*` that Dovecot refuses in keywords ([CANNOT]), and `\` which would
# make it a system flag; what is left must be printable ASCII.
_KEYWORD_BAD = re.compile(r"[^\x21-\x7e]|[(){%*\"\\\]]")
_KEYWORD_MAX = 60  # a readable bound; Dovecot accepts longer, clients show these as tag names


def keyword(category: str) -> str | None:
    """A deterministic IMAP keyword for an Outlook category, or None when nothing usable is left.

    Accents are folded (`Grün` → `Grun`), every other forbidden character becomes `_`, runs of `_` shrink to one.
    A name that had to change (or be shortened) gets a short hash of the original appended, so two categories that
    fold to the same text stay apart (`Rot!` and `Rot?` both fold to `Rot_`). The result never starts with `\\` or `$`, so a
    category cannot pose as a system flag or a registered keyword such as `$Junk`.
    """
    text = unicodedata.normalize("NFKD", category.strip())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    folded = _KEYWORD_BAD.sub("_", text)
    folded = re.sub(r"_+", "_", folded).strip("_").lstrip("$")
    if not folded.strip("_"):
        return None
    if folded != category or len(folded) > _KEYWORD_MAX:
        digest = hashlib.sha256(category.encode("utf-8")).hexdigest()[:6]
        folded = f"{folded[:_KEYWORD_MAX - 7]}_{digest}"
    return folded


def internaldate(dt: datetime) -> str:
    """APPEND's date-time (`"15-Mar-2019 09:20:30 +0000"`, quotes included), in UTC, never before 1970-01-01 00:00:01.

    A naive datetime is taken as UTC (Graph's times are UTC). Dovecot keeps the instant, not the zone, so UTC
    loses nothing; dates before 1970 are clamped because Dovecot reads them back as 2106.
    """
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = max(dt.astimezone(UTC), _EPOCH_FLOOR)
    return f'"{dt.day:02d}-{_MONTHS[dt.month - 1]}-{dt.year:04d} {dt:%H:%M:%S} +0000"'


def parse_internaldate(text: str) -> datetime:
    """INTERNALDATE as FETCH returns it (`15-Mar-2019 09:20:30 +0000`, day possibly space-padded) → aware datetime."""
    return datetime.strptime(text.strip(), "%d-%b-%Y %H:%M:%S %z")


def quote(text: str) -> str:
    """An IMAP quoted string; raises ValueError for what only a literal could carry (CR, LF, NUL, 8-bit)."""
    if any(ch in text for ch in "\r\n\0") or not text.isascii():
        raise ValueError("needs a literal, not a quoted string")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
