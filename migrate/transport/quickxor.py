"""QuickXorHash (Graph's `file.hashes.quickXorHash`) fast enough to keep up with the network.

Byte i is XORed into a 160-bit register at bit (11 × i) mod 160, so every byte whose position is the same
modulo 160 lands on the same bits. Folding the stream into 160 columns with one vectorised XOR (numpy) and
placing the 160 column bytes at the end gives the same digest as the byte-by-byte definition, at memory speed
instead of the ~200 MB/s of a per-byte loop, which would otherwise cap every large transfer.
"""

from __future__ import annotations

import base64

import numpy as np

WIDTH_BITS = 160
SHIFT = 11
ROW = WIDTH_BITS // 8  # bytes per column group; byte positions repeat their shift every ROW × 8 = 160 bytes
COLUMNS = 160
MASK = (1 << WIDTH_BITS) - 1


class QuickXorHash:
    """Incremental QuickXorHash: `update()` with any chunking, `digest()` (20 bytes) or `b64digest()`."""

    __slots__ = ("_acc", "_length")

    def __init__(self) -> None:
        self._acc = np.zeros(COLUMNS, dtype=np.uint8)
        self._length = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        n = len(view)
        if not n:
            return
        offset = self._length % COLUMNS
        self._length += n
        i = 0
        if offset:
            head = min(n, COLUMNS - offset)
            self._acc[offset:offset + head] ^= np.frombuffer(view[:head], dtype=np.uint8)
            i = head
        body = (n - i) // COLUMNS * COLUMNS
        if body:
            rows = np.frombuffer(view[i:i + body], dtype=np.uint64).reshape(-1, COLUMNS // 8)
            self._acc ^= np.bitwise_xor.reduce(rows, axis=0).view(np.uint8)
            i += body
        if i < n:
            self._acc[:n - i] ^= np.frombuffer(view[i:], dtype=np.uint8)

    def digest(self) -> bytes:
        register = 0
        for column, value in enumerate(self._acc.tolist()):
            if value:
                register ^= value << (SHIFT * column % WIDTH_BITS)
        register = (register & MASK) ^ (register >> WIDTH_BITS)  # bits past 160 wrap round to the start
        out = bytearray(register.to_bytes(ROW, "little"))
        for j, byte in enumerate(self._length.to_bytes(8, "little")):
            out[ROW - 8 + j] ^= byte  # the length goes into the last 64 bits
        return bytes(out)

    def b64digest(self) -> str:
        return base64.b64encode(self.digest()).decode()
