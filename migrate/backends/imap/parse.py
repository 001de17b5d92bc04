"""IMAP responses as values: one response = its line parts and literals, tokenised into nested lists.

Kept apart from the socket so the grammar can be read (and tested) on its own. Strings come back as `str`
(UTF-8, undecodable bytes kept via surrogateescape), NIL as None, parenthesised lists as Python lists, literals
as `bytes` or, when a sink took them, as `Streamed(size)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_STATUS = frozenset({"OK", "NO", "BAD", "BYE", "PREAUTH"})
_CODE = re.compile(r"^\[([^\s\]]+)(?: ([^\]]*))?\]\s?")
_LITERAL_AT_END = re.compile(rb"[~]?\{(\d+)\+?\}$")


@dataclass(frozen=True)
class Streamed:
    """A literal that went to a sink instead of memory."""

    size: int


@dataclass
class Response:
    """`tag` is "*", "+" or the command's tag; `kind` is the status word (OK, NO, ...) or the data name
    (LIST, FETCH, EXISTS, ...); `number` the message number of `* 3 FETCH`; `code`/`code_args` the bracketed
    response code of a status response; `data` the tokens after the data name."""

    tag: str
    kind: str = ""
    number: int | None = None
    code: str = ""
    code_args: str = ""
    text: str = ""
    data: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.kind == "OK"


class ParseError(ValueError):
    pass


def literal_size(line_part: bytes) -> int | None:
    """The octet count of a literal announced at the end of a response line, or None."""
    m = _LITERAL_AT_END.search(line_part)
    return int(m.group(1)) if m else None


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def parse(parts: list[bytes], literals: list[bytes | Streamed]) -> Response:
    """One response from its line parts (each without CRLF; all but the last end in `{n}`) and its literals."""
    first = parts[0]
    if first.startswith(b"+"):
        return Response(tag="+", text=_text(first[2:] if first[1:2] == b" " else first[1:]))
    tag, _, rest = first.partition(b" ")
    if not tag or not rest:
        raise ParseError(f"not an IMAP response: {_text(first[:80])!r}")
    word, _, after = rest.partition(b" ")
    number = None
    if word.isdigit():
        number = int(word)
        word, _, after = after.partition(b" ")
    kind = _text(word).upper()
    resp = Response(tag=_text(tag), kind=kind, number=number)
    if kind in _STATUS and number is None:
        text = _text(after)
        m = _CODE.match(text)
        if m:
            resp.code, resp.code_args = m.group(1).upper(), m.group(2) or ""
            text = text[m.end():]
        resp.text = text
        return resp
    resp.data = _Tokens([after, *parts[1:]], literals).all()
    return resp


class _Tokens:
    """A tiny recursive-descent lexer over line parts joined by literals."""

    def __init__(self, parts: list[bytes], literals: list[bytes | Streamed]) -> None:
        self.parts = parts
        self.literals = list(literals)
        self.i = 0  # which part
        self.pos = 0

    def all(self) -> list:
        return self._seq(nested=False)

    def _seq(self, *, nested: bool) -> list:
        """Tokens up to the end of the response (top level) or up to the matching ')' (nested)."""
        out: list = []
        while True:
            tok = self._next()
            if tok is _END:
                if nested:
                    raise ParseError("unterminated '('")
                return out
            if tok is _CLOSE:
                if not nested:
                    raise ParseError("unbalanced ')'")
                return out
            out.append(tok)

    def _next(self):  # noqa: C901 - one branch per token kind reads best here
        line = self.parts[self.i]
        while self.pos < len(line) and line[self.pos] == 0x20:
            self.pos += 1
        if self.pos >= len(line):
            return _END
        c = line[self.pos]
        if c == 0x28:  # (
            self.pos += 1
            return self._seq(nested=True)
        if c == 0x29:  # )
            self.pos += 1
            return _CLOSE
        if c == 0x22:  # "
            return self._quoted(line)
        m = _LITERAL_AT_END.match(line, self.pos)
        if m and m.end() == len(line) and self.i + 1 < len(self.parts):
            self.i += 1
            self.pos = 0
            if not self.literals:
                raise ParseError("literal announced but missing")
            return self.literals.pop(0)
        return self._atom(line)

    def _quoted(self, line: bytes) -> str:
        out = bytearray()
        j = self.pos + 1
        while j < len(line):
            b = line[j]
            if b == 0x5C and j + 1 < len(line):  # backslash
                out.append(line[j + 1])
                j += 2
                continue
            if b == 0x22:
                self.pos = j + 1
                return _text(bytes(out))
            out.append(b)
            j += 1
        raise ParseError("unterminated quoted string")

    def _atom(self, line: bytes) -> str | None:
        j = self.pos
        depth = 0
        while j < len(line):
            b = line[j]
            if b == 0x5B:  # [ ... ] may hold spaces and parentheses (BODY[HEADER.FIELDS (A B)])
                depth += 1
            elif b == 0x5D and depth:
                depth -= 1
            elif not depth and b in b" ()\"":
                break
            j += 1
        word = _text(line[self.pos:j])
        self.pos = j
        return None if word.upper() == "NIL" else word


_END = object()
_CLOSE = object()
