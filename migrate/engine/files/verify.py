"""`verify`: re-check the target (and optionally the source) against the state database; list every gap.

The target is read by folder listings: one Depth-1 PROPFIND per target folder holding verified files, many
folders (of every drive) at once, instead of one PROPFIND per file. A file the listing does not show is asked
for once on its own (a server may name it differently, e.g. in NFC), so a gap is never reported from a listing
alone.
"""

from __future__ import annotations

import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from migrate.engine.files.teamfolders import mount_problem
from migrate.engine.files.transfer import check_entry
from migrate.engine.files.versions_verify import verify_versions
from migrate.engine.shares.accept import confirm_visible
from migrate.models import ItemStatus, RemoteEntry
from migrate.protocols import Source, Target
from migrate.store import StateStore


@dataclass
class VerifySummary:
    """Counts and the list of gaps; a clean run has no gaps."""

    checked: int = 0
    ok: int = 0
    gaps: list[dict[str, Any]] = field(default_factory=list)
    not_copied: int = 0
    folders_listed: int = 0
    versions_checked: int = 0  # earlier and current versions of files whose history was carried
    shares_checked: int = 0  # made user/group shares checked as their recipients
    shares_not_visible: list[dict[str, Any]] = field(default_factory=list)  # some recipient does not see them

    @property
    def attention(self) -> bool:
        return bool(self.gaps or self.shares_not_visible)


def verify_drives(
    store: StateStore,
    target: Target,
    drives: list[dict[str, Any]],
    *,
    source: Source | None = None,
    source_hash: Callable[[str, str], str | None] | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int = 8,
) -> VerifySummary:
    """Every verified file must exist at the target with its size (and SHA1 and mtime where the target keeps
    them). With `source_hash`, the source's current QuickXorHash must still be the one we copied.

    Folders are listed `workers` at a time. A file that fails is moved to `failed` with the reason, so the next
    `copy` sends it again.
    """
    s = VerifySummary()
    listed: list[dict[str, Any]] = []
    for d in drives:
        counts = store.status_counts(d["id"])
        s.not_copied += sum(v["files"] for k, v in counts.items() if k not in ("verified", "skipped"))
        # A file under a team-folder path the writer does not see mounted sits in a look-alike folder in the
        # writer's own home: it is a gap however whole it is.
        outside = mount_problem(target, d, write=False)
        if not outside:
            listed.append(d)
            continue
        for item in store.iter_items(d["id"], statuses=("verified",), files_only=True):
            _record(store, s, item, f"outside its team folder: {outside}", progress)
    groups = (g for d in listed for g in store.iter_by_target_folder(d["id"]))
    with store.entry_table() as now_at_source:
        if source_hash is not None and source is not None:
            source_hash = _listed_hashes(store, source, listed, now_at_source, source_hash)
        for item, entry in list_folders(target, groups, workers=workers, listed=s):
            problem = check_entry(entry, size=_expected_size(item), sha1=item["sha1"], mtime=item["mtime"],
                                  features=target.features)
            if not problem and source_hash is not None:
                problem = _source_problem(item, source_hash(item["drive_id"], item["item_id"]))
            _record(store, s, item, problem, progress)
    for item, n, problems in verify_versions(store, target, listed, workers=workers):
        s.versions_checked += n
        for p in problems:  # the file itself is whole: its history has a gap, listed (exit 3), not re-sent
            s.gaps.append({"drive_id": item["drive_id"], "item_id": item["item_id"], "path": item["path"],
                           "target": f"{item['target_user'] or ''}:{item['target_path']}", "problem": p})
    # a share counts only when its recipients see it: asked as each of them, nothing accepted (verify only reads)
    seen = confirm_visible(store, target, [d["id"] for d in drives], accept=False, recheck=True, workers=workers)
    s.shares_checked, s.shares_not_visible = seen.checked, seen.not_visible
    return s


