"""Adoption: files the target already holds whole are recorded as verified without a download or an upload.

A second state database, a lost one, an earlier run of another tool: the plan sees those files at their target
paths with the source's size ("Already at the target"). Sending them again costs one Graph download each, and
Graph's resource units are the budget of a migration; the target is near. So before `copy` transfers anything,
each such file is judged from the target alone:

- same size and the target's stored SHA1 equal to the SHA1 the source lists (OneDrive Personal lists one);
- else same size and the QuickXorHash of the target's bytes (read and hashed while streaming, never held)
  equal to the source's listed `quickXorHash`;
- a 0-byte file is whole when the target's is 0 bytes too (Graph lists no hash for empty files);
- a file the source lists without a hash is not adopted: only its download could prove the target's copy, so
  `copy` sends it as before.

A whole file walks pending → transferring → uploaded → verified in one checked write, with an `adopt` audit
record naming size, hashes and how it was checked; its modification time is set where the target can do that
without a rewrite (Nextcloud: PROPPATCH), else it is sent again. A file whose bytes differ is never written by
adoption: our own earlier write (a source edit) stays pending for `copy` to replace; anyone else's follows
`[target] on_conflict` (skip: a conflict, left as it is; rename: the source's copy goes beside it under the
plan's rename). Results are recorded a group at a time from the calling thread; a kill leaves the rest pending
and the rerun judges them again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

from migrate.engine.files.transfer import expected_mtime, target_notes
from migrate.engine.files.verify import list_folders
from migrate.errors import Fatal, MigrateError
from migrate.models import ItemStatus, RemoteEntry
from migrate.names import NameRules, with_suffix
from migrate.protocols import Target
from migrate.store import StateStore
from migrate.store.items import ADOPT_COLUMNS
from migrate.transport.hashing import HashingStream

log = logging.getLogger(__name__)

ADOPT_MARK = "adopt: "  # last_error prefix of a conflict adoption found (judged again by every copy)
EMPTY_SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
# how a file was found whole (the audit record's `checked`, the summary's `how`)
BY_STORED_SHA1 = "the target's stored SHA1 (equal to the source's)"
BY_READING = "the QuickXorHash of the target's bytes (equal to the source's)"
BY_EMPTY = "size (an empty file at both ends)"
ADOPT, DIFFERS, SEND = "adopt", "differs", "send"
GROUP_ROWS, GROUP_SECONDS = 500, 1.0
PROGRESS_SECONDS = 15.0
LISTED = 200


@dataclass(frozen=True, slots=True)
class Candidate:
    """A pending file and what its target path holds (same size), as adoption judges it."""

    drive_id: str
    item_id: str
    status: str
    user: str
    path: str
    name: str
    size: int
    mtime: float | None
    quick_xor_hash: str | None
    sha1: str | None
    ours: bool  # the file there is the one our earlier write left (its etag)
    edited: bool  # ours, and the source's listed hash is no longer the one we copied (an edit to send)
    marked: bool  # a conflict an earlier adoption recorded
    entry: RemoteEntry

    @classmethod
    def of(cls, row: dict[str, Any], entry: RemoteEntry) -> Candidate:
        etags = {e for e in (row["target_etag"], row["placed_etag"]) if e}
        ours = bool(entry.etag and entry.etag in etags) or _recorded(row, entry)
        edited = ours and bool(row["placed_source_hash"]) and row["placed_source_hash"] != row["quick_xor_hash"]
        return cls(row["drive_id"], row["item_id"], row["status"], row["target_user"] or "", row["target_path"],
                   row["name"] or "", int(row["size"] or 0), row["mtime"], row["quick_xor_hash"] or None,
                   (row["sha1"] or "").lower() or None, ours, edited,
                   (row["last_error"] or "").startswith(ADOPT_MARK), entry)


def _recorded(row: dict[str, Any], entry: RemoteEntry) -> bool:
    """The file there is bytes we sent whose answer was lost (size and SHA1 recorded before they left: an earlier
    version of the file's history, engine.versions)."""
    sha = stored_sha1(entry)
    return bool(sha and row["target_checksum"] and row["target_size"] == entry.size
                and row["target_checksum"].lower() == f"sha1:{sha}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the target showed: ADOPT (whole, `how`), DIFFERS (other bytes, `why`) or SEND (cannot tell, `why`)."""

    kind: str
    why: str = ""
    sha1: str | None = None
    entry: RemoteEntry | None = None
    note: str = ""
    read_bytes: int = 0
    renamed_to: str | None = None  # on_conflict = rename: the free path beside the other file


@dataclass
class AdoptSummary:
    """Counts of one adoption pass (part of the copy summary)."""

    files: int = 0
    bytes: int = 0
    read_files: int = 0
    read_bytes: int = 0
    how: dict[str, int] = field(default_factory=dict)
    mtimes_set: int = 0
    conflicts: list[dict[str, Any]] = field(default_factory=list)  # the first LISTED; `status` lists them all
    conflict_count: int = 0
    renamed: int = 0
    not_adopted: dict[str, int] = field(default_factory=dict)  # reason → files left for `copy` to send

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "bytes": self.bytes, "read_files": self.read_files,
                "read_bytes": self.read_bytes, "how": dict(self.how), "mtimes_set": self.mtimes_set,
                "conflicts": self.conflicts, "conflict_count": self.conflict_count, "renamed": self.renamed, "not_adopted": dict(self.not_adopted)}


def stored_sha1(entry: RemoteEntry) -> str | None:
    """The SHA1 the target keeps for a file (Nextcloud's `oc:checksums`), lower-case hex, or None."""
    return next((c.split(":", 1)[1].strip().lower() for c in entry.checksums if c.upper().startswith("SHA1:")), None)


def judge(target: Target, c: Candidate, *, on_conflict: str, rules: NameRules) -> Verdict:
    """Whether the target's file at `c.path` is the source's file, from the target alone (no Graph request).

    Reads the target's bytes only when no stored checksum decides. Raises what the target raises (the caller
    leaves the file pending unless the error is fatal).
    """
    if c.edited:  # known without reading: our copy of an earlier version
        return Verdict(SEND, "our earlier copy, the source changed since")
    stored = stored_sha1(c.entry)
    read = 0
    if c.size == 0:
        verdict = Verdict(ADOPT, BY_EMPTY, EMPTY_SHA1)
    elif c.sha1 and stored:
        verdict = Verdict(ADOPT, BY_STORED_SHA1, stored) if stored == c.sha1 else \
            Verdict(DIFFERS, "same size, the target's stored SHA1 differs from the source's")
    elif not c.quick_xor_hash:
        return Verdict(SEND, "the source lists no hash for it (only its download could prove the target's copy)")
    else:
        opener = getattr(target, "open_read", None)
        if not callable(opener):
            return Verdict(SEND, "the target cannot be read back")
        with opener(c.user, c.path) as chunks:
            hs = HashingStream(chunks)
            for _ in hs:
                pass
        read = hs.size
        if hs.size != c.size:
            return Verdict(SEND, f"changed at the target while it was read ({hs.size} bytes, {c.size} listed)",
                           read_bytes=read)
        if hs.quick_xor_hash != c.quick_xor_hash:
            verdict = Verdict(DIFFERS, "same size, the QuickXorHash of the target's bytes differs from the source's",
                              read_bytes=read)
        elif stored and stored != hs.sha1:
            # whole, but a later `verify` would trust the wrong checksum: sending it again stores the right one
            return Verdict(SEND, "the target's stored SHA1 does not match its bytes", read_bytes=read)
        else:
            verdict = Verdict(ADOPT, BY_READING, hs.sha1, read_bytes=read)
    if verdict.kind == DIFFERS:
        if c.ours:
            return Verdict(SEND, "our earlier copy, the source changed since", read_bytes=read)
        if on_conflict == "rename":
            return _beside(target, c, verdict, rules, read)
        return verdict
    return _with_mtime(target, c, verdict)


def _beside(target: Target, c: Candidate, differs: Verdict, rules: NameRules, read: int) -> Verdict:
    """on_conflict = rename: ours goes beside the other file under the plan's rename; when an earlier run put it
    there already (whole), that copy is adopted at the renamed path."""
    folder, _, name = c.path.rstrip("/").rpartition("/")
    new_path = f"{folder}/{with_suffix(name, c.item_id, rules)}"
    there = target.stat(c.user, new_path)
    if there is None:
        return Verdict(DIFFERS, differs.why, read_bytes=read, renamed_to=new_path)
    if not there.is_folder and there.size == c.size:
        moved = replace(c, path=new_path, entry=there, ours=False, edited=False)
        v = judge(target, moved, on_conflict="skip", rules=rules)
        if v.kind == ADOPT:
            return replace(v, read_bytes=v.read_bytes + read, renamed_to=new_path)
    return Verdict(DIFFERS, differs.why + "; the renamed path is taken too", read_bytes=read)


def _with_mtime(target: Target, c: Candidate, verdict: Verdict) -> Verdict:
    """A whole file keeps the source's modification time where the target keeps times: set it by a touch when
    the target offers one, else the file is sent again (an upload carries the time)."""
    entry = c.entry
    # to the second, as an upload stores it (check_entry allows a second either way; this keeps it exact)
    if not (target.features.set_mtime and c.mtime and entry.mtime is not None
            and int(entry.mtime) != expected_mtime(c.mtime)):
        return Verdict(ADOPT, verdict.why, verdict.sha1, entry, read_bytes=verdict.read_bytes)
    touch = getattr(target, "touch", None)
    if not callable(touch):
        return Verdict(SEND, "its modification time differs and the target cannot set it without a rewrite",
                       read_bytes=verdict.read_bytes)
    now = touch(c.user, c.path, c.mtime)
    note = "; ".join(target_notes(target, {"target_user": c.user, "target_path": c.path}))
    if now.size != c.size or now.mtime is None or abs(now.mtime - expected_mtime(c.mtime)) > 1:
        return Verdict(SEND, "its modification time could not be set", read_bytes=verdict.read_bytes)
    return Verdict(ADOPT, verdict.why, verdict.sha1, now, note=note or "modification time set at the target",
                   read_bytes=verdict.read_bytes)


def candidates(store: StateStore, target: Target, drive_ids: Iterable[str], *, workers: int
               ) -> Iterator[tuple[dict[str, Any], RemoteEntry | None]]:
    """Pending and failed files (and conflicts adoption recorded) with what their target path holds, by one
    Depth-1 listing per target folder, `workers` folders at a time."""
    statuses = ("pending", "failed", "conflict")
    groups = ((u, f, [r for r in rows if r["status"] != "conflict" or (r["last_error"] or "").startswith(ADOPT_MARK)])
              for d in drive_ids
              for u, f, rows in store.iter_by_target_folder(d, statuses, columns=ADOPT_COLUMNS))
    yield from list_folders(target, ((u, f, rows) for u, f, rows in groups if rows), workers=workers,
                            confirm_missing=False)


def adopt_files(store: StateStore, target: Target, drive_ids: list[str], *, workers: int = 8,
                on_conflict: str = "skip", rules: NameRules | None = None,
                say: Callable[[str], None] = lambda _m: None) -> AdoptSummary:
    """Judge every pending file of `drive_ids` that the target holds at its path with the source's size, many at
    a time, and record the outcome a group at a time (see the module docstring). Fatal target errors (auth,
    refused account) are raised after the running checks finish; any other error leaves that file pending."""
    rules = rules or NameRules.from_features(target.features)
    out = AdoptSummary()
    if not drive_ids:
        return out
    say(f"checking the files the target already holds in {len(drive_ids)} drives (reads the target only)")
    todo: list[tuple[Candidate, Verdict]] = []
    last = shown = time.monotonic()
    fatal: list[BaseException] = []

    def flush() -> None:
        nonlocal last, shown
        _record(store, todo, out, on_conflict)
        todo.clear()
        last = time.monotonic()
        if last - shown >= PROGRESS_SECONDS:
            shown = last
            say(f"  {out.files} files recorded so far, {out.read_bytes / 2**20:.0f} MiB read back from the target")

    def settle(done: Iterable[Future[tuple[Candidate, Verdict]]]) -> None:
        for f in done:
            exc = f.exception()
            if exc is not None:
                if isinstance(exc, Fatal) or not isinstance(exc, MigrateError):
                    fatal.append(exc)
                continue
            todo.append(f.result())
        if len(todo) >= GROUP_ROWS or time.monotonic() - last >= GROUP_SECONDS:
            flush()

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="adopt") as pool:
        running: set[Future[tuple[Candidate, Verdict]]] = set()
        for row, entry in candidates(store, target, drive_ids, workers=workers):
            if fatal:
                break
            if row["status"] == "conflict" and (entry is None or entry.is_folder):
                todo.append((Candidate.of(row, RemoteEntry(row["target_path"], False)), Verdict(SEND, "gone")))
                continue
            if entry is None or entry.is_folder or entry.size != (row["size"] or 0):
                continue
            c = Candidate.of(row, entry)
            if len(running) >= 2 * workers:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                settle(done)
            running.add(pool.submit(_judged, target, c, on_conflict, rules))
        done, _ = wait(running)
        settle(done)
    flush()
    if fatal:
        raise fatal[0]
    if out.files:
        say(f"already at the target, recorded without sending: {out.files} files")
    return out


