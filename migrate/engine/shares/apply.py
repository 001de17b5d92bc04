"""`share`: make the planned shares at the target, created by each file's owner, never broader than the source.

The plan (engine.shareplan) holds one planned share per item and recipient, merged from every grant reaching that
recipient; this step only carries it out. A share is made once its item is verified at the target, and each result
is recorded with an audit record in one transaction. What the target already holds is judged against the merged
plan: a share this tool made (recorded, or recognised by its note) is brought in line with the plan; a share a
person made is adopted when it is as planned, reported when it is broader, and reported (or, with `[policy]
narrower_shares = "widen"`, widened) when it is narrower. Nextcloud 32 allows 20 createShare calls per user per 10
minutes (reference §8.2), so calls are paced per owner (engine.sharepace), and every wait says so.

Library entry points: `apply_share_plan` (the planned shares of some drives or items; `sync` calls it after
`shareplan.refresh_share_plan`), `remove_our_shares` (take away the shares this tool made for some items), and
`run_share` (the `share` command: refresh the plan, then apply it).
"""

from __future__ import annotations

import csv
import os
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from migrate.backends.nextcloud.shares import ShareRateLimited
from migrate.engine.files.copy import check_credentials
from migrate.engine.plan import PlanOptions, find_directory, run_plan
from migrate.engine.shares.accept import confirm_visible
from migrate.engine.shares.pace import UNKNOWN_WINDOW, OwnerWindows, duration, visible_wait
from migrate.engine.shares.plan import SHARE, SHARE_GROUP, SHARE_LINK, SHARE_USER
from migrate.errors import ConfigError, Fatal, MigrateError
from migrate.mapping import Mappings
from migrate.models import PlannedShare
from migrate.protocols import Target
from migrate.session import Selection
from migrate.store import StateStore

__all__ = ["UNKNOWN_WINDOW", "OwnerWindows", "ShareSummary", "apply_share_plan", "is_broader", "remove_our_shares",
           "run_share"]

PASSWORDS_FILE = "link-passwords.csv"
NOTE = "Migrated from Microsoft 365"  # also how a share this tool made is recognised when its record was lost
MAX_RATE_LIMITED = 5  # 429s in a row for one share before it is left as failed
WAIT_NEXT = "run `m365-migrate copy` for these items, then `m365-migrate share` again"
FAIL_NEXT = "fix the cause named (recipient, path or server policy), then run `m365-migrate share` again"
BROADER_NEXT = ("a share broader than the source: removed when this run made it (check the server's sharing "
                "defaults), left alone when a person made it (narrow or remove it by hand); then run "
                "`m365-migrate share` again")
NARROWER_NEXT = ("a share a person made grants less than the source: widen it by hand, or set [policy] "
                 "narrower_shares = \"widen\" and run `m365-migrate share` again")


@dataclass
class ShareSummary:
    """The end of a share run in numbers of shares (one per item and recipient), plus the ones that need a person."""

    planned: int = 0  # planned shares in the selection
    created: int = 0  # made by this run
    updated: int = 0  # made by this tool earlier and brought in line with a changed plan
    already: int = 0  # in place as planned, recorded by an earlier run
    found: int = 0  # made by a person before, exactly as planned: recorded, left as it is
    widened: int = 0  # made by a person, narrower than planned, widened (narrower_shares = "widen")
    removed: int = 0  # made by this tool, asked for by no grant any more: removed
    waiting: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    refused_broader: list[dict[str, Any]] = field(default_factory=list)
    narrower: list[dict[str, Any]] = field(default_factory=list)
    would_create: list[dict[str, Any]] = field(default_factory=list)
    would_update: list[dict[str, Any]] = field(default_factory=list)
    would_remove: list[dict[str, Any]] = field(default_factory=list)
    not_carried_over: int = 0  # source grants the plan does not carry over (listed in not_carried_over_report)
    not_carried_over_report: str | None = None
    accepted: int = 0  # pending shares accepted as their recipient (a group share once per member)
    not_visible: list[dict[str, Any]] = field(default_factory=list)  # made, but some recipient does not see it
    link_passwords: int = 0
    rate_limited: int = 0
    paced_seconds: float = 0.0
    passwords_file: str | None = None
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def attention(self) -> bool:
        return bool(self.failed or self.waiting or self.refused_broader or self.narrower or self.not_visible)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "attention": self.attention}


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


