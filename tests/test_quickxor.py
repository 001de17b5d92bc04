"""Our QuickXorHash against an independent implementation (the one the Graph sandbox publishes hashes with)."""

from __future__ import annotations

import base64
import random

import pytest
from quickxorhash import quickxorhash

from migrate.transport.hashing import HashingStream, quick_xor_hash
from migrate.transport.quickxor import QuickXorHash


def reference(data: bytes) -> str:
    h = quickxorhash()
    h.update(data)
    return base64.b64encode(h.digest()).decode()


def test_empty_input_is_all_zero() -> None:
    assert QuickXorHash().b64digest() == "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
    assert quick_xor_hash(b"") == reference(b"")


@pytest.mark.parametrize("size", [1, 2, 7, 8, 19, 20, 21, 159, 160, 161, 319, 320, 321, 4096, 65_537, 1_048_583])
def test_matches_the_reference_for_every_boundary(size: int) -> None:
    data = random.Random(size).randbytes(size)
    assert quick_xor_hash(data) == reference(data)


def test_any_chunking_gives_the_same_digest() -> None:
    rnd = random.Random(7)
    for _ in range(60):
        data = rnd.randbytes(rnd.randrange(0, 200_000))
        h = QuickXorHash()
        pos = 0
        while pos < len(data):
            step = rnd.choice([1, 3, 159, 160, 161, rnd.randrange(1, 70_000)])
            h.update(memoryview(data)[pos:pos + step])
            pos += step
        assert h.b64digest() == reference(data), len(data)


def test_length_is_part_of_the_digest() -> None:
    # Same columns, different length: zero bytes change nothing but the length term.
    assert quick_xor_hash(b"\0" * 160) != quick_xor_hash(b"\0" * 320)
    assert quick_xor_hash(b"\0" * 320) == reference(b"\0" * 320)


def test_hashing_stream_passes_bytes_through_and_hashes_them() -> None:
    import hashlib

    pieces = [random.Random(i).randbytes(1000 + i) for i in range(20)]
    hs = HashingStream(iter(pieces))
    assert list(hs) == pieces
    joined = b"".join(pieces)
    assert hs.size == len(joined)
    assert hs.quick_xor_hash == reference(joined)
    assert hs.sha1 == hashlib.sha1(joined).hexdigest()


def test_a_hashing_streams_digest_follows_every_byte_after_it_was_read() -> None:
    data = random.Random(7).randbytes(5000)
    hs = HashingStream(iter([data[:3000]]))
    assert b"".join(hs) == data[:3000]
    assert hs.quick_xor_hash == quick_xor_hash(data[:3000]) == hs.quick_xor_hash  # asked twice, same answer
    hs.feed(data[3000:])  # a resumed range: the digest asked for before must not be kept
    assert hs.quick_xor_hash == quick_xor_hash(data)
