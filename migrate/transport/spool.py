"""File bytes held between their read and their write: in memory while a process-wide budget grants the room,
else in a temp file. One budget for every upload of the process (chunks of large files, whole small files, bulk
batches, bytes read ahead), so the memory a copy holds in file data stays bounded whatever the number of workers
and the mix of file sizes.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import IO

MiB = 1024 * 1024
READ_BLOCK = MiB


class MemoryBudget:
    """Bytes of file data all uploads of the process may hold in memory together; past it, they go to disk."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Condition()

    def take(self, n: int) -> bool:
        """Room for `n` bytes if there is some now (the caller goes to disk otherwise)."""
        with self._lock:
            if self.used + n > self.limit:
                return False
            self.used += n
            return True

    def wait_take(self, n: int) -> int:
        """Room for `n` bytes (at most the limit), waiting until others give some back; returns what to give.
        For holders that cannot go to disk (a bulk request's bodies); they take once, so no wait is a cycle."""
        from migrate.transport import interrupt

        n = min(n, self.limit)
        with self._lock:
            while self.used + n > self.limit:
                self._lock.wait(0.5)
                interrupt.check()
            self.used += n
        return n

    def give(self, n: int) -> None:
        with self._lock:
            self.used -= n
            self._lock.notify_all()


# Shared by chunked uploads (one 32 MiB chunk fits), the whole-file reads of small files, bulk batches (≤ 4 MiB
# each) and downloads read ahead of a streamed upload.
FILE_MEMORY = MemoryBudget(32 * MiB)


class Spool:
    """Bytes written once and read any number of times (a request the pacer may send again). The caller's pieces
    are kept as they are (no copy) when the budget grants `room`, else written to a temp file; more than `room`
    (a source that sends more than it listed) moves what is held to the file."""

    def __init__(self, budget: MemoryBudget, room: int) -> None:
        self._budget = budget
        self._room = room if room > 0 and budget.take(room) else 0
        self._pieces: list[bytes] = []
        self._file: IO[bytes] | None = None if self._room else tempfile.TemporaryFile()  # noqa: SIM115
        self.size = 0

    @property
    def in_memory(self) -> bool:
        return self._file is None

    def write(self, piece: bytes) -> None:
        if self._file is None and self.size + len(piece) > self._room:
            self._spill()
        self.size += len(piece)
        if self._file is None:
            self._pieces.append(piece)
        else:
            self._file.write(piece)

    def _spill(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115
        for p in self._pieces:
            self._file.write(p)
        self._pieces = []
        self._budget.give(self._room)
        self._room = 0

    def __iter__(self) -> Iterator[bytes]:
        """The bytes from the start, each time it is asked (so a list-like body, not a one-shot stream)."""
        if self._file is None:
            return iter(self._pieces)
        f = self._file

        def replay() -> Iterator[bytes]:
            f.seek(0)
            while block := f.read(READ_BLOCK):
                yield block

        return replay()

    def body(self) -> Callable[[], Iterator[bytes]]:
        """A fresh iterator over the bytes for each attempt of a request."""
        return self.__iter__

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._pieces = []
        if self._room:
            self._budget.give(self._room)
            self._room = 0

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
