"""ReadAheadSource: same bytes and errors as the wrapped source, bounded memory, clean early exit."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest

from migrate.engine.files.readahead import ReadAheadSource
from migrate.errors import ItemNotFound, TransientError


class FakeSource:
    def __init__(self, pieces: int = 50, piece: int = 1000, fail_open: bool = False, break_at: int | None = None):
        self.pieces, self.piece, self.fail_open, self.break_at = pieces, piece, fail_open, break_at
        self.closed = threading.Event()
        self.produced = 0

    @contextmanager
    def open_content(self, drive_id: str, item_id: str, offset: int = 0):
        if self.fail_open:
            raise ItemNotFound("gone")

        def chunks():
            for i in range(self.pieces):
                if i == self.break_at:
                    raise TransientError("reset")
                self.produced += 1
                yield bytes([i % 256]) * self.piece

        try:
            yield chunks()
        finally:
            self.closed.set()

    def permissions(self, drive_id: str, item_id: str):
        return ["delegated"]


def test_same_bytes_in_order_and_other_methods_delegate():
    src = FakeSource()
    ra = ReadAheadSource(src, per_stream=5000, total=8000)
    with ra.open_content("d", "i") as chunks:
        data = b"".join(chunks)
    assert data == b"".join(bytes([i]) * 1000 for i in range(50))
    assert src.closed.is_set() and ra._held == 0
    assert ra.permissions("d", "i") == ["delegated"]


def test_errors_surface_where_the_plain_source_raises_them():
    with pytest.raises(ItemNotFound), ReadAheadSource(FakeSource(fail_open=True)).open_content("d", "i"):
        pass
    ra = ReadAheadSource(FakeSource(break_at=7))
    got = 0
    with pytest.raises(TransientError), ra.open_content("d", "i") as chunks:
        for c in chunks:
            got += len(c)
    assert got == 7000


def test_bounded_ahead_and_an_early_exit_stops_the_reader():
    src = FakeSource(pieces=10_000)
    ra = ReadAheadSource(src, per_stream=4000, total=4000)
    with ra.open_content("d", "i") as chunks:
        next(chunks)
        threading.Event().wait(0.3)
        assert src.produced <= 1 + 5          # one taken, at most the bound (plus one in hand) read ahead
    assert src.closed.wait(5) and ra._held == 0
    assert src.produced < 100