def _effective(got: int, share_type: int) -> int:
    """The bits that count: Nextcloud adds share (16) to read links by itself."""
    return got & ~SHARE if share_type == SHARE_LINK else got


def is_broader(got: int, planned: int, share_type: int) -> bool:
    """True when the server granted a bit the plan did not (the +16 it adds on read links is expected)."""
    return bool(_effective(got, share_type) & ~planned)


def _expiry(share: dict[str, Any]) -> str | None:
    return str(share.get("expiration") or "")[:10] or None


def view(s: PlannedShare, **extra: Any) -> dict[str, Any]:
    """A planned share as a summary row."""
    return {"drive_id": s.drive_id, "item_id": s.item_id, "owner": s.owner, "path": s.path,
            "share_type": s.share_type, "share_with": s.share_with, "permissions": s.permissions,
            "expire_date": s.expire_date, "password": s.password, "grants": len(s.grants), **extra}


@dataclass
class _Sharer:
    """The state one run shares between its owner threads."""

    store: StateStore
    target: Any
    windows: OwnerWindows
    passwords: PasswordFile
    summary: ShareSummary
    widen_narrower: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    progress: dict[str, list[int]] = field(default_factory=dict)  # owner → [done, to do]
    say: Callable[[str], None] = lambda _m: None

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            setattr(self.summary, name, getattr(self.summary, name) + n)

    def listed(self, name: str, row: dict[str, Any]) -> None:
        with self.lock:
            getattr(self.summary, name).append(row)

    def owner_progress(self, owner: str) -> tuple[int, int]:
        done, total = self.progress.get(owner, [0, 0])
        return done, total

    def owner_rows(self, owner: str, rows: list[PlannedShare]) -> None:
        self.progress[owner] = [0, len(rows)]
        self.say(f"share: {owner}: {len(rows)} shares to do")
        for s in rows:
            if self.stop.is_set():
                return
            try:
                self.one(s)
            except BaseException:
                self.stop.set()
                raise
            self.progress[owner][0] += 1
        self.say(f"share: {owner}: {len(rows)}/{len(rows)} shares done")

    # --- one planned share ----------------------------------------------------------------------------------
    def one(self, s: PlannedShare) -> None:
        if not s.planned:
            self.remove(s)
            return
        if s.made_by_us and s.share_id and s.status in ("created", "changed"):
            try:
                found = self._by_id(s)
            except MigrateError as exc:
                if isinstance(exc, Fatal):
                    raise
                found = None
            if found is not None:
                self._ours(s, found, created_now=False)
                return
        found = self._existing(s)
        if found is not None:
            self._judge(s, found)
            return
        self._create(s)

    def _subject(self, s: PlannedShare) -> str:
        return f"{s.owner}:{s.path}"

    def _detail(self, s: PlannedShare, **extra: Any) -> dict[str, Any]:
        return {"drive": s.drive_id, "item": s.item_id, "share_type": s.share_type, "share_with": s.share_with,
                "planned": s.permissions, "grants": [g["perm_id"] for g in s.grants], **extra}

    def _by_id(self, s: PlannedShare) -> dict[str, Any] | None:
        """Our recorded share, if the owner still has it (a recipient may delete a user share, §6.4)."""
        for share in self.target.shares.list(s.owner, s.path):
            if str(share.get("id")) == str(s.share_id):
                return share
        return None

    def _existing(self, s: PlannedShare) -> dict[str, Any] | None:
        """The owner's share of the path with the same recipient, if any; for a public link, only one this tool
        made (by its note) whose record was lost. Listing is not rate-limited; a failed listing just means we
        create (a duplicate user/group share answers with the existing one, §6.3)."""
        try:
            shares = self.target.shares.list(s.owner, s.path)
        except MigrateError as exc:
            if isinstance(exc, Fatal):
                raise
            return None
        for share in shares:
            if str(share.get("share_type")) != str(s.share_type):
                continue
            if s.share_type == SHARE_LINK:
                if share.get("note") == NOTE:
                    return share
            elif str(share.get("share_with") or "") == s.share_with:
                return share
        return None

    def _judge(self, s: PlannedShare, share: dict[str, Any]) -> None:
        """A share to this recipient is at the target: ours is brought in line with the plan; a person's is
        adopted when it is as planned, reported when broader, reported or widened when narrower."""
        share_id, got = str(share.get("id") or ""), int(share.get("permissions") or 0)
        if (s.made_by_us and share_id == str(s.share_id)) or share.get("note") == NOTE:
            self._ours(s, share, created_now=False)
            return
        detail = self._detail(s, share_id=share_id, permissions=got, made_by="someone else")
        if _effective(got, s.share_type) == s.permissions:
            self.store.record_planned_share(s.id, "created", share_id=share_id, share_permissions=got, made_by_us=False,
                                            audit=("share-existing", self._subject(s), detail))
            self.count("found")
            return
        if is_broader(got, s.permissions, s.share_type):
            reason = (f"share {share_id}, made by someone else before, grants permissions {got}, the source allows "
                      f"{s.permissions}: left as it is")
            self.store.record_planned_share(s.id, "existing-broader", share_id=share_id, share_permissions=got,
                                            made_by_us=False, error=reason,
                                            audit=("share-existing", self._subject(s), detail))
            self.listed("refused_broader", view(s, reason=reason, next=BROADER_NEXT))
            return
        if self.widen_narrower:
            ok, upd = self._try(s, lambda: self.target.shares.update(s.owner, share_id, permissions=s.permissions),
                                f"share {share_id} (made by someone else, permissions {got}) could not be widened to "
                                f"{s.permissions}")
            if not ok:
                return
            now = int(upd.get("permissions") or s.permissions)
            self.store.record_planned_share(s.id, "created", share_id=share_id, share_permissions=now,
                                            made_by_us=False, error=None, audit=("share-widened", self._subject(s), {
                                                **detail, "permissions": now, "before": got}))
            self.count("widened")
            return
        reason = (f"share {share_id}, made by someone else before, grants permissions {got}, the plan has "
                  f"{s.permissions}: left as it is ([policy] narrower_shares = \"report\")")
        self.store.record_planned_share(s.id, "existing-narrower", share_id=share_id, share_permissions=got,
                                        made_by_us=False, error=reason, audit=("share-existing", self._subject(s), detail))
        self.listed("narrower", view(s, reason=reason, next=NARROWER_NEXT))

    def _ours(self, s: PlannedShare, share: dict[str, Any], *, created_now: bool, password: str | None = None) -> None:
        """A share this tool made: record it when it is as planned, else change it to the plan (one PUT, not
        rate-limited); a share the server keeps broader is removed again."""
        share_id, got = str(share.get("id") or ""), int(share.get("permissions") or 0)
        expiry = _expiry(share)
        expiry_ok = s.expire_date is None or (expiry is not None and expiry <= s.expire_date)
        counter, action = ("created", "share") if created_now else ("already", "share-existing")
        if _effective(got, s.share_type) != s.permissions or not expiry_ok:
            try:
                share = self.target.shares.update(s.owner, share_id, permissions=s.permissions,
                                                  expire_date=s.expire_date or "")
            except MigrateError as exc:
                if isinstance(exc, Fatal):
                    raise
                if is_broader(got, s.permissions, s.share_type) or not expiry_ok:
                    self._refuse(s, share_id, got)
                else:
                    self._fail(s, f"share {share_id} grants permissions {got}, the plan has {s.permissions}, and it "
                                  f"could not be changed: {exc.message}")
                return
            got = int(share.get("permissions") or s.permissions)
            if not created_now:
                counter, action = "updated", "share-updated"
            if is_broader(got, s.permissions, s.share_type):
                self._refuse(s, share_id, got)
                return
            if _effective(got, s.share_type) != s.permissions:
                reason = f"the server granted permissions {got} on share {share_id}, the plan has {s.permissions}"
                self.store.record_planned_share(s.id, "existing-narrower", share_id=share_id, share_permissions=got,
                                                made_by_us=True, error=reason, audit=(
                                                    action, self._subject(s), self._detail(s, share_id=share_id,
                                                                                           permissions=got)))
                self.listed("narrower", view(s, reason=reason, next=FAIL_NEXT))
                return
        if password:
            self.passwords.add(s.owner, s.path, str(share.get("url") or ""), password)
            self.count("link_passwords")
        self.store.record_planned_share(s.id, "created", share_id=share_id, share_permissions=got, made_by_us=True,
                                        error=None, audit=(action, self._subject(s), self._detail(
                                            s, share_id=share_id, permissions=got, expire_date=s.expire_date,
                                            password=bool(password))))
        self.count(counter)

    def _create(self, s: PlannedShare) -> None:
        password = new_password() if s.password and s.share_type == SHARE_LINK else None
        share: dict[str, Any] | None = None
        for attempt in range(MAX_RATE_LIMITED + 1):
            self.count("paced_seconds", self.windows.acquire(s.owner))
            if self.stop.is_set():
                return  # interrupted while pacing: the row stays as it was, a rerun picks it up
            try:
                share = self.target.shares.create(
                    s.owner, s.path, s.share_type, s.share_with or None, permissions=s.permissions, password=password,
                    expire_date=s.expire_date, note=NOTE, hide_download=s.hide_download)
                self.windows.finished(s.owner)
                break
            except MigrateError as exc:
                self.windows.finished(s.owner)
                if isinstance(exc, Fatal):
                    raise
                if isinstance(exc, ShareRateLimited) and attempt < MAX_RATE_LIMITED:
                    self.count("rate_limited")
                    self.count("paced_seconds", self.windows.wait_full(s.owner))
                    if self.stop.is_set():
                        return
                    continue
                message = exc.message
                if isinstance(exc, ShareRateLimited):
                    message += (f"; still refused after {MAX_RATE_LIMITED} waits: lower [target] share_rate or ask the "
                                "admin to lift the limit (runbooks/nextcloud-preparation.md)")
                self._fail(s, message)
                return
        assert share is not None
        if s.share_type in (SHARE_USER, SHARE_GROUP) and share.get("note") != NOTE:
            self._judge(s, share)  # a duplicate: the server answered with a share someone else made meanwhile
            return
        if s.share_type == SHARE_LINK and is_broader(int(share.get("permissions") or 0), s.permissions, SHARE_LINK):
            self._refuse(s, str(share.get("id") or ""), int(share.get("permissions") or 0))
            return
        self._ours(s, share, created_now=True, password=password)

    def remove(self, s: PlannedShare) -> None:
        """No grant asks for this share any more: remove it if this tool made it, then forget it."""
        if s.made_by_us and s.share_id:
            share_id = s.share_id
            ok, _ = self._try(s, lambda: self.target.shares.delete(s.owner, share_id),
                              f"share {share_id} is no longer asked for by any source grant and could not be removed")
            if not ok:
                return
            self.store.forget_planned_share(s.id, audit=("share-removed", self._subject(s), self._detail(
                s, share_id=s.share_id, reason="no source grant asks for it any more")))
            self.count("removed")
            return
        self.store.forget_planned_share(s.id)

    def _try(self, s: PlannedShare, call: Callable[[], Any], failure: str) -> tuple[bool, Any]:
        """(True, result) of one target call; an item-level refusal is recorded as failed ("failure: message") and
        gives (False, None); a fatal error (credentials, target full) is raised."""
        try:
            return True, call()
        except MigrateError as exc:
            if isinstance(exc, Fatal):
                raise
            self._fail(s, f"{failure}: {exc.message}")
            return False, None

    def _fail(self, s: PlannedShare, message: str) -> None:
        self.store.record_planned_share(s.id, "failed", error=message, audit=("share-failed", self._subject(s),
                                                                               self._detail(s, error=message)))
        self.listed("failed", view(s, reason=message, next=FAIL_NEXT))

    def _refuse(self, s: PlannedShare, share_id: str, got: int) -> None:
        """Never broader than the source: take the share this tool made away again and say so."""
        ok, _ = self._try(s, lambda: self.target.shares.delete(s.owner, share_id),
                          f"the server granted permissions {got} (planned {s.permissions}) and the share {share_id} "
                          "could not be removed (remove it by hand)")
        if not ok:
            return
        reason = f"the server granted permissions {got}, the plan allows {s.permissions}; share {share_id} removed"
        self.store.record_planned_share(s.id, "refused-broader", error=reason, audit=(
            "share-refused", self._subject(s), self._detail(s, share_id=share_id, permissions=got)))
        self.listed("refused_broader", view(s, reason=reason, next=BROADER_NEXT))


