"""`share`: turn the planned shares into target shares, created by each file's owner, never broader than the source.

The plan (engine.shareplan) decided what each source grant becomes; this step only carries it out. A share is
made once its item is verified at the target, its result is recorded with an audit record in one transaction,
and the server's answer is checked: a share that came back broader than planned is deleted again. Nextcloud 32
allows 20 createShare calls per user per 10 minutes (reference §8.2), so calls are paced per owner here, and a
429 (empty body, no Retry-After) waits for that owner's window before the call is tried again.
"""

from __future__ import annotations

import csv
import os
import secrets
import string
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from migrate.backends.nextcloud.shares import ShareRateLimited
from migrate.engine.copy import check_credentials
from migrate.engine.plan import PlanOptions, find_directory, run_plan
from migrate.engine.shareplan import SHARE, SHARE_GROUP, SHARE_LINK, SHARE_USER
from migrate.errors import ConfigError, Fatal, MigrateError
from migrate.mapping import Mappings
from migrate.protocols import Target
from migrate.session import Selection
from migrate.store import StateStore

PASSWORDS_FILE = "link-passwords.csv"
NOTE = "Migrated from Microsoft 365"
MAX_RATE_LIMITED = 5  # 429s in a row for one share before it is left as failed
UNKNOWN_WINDOW = 600.0  # NC 32's createShare period, used when no pacing is configured but the server says 429
WAIT_NEXT = "run `m365-migrate copy` for these items, then `m365-migrate share` again"
FAIL_NEXT = "fix the cause named (recipient, path or server policy), then run `m365-migrate share` again"
BROADER_NEXT = ("a share broader than the source: removed when this run made it (check the server's sharing "
                "defaults), left alone when it was there before (narrow or remove it by hand); then run "
                "`m365-migrate share` again")


@dataclass
class ShareSummary:
    """The end of a share run in numbers, plus the rows that need a person."""

    planned: int = 0
    created: int = 0
    already: int = 0
    waiting: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    refused_broader: list[dict[str, Any]] = field(default_factory=list)
    would_create: list[dict[str, Any]] = field(default_factory=list)
    link_passwords: int = 0
    rate_limited: int = 0
    paced_seconds: float = 0.0
    passwords_file: str | None = None
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def attention(self) -> bool:
        return bool(self.failed or self.waiting or self.refused_broader)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "attention": self.attention}


class OwnerWindows:
    """A sliding window per owner: at most `limit` calls in any `period` seconds; limit 0 means no pacing."""

    def __init__(self, limit: int, period: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limit, self.period = limit, float(period)
        self._clock, self._sleep = clock, sleep
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, owner: str, now: float) -> deque[float]:
        calls = self._calls.setdefault(owner, deque())
        horizon = self.period if self.limit else UNKNOWN_WINDOW
        while calls and calls[0] <= now - horizon:
            calls.popleft()
        return calls

    def acquire(self, owner: str) -> float:
        """Wait until `owner` may call again, count the call, and return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                calls = self._recent(owner, now)
                if not self.limit or len(calls) < self.limit:
                    calls.append(now)
                    return waited
                delay = calls[0] + self.period - now
            self._sleep(delay)
            waited += delay

    def finished(self, owner: str) -> None:
        """Re-stamp the owner's last call with its end: the server counted it on arrival, somewhere in between.

        Callers work on one owner from one thread, so the owner's last entry is the call that just ended.
        """
        with self._lock:
            calls = self._calls.get(owner)
            if calls:
                calls[-1] = max(calls[-1], self._clock())

    def wait_full(self, owner: str) -> float:
        """The server said 429: wait until the oldest call we know of leaves its window; return the seconds."""
        period = self.period if self.limit else UNKNOWN_WINDOW
        with self._lock:
            now = self._clock()
            calls = self._recent(owner, now)
            # Calls before this run (or by someone else) are unknown to us: then the whole window must pass.
            delay = calls[0] + period - now if len(calls) > 1 else period
        delay = max(delay, 0.05)
        self._sleep(delay)
        return delay


def new_password(length: int = 24) -> str:
    """A random link password that passes Nextcloud's password policy (letters, digits, symbols, ≥ 20 chars)."""
    alphabet = string.ascii_letters + string.digits + "-_.!+"
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(length))
        if (any(c.islower() for c in pw) and any(c.isupper() for c in pw) and any(c.isdigit() for c in pw)
                and any(not c.isalnum() for c in pw)):
            return pw


