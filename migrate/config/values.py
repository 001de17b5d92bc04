"""Value parsers: each takes (value, came_from_text) and returns the value or raises _Bad(expected)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from migrate.mapping import check_uid


class _Bad(Exception):
    """A value does not fit; the argument says what is expected."""


_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def format_size(n: int) -> str:
    """Bytes as the shortest exact binary-unit text ("32MiB"), for templates and messages."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n and n % factor == 0:
            return f"{n // factor}{unit}"
    return str(n)


def parse_size(value: object) -> int:
    """ "32MiB", "10 MB", "1.5GiB" or a whole number of bytes; raises ValueError."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE_RE.match(value) if isinstance(value, str) else None
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(value)
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _text(value: object, text: bool) -> str:
    if isinstance(value, Path):
        return str(value)
    if not isinstance(value, str) or any(ord(c) < 32 for c in value):
        raise _Bad("a string")
    return value.strip()


def _choice(*choices: str) -> Callable[[object, bool], str]:
    def parse(value: object, text: bool) -> str:
        if isinstance(value, str) and value.strip() in choices:
            return value.strip()
        raise _Bad(" | ".join(f'"{c}"' for c in choices))

    return parse


def _whole(lo: int, hi: int) -> Callable[[object, bool], int]:
    def parse(value: object, text: bool) -> int:
        if text and isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi:
            return value
        raise _Bad(f"a whole number from {lo} to {hi}")

    return parse


def _fraction(lo: float, hi: float) -> Callable[[object, bool], float]:
    def parse(value: object, text: bool) -> float:
        if text and isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                pass
        if isinstance(value, int | float) and not isinstance(value, bool) and lo <= value <= hi:
            return float(value)
        raise _Bad(f"a number from {lo:g} to {hi:g}")

    return parse


def _size(lo: int, hi: int) -> Callable[[object, bool], int]:
    def parse(value: object, text: bool) -> int:
        try:
            n = parse_size(value)
        except ValueError:
            n = -1
        if lo <= n <= hi:
            return n
        raise _Bad(
            f'a size from {format_size(lo)} to {format_size(hi)} such as "32MiB" (units KiB, MiB, GiB, '
            "KB, MB, GB)"
        )

    return parse


def _versions(value: object, text: bool) -> str | int:
    """[transfer] versions: "none", "all", or how many of the most recent earlier versions (1-500)."""
    if isinstance(value, str) and value.strip().lower() in ("none", "all"):
        return value.strip().lower()
    if text and isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 500:
        return "none" if value == 0 else value
    raise _Bad('"none" | "all" | a whole number from 1 to 500 (the most recent earlier versions of each file)')


def parse_versions(text: str) -> str | int:
    """A `versions` value written as text (a mapping row's column, the --versions flag): "none", "all" or
    1-500; raises ValueError saying what is expected."""
    try:
        return _versions(text, True)
    except _Bad as exc:
        raise ValueError(f"expected {exc}, found {text!r}") from None


def versions_limit(policy: str | int) -> int | None:
    """How many earlier versions of a file to carry: 0 for "none", None for "all", else the number."""
    if policy == "none":
        return 0
    if policy == "all":
        return None
    return int(policy)


def _bool(value: object, text: bool) -> bool:
    if isinstance(value, bool):
        return value
    if text and isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise _Bad("true or false")


def _url(required: bool) -> Callable[[object, bool], str]:
    def parse(value: object, text: bool) -> str:
        url = _text(value, text).rstrip("/")
        if not url and not required:
            return ""
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.hostname:
            return url
        if parts.scheme == "http" and parts.hostname and _loopback(parts.hostname):
            return url
        raise _Bad(
            'an https:// URL such as "https://cloud.example.org" (plain http only for 127.0.0.1/localhost)'
        )

    return parse


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _path(value: object, text: bool) -> str:
    """Paths stay text here; they are resolved against the right folder once their origin is known."""
    return _text(value, text)


def _org_links(value: object, text: bool) -> str:
    v = value.strip() if isinstance(value, str) else ""
    if v in ("report", "drop"):
        return v
    if v.startswith("group:") and v[6:].strip() and not any(ord(c) < 32 for c in v):
        return "group:" + v[6:].strip()
    raise _Bad(
        '"group:<name>" (the Nextcloud group that stands for the whole organisation, e.g. "group:staff"), '
        '"report" or "drop"'
    )


def _uid_or_blank(value: object, text: bool) -> str:
    v = _text(value, text)
    if v and check_uid(v):
        raise _Bad("a Nextcloud user id (letters, digits, space, _ . @ - ') or an empty string")
    return v


def _share_rate(value: object, text: bool) -> tuple[int, int]:
    """"calls/seconds" for createShare per owner (NC 32 allows 20/600), or "0" when the admin lifted the limit."""
    v = value.strip() if isinstance(value, str) else value
    if v in ("0", 0):
        return 0, 0
    calls, _, seconds = str(v).partition("/") if isinstance(v, str) else ("", "", "")
    if calls.strip().isdigit() and seconds.strip().isdigit():
        n, period = int(calls), int(seconds)
        if 1 <= n <= 100_000 and 1 <= period <= 86_400:
            return n, period
    raise _Bad('"<calls>/<seconds>" such as "20/600" (1 to 100000 calls per 1 to 86400 s), or "0" for no pacing')


def _group_id(value: object, text: bool) -> str:
    v = _text(value, text)
    if not v or len(v) > 64 or any(ord(c) < 32 for c in v) or "/" in v:
        raise _Bad('a Nextcloud group id such as "m365-migration" (1 to 64 characters, no / or control characters)')
    return v


def _prefix(value: object, text: bool) -> str:
    v = _text(value, text).replace("\\", "/").strip("/")
    if any(part in (".", "..") for part in v.split("/")):
        raise _Bad('a folder name such as "Migrated" or "From Microsoft 365/Files" (no . or .. parts)')
    return "/".join(p for p in v.split("/") if p)


def _imap_url(value: object, text: bool) -> str:
    """imaps://host[:port] (TLS from the start) or imap://host[:port] (STARTTLS, required); no path, no user."""
    url = _text(value, text).rstrip("/")
    if not url:
        return ""
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    if parts.scheme in ("imaps", "imap") and parts.hostname and port_ok and not parts.path and not parts.username:
        return url
    raise _Bad('an IMAP URL such as "imaps://mail.example.org" (port 993, TLS) or "imap://mail.example.org" (port '
               "143, STARTTLS required); plain IMAP without TLS only to 127.0.0.1/localhost")


def _imap_user(value: object, text: bool) -> str:
    v = _text(value, text)
    if any(c.isspace() for c in v) or "*" in v:
        raise _Bad('an IMAP user name such as "migrator" (no spaces, no "*": the server joins user*master itself)')
    return v


def _seconds(lo: float, hi: float) -> Callable[[object, bool], float]:
    inner = _fraction(lo, hi)

    def parse(value: object, text: bool) -> float:
        try:
            return inner(value, text)
        except _Bad:
            raise _Bad(f"a number of seconds from {lo:g} to {hi:g}") from None

    return parse