def apply_share_plan(
    store: StateStore,
    target: Target,
    drive_ids: Iterable[str],
    *,
    items: Iterable[tuple[str, str]] | None = None,
    workers: int = 4,
    share_rate: tuple[int, int] = (20, 600),
    widen_narrower: bool = False,
    passwords_file: Path | None = None,
    dry_run: bool = False,
    say: Callable[[str], None] = lambda _m: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] | None = None,
) -> ShareSummary:
    """Carry out the stored share plan of these drives (or only of these (drive, item) pairs); resumable.

    Makes every planned share whose item is verified, brings shares this tool made in line with a changed plan,
    and removes shares this tool made that no grant asks for any more (never a share a person made). Owners are
    worked on in parallel (up to `workers`), each owner's shares one after another under its own rate window;
    waits are announced through `say`. Item-level refusals are recorded and the run goes on; a fatal error
    (credentials, target full) stops every owner and is raised. With `dry_run` nothing is written anywhere.
    """
    started = clock()
    summary = ShareSummary(dry_run=dry_run)
    drive_ids = list(drive_ids)
    items = list(items) if items is not None else None
    todo: dict[str, list[PlannedShare]] = {}
    for s in store.iter_planned_shares(list(drive_ids), items):
        if not s.planned:
            if dry_run:
                summary.would_remove.append(view(s, reason="no source grant asks for it any more"))
            else:
                todo.setdefault(s.owner, []).append(s)
            continue
        summary.planned += 1
        if s.status == "created":
            summary.already += 1
        elif s.item_status != "verified":
            summary.waiting.append(view(s, reason=f"the item is {s.item_status or 'not copied'} at the target, not "
                                                  "verified", next=WAIT_NEXT))
            if not dry_run and s.status != "waiting":
                store.record_planned_share(s.id, "waiting", error=None)
        elif dry_run:
            (summary.would_update if s.status == "changed" else summary.would_create).append(view(s))
        else:
            todo.setdefault(s.owner, []).append(s)
    if dry_run:
        summary.seconds = clock() - started
        return summary
    if todo:
        _make_shares(store, target, todo, summary, workers=workers, share_rate=share_rate,
                     widen_narrower=widen_narrower, passwords_file=passwords_file, say=say, clock=clock, sleep=sleep)
    seen = confirm_visible(store, target, drive_ids, items=items, workers=workers, say=say)
    summary.accepted, summary.not_visible = seen.accepted, seen.not_visible
    summary.seconds = clock() - started
    return summary


