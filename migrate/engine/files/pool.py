"""Copying many files: resume what was in flight, create folders, then run transfers on a bounded pool."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from migrate.engine.accounting import Accounting
from migrate.engine.files import urlfeed
from migrate.engine.files.batch import Batcher, run_batch
from migrate.engine.files.readahead import ReadAheadSource
from migrate.engine.files.transfer import Transfer, TransferOptions, check_entry
from migrate.engine.files.versions import VersionPolicy, VersionReplay, settle_labels
from migrate.errors import DriveRefused, Fatal, MigrateError, TargetRefused
from migrate.models import ItemStatus
from migrate.protocols import Source, Target
from migrate.store import StateStore

log = logging.getLogger(__name__)

RETRYABLE = ("pending", "failed")


@dataclass
class CopySummary:
    """The end of a copy run in numbers, plus the items that need a person."""

    drives: int = 0
    files_verified: int = 0
    bytes_sent: int = 0
    resent_bytes: int = 0
    resumed_bytes: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    resumed_verified: int = 0
    resumed_resent: int = 0
    not_planned: int = 0
    folders_created: int = 0
    notes: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    stopped_drives: list[dict[str, Any]] = field(default_factory=list)  # by the guard; raised at the end
    versions: dict[str, Any] = field(default_factory=dict)  # earlier versions by state (engine.versions)
    adopted: dict[str, Any] = field(default_factory=dict)  # engine.adopt: already at the target, not sent
    url_sources: dict[str, int] = field(default_factory=dict)  # drives by where their download URLs came from

    @property
    def attention(self) -> bool:
        return bool(self.failed)


def resume_in_flight(store: StateStore, target: Target, drive_ids: Iterable[str], *, workers: int = 8
                     ) -> tuple[int, int]:
    """Rows a killed run left in `transferring` or `uploaded`: finalise those the target holds whole, reset the rest.

    The target is read by listing each folder holding such rows once (many folders at a time), not by one look
    per file. Returns (finalised, reset). A file is finalised only if the target shows the full size and the
    SHA1 recorded before its bytes left (where the target keeps checksums); anything less is sent again.
    """
    from migrate.engine.files.verify import list_folders  # one listing helper for verify and resume

    finalised = reset = 0
    for drive_id in drive_ids:
        groups = store.iter_by_target_folder(drive_id, ("transferring", "uploaded"))
        for item, entry in list_folders(target, groups, workers=workers, confirm_missing=False):
            sha1 = (item["target_checksum"] or "").removeprefix("SHA1:") or None
            size = item["target_size"] if item["target_size"] is not None else item["size"]
            whole = not check_entry(entry, size=size, sha1=sha1, mtime=None, features=target.features)
            if whole and item["status"] == "uploaded":
                store.transition(drive_id, item["item_id"], ItemStatus.VERIFIED)
                finalised += 1
            elif whole and sha1:
                with store.atomic():
                    store.transition(drive_id, item["item_id"], ItemStatus.UPLOADED)
                    store.transition(drive_id, item["item_id"], ItemStatus.VERIFIED)
                finalised += 1
            else:
                # Without a recorded SHA1 we cannot prove a transferring row's bytes are ours: send it again.
                store.transition(drive_id, item["item_id"], ItemStatus.PENDING, last_error="resent after interruption")
                reset += 1
    return finalised, reset


def create_folders(store: StateStore, target: Target, drive_id: str, *, workers: int = 8) -> int:
    """Create every planned folder (empty ones too), parents before children, each once.

    One depth at a time, the folders of that depth `workers` at a time: a folder's parent is always one depth
    up, so it exists before the folder is asked for. Each level is recorded as it completes.
    A refused folder (403) becomes a failed item with the refusal as its reason; when the drive's first folder is
    refused the account cannot write there at all, so DriveRefused stops the drive before any file is tried.
    """
    made = [0]  # folders created so far in this drive (the account's root is not one)
    seen = 0
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="mkcol") as pool:
        level: list[tuple[dict[str, Any], Future[None] | None]] = []
        depth = None
        for r in store.iter_folders_by_depth(drive_id):
            seen += 1
            if r["q_depth"] != depth or len(level) >= 500:  # bounded: a flat drive's level is recorded in parts
                _settle_folders(store, drive_id, level, made)
                level, depth = [], r["q_depth"]
            root = not r["target_path"].strip("/")  # the account's own root: nothing to create
            level.append((r, None if root else pool.submit(target.ensure_folder, r["target_user"] or "",
                                                           r["target_path"])))
        _settle_folders(store, drive_id, level, made)
    return seen


def _settle_folders(store: StateStore, drive_id: str, level: list[tuple[dict[str, Any], Future[None] | None]],
                    made: list[int]) -> None:
    """Wait for the MKCOLs of `level`, then record each folder in order: verified, or failed when refused."""
    wait([f for _, f in level if f is not None])
    for r, f in level:
        exc = f.exception() if f is not None else None
        if isinstance(exc, TargetRefused):
            if made[0] == 0:
                raise DriveRefused(f"drive {drive_id} stopped: its first folder was refused: {exc.message}",
                                   hint=exc.hint) from None
            if r["status"] != "failed":
                store.transition(drive_id, r["item_id"], ItemStatus.FAILED, last_error=exc.message)
            continue
        if exc is not None:
            raise exc
        made[0] += 0 if f is None else 1
        with store.atomic():
            if r["status"] == "failed":
                store.transition(drive_id, r["item_id"], ItemStatus.PENDING)
            store.transition(drive_id, r["item_id"], ItemStatus.TRANSFERRING)
            store.transition(drive_id, r["item_id"], ItemStatus.UPLOADED)
            store.transition(drive_id, r["item_id"], ItemStatus.VERIFIED)


def copy_drives(
    store: StateStore,
    source: Source,
    target: Target,
    drives: list[dict[str, Any]],
    *,
    workers: int = 8,
    accounting: Accounting | None = None,
    options: TransferOptions = TransferOptions(),
    max_attempts: int = 5,
    stop: threading.Event | None = None,
    bulk: bool = True,
    guard: Callable[[dict[str, Any]], None] | None = None,
) -> CopySummary:
    """Copy every pending (or retryable failed) file of `drives`; raises the first fatal error after draining.

    `bulk` (the `[transfer] bulk_upload` setting) allows sending small files many per request when the target
    offers it (`features.bulk_upload`). `guard(drive)` runs before anything of a drive is read back or written
    (e.g. the team-folder mount check); a drive whose guard raises is left untouched while the others are copied,
    and the guard's error is raised at the end naming every drive stopped that way.
    """
    acct = accounting or Accounting()
    stop = stop or threading.Event()
    summary = CopySummary(drives=len(drives))
    guard_errors: list[MigrateError] = []
    if guard is not None:
        drives = _guarded(store, drives, guard, summary, guard_errors)
    ids = [d["id"] for d in drives]
    summary.resumed_verified, summary.resumed_resent = resume_in_flight(store, target, ids, workers=workers)

    files = bytes_ = 0
    for d in drives:
        c = store.status_counts(d["id"])
        for st in RETRYABLE:
            files += c.get(st, {}).get("files", 0)
            bytes_ += c.get(st, {}).get("bytes", 0)
    acct.plan(files, bytes_)

    refused: list[DriveRefused] = []
    for d in list(drives):
        try:
            summary.folders_created += create_folders(store, target, d["id"], workers=workers)
        except DriveRefused as exc:
            log.error("%s", exc.message)
            refused.append(exc)
            drives = [x for x in drives if x["id"] != d["id"]]

    transfer = Transfer(store, source, target, acct, options)
    replay = VersionReplay(transfer, VersionPolicy(options.versions))
    # Files one by one read ahead of their upload (download and upload overlap); small files go to the target
    # many per request when it offers bulk upload.
    single = Transfer(store, ReadAheadSource(source), target, acct, options)
    batcher = Batcher(transfer, enabled=bulk)
    fatal: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="copy") as pool:
        running: set[Future[Any]] = set()

        def submit(fn: Any, *args: Any) -> None:
            nonlocal running
            if len(running) >= workers * 2:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                _collect(done, fatal, stop)
            running.add(pool.submit(fn, *args))

        def settle() -> None:
            """Every file handed out so far is with a worker (or done): before the sweep of the rest."""
            nonlocal running
            for rest in batcher.drain():
                submit(run_batch, transfer, rest)
            done, running = wait(running)
            _collect(done, fatal, stop)

        page_size = int(getattr(getattr(source, "options", None), "page_size", 999) or 999)

        def work() -> Iterable[tuple[dict[str, Any], str]]:
            for d in drives:
                plan = urlfeed.choose(store, source, d["id"], max_attempts=max_attempts, page_size=page_size)
                summary.url_sources[plan.how] = summary.url_sources.get(plan.how, 0) + 1
                if plan.files:
                    log.info("drive %s: %d files to send; download URLs by %s (about %.0f RU; %s)", d["name"],
                             plan.files, plan.how, plan.ru,
                             ", ".join(f"{k} {v:.0f}" for k, v in sorted(plan.costs.items())))
                for item in urlfeed.files_to_send(store, source, d, plan, max_attempts=max_attempts, settle=settle):
                    if not item["target_path"]:
                        summary.not_planned += 1
                        continue
                    if item["status"] == "failed" and item["attempts"] >= max_attempts:
                        continue
                    yield item, d["kind"]

        drive = None
        for item, kind in work():
            if stop.is_set() or fatal:
                break
            if item["drive_id"] != drive:
                # A drive's partial batches go now, not at the very end: held until then, 10,000 drives' worth
                # of waiting rows would grow memory with the tenant.
                for rest in batcher.drain():
                    submit(run_batch, transfer, rest)
                drive = item["drive_id"]
            if replay.wants(item):  # its earlier versions first, one file at a time (engine.versions)
                submit(replay.run, item, kind)
            elif batcher.eligible(item, kind):
                full = batcher.add(item)
                if full:
                    submit(run_batch, transfer, full)
            else:
                submit(single.run, item, kind)
        for rest in batcher.drain():
            if stop.is_set() or fatal:
                break
            submit(run_batch, transfer, rest)
        done, _ = wait(running)
        _collect(done, fatal, stop)
    if not fatal and replay.policy.wanted:
        settle_labels(store, target, [d["id"] for d in drives])
        summary.versions = store.version_counts([d["id"] for d in drives])
    summary.files_verified = acct.done_files
    summary.bytes_sent = acct.done_bytes
    summary.resent_bytes = acct.resent_bytes
    summary.resumed_bytes = acct.resumed_bytes
    summary.seconds = acct.elapsed
    summary.failed = [
        {"drive_id": r["drive_id"], "item_id": r["item_id"], "path": r["path"], "error": r["last_error"]}
        for d in drives for r in store.iter_items(d["id"], statuses=("failed",))
    ]
    if acct.elapsed > 1 and acct.done_bytes:
        store.record_metric("copy_bytes_per_s", acct.rate, "B/s")
    if fatal:
        raise fatal[0]
    stopped = [f"  drive {d['name']!r} ({d['drive_id']}): {d['error']}" for d in summary.stopped_drives]
    if refused:
        lines = "\n".join([*(f"  {e.message}" for e in refused), *stopped])
        raise DriveRefused(f"{len(refused) + len(stopped)} drive(s) stopped, the others were copied:\n{lines}",
                           hint=refused[0].hint)
    if stopped:
        raise guard_errors[0].__class__(f"{len(stopped)} drive(s) stopped before any write, the others were "
                                        "copied:\n" + "\n".join(stopped), hint=guard_errors[0].hint)
    return summary


def _guarded(store: StateStore, drives: list[dict[str, Any]], guard: Callable[[dict[str, Any]], None],
             summary: CopySummary, errors: list[MigrateError]) -> list[dict[str, Any]]:
    kept = []
    for d in drives:
        try:
            guard(d)
        except MigrateError as exc:
            if isinstance(exc, Fatal):
                raise
            log.error("drive %s stopped: %s", d["name"], exc.message)
            store.update_drive(d["id"], last_error=exc.message)
            summary.stopped_drives.append({"drive_id": d["id"], "name": d["name"], "error": exc.message})
            errors.append(exc)
            continue
        kept.append(d)
    return kept


def _collect(done: set[Future[Any]], fatal: list[BaseException], stop: threading.Event) -> None:
    for f in done:
        exc = f.exception()
        if exc is not None:
            if not fatal:  # the CLI says the error itself when it ends the run: one message per cause
                log.debug("stopping: %s", exc if isinstance(exc, MigrateError) else repr(exc))
            fatal.append(exc)
            stop.set()