def _judged(target: Target, c: Candidate, on_conflict: str, rules: NameRules) -> tuple[Candidate, Verdict]:
    try:
        return c, judge(target, c, on_conflict=on_conflict, rules=rules)
    except MigrateError as exc:
        if isinstance(exc, Fatal):
            raise
        log.info("%s:%s: not checked at the target (%s); it is sent", c.user, c.path, str(exc).splitlines()[0])
        return c, Verdict(SEND, f"could not be checked at the target: {str(exc).splitlines()[0]}")


def _record(store: StateStore, results: list[tuple[Candidate, Verdict]], out: AdoptSummary, on_conflict: str) -> None:
    """One transaction for a group of verdicts: adopted files verified with their audit record, conflicts marked."""
    if not results:
        return
    with store.atomic():
        for c, v in results:
            out.read_bytes += v.read_bytes
            out.read_files += 1 if v.read_bytes else 0
            if v.kind == ADOPT:
                _adopt(store, c, v)
                out.files += 1
                out.bytes += c.size
                out.how[v.why] = out.how.get(v.why, 0) + 1
                out.mtimes_set += 1 if v.note else 0
            elif v.kind == DIFFERS:
                _differs(store, c, v, out, on_conflict)
            else:
                if c.status == "conflict":  # the other file is gone, or it became ours: copy decides again
                    store.transition(c.drive_id, c.item_id, ItemStatus.PENDING, last_error=None)
                if v.why != "gone":
                    out.not_adopted[v.why] = out.not_adopted.get(v.why, 0) + 1


