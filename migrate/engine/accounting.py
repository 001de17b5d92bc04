"""Progress as an object: the engine reports bytes and files here; the CLI decides how to show them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Accounting:
    """Thread-safe counters for one run; `listener` (e.g. a tqdm adapter) is told about every change."""

    total_files: int = 0
    total_bytes: int = 0
    done_files: int = 0
    done_bytes: int = 0
    failed: int = 0
    skipped: int = 0
    resent_bytes: int = 0
    resumed_bytes: int = 0
    started: float = field(default_factory=time.monotonic)
    listener: Callable[[str, int], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def plan(self, files: int, size: int) -> None:
        with self._lock:
            self.total_files += files
            self.total_bytes += size
        self._tell("total", size)

    def bytes(self, n: int) -> None:
        with self._lock:
            self.done_bytes += n
        self._tell("bytes", n)

    def file_done(self) -> None:
        with self._lock:
            self.done_files += 1
        self._tell("file", 1)

    def file_failed(self) -> None:
        with self._lock:
            self.failed += 1
        self._tell("failed", 1)

    def file_skipped(self) -> None:
        with self._lock:
            self.skipped += 1
        self._tell("skipped", 1)

    def already_there(self, n: int) -> None:
        """Bytes an earlier run left on the target (chunks of a resumed upload): not to be sent, nor waited for."""
        with self._lock:
            self.total_bytes -= n
            self.resumed_bytes += n
        self._tell("total", -n)

    def rewind(self, n: int) -> None:
        """Bytes that were counted but must be sent again (a re-read after a reset or a hash mismatch)."""
        with self._lock:
            self.done_bytes -= n
            self.resent_bytes += n
        self._tell("bytes", -n)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Bytes per second so far."""
        return self.done_bytes / self.elapsed if self.elapsed > 0 else 0.0

    def _tell(self, what: str, n: int) -> None:
        if self.listener is not None:
            self.listener(what, n)