def _make_shares(store: StateStore, target: Target, todo: dict[str, list[PlannedShare]], summary: ShareSummary, *,
                 workers: int, share_rate: tuple[int, int], widen_narrower: bool, passwords_file: Path | None,
                 say: Callable[[str], None], clock: Callable[[], float], sleep: Callable[[float], None] | None
                 ) -> None:
    """Each owner's shares one after another under its rate window, owners in parallel; raises the first fatal
    error after every owner stopped."""
    if getattr(target, "shares", None) is None:
        raise ConfigError("this target cannot create shares (plain WebDAV has no share API)",
                          hint="shares need [target] kind = \"nextcloud\"; the share plan lists what to do by hand")
    say(f"checking the target accounts of {len(todo)} share owners, one at a time")
    check_credentials(target, sorted(todo))
    if passwords_file is not None:
        summary.passwords_file = str(passwords_file)
    stop = threading.Event()
    sharer = _Sharer(store, target, OwnerWindows(0, 0), PasswordFile(passwords_file or Path(PASSWORDS_FILE)), summary,
                     widen_narrower, stop, say=say)
    pause = sleep or stop.wait  # a rate-window wait that ends early when the run stops (Ctrl-C, a fatal error)
    hook = visible_wait(say, sharer.owner_progress, clock, lambda sec: pause(sec), stop.is_set)
    sharer.windows = OwnerWindows(*share_rate, clock=clock, wait=hook)
    limit, period = share_rate
    longest = max(map(len, todo.values()))
    least = (longest - 1) // limit * period if limit else 0
    say(f"share: {sum(map(len, todo.values()))} shares to do for {len(todo)} owners"
        + (f"; at {limit} new shares per owner per {period} s this takes at least {duration(least)}" if least else ""))
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo))), thread_name_prefix="share")
    futures = [pool.submit(sharer.owner_rows, owner, rows) for owner, rows in todo.items()]
    try:
        wait(futures)
    finally:
        if not all(f.done() for f in futures):  # interrupted: wake the paced waits, let in-flight calls finish
            stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
    errors = [e for e in (f.exception() for f in futures) if e is not None]
    if errors:
        errors.sort(key=lambda e: not isinstance(e, Fatal))  # the reason the run stopped comes first
        raise errors[0]