def _adopt(store: StateStore, c: Candidate, v: Verdict) -> None:
    entry = v.entry or c.entry
    if v.renamed_to:  # found whole beside another file (on_conflict = rename): that is where it stays
        store.pin_name(c.drive_id, c.item_id, v.renamed_to.rpartition("/")[2], v.renamed_to)
        c = replace(c, path=v.renamed_to)
    steps = (ItemStatus.PENDING,) if c.status == "conflict" else ()
    store.walk(c.drive_id, c.item_id, (*steps, ItemStatus.TRANSFERRING, ItemStatus.UPLOADED, ItemStatus.VERIFIED),
               expect=c.status, sha1=v.sha1, target_size=c.size, target_etag=entry.etag,
               target_checksum=f"SHA1:{v.sha1}" if v.sha1 else None, target_mtime=entry.mtime, last_error=None,
               note=v.note or None, adopted=v.why)
    store.audit("adopt", f"{c.user}:{c.path}", drive=c.drive_id, item=c.item_id, size=c.size, sha1=v.sha1,
                quick_xor_hash=c.quick_xor_hash, checked=v.why, mtime_set=bool(v.note))


def _differs(store: StateStore, c: Candidate, v: Verdict, out: AdoptSummary, on_conflict: str) -> None:
    where = f"{c.user}:{c.path}"
    if v.renamed_to:
        store.pin_name(c.drive_id, c.item_id, v.renamed_to.rpartition("/")[2], v.renamed_to)
        if c.status == "conflict":
            store.transition(c.drive_id, c.item_id, ItemStatus.PENDING, last_error=None)
        out.renamed += 1
        action = f"rename: copied beside it as {v.renamed_to}"
    else:
        action = {"rename": "skip: left as it is, not copied",
                  "overwrite-if-ours": "skip: not written by this tool, left as it is"}.get(
                      on_conflict, "skip: left as it is, not copied")
        steps = (ItemStatus.PENDING, ItemStatus.CONFLICT) if c.status == "failed" else (ItemStatus.CONFLICT,)
        message = f"{ADOPT_MARK}{v.why} at {where} ({action})"
        if c.status == "conflict":
            store.update_item(c.drive_id, c.item_id, last_error=message)
        else:
            store.walk(c.drive_id, c.item_id, steps, expect=c.status, last_error=message)
    out.conflict_count += 1
    if len(out.conflicts) < LISTED:
        out.conflicts.append({"drive_id": c.drive_id, "item_id": c.item_id, "target": where, "size": c.size,
                              "problem": v.why, "policy": on_conflict, "action": action})


def adopt_one(store: StateStore, target: Target, row: dict[str, Any], entry: RemoteEntry, rules: NameRules) -> bool:
    """Judge one pending file (a full item row) against the file `entry` at its target path and record it as
    verified when whole (`sync`: a new source file whose bytes are already there). False when not adopted:
    the caller goes on as before. Fatal target errors are raised."""
    if entry.is_folder or entry.size != (row["size"] or 0) or row["status"] not in ("pending", "failed"):
        return False
    c, v = _judged(target, Candidate.of(row, entry), "skip", rules)
    if v.kind != ADOPT:
        return False
    with store.atomic():
        _adopt(store, c, v)
    return True
