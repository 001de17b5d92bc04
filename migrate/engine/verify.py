"""`verify`: re-check the target (and optionally the source) against the state database; list every gap.

The target is read by folder listings: one Depth-1 PROPFIND per target folder holding verified files, many
folders (of every drive) at once, instead of one PROPFIND per file. A file the listing does not show is asked
for once on its own (a server may name it differently, e.g. in NFC), so a gap is never reported from a listing
alone.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from migrate.engine.teamfolders import mount_problem
from migrate.engine.transfer import check_entry
from migrate.models import ItemStatus, RemoteEntry
from migrate.protocols import Source, Target
from migrate.store import StateStore

Checked = list[tuple[dict[str, Any], str]]  # (item, problem or '')


@dataclass
class VerifySummary:
    """Counts and the list of gaps; a clean run has no gaps."""

    checked: int = 0
    ok: int = 0
    gaps: list[dict[str, Any]] = field(default_factory=list)
    not_copied: int = 0
    folders_listed: int = 0

    @property
    def attention(self) -> bool:
        return bool(self.gaps)


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
    `copy` sends it again (the state is written by this thread only).
    """
    s = VerifySummary()
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="verify") as pool:
        running: set[Future[Checked]] = set()
        try:
            for d in drives:
                counts = store.status_counts(d["id"])
                s.not_copied += sum(v["files"] for k, v in counts.items() if k not in ("verified", "skipped"))
                # A file under a team-folder path the writer does not see mounted sits in a look-alike folder in
                # the writer's own home: it is a gap however whole it is.
                outside = mount_problem(target, d, write=False)
                if outside:
                    _record(store, s, {_gaps(store, d["id"], f"outside its team folder: {outside}")}, progress)
                    continue
                for user, folder, items in store.iter_verified_by_folder(d["id"]):
                    if len(running) >= 2 * workers:
                        done, running = wait(running, return_when=FIRST_COMPLETED)
                        _record(store, s, done, progress)
                    running.add(pool.submit(check_folder, target, user, folder, items, source_hash))
            done, running = wait(running)
            _record(store, s, done, progress)
        finally:
            for f in running:
                f.cancel()
    return s


def _gaps(store: StateStore, drive_id: str, problem: str) -> Future[Checked]:
    """Every verified file of a drive with the same problem, as a finished check."""
    f: Future[Checked] = Future()
    f.set_result([(it, problem) for it in store.iter_items(drive_id, statuses=("verified",), files_only=True)])
    return f


def check_folder(target: Target, user: str, folder: str, items: list[dict[str, Any]],
                 source_hash: Callable[[str, str], str | None] | None = None) -> Checked:
    """One listing of `folder` checked against its verified files; returns each item with its problem ('')."""
    lister = getattr(target, "list_folder", None)
    listing: list[RemoteEntry] | None = lister(user, folder) if callable(lister) else None
    by_name = {_key(e.path): e for e in listing or () if not e.is_folder}
    out: Checked = []
    for item in items:
        entry = by_name.get(_key(item["target_path"]))
        if entry is None and (listing is not None or not callable(lister)):
            # not in the listing (or no listing at all): one direct look settles it
            entry = target.stat(user, item["target_path"])
        problem = check_entry(entry, size=_expected_size(item), sha1=item["sha1"], mtime=item["mtime"],
                              features=target.features)
        if not problem and source_hash is not None:
            problem = _source_problem(item, source_hash(item["drive_id"], item["item_id"]))
        out.append((item, problem))
    return out


def _record(store: StateStore, s: VerifySummary, done: set[Future[Checked]],
            progress: Callable[[int], None] | None) -> None:
    for f in done:
        checked = f.result()
        s.folders_listed += 1
        for item, problem in checked:
            s.checked += 1
            if problem:
                s.gaps.append({"drive_id": item["drive_id"], "item_id": item["item_id"], "path": item["path"],
                               "target": f"{item['target_user'] or ''}:{item['target_path']}", "problem": problem})
                store.transition(item["drive_id"], item["item_id"], ItemStatus.FAILED, last_error=f"verify: {problem}")
            else:
                s.ok += 1
        if progress:
            progress(len(checked))


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
