"""Outlook's per-app, per-mailbox limits for the groupware routes (groupware.md §1.4, mail.md §1.9).

10,000 requests per 10 minutes and 4 concurrent requests per mailbox, both configurable. A request is in flight
from the moment it is admitted until its answer has been written (or its connection dropped): the sandbox
server is one asyncio loop, so handlers never overlap, but answers held back by `delay` (the per-request delay
of these routes) do, which is how a test gets 5 requests in flight at once. Over a limit: 429 with
`ApplicationThrottled` and no innerError (mail.md §6, corso#3695). The wording for the request-rate cap is not
published; ours is a guess.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

from .budget import RollingWindow
from .http import Response

CONCURRENCY_MESSAGE = "Application is over its MailboxConcurrency limit."
RATE_MESSAGE = "Application is over its MailboxRequestRate limit."   # guessed: not confirmed anywhere


@dataclass
class OutlookOptions:
    per_10_minutes: int = 10_000
    concurrency: int = 4
    delay: float = 0.0            # seconds each groupware answer is held back (keeps requests in flight)
    retry_after: float = 1.0      # Retry-After of a concurrency refusal (the real value is not published)


def throttled(message: str, retry_after: float) -> Response:
    body = json.dumps({"error": {"code": "ApplicationThrottled", "message": message}}).encode()
    ra = f"{retry_after:.3f}" if retry_after != int(retry_after) else str(int(retry_after))
    return Response(429, body, [("Retry-After", ra)])


class MailboxLimits:
    """Admission per mailbox; `admit` returns the 429 to send, or None and the caller must `release` later."""

    def __init__(self, options: OutlookOptions | None = None) -> None:
        self.options = options or OutlookOptions()
        self.in_flight: dict[str, int] = {}
        self.windows: dict[str, RollingWindow] = {}

    def configure(self, **changes: float | int) -> None:
        known = set(OutlookOptions.__dataclass_fields__)
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown outlook options {sorted(unknown)}; expected some of {sorted(known)}")
        for k, v in changes.items():
            setattr(self.options, k, type(getattr(self.options, k))(v))
        if "per_10_minutes" in changes:
            self.windows.clear()

    def admit(self, mailbox: str, books: dict[str, int], now: float | None = None) -> Response | None:
        """Every request counts toward the 10-minute window, refused ones too."""
        now = time.monotonic() if now is None else now
        books["requests"] += 1
        win = self.windows.get(mailbox)
        if win is None:
            win = self.windows[mailbox] = RollingWindow(600.0, float(self.options.per_10_minutes))
        fits = win.fits(now, 1)
        win.charge(now, 1)
        if not fits:
            books["throttled"] += 1
            books["over_rate"] += 1
            return throttled(RATE_MESSAGE, max(1, math.ceil(win.wait(now, 1))))
        if self.in_flight.get(mailbox, 0) >= self.options.concurrency:
            books["throttled"] += 1
            books["over_concurrency"] += 1
            return throttled(CONCURRENCY_MESSAGE, self.options.retry_after)
        n = self.in_flight[mailbox] = self.in_flight.get(mailbox, 0) + 1
        books["max_in_flight"] = max(books["max_in_flight"], n)
        return None

    def release(self, mailbox: str) -> None:
        n = self.in_flight.get(mailbox, 0) - 1
        if n > 0:
            self.in_flight[mailbox] = n
        else:
            self.in_flight.pop(mailbox, None)
