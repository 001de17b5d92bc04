"""`sync`: one delta pass, then apply the source's changes at the target in a safe order, never over a person's work.

Steps: `scan` the selected drives (delta from the stored links; a 410 re-enumerates and reconciles by id, so
unchanged files are not sent again), lay out again only the folders whose items changed (engine.relayout: name
rules, collisions, pinned conflict names), find the changes (engine.changes), then apply them:

  1. folders: new ones created, moved or renamed ones MOVEd whole (one request per folder), parents first;
  2. files: MOVE with `If-Match` (no bytes re-sent);
  3. edits: a new upload over our file, only while it is still what we wrote: checked first, then by the
     upload itself (`If-Match` on the PUT, a tagged `If` on a chunked upload's final MOVE, never bulk), so a
     person's write in between is kept too (Nextcloud keeps the old bytes as a version);
  4. new files (edits and new files go through the copy pool: streamed, hashed, verified, resumable);
  5. deletions last, by `[policy] deletions`: `trash` DELETEs with `If-Match` (Nextcloud's trash bin keeps
     it), `keep` leaves it and lists it.

Whatever the target holds that is not what we wrote (edited, deleted or created there by a person) is never
overwritten, moved or deleted: both are kept, ours under a conflict name (names.conflict_name), and the conflict
is listed with both versions' facts. Every write is audited; after a kill the next run finds what is left.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from migrate.backends.webdav.wire import clean_path
from migrate.engine.files.adopt import adopt_one
from migrate.engine.files.changes import DELETE, EDIT, MOVE, NEW_FILE, NEW_FOLDER, Change, detect, summarise
from migrate.engine.files.sync_listing import FolderListings
from migrate.engine.shares.sync import apply_share_changes
from migrate.errors import (
    ChangedAtTarget,
    ConfigError,
    Fatal,
    MappingError,
    MigrateError,
    StateError,
    TargetItemError,
)
from migrate.models import ItemStatus, RemoteEntry
from migrate.names import NameRules, conflict_name
from migrate.protocols import Source, Target
from migrate.session import Selection
from migrate.store import StateStore

log = logging.getLogger(__name__)

DONE, MISSING, CHANGED, TAKEN, NO_PARENT = "done", "missing", "changed", "taken", "no-parent"


@dataclass(frozen=True, slots=True)
class SyncOptions:
    """How `sync` applies changes: `deletions` is the [policy] deletions setting (keep | trash)."""

    deletions: str = "keep"
    dry_run: bool = False
    workers: int = 4
    bulk: bool = True
    share_rate: tuple[int, int] = (20, 600)
    passwords_file: Any = None
    versions: int | None = 0  # [transfer] versions as a number (engine.versions): an edit becomes a labelled version


@dataclass
class SyncSummary:
    """What one sync found and did; `attention` when something needs a person (conflicts, failures)."""

    drives: list[str] = field(default_factory=list)
    scan: dict[str, Any] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    renames: list[dict[str, Any]] = field(default_factory=list)
    stopped: list[dict[str, Any]] = field(default_factory=list)  # drives whose team folder is not mounted
    copy: dict[str, Any] = field(default_factory=dict)
    shares: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    dry_run: bool = False
    deletions: str = "keep"

    @property
    def attention(self) -> bool:
        return bool(self.conflicts or self.failed or (self.shares or {}).get("problems"))

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.__dict__.items()}, "attention": self.attention}


def _facts(entry: RemoteEntry | None) -> dict[str, Any]:
    if entry is None:
        return {"exists": False}
    return {"exists": True, "folder": entry.is_folder, "size": entry.size, "mtime": entry.mtime, "etag": entry.etag,
            "checksums": list(entry.checksums)}


def _source_facts(row: dict[str, Any]) -> dict[str, Any]:
    return {"size": row["size"], "mtime": row["mtime"], "quick_xor_hash": row["quick_xor_hash"],
            "etag": row["etag"], "path": row["path"]}


def _same_bytes(entry: RemoteEntry | None, row: dict[str, Any]) -> bool:
    """The target entry is the file we placed (size, and SHA1 or etag when known)."""
    if entry is None or entry.is_folder or entry.size != (row["placed_size"] if row["placed_size"] is not None
                                                          else entry.size):
        return False
    want = (row["placed_checksum"] or "").upper()
    if want and any(c.upper() == want for c in entry.checksums):
        return True
    return bool(row["placed_etag"]) and entry.etag == row["placed_etag"]


def _content_changed_row(row: dict[str, Any]) -> bool:
    return not row["is_folder"] and ((row["size"], row["quick_xor_hash"]) != (row["placed_source_size"],
                                                                              row["placed_source_hash"]))


def _parent(path: str) -> str:
    return "/" + clean_path(path).rpartition("/")[0]


def _name(path: str) -> str:
    return clean_path(path).rpartition("/")[2]


class _Applier:
    """Applies a list of changes to the target, recording each step in the store and the audit trail."""

    def __init__(self, store: StateStore, target: Target, rules: NameRules, summary: SyncSummary,
                 deletions: str) -> None:
        self.store, self.target, self.rules, self.s, self.deletions = store, target, rules, summary, deletions
        self.lock = threading.Lock()
        self.move = getattr(target, "move", None)
        self.listed = FolderListings(target)
        self.delete_if = getattr(target, "delete_if", None)
        if not callable(self.move) or not callable(self.delete_if):
            raise ConfigError("this target cannot move or conditionally delete files, which `sync` needs")

    # --- bookkeeping -------------------------------------------------------------------------------------------
    def row(self, c: Change) -> dict[str, Any]:
        row = self.store.item(c.drive_id, c.item_id)
        if row is None:
            raise StateError(f"item {c.drive_id}/{c.item_id} vanished from the state database during sync")
        return row

    def count(self, what: str) -> None:
        with self.lock:
            self.s.applied[what] = self.s.applied.get(what, 0) + 1

    def note(self, c: Change, kind: str, outcome: str, frm: str | None, to: str | None, **detail: Any) -> None:
        self.store.record_change(c.drive_id, c.item_id, kind, outcome, is_folder=c.is_folder,
                                 source_path=c.source_path, user=c.user, from_path=frm, to_path=to, **detail)

    def conflict(self, c: Change, row: dict[str, Any], problem: str, at: str, entry: RemoteEntry | None,
                 action: str, ours: str | None = None) -> None:
        rec = {"drive_id": c.drive_id, "item_id": c.item_id, "source_path": c.source_path, "target_user": c.user,
               "target_path": at, "problem": problem, "action": action, "ours_at": ours,
               "target_version": _facts(entry), "source_version": _source_facts(row),
               "placed_version": {"etag": row["placed_etag"], "size": row["placed_size"],
                                  "checksum": row["placed_checksum"], "at": row["placed_at"]}}
        self.s.conflicts.append(rec)
        self.note(c, "conflict", "conflict", at, ours, problem=problem, action=action,
                  target_version=rec["target_version"], source_version=rec["source_version"])
        self.store.audit("sync-conflict", f"{c.user}:{at}", drive=c.drive_id, item=c.item_id, problem=problem,
                         resolution=action, ours=ours)

    def to_pending(self, row: dict[str, Any], reason: str | None = None) -> None:
        if row["status"] == ItemStatus.PENDING:
            if reason:
                self.store.update_item(row["drive_id"], row["item_id"], last_error=reason)
            return
        self.store.transition(row["drive_id"], row["item_id"], ItemStatus.PENDING, last_error=reason)

    def beside(self, c: Change, row: dict[str, Any], dest: str) -> str:
        """Pin a conflict name for our version next to `dest`, so layouts keep it; returns the new path."""
        name = conflict_name(_name(dest), c.item_id, self.rules)
        path = _parent(dest).rstrip("/") + "/" + name
        self.store.pin_name(c.drive_id, c.item_id, name, target_path=path)
        return path

    def release_to_person(self, c: Change, row: dict[str, Any]) -> None:
        """What we placed is a person's file now: forget it and upload the source's version afresh."""
        self.store.release_placed(c.drive_id, c.item_id)
        self.to_pending(self.row(c), "sync: copied again beside a file changed at the target")

    # --- folders -----------------------------------------------------------------------------------------------
    def new_folder(self, c: Change) -> None:
        row = self.row(c)
        dest = row["target_path"]
        entry = self.target.stat(c.user, dest)
        if entry is not None and not entry.is_folder:
            ours = self.beside(c, row, dest)
            self.conflict(c, row, "a file is where this new folder goes", dest, entry,
                          "kept the file; the folder is created beside it", ours)
            dest = ours
        self.target.ensure_folder(c.user, dest)
        with self.store.atomic():
            if row["status"] == ItemStatus.FAILED:
                self.store.transition(c.drive_id, c.item_id, ItemStatus.PENDING)
            for st in (ItemStatus.TRANSFERRING, ItemStatus.UPLOADED, ItemStatus.VERIFIED):
                self.store.transition(c.drive_id, c.item_id, st)
        self.store.audit("mkcol", f"{c.user}:{dest}", drive=c.drive_id, item=c.item_id, sync=True)
        self.note(c, NEW_FOLDER, "created", None, dest)
        self.count(NEW_FOLDER)

    def move_item(self, c: Change, depth: int = 0) -> None:
        """MOVE what we placed to where the layout puts it now (folders whole, files with If-Match)."""
        row = self.row(c)
        src, dest, user = row["placed_path"], row["target_path"], row["target_user"] or ""
        if src is None or dest is None or (clean_path(src) == clean_path(dest) and (row["placed_user"] or "") == user):
            return  # moved with its folder, or released meanwhile
        if (row["placed_user"] or "") != user:
            self.store.release_placed(c.drive_id, c.item_id)  # a move between accounts is a copy: upload afresh
            self.to_pending(self.row(c), "sync: the drive now goes to another account")
            return
        etag = None if row["is_folder"] else row["placed_etag"]
        outcome = self.move(user, src, dest, if_match=etag)
        if outcome == NO_PARENT:  # no MKCOL before each MOVE: the parent is made only when the MOVE says 409
            self.target.ensure_folder(user, _parent(dest))
            outcome = self.move(user, src, dest, if_match=etag)
        outcome = self.settle(outcome, user, src, dest, etag)
        if outcome == TAKEN and depth < 3 and self.clear_way(c, user, dest, depth):
            outcome = self.settle(self.move(user, src, dest, if_match=etag), user, src, dest, etag)
        if outcome == DONE:
            self.moved(c, row, src, dest)
            return
        if outcome == MISSING:
            there = self.target.stat(user, dest)
            if there is not None and (row["is_folder"] and there.is_folder or _same_bytes(there, row)):
                self.moved(c, row, src, dest, resumed=True)  # an earlier run moved it and was killed before recording
                return
            self.conflict(c, row, "deleted at the target since we wrote it", src, None,
                          "copied again at the new path")
            if row["is_folder"]:
                self.store.release_placed_below(user, src)
                self.store.release_placed(c.drive_id, c.item_id)
                self.requeue_below(c.drive_id, dest)
                self.new_folder(c)
            else:
                self.release_to_person(c, row)
            return
        if outcome == CHANGED:
            entry = self.target.stat(user, src)
            self.conflict(c, row, "changed at the target since we wrote it", src, entry,
                          "left as it is; the source's version is copied to the new path")
            self.release_to_person(c, row)
            return
        if outcome in (TAKEN, NO_PARENT):
            entry = self.target.stat(user, dest)
            ours = self.beside(c, row, dest)
            self.conflict(c, row, "something else is at the destination name", dest, entry,
                          "kept it; ours is moved beside it", ours)
            if self.move(user, src, ours, if_match=etag) == DONE:
                self.moved(c, self.row(c), src, ours)
            else:
                self.release_to_person(c, row)
            return
        raise TargetItemError(f"MOVE {user}:{src} → {dest}: unexpected outcome {outcome}")

    def settle(self, outcome: str, user: str, src: str, dest: str, etag: str | None) -> str:
        """Read a 412 from the facts, not the server's words (plain WebDAV servers word both 412s alike): the
        source gone → missing; its etag not ours → changed; else the destination is taken."""
        if outcome not in (CHANGED, TAKEN):
            return outcome
        now = self.target.stat(user, src)
        if now is None:
            return MISSING
        if etag and (now.etag or "").strip('"') != etag.strip('"'):
            return CHANGED
        return TAKEN if self.target.stat(user, dest) is not None else outcome

    def moved(self, c: Change, row: dict[str, Any], src: str, dest: str, *, resumed: bool = False) -> None:
        """Record a MOVE. The etag is kept: Nextcloud keeps a file's etag through a MOVE (verified on 32.0.1, and
        in the conformance suite); where a server changes it, a later edit finds "changed at the target" and
        keeps both versions, never losing one."""
        user = row["target_user"] or ""
        with self.store.atomic():
            self.store.set_placed(c.drive_id, c.item_id, path=dest, source_path=row["path"])
            inside = self.store.move_placed_prefix(user, clean_path_slash(src), clean_path_slash(dest)) \
                if row["is_folder"] else 0
        for r in [row, *(self.store.placed_below(user, clean_path_slash(dest)) if row["is_folder"] else [])]:
            self.unfail(r)
        self.store.audit("move", f"{user}:{src}", to=dest, drive=c.drive_id, item=c.item_id, inside=inside,
                         resumed=resumed)
        self.note(c, MOVE, "moved", src, dest, inside=inside)
        self.count("moved_folders" if row["is_folder"] else "moved_files")

    def unfail(self, row: dict[str, Any]) -> None:
        """A `verify` run between the source's move and this sync looked for the file at its new path too early
        and marked it failed; the MOVE put our unchanged bytes there, so it is verified again (not re-sent)."""
        if row["status"] != ItemStatus.FAILED or not (row["last_error"] or "").startswith("verify: "):
            return
        current = self.store.item(row["drive_id"], row["item_id"]) or row
        if clean_path(current["placed_path"] or "") != clean_path(current["target_path"] or "") or \
                _content_changed_row(current):
            return
        with self.store.atomic():
            for st in (ItemStatus.TRANSFERRING, ItemStatus.UPLOADED, ItemStatus.VERIFIED):
                self.store.transition(row["drive_id"], row["item_id"], st, last_error=None)

    def clear_way(self, c: Change, user: str, dest: str, depth: int) -> bool:
        """The destination holds something we placed that is on its way out (deleted at the source under
        `trash`, or moving elsewhere): move or delete it first. True when the way is now clear."""
        other = self.store.placed_at_path(user, dest) or self.store.placed_at_path(user, "/" + clean_path(dest))
        if other is None or (other["drive_id"], other["item_id"]) == (c.drive_id, c.item_id):
            return False
        oc = Change(MOVE, other["drive_id"], other["item_id"], bool(other["is_folder"]), other["path"] or "",
                    user, other["placed_path"], other["target_path"])
        if other["deleted"] and self.deletions == "trash":
            self.delete(Change(DELETE, other["drive_id"], other["item_id"], bool(other["is_folder"]),
                               other["path"] or "", user, other["placed_path"], None))
        elif not other["deleted"] and other["target_path"] and clean_path(other["target_path"]) != clean_path(dest):
            self.move_item(oc, depth + 1)
        else:
            return False
        return self.target.stat(user, dest) is None

    def requeue_below(self, drive_id: str, folder: str) -> None:
        for r in self.store.iter_items(drive_id, statuses=("verified",)):
            tp = r["target_path"] or ""
            if clean_path(tp).startswith(clean_path(folder) + "/") and r["placed_path"] is None:
                self.store.transition(drive_id, r["item_id"], ItemStatus.PENDING,
                                      last_error="sync: its folder was deleted at the target")

    # --- files -------------------------------------------------------------------------------------------------
    def edit(self, c: Change) -> None:
        """Queue an upload over our file, if it is still what we wrote; else keep both."""
        row = self.row(c)
        if row["placed_path"] is None or row["status"] in (ItemStatus.TRANSFERRING, ItemStatus.UPLOADED):
            return  # released meanwhile, or our own upload in flight (the copy pool resumes it)
        at, user = row["placed_path"], row["placed_user"] or ""
        entry = self.target.stat(user, at)
        if entry is None:
            self.conflict(c, row, "deleted at the target since we wrote it", at, None,
                          "the source's new version is copied there")
            self.store.release_placed(c.drive_id, c.item_id)
        elif not _same_bytes(entry, row):
            ours = self.beside(c, row, row["target_path"])
            self.conflict(c, row, "edited at the target since we wrote it", at, entry,
                          "kept the target's version; the source's new version is copied beside it", ours)
            self.store.release_placed(c.drive_id, c.item_id)
        self.to_pending(self.row(c), "sync: changed at the source")
        self.note(c, EDIT, "queued", at, self.row(c)["target_path"])

    def raced(self, c: Change) -> bool:
        """An edit whose conditional upload found another file than ours (a person wrote it after our check):
        kept as it is, the conflict listed, ours queued again beside it. True when it was such a race."""
        row = self.row(c)
        if row["status"] != ItemStatus.FAILED or ChangedAtTarget.marker not in (row["last_error"] or "") or \
                row["placed_path"] is None:
            return False
        at, user = row["placed_path"], row["placed_user"] or ""
        entry = self.target.stat(user, at)
        ours = self.beside(c, row, row["target_path"]) if entry is not None else None
        self.conflict(c, row, f"{'edited' if entry else 'deleted'} at the target while this sync uploaded over it",
                      at, entry, "kept the target's version; the source's new version is copied beside it"
                      if entry else "the source's new version is copied there", ours)
        self.release_to_person(c, row)
        return True

    def new_file(self, c: Change) -> None:
        """Before the copy pool writes a new file: a file of someone else at its path is kept, ours goes beside."""
        row = self.row(c)
        if row["status"] in (ItemStatus.TRANSFERRING, ItemStatus.UPLOADED):
            return  # our own upload in flight: the copy pool checks it and resumes it
        dest = row["target_path"]
        entry = self.listed.stat(c.user, dest)
        if entry is not None and not (self.store.placed_at_path(c.user, dest) or self.store.placed_at_path(
                c.user, "/" + clean_path(dest))) and adopt_one(self.store, self.target, row, entry, self.rules):
            self.note(c, NEW_FILE, "adopted", None, dest)  # its bytes are there already (engine.adopt)
            return
        if entry is not None and not (self.deletions == "trash" and self.clear_way(c, c.user, dest, 0)):
            if not entry.is_folder and row["sha1"] and any(
                    x.upper() == f"SHA1:{row['sha1']}".upper() for x in entry.checksums) and entry.size == row["size"]:
                return  # the same bytes already there (an earlier run wrote them): copy will adopt them
            ours = self.beside(c, row, dest)
            self.conflict(c, row, "a file or folder not written by us is at this name", dest, entry,
                          "kept it; ours is copied beside it", ours)
        self.note(c, NEW_FILE, "queued", None, self.row(c)["target_path"])

    # --- deletions ---------------------------------------------------------------------------------------------
    def delete(self, c: Change) -> None:
        row = self.row(c)
        at, user = row["placed_path"], row["placed_user"] or ""
        if at is None:
            return  # deleted with its folder
        if self.deletions != "trash":
            self.keep(c, row, at, user)
            return
        if row["is_folder"]:
            self.delete_folder(c, row, at, user)
            return
        outcome = self.delete_if(user, at, row["placed_etag"] or None)
        if outcome in (CHANGED, TAKEN):  # a 412 on DELETE can only be the If-Match
            entry = self.target.stat(user, at)
            self.conflict(c, row, "deleted at the source, but changed at the target since we wrote it", at, entry,
                          "kept at the target")
            self.store.release_placed(c.drive_id, c.item_id)
            return
        self.store.release_placed(c.drive_id, c.item_id)
        self.store.audit("delete", f"{user}:{at}", drive=c.drive_id, item=c.item_id, trash=True,
                         already_gone=outcome == MISSING)
        self.note(c, DELETE, "trashed" if outcome == DONE else "already gone", at, None)
        self.count("deleted")

    def delete_folder(self, c: Change, row: dict[str, Any], at: str, user: str, final: bool = False) -> None:
        """One DELETE for a folder that holds only our unchanged writes of deleted items; else file by file."""
        if self.target.stat(user, at) is None:
            self.store.release_placed_below(user, clean_path_slash(at))
            self.note(c, DELETE, "already gone", at, None)
            return
        foreign = []
        for e in self.target.walk(user, at):
            ours = self.store.placed_at_path(user, "/" + clean_path(e.path)) or self.store.placed_at_path(
                user, clean_path(e.path))
            if ours is None or not ours["deleted"] or (not e.is_folder and not _same_bytes(e, ours)):
                foreign.append(e)
        if foreign and not final:
            self.pending_folders.append(c)  # files go one by one first; the folder is looked at again after
            return
        if foreign:
            self.conflict(c, row, f"deleted at the source, but the target folder holds {len(foreign)} items not "
                          "written by us or changed since", at, None, "kept at the target")
            self.store.release_placed(c.drive_id, c.item_id)
            return
        outcome = self.delete_if(user, at, None)
        released = self.store.release_placed_below(user, clean_path_slash(at))
        self.store.audit("delete", f"{user}:{at}", drive=c.drive_id, item=c.item_id, trash=True, folder=True,
                         inside=released - 1, already_gone=outcome == MISSING)
        self.note(c, DELETE, "trashed", at, None, inside=released - 1)
        self.count("deleted")

    def delete_folder_again(self, c: Change) -> None:
        """A folder whose files went one by one: deleted now if only our writes were left in it."""
        row = self.row(c)
        if row["placed_path"]:
            self.delete_folder(c, row, row["placed_path"], row["placed_user"] or "", final=True)

    def keep(self, c: Change, row: dict[str, Any], at: str, user: str) -> None:
        released = self.store.release_placed_below(user, clean_path_slash(at)) if row["is_folder"] else 0
        self.store.release_placed(c.drive_id, c.item_id)
        rec = {"drive_id": c.drive_id, "item_id": c.item_id, "source_path": c.source_path, "target_user": user,
               "target_path": at, "folder": bool(row["is_folder"]), "inside": released}
        self.s.kept.append(rec)
        self.store.audit("keep", f"{user}:{at}", drive=c.drive_id, item=c.item_id, policy="keep")
        self.note(c, DELETE, "kept", at, None, policy="keep")
        self.count("kept")

    pending_folders: list[Change]


def clean_path_slash(path: str) -> str:
    """Stored target paths start with '/'; prefix arithmetic in the store uses the stored form."""
    return "/" + clean_path(path)


def _layout(store: StateStore, target: Target, mappings: Any, drive_ids: list[str], plan_options: Any,
            rules: NameRules, summary: SyncSummary) -> list[str]:
    """Lay out again (store only) the drives that have changes; returns the mapped drive ids."""
    from migrate.engine.files.layout import assign_drives
    from migrate.engine.files.relayout import relayout_drive

    assignment = assign_drives(store, mappings, prefix=plan_options.prefix,
                               service_account=plan_options.service_account, rules=rules)
    if assignment.errors:
        raise MappingError("\n".join(assignment.errors), hint="fix the mapping files, then run `sync` again")
    by_id = {t.id: t for t in assignment.targets}
    mapped = []
    for d in drive_ids:
        t = by_id.get(d)
        if t is None or t.status != "mapped":
            continue
        mapped.append(d)
        lay = relayout_drive(store, t, rules, onenote_policy=plan_options.onenote,
                             max_file_size=plan_options.max_file_size)
        summary.renames += [r for r in lay.renames]
    return mapped


def run_sync(store: StateStore, source: Source, target: Target, mappings: Any, selection: Selection,
             plan_options: Any, options: SyncOptions = SyncOptions(), *,
             say: Callable[[str], None] = lambda _m: None, scan_listener: Any = None,
             source_stats: Callable[[], dict[str, Any]] | None = None) -> SyncSummary:
    """One delta pass and the changes applied (see the module docstring); `dry_run` lists them, writes nothing
    to the target. Raises MappingError (exit 2) on bad mappings; fatal target errors stop the run, resumable."""
    from migrate.engine.files.pool import copy_drives
    from migrate.engine.files.scan import scan
    from migrate.engine.files.transfer import TransferOptions

    started = time.monotonic()
    summary = SyncSummary(dry_run=options.dry_run, deletions=options.deletions)
    drives = selection.drives(store)
    if not drives:
        raise ConfigError("no drive matches the selection (--batch/--drive/--user)",
                          hint="`m365-migrate status` lists the drives with their batches and owners")
    say(f"delta pass over {len(drives)} drives")
    sc = scan(store, source, selection, workers=options.workers, listener=scan_listener, source_stats=source_stats)
    summary.scan = sc.to_dict()
    scanned = [d.drive_id for d in sc.drives if d.state == "scanned"]
    for d in sc.drives:
        if d.state != "scanned":
            summary.failed.append({"drive_id": d.drive_id, "path": "", "error": f"delta pass: {d.error or d.state}"})
    rules = NameRules.from_features(target.features, windows=plan_options.windows_names)
    changed = [d for d in scanned if any(store.waiting_changes(d).values()) or store.has_unsent(d)]
    say(f"laying out {len(changed)} drives with changes")
    mapped = _layout(store, target, mappings, changed, plan_options, rules, summary)
    changes = detect(store, mapped)
    summary.drives = mapped
    summary.changes = [c.to_dict() for c in changes]
    summary.counts = summarise(changes)
    if options.dry_run:
        summary.shares = apply_share_changes(store, target, mappings, scanned, plan_options, dry_run=True)
        summary.seconds = time.monotonic() - started
        return summary
    stopped = _unmounted(store, target, mapped, summary)
    if stopped:
        mapped = [d for d in mapped if d not in stopped]
        changes = [c for c in changes if c.drive_id not in stopped]
        scanned = [d for d in scanned if d not in stopped]
    ap = _Applier(store, target, rules, summary, options.deletions)
    ap.pending_folders = []
    ap.listed = FolderListings(target, changes)
    say(f"applying {len(changes)} changes")

    def phase(todo: list[Change], fn: Callable[[Change], None], *, parallel: bool = True) -> None:
        """Apply `fn` to each change (`workers` at a time when `parallel`: a change costs one or two round trips,
        so waiting for them one by one would make the pass cost latency × changes); an item-level refusal is
        recorded and the rest go on; a fatal error (credentials, target full) stops the pass after the running
        ones and is raised."""
        def one(c: Change) -> None:
            try:
                fn(c)
            except (TargetItemError, StateError) as exc:
                _failed(store, summary, c, exc)

        if not parallel or options.workers <= 1 or len(todo) < 2:
            for c in todo:
                one(c)
            return
        with ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="sync") as pool:
            futures = [pool.submit(one, c) for c in todo]
            wait(futures)
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]  # type: ignore[misc]

    phase([c for c in changes if c.kind == NEW_FOLDER or (c.kind == MOVE and c.is_folder)],
          lambda c: ap.new_folder(c) if c.kind == NEW_FOLDER else ap.move_item(c), parallel=False)
    phase([c for c in changes if c.kind == MOVE and not c.is_folder], ap.move_item)
    phase([c for c in changes if c.kind == EDIT or (c.kind == MOVE and c.edited)], ap.edit)  # checked here, and
    # again by the upload itself (If-Match): a person's write in between is a conflict, not overwritten
    phase([c for c in changes if c.kind == NEW_FILE], ap.new_file)
    rows = [r for r in (store.drive(d) for d in mapped) if r]
    say("copying new and changed files")
    cs = copy_drives(store, source, target, rows, workers=options.workers, bulk=options.bulk,
                     options=TransferOptions(versions=options.versions))
    uploaded = cs.files_verified
    edits = [c for c in changes if c.kind == EDIT or (c.kind == MOVE and c.edited)]
    if [c for c in edits if ap.raced(c)]:
        cs = copy_drives(store, source, target, rows, workers=options.workers, bulk=options.bulk,
                     options=TransferOptions(versions=options.versions))  # ours, beside
        uploaded += cs.files_verified
    summary.copy = {k: v for k, v in cs.__dict__.items() if k not in ("failed", "notes")}
    summary.failed += cs.failed
    summary.applied["uploaded"] = uploaded
    phase([c for c in changes if c.kind == DELETE and c.is_folder], ap.delete, parallel=False)
    phase([c for c in changes if c.kind == DELETE and not c.is_folder], ap.delete)
    phase(sorted(ap.pending_folders, key=lambda c: -c.depth), ap.delete_folder_again, parallel=False)
    for d in mapped:
        store.settle_source_paths(d)
    summary.shares = apply_share_changes(store, target, mappings, scanned, plan_options, workers=options.workers,
                                         share_rate=options.share_rate, passwords_file=options.passwords_file,
                                         say=say)
    summary.seconds = time.monotonic() - started
    return summary


def _unmounted(store: StateStore, target: Target, drive_ids: list[str], summary: SyncSummary) -> set[str]:
    """Drives going to a team folder their writer does not see mounted (and writable): nothing of them is
    written by this pass (a write there would create a look-alike folder); each is listed as failed."""
    from migrate.engine.files.teamfolders import confirm_mount

    stopped = set()
    for drive_id in drive_ids:
        d = store.drive(drive_id)
        if d is None:
            continue
        try:
            confirm_mount(target, d)
        except MigrateError as exc:
            if isinstance(exc, Fatal):
                raise
            log.error("drive %s stopped: %s", d["name"], exc.message)
            store.update_drive(drive_id, last_error=exc.message)
            rec = {"drive_id": drive_id, "path": "", "error": f"{exc.message}; nothing of this drive was written"
                                                             + (f" ({exc.hint})" if exc.hint else "")}
            summary.failed.append(rec)
            summary.stopped.append({**rec, "name": d["name"], "hint": exc.hint})
            stopped.add(drive_id)
    return stopped


def raise_stopped(summary: SyncSummary) -> None:
    """Like `copy`: drives stopped because their team folder is not mounted make the run end with that error
    (exit 2, a setup problem to fix), after the other drives were synced and the report written."""
    from migrate.engine.files.teamfolders import TeamFolderNotMounted

    if summary.stopped:
        lines = "\n".join(f"  drive {d['name']!r} ({d['drive_id']}): {d['error']}" for d in summary.stopped)
        raise TeamFolderNotMounted(f"{len(summary.stopped)} drive(s) stopped before any write, the others were "
                                   f"synced:\n{lines}", hint=summary.stopped[0]["hint"])


def _failed(store: StateStore, summary: SyncSummary, c: Change, exc: MigrateError) -> None:
    reason = str(exc).splitlines()[0]
    log.warning("%s %s: %s", c.kind, c.source_path, reason)
    summary.failed.append({"drive_id": c.drive_id, "item_id": c.item_id, "path": c.source_path, "error": reason})
    store.record_change(c.drive_id, c.item_id, c.kind, "failed", is_folder=c.is_folder, source_path=c.source_path,
                        user=c.user, from_path=c.from_path, to_path=c.to_path, error=reason)


def waiting(store: StateStore, drive_ids: list[str]) -> dict[str, dict[str, int]]:
    """Changes recorded by `scan` and not yet applied, per drive (for `status`)."""
    return {d: store.waiting_changes(d) for d in drive_ids}


__all__ = ["SyncOptions", "SyncSummary", "raise_stopped", "run_sync", "waiting", "EDIT", "MOVE", "NEW_FILE", "NEW_FOLDER", "DELETE"]
