"""What a step reports: its counters and lists, whether something needs a person (exit 3), as JSON.

Steps that work on several mailboxes or drives at once update one summary from many threads, so `add` and
`note` take one lock; the fields are the step's own (a dataclass subclass).
"""

from __future__ import annotations

import threading
from dataclasses import asdict
from typing import Any

_LOCK = threading.Lock()


class StepSummary:
    attention: bool

    def add(self, name: str, n: int = 1) -> None:
        with _LOCK:
            setattr(self, name, getattr(self, name) + n)

    def note(self, name: str, text: str) -> None:
        with _LOCK:
            getattr(self, name).append(text)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "attention": self.attention}  # type: ignore[call-overload]
