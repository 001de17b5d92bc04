"""Hash while streaming: QuickXorHash to check against Graph, SHA1 to hand to the target, and a byte count."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator


class HashingStream:
    """Wrap an iterator of chunks; every chunk that passes through updates both hashes and the size."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        from migrate.transport.quickxor import QuickXorHash

        self._chunks = chunks
        self._qxh = QuickXorHash()
        self._sha1 = hashlib.sha1()
        self.size = 0
        self._qxh_b64: str | None = None  # the digest, kept until more bytes come (it is asked for twice a file)
        self.counted: int | None = None  # bytes of it counted as transferred, when not all (a resumed upload)

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self._qxh_b64 = None
            self._qxh.update(chunk)
            self._sha1.update(chunk)
            self.size += len(chunk)
            yield chunk

    def feed(self, chunk: bytes) -> None:
        """Account for bytes obtained outside the iterator (e.g. a resumed range)."""
        self._qxh_b64 = None
        self._qxh.update(chunk)
        self._sha1.update(chunk)
        self.size += len(chunk)

    @property
    def quick_xor_hash(self) -> str:
        """Base64 of the 20-byte digest, the form Graph publishes in `file.hashes.quickXorHash`."""
        if self._qxh_b64 is None:
            self._qxh_b64 = self._qxh.b64digest()
        return self._qxh_b64

    @property
    def sha1(self) -> str:
        return self._sha1.hexdigest()


def quick_xor_hash(data: bytes) -> str:
    """QuickXorHash of a whole buffer (tests and small files)."""
    from migrate.transport.quickxor import QuickXorHash

    h = QuickXorHash()
    h.update(data)
    return h.b64digest()
