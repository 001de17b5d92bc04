"""Ctrl-C: the first press stops every wait at once and the command within a few seconds; a second press ends it now.

Python delivers SIGINT to the main thread only. While the main thread unwinds, worker threads may be sleeping
between retries or waiting on a request that never answers; a process that joins them could take minutes (the
first Ctrl-C looked ignored). So the first press also sets `STOP`, which every retry pause and pacing wait
watches (`sleep`, `check`), and starts a watchdog: if the command has not ended `GRACE` seconds later, the
cleanups registered here run (the run is recorded as interrupted) and the process exits with 130. Nothing is
lost by that: every item's status change is one transaction, and a rerun finalises or resends what was in flight,
as after a kill.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

STOP = threading.Event()
GRACE = 5.0  # seconds between the first Ctrl-C and the hard exit of a command that is still waiting
MESSAGE = "interrupted; state is consistent, run the same command again to resume"
INTERRUPTED = 130
_cleanups: list[Callable[[], None]] = []
_lock = threading.Lock()
_announced = threading.Event()


def check() -> None:
    """Raise KeyboardInterrupt in this thread once Ctrl-C was pressed (workers call it before each request)."""
    if STOP.is_set():
        raise KeyboardInterrupt


def sleep(seconds: float) -> None:
    """time.sleep that ends at once, with KeyboardInterrupt, when Ctrl-C is pressed."""
    if STOP.wait(max(0.0, seconds)):
        raise KeyboardInterrupt


def announce() -> None:
    """Say MESSAGE on stderr, once per process (the CLI's boundary and the hard exit may both get there)."""
    with _lock:
        if _announced.is_set():
            return
        _announced.set()
    with contextlib.suppress(Exception):
        sys.stderr.write(MESSAGE + "\n")
        sys.stderr.flush()


def on_hard_exit(fn: Callable[[], None]) -> Callable[[], None]:
    """Register a bounded, best-effort cleanup for the hard exit; returns a function that unregisters it."""
    with _lock:
        _cleanups.append(fn)

    def remove() -> None:
        with _lock, contextlib.suppress(ValueError):
            _cleanups.remove(fn)

    return remove


def install(grace: float | None = None) -> None:
    """Take over SIGINT for this process (the CLI calls it once, from the main thread)."""
    wait = GRACE if grace is None else grace

    def handler(signum: int, frame: object) -> None:
        if STOP.is_set():
            hard_exit("interrupted again: stopping now")
        STOP.set()
        threading.Thread(target=_watchdog, args=(wait,), name="interrupt-watchdog", daemon=True).start()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)


def _watchdog(grace: float) -> None:
    time.sleep(grace)
    hard_exit(f"interrupted: still waiting on the network {grace:.0f} s after Ctrl-C, stopping now")


def hard_exit(why: str) -> None:
    """Run the registered cleanups, say why, and end the process with 130 without joining waiting threads."""
    with _lock:
        cleanups = list(_cleanups)
    for fn in cleanups:
        with contextlib.suppress(BaseException):
            fn()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.write(f"{why}\n")
    announce()
    os._exit(INTERRUPTED)
