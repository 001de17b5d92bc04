"""tqdm renderings of the engine's progress callbacks (stderr; the CLI hides them with -q/--json)."""

from __future__ import annotations

import sys
import threading
from typing import Any


def on_terminal() -> bool:
    """Bars redraw themselves with carriage returns: only where a terminal shows them, never into a log file."""
    return sys.stderr.isatty()


class ScanProgress:
    """On a terminal: a total bar (items/s over all drives) plus one bar per drive being scanned. Elsewhere (a
    log, a pipe): one plain line per finished drive."""

    def __init__(self, drives: int, *, enabled: bool = True) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.enabled = enabled
        self._lock = threading.Lock()
        self._bars: dict[str, Any] = {}
        self._free: list[int] = []
        self._next = 1
        self.per_drive = enabled and on_terminal()
        self.lines = enabled and not self.per_drive
        self.total = tqdm(total=None, desc=f"scan ({drives} drives)", unit=" items", disable=not self.per_drive,
                          position=0, dynamic_ncols=True, leave=True)
        self.finished = 0
        self.drives = drives

    def drive_started(self, drive: dict[str, Any], mode: str) -> None:
        if not self.per_drive:
            return
        with self._lock:
            pos = self._free.pop() if self._free else self._next
            if pos == self._next:
                self._next += 1
            name = (drive.get("owner_upn") or drive.get("name") or drive["id"])[:32]
            self._bars[drive["id"]] = (self._tqdm(desc=f"  {name} [{mode}]", unit=" items", disable=not self.enabled,
                                                  position=pos, leave=False, dynamic_ncols=True), pos)

    def items(self, drive_id: str, n: int) -> None:
        with self._lock:
            bar = self._bars.get(drive_id)
            if bar:
                bar[0].update(n)
            self.total.update(n)

    def drive_finished(self, result: Any) -> None:
        with self._lock:
            self.finished += 1
            bar = self._bars.pop(result.drive_id, None)
            if bar:
                bar[0].close()
                self._free.append(bar[1])
            self.total.set_description_str(f"scan ({self.finished}/{self.drives} drives)")
            if self.lines:
                who = f"{result.name} of {result.owner}" if result.owner else result.name
                state = f"{result.state}: {result.error}" if result.error else f"{result.items} items"
                sys.stderr.write(f"scan: {self.finished}/{self.drives} drives done; {who}: {state}\n")
                sys.stderr.flush()

    def close(self) -> None:
        with self._lock:
            for bar, _ in self._bars.values():
                bar.close()
            self.total.close()


class CountProgress:
    """A simple counter bar for discovery (users and drives found)."""

    def __init__(self, desc: str, *, enabled: bool = True) -> None:
        from tqdm import tqdm

        self.bar = tqdm(desc=desc, unit=" found", disable=not (enabled and on_terminal()), dynamic_ncols=True)

    def __call__(self, what: str, n: int) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


class MessageProgress:
    """One bar over the messages a mail copy has to handle (appended, found, skipped or failed alike); nothing
    off a terminal, where the per-mailbox lines say enough."""

    def __init__(self, total: int, desc: str = "mail", *, enabled: bool = True) -> None:
        from tqdm import tqdm

        self._lock = threading.Lock()
        self.bar = tqdm(total=total, desc=desc, unit=" msgs", disable=not (enabled and on_terminal()),
                        dynamic_ncols=True)

    def step(self) -> None:
        with self._lock:
            self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