class PasswordFile:
    """Appends owner,path,share_url,password to a 0600 CSV: the only place a link password is ever written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def add(self, owner: str, path: str, url: str, password: str) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8", newline="") as fh:
                w = csv.writer(fh)
                if fh.tell() == 0:
                    w.writerow(["owner", "path", "share_url", "password"])
                w.writerow([owner, "/" + path.strip("/"), url, password])
                fh.flush()
                os.fsync(fh.fileno())


def is_broader(got: int, planned: int, share_type: int) -> bool:
    """True when the server granted a bit the plan did not (the +16 it adds on read links is expected)."""
    extra = got & ~planned
    if share_type == SHARE_LINK:
        extra &= ~SHARE
    return bool(extra)


def _row_view(row: dict[str, Any], **extra: Any) -> dict[str, Any]:
    d = row["plan_detail"]
    return {"drive_id": row["drive_id"], "item_id": row["item_id"], "owner": d.get("owner"), "path": d.get("path"),
            "share_type": d.get("share_type"), "share_with": d.get("share_with") or "",
            "permissions": d.get("permissions"), "password": bool(d.get("password")), **extra}


@dataclass
class _Sharer:
    """The state one run shares between its owner threads."""

    store: StateStore
    target: Any
    windows: OwnerWindows
    passwords: PasswordFile
    summary: ShareSummary
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def owner_rows(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            if self.stop.is_set():
                return
            try:
                self.one(row)
            except BaseException:
                self.stop.set()
                raise

    def one(self, row: dict[str, Any]) -> None:
        d = row["plan_detail"]
        owner, path, kind, planned = d["owner"], d["path"], int(d["share_type"]), int(d["permissions"])
        subject = f"{owner}:{path}"
        if kind in (SHARE_USER, SHARE_GROUP):
            found = self._existing(owner, path, kind, d.get("share_with") or "")
            if found is not None:
                self._adopt(row, subject, found, planned, kind)
                return
        password = new_password() if d.get("password") else None
        share: dict[str, Any] | None = None
        for attempt in range(MAX_RATE_LIMITED + 1):
            waited = self.windows.acquire(owner)
            with self.lock:
                self.summary.paced_seconds += waited
            if self.stop.is_set():
                return  # interrupted while pacing: the row stays as it was, a rerun picks it up
            try:
                share = self.target.shares.create(
                    owner, path, kind, d.get("share_with") or None, permissions=planned, password=password,
                    expire_date=d.get("expire_date") or None, note=NOTE, hide_download=bool(d.get("hide_download")))
                self.windows.finished(owner)
                break
            except MigrateError as exc:
                self.windows.finished(owner)
                if isinstance(exc, Fatal):
                    raise
                if isinstance(exc, ShareRateLimited) and attempt < MAX_RATE_LIMITED:
                    waited = self.windows.wait_full(owner)
                    with self.lock:
                        self.summary.rate_limited += 1
                        self.summary.paced_seconds += waited
                    continue
                message = exc.message
                if isinstance(exc, ShareRateLimited):
                    message += (f"; still refused after {MAX_RATE_LIMITED} waits: lower [target] share_rate or ask the "
                                "admin to lift the limit (runbooks/nextcloud-preparation.md)")
                self._fail(row, subject, message)
                return
        assert share is not None
        share_id = str(share.get("id") or "")
        got = int(share.get("permissions") or 0)
        if is_broader(got, planned, kind):
            self._refuse(row, subject, share_id, got, planned)
            return
        if password:
            self.passwords.add(owner, path, str(share.get("url") or ""), password)
            with self.lock:
                self.summary.link_passwords += 1
        self.store.record_share(row["id"], "created", share_id=share_id, audit=("share", subject, {
            "drive": row["drive_id"], "item": row["item_id"], "perm": row["perm_id"], "share_id": share_id,
            "share_type": kind, "share_with": d.get("share_with") or "", "permissions": got, "planned": planned,
            "expire_date": d.get("expire_date"), "password": bool(password)}))
        with self.lock:
            self.summary.created += 1

    def _existing(self, owner: str, path: str, kind: int, share_with: str) -> dict[str, Any] | None:
        """The owner's share of `path` with the same recipient, made before (by a person or an earlier run that
        died before recording it). Listing is not rate-limited; a failed listing just means we create."""
        try:
            shares = self.target.shares.list(owner, path)
        except MigrateError as exc:
            if isinstance(exc, Fatal):
                raise
            return None
        for s in shares:
            if str(s.get("share_type")) == str(kind) and str(s.get("share_with") or "") == share_with:
                return s
        return None

    def _adopt(self, row: dict[str, Any], subject: str, share: dict[str, Any], planned: int, kind: int) -> None:
        """A share to this recipient is already there: count it if it is within the plan; if it grants more, it
        is not ours to take away (someone made it), so it is left and reported."""
        share_id, got = str(share.get("id") or ""), int(share.get("permissions") or 0)
        detail = {"drive": row["drive_id"], "item": row["item_id"], "perm": row["perm_id"], "share_id": share_id,
                  "permissions": got, "planned": planned}
        if is_broader(got, planned, kind):
            reason = (f"share {share_id}, there before this run, grants permissions {got}, the source allows "
                      f"{planned}: left as it is")
            self.store.record_share(row["id"], "existing-broader", share_id=share_id, error=reason,
                                    audit=("share-existing", subject, detail))
            with self.lock:
                self.summary.refused_broader.append(_row_view(row, reason=reason, next=BROADER_NEXT))
            return
        self.store.record_share(row["id"], "created", share_id=share_id, audit=("share-existing", subject, detail))
        with self.lock:
            self.summary.already += 1

    def _fail(self, row: dict[str, Any], subject: str, message: str) -> None:
        self.store.record_share(row["id"], "failed", error=message, audit=("share-failed", subject, {
            "drive": row["drive_id"], "item": row["item_id"], "perm": row["perm_id"], "error": message}))
        with self.lock:
            self.summary.failed.append(_row_view(row, reason=message, next=FAIL_NEXT))

    def _refuse(self, row: dict[str, Any], subject: str, share_id: str, got: int, planned: int) -> None:
        """Never broader than the source: take the share this run made away again and say so."""
        try:
            self.target.shares.delete(row["plan_detail"]["owner"], share_id)
        except MigrateError as exc:
            if isinstance(exc, Fatal):
                raise
            self._fail(row, subject, f"the server granted permissions {got} (planned {planned}) and the share "
                                     f"{share_id} could not be removed: {exc.message}; remove it by hand")
            return
        reason = f"the server granted permissions {got}, the plan allows {planned}; share {share_id} removed"
        self.store.record_share(row["id"], "refused-broader", error=reason, audit=("share-refused", subject, {
            "drive": row["drive_id"], "item": row["item_id"], "perm": row["perm_id"], "share_id": share_id,
            "permissions": got, "planned": planned}))
        with self.lock:
            self.summary.refused_broader.append(_row_view(row, reason=reason, next=BROADER_NEXT))


def run_share(
    store: StateStore,
    target: Target,
    mappings: Mappings,
    selection: Selection,
    plan_options: PlanOptions,
    *,
    workers: int = 4,
    share_rate: tuple[int, int] = (20, 600),
    passwords_file: Path | None = None,
    dry_run: bool = False,
    say: Callable[[str], None] = lambda _m: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ShareSummary:
    """Refresh the plan (reads only), then create every planned share whose item is verified; resumable.

    Owners are worked on in parallel (up to `workers`), each owner's shares one after another under its own
    rate window. Item-level refusals are recorded and the run goes on; a fatal error (credentials, target full)
    stops every owner and is raised. With `dry_run` nothing is written to the target: the summary lists what
    would be created.
    """
    started = clock()
    summary = ShareSummary(dry_run=dry_run)
    say("refreshing the plan (layout, names, conflicts, shares; reads only)")
    doc = run_plan(store, target, mappings, selection, plan_options, directory=find_directory(target), progress=say)
    drive_ids = [r["drive_id"] for r in doc["drives"] if r.get("status") == "mapped"]
    todo: dict[str, list[dict[str, Any]]] = {}
    for row in store.iter_share_rows(drive_ids):
        summary.planned += 1
        d = row["plan_detail"]
        if row["share_status"] == "created":
            summary.already += 1
        elif row["item_status"] != "verified":
            summary.waiting.append(_row_view(row, reason=f"the item is {row['item_status'] or 'not copied'} at "
                                                         "the target, not verified", next=WAIT_NEXT))
            if not dry_run and row["share_status"] != "waiting":
                store.record_share(row["id"], "waiting")
        elif dry_run:
            summary.would_create.append(_row_view(row))
        else:
            todo.setdefault(d["owner"], []).append(row)
    if dry_run or not todo:
        summary.seconds = clock() - started
        return summary
    if getattr(target, "shares", None) is None:
        raise ConfigError("this target cannot create shares (plain WebDAV has no share API)",
                          hint="shares need [target] kind = \"nextcloud\"; the share plan lists what to do by hand")
    say(f"checking the target accounts of {len(todo)} share owners, one at a time")
    check_credentials(target, sorted(todo))
    if passwords_file is not None:
        summary.passwords_file = str(passwords_file)
    stop = threading.Event()

    def pause(seconds: float) -> None:
        """A rate-window wait that ends early when the run stops (Ctrl-C, a fatal error in another owner)."""
        stop.wait(seconds)

    sharer = _Sharer(store, target, OwnerWindows(*share_rate, clock=clock, sleep=pause if sleep is time.sleep else sleep),
                     PasswordFile(passwords_file or Path(PASSWORDS_FILE)), summary, stop)
    say(f"creating {sum(map(len, todo.values()))} shares for {len(todo)} owners")
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo))), thread_name_prefix="share")
    futures = [pool.submit(sharer.owner_rows, rows) for rows in todo.values()]
    try:
        wait(futures)
    finally:
        if not all(f.done() for f in futures):  # interrupted: wake the paced waits, let in-flight calls finish
            stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
    errors = [e for e in (f.exception() for f in futures) if e is not None]
    summary.seconds = clock() - started
    if errors:
        errors.sort(key=lambda e: not isinstance(e, Fatal))  # the reason the run stopped comes first
        raise errors[0]
    return summary
