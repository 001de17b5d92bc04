"""What the server will give back: every bare LF becomes CRLF, bare CRs stay (reference mail.md §2.10).

Dovecot stores CRLF input byte for byte but returns LF-only input with CRLF line ends, so `verify` compares the
fetched bytes with the source bytes normalised this way. The hasher works chunk by chunk so a 50 MB message is
never held whole; a CR at the end of one chunk is remembered so a CRLF split across chunks is not doubled.
"""

from __future__ import annotations

import hashlib
import re

_BARE_LF = re.compile(rb"(?<!\r)\n")


def crlf(data: bytes) -> bytes:
    """`data` with every LF not preceded by CR turned into CRLF."""
    return _BARE_LF.sub(b"\r\n", data)


class RawHasher:
    """Incremental sha256 and length of exactly the bytes fed (what a fetch returns)."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._length = 0

    def update(self, chunk: bytes) -> None:
        self._sha.update(chunk)
        self._length += len(chunk)

    @property
    def length(self) -> int:
        return self._length

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


class CrlfHasher(RawHasher):
    """Incremental sha256 and length of the CRLF-normalised form of the bytes fed to it."""

    def __init__(self) -> None:
        super().__init__()
        self._last_cr = False

    def update(self, chunk: bytes) -> None:
        if not chunk:
            return
        rest = chunk
        if self._last_cr and chunk[:1] == b"\n":
            super().update(b"\n")  # the CR of this CRLF ended the previous chunk
            rest = chunk[1:]
        super().update(crlf(rest))
        self._last_cr = chunk.endswith(b"\r")
