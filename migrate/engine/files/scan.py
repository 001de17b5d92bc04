"""Inventory: enumerate the selected drives through delta into the state store, a checkpoint per page.

Per drive, `scan_drive` picks up where the store says it stands:

  new / --full / after 410   → full enumeration (state "enumerating"); items it does not see become deleted
  delta_link stored          → incremental pass from it (state "scanning"), cost proportional to the changes
  scan_link stored           → resume a killed pass from its last saved page
  pages done, grants pending → only fetch permissions of the pass's shared items

Every page is saved together with the link to the next one (one transaction); the last page, the reconcile, the
path rebuild and the new deltaLink go in one transaction too. Copy status columns are never touched. While page N
is being stored, page N+1 is already fetched (and parsed) on a helper thread (`_Prefetch`), one page ahead at most:
storing overlaps the network, and a kill still resumes from the last stored link.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from migrate.errors import (
    ConfigError,
    DeltaExpired,
    Fatal,
    ItemNotFound,
    MigrateError,
    SourceError,
    StateError,
)
from migrate.protocols import Source
from migrate.session import Selection
from migrate.store import StateStore

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """Raised inside a drive's scan when the run is stopping (Ctrl-C, a fatal error in another drive)."""


class ScanListener(Protocol):
    """Progress callbacks (the CLI renders them with tqdm); called from worker threads."""

    def drive_started(self, drive: dict[str, Any], mode: str) -> None: ...
    def items(self, drive_id: str, n: int) -> None: ...
    def drive_finished(self, result: DriveScan) -> None: ...


@dataclass
class DriveScan:
    """What happened to one drive in this run."""

    drive_id: str
    name: str
    kind: str
    owner: str = ""  # the OneDrive's UPN or the library's site URL: "OneDrive" alone names nobody
    mode: str = ""  # full | delta | resume | resync | permissions
    state: str = ""  # the drive's scan_state afterwards
    pages: int = 0
    items: int = 0
    seconds: float = 0.0
    files: int = 0
    folders: int = 0
    bytes: int = 0
    deleted: int = 0
    orphans: int = 0
    shortcuts: int = 0
    permissions_read: int = 0
    error: str = ""

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0


def owner_of(drive: dict[str, Any]) -> str:
    """Whose drive it is, for people: the owner's UPN, else the site's URL."""
    return drive.get("owner_upn") or drive.get("site_url") or ""


@dataclass
class ScanSummary:
    """The result of `scan`: per-drive outcomes, totals and the Graph cost."""

    drives: list[DriveScan] = field(default_factory=list)
    seconds: float = 0.0
    source_stats: dict[str, Any] = field(default_factory=dict)
    not_migrated: list[str] = field(default_factory=list)  # left out: a blank target in users.csv / sites.csv

    @property
    def items(self) -> int:
        return sum(d.items for d in self.drives)

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0

    @property
    def vanished(self) -> list[DriveScan]:
        return [d for d in self.drives if d.state == "vanished"]

    @property
    def failed(self) -> list[DriveScan]:
        return [d for d in self.drives if d.error and d.state != "vanished"]

    @property
    def attention(self) -> bool:
        return bool(self.vanished or self.failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drives": [{**asdict(d), "items_per_s": round(d.items_per_s, 1)} for d in self.drives],
            "items": self.items, "seconds": round(self.seconds, 3), "items_per_s": round(self.items_per_s, 1),
            "vanished": [d.drive_id for d in self.vanished], "failed": [d.drive_id for d in self.failed],
            "attention": self.attention, "graph": self.source_stats, "not_migrated": self.not_migrated,
        }


def _rows(page_items: list[dict[str, Any]], generation: int) -> tuple[list[dict[str, Any]], int]:
    """Store rows of one page and the number of shortcuts skipped (copied from their owner's drive instead)."""
    from migrate.backends.graph.items import delta_row, is_shortcut

    rows = [delta_row(d, generation) for d in page_items if not is_shortcut(d)]
    return rows, len(page_items) - len(rows)


@dataclass(slots=True)
class _Page:
    """A delta page turned into store rows (the raw JSON is dropped as soon as it is converted)."""

    rows: list[dict[str, Any]]
    items: int
    shortcuts: int
    next_link: str | None
    delta_link: str | None


_DONE = object()


