"""Deterministic file bodies served as zero-copy slices of one periodic block, with cached hashes."""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import quickxorhash

# The period is a multiple of 160 so that QuickXorHash of a periodic stream needs at most two block hashes:
# bytes one period apart land on the same bit offset ((i*11) mod 160), so identical periods cancel in pairs.
PERIOD = 160 * 6554  # 1,048,640 bytes
_BLOCK: memoryview | None = None


def block() -> memoryview:
    """The shared pattern, doubled so that any slice of up to PERIOD bytes from any offset is contiguous."""
    global _BLOCK
    if _BLOCK is None:
        one = random.Random(0x5EED).randbytes(PERIOD)
        _BLOCK = memoryview(one + one)
    return _BLOCK


@dataclass(frozen=True, slots=True)
class Content:
    """A file body: `size` bytes of the pattern starting at `offset`, plus an optional 'enrichment' trailer."""

    offset: int
    size: int

    def chunks(self, start: int = 0, end: int | None = None, chunk: int = 1 << 20) -> Iterator[memoryview]:
        """Yield the bytes [start, end) as memoryview slices of the shared block (no copies)."""
        end = self.size if end is None else min(end, self.size)
        mv = block()
        pos = start
        chunk = min(chunk, PERIOD)
        while pos < end:
            o = (self.offset + pos) % PERIOD
            n = min(chunk, end - pos)
            yield mv[o:o + n]
            pos += n

    def read(self, start: int = 0, end: int | None = None) -> bytes:
        """Materialise a range (tests and small files only)."""
        return b"".join(bytes(c) for c in self.chunks(start, end))

    @property
    def quick_xor(self) -> str:
        return quick_xor(self.offset, self.size)

    @property
    def sha1(self) -> str:
        return sha1_hex(self.offset, self.size)


def _qx_state(data: memoryview | bytes) -> int:
    """QuickXor state without the length term (the C digest with the length XOR undone)."""
    h = quickxorhash.quickxorhash()
    h.update(bytes(data))
    out = bytearray(h.digest())
    for k, lb in enumerate(len(data).to_bytes(8, "little")):
        out[12 + k] ^= lb
    return int.from_bytes(out, "little")


_MASK = (1 << 160) - 1
_STEP = 4096
_PREFIX: list[int] = []


def _rotl(x: int, k: int) -> int:
    k %= 160
    return ((x << k) | (x >> (160 - k))) & _MASK if k else x


def _prefix() -> list[int]:
    """P[k] = QuickXor state of the doubled block's first k*_STEP bytes, at their absolute bit offsets."""
    if not _PREFIX:
        mv, acc = block(), 0
        _PREFIX.append(0)
        for k in range(0, len(mv), _STEP):
            acc ^= _rotl(_qx_state(mv[k:k + _STEP]), k * 11)
            _PREFIX.append(acc)
    return _PREFIX


def _absolute(x: int) -> int:
    """State of block[0:x] at absolute offsets: a checkpoint plus at most _STEP hashed bytes."""
    k, r = divmod(x, _STEP)
    state = _prefix()[k]
    if r:
        state ^= _rotl(_qx_state(block()[k * _STEP:x]), k * _STEP * 11)
    return state


def _span(a: int, b: int) -> int:
    """State of block[a:b] as if it started at offset 0 (what a file starting there hashes to)."""
    return _rotl(_absolute(b) ^ _absolute(a), 160 - (a * 11) % 160)


@lru_cache(maxsize=65536)
def quick_xor(offset: int, size: int) -> str:
    """Base64 QuickXorHash of Content(offset, size) in O(1): at most four 4 KiB hashes, whatever the size."""
    o = offset % PERIOD
    full, rest = divmod(size, PERIOD)
    state = _span(o, o + rest)
    if full % 2:
        state ^= _span(o, o + PERIOD)
    out = bytearray(state.to_bytes(20, "little"))
    for k, lb in enumerate(size.to_bytes(8, "little")):
        out[12 + k] ^= lb
    return base64.b64encode(bytes(out)).decode()


@lru_cache(maxsize=65536)
def sha1_hex(offset: int, size: int) -> str:
    """Hex SHA1 of Content(offset, size); linear in size, so only computed on demand (truth)."""
    h = hashlib.sha1()
    for c in Content(offset, size).chunks(chunk=PERIOD):
        h.update(c)
    return h.hexdigest()