def remove_our_shares(store: StateStore, target: Target, items: Iterable[tuple[str, str]], *,
                      say: Callable[[str], None] = lambda _m: None) -> ShareSummary:
    """Remove the shares this tool made on these (drive, item) pairs (an item deleted or no longer migrated) and
    forget their planned shares; shares a person made are left alone. Deleting is not rate-limited."""
    summary = ShareSummary()
    pairs = list(items)
    mine = [s for s in store.iter_planned_shares(sorted({d for d, _ in pairs}), pairs)]
    if not mine:
        return summary
    sharer = _Sharer(store, target, OwnerWindows(0, 0), PasswordFile(Path(PASSWORDS_FILE)), summary, say=say)
    for s in mine:
        sharer.remove(s)
    return summary


def run_share(
    store: StateStore,
    target: Target,
    mappings: Mappings,
    selection: Selection,
    plan_options: PlanOptions,
    *,
    workers: int = 4,
    share_rate: tuple[int, int] = (20, 600),
    widen_narrower: bool = False,
    passwords_file: Path | None = None,
    reports_dir: Path | None = None,
    dry_run: bool = False,
    say: Callable[[str], None] = lambda _m: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] | None = None,
) -> ShareSummary:
    """The `share` command: refresh the plan (reads only), then `apply_share_plan` for the mapped drives; writes
    the list of grants not carried over to `reports_dir` (when given)."""
    say("refreshing the plan (layout, names, conflicts, shares; reads only)")
    doc = run_plan(store, target, mappings, selection, plan_options, directory=find_directory(target), progress=say)
    drive_ids = [r["drive_id"] for r in doc["drives"] if r.get("status") == "mapped"]
    summary = apply_share_plan(store, target, drive_ids, workers=workers, share_rate=share_rate,
                               widen_narrower=widen_narrower, passwords_file=passwords_file, dry_run=dry_run, say=say,
                               clock=clock, sleep=sleep)
    summary.not_carried_over = len(doc["not_carried_over"])
    if reports_dir is not None:
        from migrate.reports.grants import write_not_carried_over

        summary.not_carried_over_report = str(write_not_carried_over(doc["not_carried_over"], reports_dir))
    return summary