class _Prefetch:
    """Fetch (and convert) page N+1 on a helper thread while the caller stores page N.

    At most one page waits ahead of the caller, so memory stays at two pages per drive. Errors of the fetch
    (DeltaExpired, ItemNotFound, Fatal) reach the caller in order, when it asks for the page that met them;
    the checkpoint rule is the caller's and is unchanged (page N and the link to N+1 are stored together, so a
    kill that loses the prefetched page only means fetching it again). `close()` stops the helper after the
    request in flight and waits for it, so no request outlives the drive's scan.
    """

    def __init__(self, pages: Iterator[Any], generation: int, name: str) -> None:
        self._pages = pages
        self._generation = generation
        self._credit = threading.Semaphore(1)  # one fetch ahead of the consumer, never more
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{name}-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                self._credit.acquire()
                if self._closed.is_set():
                    return
                page = next(self._pages, _DONE)
                if page is _DONE:
                    self._queue.put(_DONE)
                    return
                rows, shortcuts = _rows(page.items, self._generation)
                self._queue.put(_Page(rows, len(page.items), shortcuts, page.next_link, page.delta_link))
                del page, rows
        except BaseException as exc:  # handed to the consumer, raised there in order
            self._queue.put(exc)
        finally:
            close = getattr(self._pages, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[_Page]:
        while True:
            got = self._queue.get()
            if got is _DONE:
                return
            if isinstance(got, BaseException):
                raise got
            self._credit.release()  # the caller now holds this page: fetch the next one meanwhile
            yield got

    def close(self) -> None:
        self._closed.set()
        self._credit.release()
        self._thread.join()


def scan_drive(store: StateStore, source: Source, drive_id: str, *, full: bool = False,
               listener: ScanListener | None = None, stop: threading.Event | None = None) -> DriveScan:
    """Bring one drive's inventory up to date (see the module docstring); returns what happened.

    Raises ItemNotFound when the drive is gone, Fatal errors (AuthError) as they come, Interrupted when `stop`
    is set between pages; the store is consistent after any of them and a rerun resumes.
    """
    d = store.drive(drive_id)
    if d is None:
        raise ItemNotFound(f"drive {drive_id} is not in the state database; run `m365-migrate discover`")
    result = DriveScan(drive_id, d["name"], d["kind"], owner_of(d))
    started = time.monotonic()
    state, g = d["scan_state"], int(d["scan_generation"])
    in_pass = state in ("scanning", "enumerating") and not full
    if in_pass and d["scan_link"]:
        result.mode, is_full, link = "resume", state == "enumerating", d["scan_link"]
    elif in_pass and state == "scanning" and d["delta_link"]:
        result.mode, is_full, link = "permissions", False, None
    elif not full and d["delta_link"] and state not in ("enumerating",):
        g += 1
        result.mode, is_full, link = "delta", False, d["delta_link"]
        store.update_drive(drive_id, scan_state="scanning", scan_generation=g, scan_link=link, last_error=None)
    else:
        if not in_pass:
            g += 1
        result.mode, is_full, link = "full", True, None
        store.update_drive(drive_id, scan_state="enumerating", scan_generation=g, scan_link=None, delta_link=None,
                           last_error=None, prior_items=int(store.has_items(drive_id)))
    if listener:
        listener.drive_started(d, result.mode)
    resynced = False
    while result.mode != "permissions":
        try:
            pages = _Prefetch(source.delta(drive_id, link), g, threading.current_thread().name)
            try:
                for page in pages:
                    if stop is not None and stop.is_set():
                        raise Interrupted(drive_id)
                    result.shortcuts += page.shortcuts
                    result.pages += 1
                    result.items += page.items
                    if page.delta_link is None:
                        store.save_delta_page(drive_id, page.rows, next_link=page.next_link, generation=g)
                    else:
                        with store.atomic():
                            store.save_delta_page(drive_id, page.rows, next_link=None, generation=g)
                            fin = store.finish_delta(drive_id, generation=g, full=is_full,
                                                     delta_link=page.delta_link, scan_state="scanning")
                        store.commit_pages()
                        result.orphans = fin["orphans"]
                        result.deleted += fin["unseen_deleted"] + fin["cascade_deleted"]
                    if listener:
                        listener.items(drive_id, page.items)
                    del page
            finally:
                pages.close()
            break
        except DeltaExpired as exc:
            if resynced:
                raise SourceError(f"drive {drive_id}: delta expired again during a full resync ({exc})") from None
            log.info("delta link of drive %s expired (410); enumerating it afresh and reconciling", d["name"])
            resynced, is_full, link, g = True, True, None, g + 1
            result.mode = "resync"
            store.update_drive(drive_id, scan_state="enumerating", scan_generation=g, scan_link=None,
                               delta_link=None, prior_items=1)
    _permissions(store, source, drive_id, g, result, stop)
    if d["kind"] != "onedrive" and (is_full or not d["access_read_at"]):
        _root_access(store, source, drive_id)
    store.update_drive(drive_id, scan_state="scanned")
    result.state = "scanned"
    counts = store.inventory_counts(drive_id)
    result.files, result.folders, result.bytes = counts["files"], counts["folders"], counts["bytes"]
    result.seconds = time.monotonic() - started
    return result


def _permissions(store: StateStore, source: Source, drive_id: str, generation: int, result: DriveScan,
                 stop: threading.Event | None) -> None:
    """Grants of the pass's shared items (5 RU each, so only those), and none for items no longer shared."""
    for item_id in store.unshared_item_ids(drive_id, generation):
        store.replace_permissions(drive_id, item_id, [])
    for item_id in store.shared_item_ids(drive_id, generation):
        if stop is not None and stop.is_set():
            raise Interrupted(drive_id)
        try:
            grants = source.permissions(drive_id, item_id)
        except ItemNotFound:
            continue  # deleted since the page was read; the next delta pass records that
        store.replace_permissions(drive_id, item_id, grants)
        result.permissions_read += 1


def _root_access(store: StateStore, source: Source, drive_id: str) -> None:
    """Who a library grants access to at its root (the site's owners/members/visitors groups), kept apart from item
    shares; `create_team_folders` turns it into team-folder groups. One 5-RU call per library, on its first and
    on full scans only, so a delta pass still costs in proportion to the changes."""
    root = store.root_item_id(drive_id)
    if root is None:
        return
    try:
        grants = source.permissions(drive_id, root)
    except ItemNotFound:
        return
    store.replace_drive_access(drive_id, grants)


def scan(store: StateStore, source: Source, selection: Selection = Selection(), *, workers: int = 4,
         full: bool = False, listener: ScanListener | None = None,
         source_stats: Callable[[], dict[str, Any]] | None = None) -> ScanSummary:
    """Scan the selected drives, `workers` at a time; a vanished or failing drive is recorded, the rest go on.

    Fatal errors (AuthError) stop the run and are raised; KeyboardInterrupt stops every drive at its next page.
    Figures (items/s, items, seconds) are recorded with `store.record_metric`.
    """
    drives, left_out = selection.to_scan(store)
    if not drives and not left_out:
        if not store.drives():
            raise StateError("no drives are recorded yet", hint="run `m365-migrate discover` first")
        raise ConfigError("no drive matches the selection (--batch/--drive/--user)",
                          hint="`m365-migrate status` lists the drives with their batches and owners")
    summary = ScanSummary(not_migrated=[f"{d['name']} of {owner_of(d)}" if owner_of(d) else d["name"]
                                        for d in left_out])
    started = time.monotonic()
    stop = threading.Event()
    fatal: list[BaseException] = []

    def one(drive: dict[str, Any]) -> DriveScan:
        try:
            return scan_drive(store, source, drive["id"], full=full, listener=listener, stop=stop)
        except ItemNotFound as exc:
            msg = str(exc).splitlines()[0]
            store.update_drive(drive["id"], scan_state="vanished", last_error=msg)
            log.warning("drive %s (%s) no longer exists at the source: %s", drive["name"], drive["id"], msg)
            return DriveScan(drive["id"], drive["name"], drive["kind"], owner_of(drive), state="vanished", error=msg)
        except Interrupted:
            return DriveScan(drive["id"], drive["name"], drive["kind"], owner_of(drive), state="interrupted", error="interrupted")
        except MigrateError as exc:
            if isinstance(exc, Fatal):
                fatal.append(exc)
                stop.set()
                raise
            msg = str(exc).splitlines()[0]
            store.update_drive(drive["id"], last_error=msg)  # scan_state kept: the next run resumes the pass
            log.warning("drive %s (%s) failed: %s", drive["name"], drive["id"], msg)
            return DriveScan(drive["id"], drive["name"], drive["kind"], owner_of(drive), state="failed", error=msg)

    pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="scan")
    with store.scan_settings():  # a larger page cache, fewer WAL checkpoints: see StateStore.scan_settings
        try:
            pending: set[Future[DriveScan]] = {pool.submit(one, dr) for dr in drives}
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    if fut.exception() is not None:
                        continue
                    res = fut.result()
                    summary.drives.append(res)
                    if listener:
                        listener.drive_finished(res)
                if fatal:
                    break
        except KeyboardInterrupt:
            stop.set()
            raise
        finally:
            stop.set() if fatal else None
            pool.shutdown(wait=True, cancel_futures=True)
            summary.seconds = time.monotonic() - started
            summary.source_stats = source_stats() if source_stats else {}
            _record(store, summary)
    if fatal:
        raise fatal[0]
    return summary


def _record(store: StateStore, summary: ScanSummary) -> None:
    try:
        store.record_metric("scan.items_per_s", round(summary.items_per_s, 1), "items/s")
        store.record_metric("scan.items", summary.items, "items")
        store.record_metric("scan.seconds", round(summary.seconds, 3), "s")
        req = summary.source_stats.get("requests") or {}
        if req:
            store.record_metric("scan.requests", sum(req.values()), "requests")
    except MigrateError as exc:  # metrics never turn a finished scan into a failure
        log.debug("could not record scan metrics: %s", exc)
