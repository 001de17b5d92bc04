"""Read ahead of the upload: a thread per open download keeps some of the source in hand.

Without it one thread alternates between reading the source and writing the target, so each server idles while
the other works; with it the download goes on while a chunk is being sent. The bytes held ahead are bounded per
stream and in total (over all streams), so memory does not grow with the number of workers.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from migrate.protocols import Source
from migrate.transport import interrupt

MiB = 1024 * 1024


class ReadAheadSource:
    """Wraps a Source; `open_content` streams through a bounded buffer filled by a background thread."""

    def __init__(self, source: Source, *, per_stream: int = 16 * MiB, total: int = 32 * MiB) -> None:
        self._source = source
        self._per_stream = per_stream
        self._total = total
        self._held = 0
        self._cond = threading.Condition()

    def __getattr__(self, name: str) -> Any:  # discover, delta, permissions, close …
        return getattr(self._source, name)

    def open_content(self, drive_id: str, item_id: str, offset: int = 0) -> AbstractContextManager[Iterator[bytes]]:
        return self._open(drive_id, item_id, offset)

    @contextmanager
    def _open(self, drive_id: str, item_id: str, offset: int) -> Iterator[Iterator[bytes]]:
        cond = self._cond
        buf: deque[bytes] = deque()
        state = {"mine": 0, "done": False, "stop": False, "streaming": False, "opened": False}
        failure: list[BaseException] = []

        def put(chunk: bytes) -> bool:
            with cond:
                # Wait while this stream, or all streams together, hold enough; an empty buffer always takes one.
                while not state["stop"] and buf and (state["mine"] + len(chunk) > self._per_stream
                                                     or self._held + len(chunk) > self._total):
                    cond.wait(0.5)
                if state["stop"]:
                    return False
                buf.append(chunk)
                state["mine"] += len(chunk)
                self._held += len(chunk)
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
                        chunk = buf.popleft()
                        state["mine"] -= len(chunk)
                        self._held -= len(chunk)
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
                buf.clear()
                cond.notify_all()
            t.join(timeout=120)  # the reader ends after its current chunk (or the source's own timeout)
