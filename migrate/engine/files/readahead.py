"""Read ahead of the upload: a thread per open download keeps some of the source in hand.

Without it one thread alternates between reading the source and writing the target, so each server idles while
the other works; with it the download goes on while a chunk is being sent. The bytes held ahead are bounded per
stream and in total: by default they count against the process-wide budget for file bytes in memory
(transport.spool.FILE_MEMORY, shared with chunk buffers, small files and bulk batches), so memory does not grow
with the number of workers or the mix of file sizes.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from migrate.protocols import Source
from migrate.transport import interrupt
from migrate.transport.spool import FILE_MEMORY, MemoryBudget

MiB = 1024 * 1024


class ReadAheadSource:
    """Wraps a Source; `open_content` streams through a bounded buffer filled by a background thread."""

    def __init__(self, source: Source, *, per_stream: int = 16 * MiB, total: int | None = None,
                 budget: MemoryBudget = FILE_MEMORY) -> None:
        self._source = source
        self._per_stream = per_stream
        self._budget = budget if total is None else MemoryBudget(total)
        self._held = 0  # bytes held ahead over all streams of this source (counted in the budget or not)
        self._cond = threading.Condition()

    def __getattr__(self, name: str) -> Any:  # discover, delta, permissions, close …
        return getattr(self._source, name)

    def open_content(self, drive_id: str, item_id: str, offset: int = 0) -> AbstractContextManager[Iterator[bytes]]:
        return self._open(drive_id, item_id, offset)

    @contextmanager
    def _open(self, drive_id: str, item_id: str, offset: int) -> Iterator[Iterator[bytes]]:
        cond = self._cond
        buf: deque[tuple[bytes, bool]] = deque()  # each piece, and whether it counts against the budget
        state = {"mine": 0, "done": False, "stop": False, "streaming": False, "opened": False}
        failure: list[BaseException] = []

        def put(chunk: bytes) -> bool:
            n = len(chunk)
            with cond:
                # Wait while this stream holds enough, or the budget has no room; an empty buffer always takes
                # one (counted when the budget has room), so every stream moves on.
                while True:
                    if state["stop"]:
                        return False
                    if not buf:
                        counted = self._budget.take(n)
                        break
                    if state["mine"] + n <= self._per_stream and self._budget.take(n):
                        counted = True
                        break
                    cond.wait(0.05)  # the consumer notifies; other holders of the budget do not
                buf.append((chunk, counted))
                state["mine"] += n
                self._held += n
                cond.notify_all()
                return True

        def produce() -> None:
            try:
                with self._source.open_content(drive_id, item_id, offset) as chunks:
                    with cond:
                        state["streaming"] = state["opened"] = True
                        cond.notify_all()
                    for chunk in chunks:
                        if not put(chunk):
                            return
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised in its thread
                failure.append(exc)
            finally:
                with cond:
                    state["done"] = state["opened"] = True
                    cond.notify_all()

        def chunks() -> Iterator[bytes]:
            while True:
                with cond:
                    while not buf and not state["done"]:
                        cond.wait(0.5)
                        interrupt.check()  # Ctrl-C: the consumer stops even while the download stalls
                    if buf:
                        chunk, counted = buf.popleft()
                        state["mine"] -= len(chunk)
                        self._held -= len(chunk)
                        if counted:
                            self._budget.give(len(chunk))
                        cond.notify_all()
                    elif failure:
                        raise failure[0]
                    else:
                        return
                yield chunk

        t = threading.Thread(target=produce, name=f"read-{item_id[-8:]}", daemon=True)
        t.start()
        with cond:
            while not state["opened"]:
                cond.wait(0.5)
                interrupt.check()
        if not state["streaming"]:
            # The open itself failed (refused, not found): raise it here, as the plain source would.
            t.join()
            raise failure[0] if failure else RuntimeError("download did not start")
        try:
            yield chunks()
        finally:
            with cond:
                state["stop"] = True
                self._held -= state["mine"]
                state["mine"] = 0
                self._budget.give(sum(len(c) for c, counted in buf if counted))
                buf.clear()
                cond.notify_all()
            t.join(timeout=120)  # the reader ends after its current chunk (or the source's own timeout)