def _listed_hashes(store: StateStore, source: Source, drives: list[dict[str, Any]], table: Any,
                   per_file: Callable[[str, str], str | None]) -> Callable[[str, str], str | None]:
    """The source's current hashes from one listing per drive (a fresh delta pass: 1–2 RU a page of files) where
    that costs less than asking per file (1 RU each); held in a temp table, not in memory."""
    listing = getattr(source, "current_listing", None)
    if not callable(listing):
        return per_file
    page = int(getattr(getattr(source, "options", None), "page_size", 999) or 999)
    whole: set[str] = set()
    for d in drives:
        files = store.status_counts(d["id"]).get("verified", {}).get("files", 0)
        c = store.inventory_counts(d["id"])
        items = (c.get("files", 0) + c.get("folders", 0)) or files
        if files and 2 + items // page < files:
            table.fill(listing(d["id"]), key=lambda e, d=d: f"{d['id']}\t{e.path}")
            whole.add(d["id"])

    def current(drive_id: str, item_id: str) -> str | None:
        if drive_id not in whole:
            return per_file(drive_id, item_id)
        entry = table.get(f"{drive_id}\t{item_id}")
        if entry is None:
            return None
        return next((c.split(":", 1)[1] for c in entry.checksums if c.startswith("QuickXorHash:")), "")

    return current


def _record(store: StateStore, s: VerifySummary, item: dict[str, Any], problem: str,
            progress: Callable[[int], None] | None) -> None:
    s.checked += 1
    if problem:
        s.gaps.append({"drive_id": item["drive_id"], "item_id": item["item_id"], "path": item["path"],
                       "target": f"{item['target_user'] or ''}:{item['target_path']}", "problem": problem})
        store.transition(item["drive_id"], item["item_id"], ItemStatus.FAILED, last_error=f"verify: {problem}")
    else:
        s.ok += 1
    if progress:
        progress(1)


def list_folders(target: Target, groups: Iterable[tuple[str, str, list[dict[str, Any]]]], *, workers: int = 8,
                 listed: Any = None, confirm_missing: bool = True) -> Iterator[tuple[dict[str, Any], RemoteEntry | None]]:
    """Each item of `groups` ((user, folder, items) with the same target folder) with what the target holds at
    its path, from one Depth-1 listing per folder, `workers` folders at a time (at most 2 × workers groups held).

    The caller's thread receives every result, so it alone writes the state. `listed.folders_listed` (when
    given) counts the listings. `confirm_missing=False` trusts a listing that lacks a file (resume: a missing
    file is simply sent again) instead of looking it up on its own.
    """
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="list") as pool:
        running: deque[Future[list[tuple[dict[str, Any], RemoteEntry | None]]]] = deque()
        try:
            for user, folder, items in groups:
                if len(running) >= 2 * workers:
                    yield from running.popleft().result()
                running.append(pool.submit(entries_in_folder, target, user, folder, items, confirm_missing))
                if listed is not None:
                    listed.folders_listed += 1
            while running:
                yield from running.popleft().result()
        finally:
            for f in running:
                f.cancel()


def entries_in_folder(target: Target, user: str, folder: str, items: list[dict[str, Any]],
                      confirm_missing: bool = True) -> list[tuple[dict[str, Any], RemoteEntry | None]]:
    """One listing of `folder`, matched to its items by name; a file the listing does not show is looked up on
    its own (a server may spell a name differently), and without `list_folder` every file is."""
    lister = getattr(target, "list_folder", None)
    listing: list[RemoteEntry] | None = lister(user, folder) if callable(lister) else None
    by_name = {_key(e.path): e for e in listing or () if not e.is_folder}
    out: list[tuple[dict[str, Any], RemoteEntry | None]] = []
    for item in items:
        entry = by_name.get(_key(item["target_path"]))
        if entry is None and ((listing is not None and confirm_missing) or not callable(lister)):
            entry = target.stat(user, item["target_path"])
        out.append((item, entry))
    return out


def _key(path: str) -> str:
    """A file's name as listings can be matched on: the last segment, NFC (Nextcloud answers in NFC)."""
    return unicodedata.normalize("NFC", path.rstrip("/").rpartition("/")[2])


def _source_problem(item: dict[str, Any], current: str | None) -> str:
    if current is None:
        return "the file no longer exists at the source (run `scan` to record the deletion)"
    if item["quick_xor_hash"] and current and current != item["quick_xor_hash"] and not _rewritten(item):
        return "the file changed at the source since it was copied (run `scan`, then `copy`)"
    return ""


def _expected_size(item: dict[str, Any]) -> int:
    """What we wrote: the listed size, unless the bytes served differed (SharePoint's Office rewrite)."""
    return item["target_size"] if item["target_size"] is not None else item["size"]


def _rewritten(item: dict[str, Any]) -> bool:
    """SharePoint served other bytes than listed (Office rewrite): the listed hash was never ours to compare."""
    resized = item["target_size"] is not None and item["target_size"] != item["size"]
    return resized or "another hash" in (item["note"] or "")
