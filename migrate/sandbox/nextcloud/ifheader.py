"""WebDAV's `If` header (RFC 4918 §10.4) as Sabre evaluates it before a method runs: tagged lists name a resource by
URL (`If: <url> (["etag"])`), untagged ones mean the request's own resource. Only entity tags are kept (the sandbox
has no lock tokens, so a token condition is false, `Not <token>` true). The header holds when any list holds."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from urllib.parse import unquote, urlparse

from . import names
from .wire import Environ, StartResponse, header, sabre_error

_TOKEN = re.compile(r'\s*(<[^>]*>|\(|\)|\[[^\]]*\]|Not\b)', re.IGNORECASE)


def parse(value: str) -> list[tuple[str | None, list[tuple[bool, str, str]]]] | None:
    """[(resource path or None, [(negated, "etag" | "token", value), …]), …]; None when it does not parse."""
    out: list[tuple[str | None, list[tuple[bool, str, str]]]] = []
    resource: str | None = None
    pos, current, negate = 0, None, False
    while pos < len(value):
        if not value[pos:].strip():
            break
        m = _TOKEN.match(value, pos)
        if m is None:
            return None
        tok, pos = m.group(1), m.end()
        if tok == "(":
            current = []
        elif tok == ")":
            if current is None:
                return None
            out.append((resource, current))
            current = None
        elif tok.lower() == "not":
            negate = True
        elif tok.startswith("["):
            if current is None:
                return None
            current.append((negate, "etag", tok[1:-1].strip()))
            negate = False
        elif current is None:  # a resource tag
            resource = names.nfc(unquote(urlparse(tok[1:-1]).path or tok[1:-1], encoding="utf-8"))
        else:
            current.append((negate, "token", tok[1:-1]))
            negate = False
    return out if current is None else None


def check(environ: Environ, sr: StartResponse, own: str, etag_of: Callable[[str], str | None]
          ) -> Iterable[bytes] | None:
    """412 (as 32.0.1 words it) unless the `If` header holds; `own` is the request's path, `etag_of(path)` the
    quoted etag of a resource or None when it does not exist."""
    value = header(environ, "If")
    if not value:
        return None
    lists = parse(value)
    if lists is None:
        return sabre_error(sr, 400, "Invalid If header")
    for resource, conditions in lists:
        current = etag_of(resource or own)
        if all((current is not None and kind == "etag" and val == current) != negated
               for negated, kind, val in conditions):
            return None
    # 32.0.1's words, naming the resource of the last list by its path below /remote.php/dav/ (an etag is
    # compared as written, quotes included: `[abc]` never matches `"abc"`)
    where = (lists[-1][0] or own).removeprefix("/remote.php/dav/") if lists else own
    return sabre_error(sr, 412, f"Failed to find a valid token/etag combination for {where}",
                       extra="<s:header>If</s:header>")
