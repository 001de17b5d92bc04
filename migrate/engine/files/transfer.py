"""Moving one file: stream from the source, hash on the way, write to the target, check, record.

The item walks the state machine pending → transferring → uploaded → verified; every exit is recorded with
its reason, and every write to the target leaves an audit record. Nothing here retries a whole request (the
pacer does that); this module only re-opens a broken download at the byte where it stopped, and re-reads a
file once when its hash does not match.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from migrate.engine.accounting import Accounting
from migrate.errors import IntegrityError, MigrateError, Terminal, TransientError
from migrate.models import ItemStatus, RemoteEntry
from migrate.protocols import Source, Target
from migrate.store import StateStore
from migrate.transport.hashing import HashingStream

log = logging.getLogger(__name__)

EARLIEST_MTIME = 86401
OFFICE_EXTENSIONS = (".docx", ".xlsx", ".pptx", ".docm", ".xlsm", ".pptm", ".doc", ".xls", ".ppt", ".vsdx")


@dataclass(frozen=True, slots=True)
class TransferOptions:
    """Knobs of a single transfer."""

    small_file_limit: int = 10 * 1024 * 1024
    max_reopens: int = 5
    read_size: int = 1024 * 1024
    versions: int | None = 0  # earlier versions carried per file: 0 none, None all, else N (engine.versions)


@dataclass(slots=True)
class Outcome:
    """What happened to one item."""

    status: ItemStatus
    note: str = ""
    error: str = ""


def resilient_stream(
    source: Source, drive_id: str, item_id: str, *, offset: int = 0, max_reopens: int = 5,
    on_reopen: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The item's bytes from `offset`; a reset or an expired URL re-opens at the byte where it stopped.

    Each re-open asks the source for a fresh download URL (the backend never reuses one), with `Range`.
    """
    pos, reopens = offset, 0
    while True:
        try:
            with source.open_content(drive_id, item_id, pos) as chunks:
                for chunk in chunks:
                    pos += len(chunk)
                    yield chunk
            return
        except TransientError as exc:
            reopens += 1
            if reopens > max_reopens:
                raise
            log.info("download of %s/%s broke at byte %d (%s); resuming", drive_id, item_id, pos, exc)
            if on_reopen:
                on_reopen(pos)


def _enriched(item: dict[str, Any], drive_kind: str) -> bool:
    """SharePoint rewrites Office files in libraries on download: other bytes than the listed size and hash."""
    return drive_kind in ("library", "team") and (item["name"] or "").lower().endswith(OFFICE_EXTENSIONS)


class Transfer:
    """Copies items one at a time; many threads may share one Transfer."""

    def __init__(
        self, store: StateStore, source: Source, target: Target, accounting: Accounting,
        options: TransferOptions = TransferOptions(),
    ) -> None:
        self.store = store
        self.source = source
        self.target = target
        self.acct = accounting
        self.opt = options

    def run(self, item: dict[str, Any], drive_kind: str = "onedrive") -> Outcome:
        """Copy one pending (or failed) file; item-level problems are recorded and returned, fatal ones raised."""
        d, i = item["drive_id"], item["item_id"]
        # What an earlier copy recorded about the target (checksum, size) is void until this write is known.
        self.store.transition(d, i, ItemStatus.TRANSFERRING, expect=item["status"], attempts=item["attempts"] + 1,
                              last_error=None, target_checksum=None, target_size=None)
        try:
            entry, hs, note = self._send(item, drive_kind)
            if entry is None or self._mismatch(item, hs, note):
                # One re-read: a torn read from the source is far likelier than a corrupt file.
                self.acct.rewind(hs.counted if hs.counted is not None else hs.size)
                entry, hs, note = self._send(item, drive_kind)
                if entry is None or self._mismatch(item, hs, note):
                    if entry is not None:
                        self.target.delete(item["target_user"] or "", item["target_path"])
                    raise IntegrityError(
                        f"QuickXorHash differs from the source's after two reads ({hs.quick_xor_hash} != "
                        f"{item['quick_xor_hash']}); the file may be changing at the source, `sync` will retry it"
                    )
            # What the target changed or could not keep (a clamped mtime, no checksum) is kept with the item.
            note = "; ".join(dict.fromkeys(n for n in (note, *target_notes(self.target, item)) if n))
            with self.store.atomic():
                self.store.transition(
                    d, i, ItemStatus.UPLOADED, sha1=hs.sha1, target_size=hs.size, target_etag=entry.etag,
                    target_checksum=f"SHA1:{hs.sha1}", target_mtime=entry.mtime, note=note or None,
                )
                self.store.drop_upload_session(d, i)
            self.store.audit("upload", f"{item['target_user'] or ''}:{item['target_path']}", drive=d, item=i,
                             size=hs.size, sha1=hs.sha1, quick_xor_hash=hs.quick_xor_hash)
            problem = check_entry(entry, size=hs.size, sha1=hs.sha1, mtime=item["mtime"], features=self.target.features)
            if problem:
                raise IntegrityError(f"after upload the target reports {problem}")
            self.store.transition(d, i, ItemStatus.VERIFIED)
            self.acct.file_done()
            return Outcome(ItemStatus.VERIFIED, note=note)
        except MigrateError as exc:
            reason = str(exc).splitlines()[0]
            target_notes(self.target, item)  # drop what the target noted for a write that did not stick
            if not isinstance(exc, Terminal | TransientError):
                # Fatal (target full, credentials): the run stops; the item waits, unharmed, for the next run.
                self.store.transition(d, i, ItemStatus.PENDING, last_error=reason)
                raise
            self.store.transition(d, i, ItemStatus.FAILED, last_error=reason)
            self.acct.file_failed()
            return Outcome(ItemStatus.FAILED, error=reason)
        except BaseException:
            # Interrupted, or a bug: leave the row consistent and resumable, then let it surface.
            self.store.transition(d, i, ItemStatus.PENDING, last_error="interrupted")
            raise

    @staticmethod
    def _mismatch(item: dict[str, Any], hs: HashingStream, note: str) -> bool:
        return bool(item["quick_xor_hash"]) and hs.quick_xor_hash != item["quick_xor_hash"] and not note

    def _send(self, item: dict[str, Any], drive_kind: str) -> tuple[RemoteEntry | None, HashingStream, str]:
        """One read-and-write pass. Returns (None, …) when a small file's hash is wrong: nothing was written."""
        d, i, size = item["drive_id"], item["item_id"], item["size"]
        user, path = item["target_user"] or "", item["target_path"]
        enriched = _enriched(item, drive_kind)
        hs = HashingStream(resilient_stream(self.source, d, i, max_reopens=self.opt.max_reopens))

        if size <= self.opt.small_file_limit or enriched:
            # Read first (small files in memory, enriched Office files spooled to disk), so the SHA1 goes in the
            # request header and a wrong hash is caught before anything is written.
            with tempfile.SpooledTemporaryFile(max_size=self.opt.small_file_limit) as spool:
                for chunk in hs:
                    spool.write(chunk)
                    self.acct.bytes(len(chunk))
                listed_hash = item["quick_xor_hash"]
                note = ""
                if listed_hash and hs.quick_xor_hash != listed_hash:
                    if not enriched:
                        return None, hs, ""
                    note = (f"SharePoint served {hs.size} bytes with another hash than listed ({size} bytes): an "
                            "Office document the library rewrites on download; copied as served")
                # Before the bytes leave: what the target will hold, so a rerun after a kill can recognise it.
                self.store.update_item(d, i, target_checksum=f"SHA1:{hs.sha1}", target_size=hs.size)
                spool.seek(0)
                chunks = iter(lambda: spool.read(self.opt.read_size), b"")
                entry = self.target.upload(user, path, chunks, hs.size, mtime=item["mtime"], sha1=hs.sha1,
                                           **_guard(item))
                return entry, hs, note

        begin = getattr(self.target, "begin_resumable", None)
        if callable(begin):
            resume = self._resume_point(item, begin)
            if resume is not None and resume.offset:
                return self._send_rest(item, resume)
        else:
            resume = None

        def counting() -> Iterator[bytes]:
            for chunk in hs:
                self.acct.bytes(len(chunk))
                yield chunk

        extra = {"resume": resume, **_guard(item)} if resume is not None else _guard(item)
        entry = self.target.upload(user, path, counting(), size, mtime=item["mtime"], sha1=lambda: hs.sha1, **extra)
        if hs.size != size:
            raise IntegrityError(f"read {hs.size} bytes from the source, but it lists {size}")
        return entry, hs, ""

    def _resume_point(self, item: dict[str, Any], begin: Callable[..., Any]) -> Any:
        """The target's resume plan for a chunked upload (None when the file does not go in chunks), recorded in
        the store before the first chunk leaves, so a kill at any point leaves something to resume."""
        d, i, size = item["drive_id"], item["item_id"], item["size"]
        user, path = item["target_user"] or "", item["target_path"]
        version = source_version(item)
        prev = self.store.upload_session(d, i)
        if prev and (prev["size"], prev["source_version"], prev["target_user"], prev["target_path"]) != (
                size, version, user, path):
            prev = None  # the source or the plan changed: its chunks are not ours to finish (the server expires them)
        resume = begin(user, size, prev)
        if resume is not None:
            self.store.save_upload_session(d, i, target_user=user, target_path=path, transfer_id=resume.transfer_id,
                                           size=size, chunk_size=resume.chunk_size, source_version=version)
        return resume

    def _send_rest(self, item: dict[str, Any], resume: Any) -> tuple[RemoteEntry | None, HashingStream, str]:
        """Finish an upload an earlier run began: read the source from `resume.offset` only, then check the
        whole file as the target assembled it (its hash against the source's, its SHA1 against the server's)."""
        d, i, size = item["drive_id"], item["item_id"], item["size"]
        user, path = item["target_user"] or "", item["target_path"]
        log.info("%s:%s: resuming the upload at byte %d of %d (the chunks before are on the server)", user, path,
                 resume.offset, size)
        self.acct.already_there(resume.offset)
        tail = HashingStream(resilient_stream(self.source, d, i, offset=resume.offset,
                                              max_reopens=self.opt.max_reopens))

        def counting() -> Iterator[bytes]:
            for chunk in tail:
                self.acct.bytes(len(chunk))
                yield chunk

        self.target.upload(user, path, counting(), size, mtime=item["mtime"], sha1=None, resume=resume,
                           **_guard(item))
        if tail.size != size - resume.offset:
            raise IntegrityError(f"read {tail.size} bytes from byte {resume.offset} of the source, which lists {size}")
        with self.target.open_read(user, path) as stored:  # type: ignore[attr-defined]
            whole = HashingStream(stored)
            for _ in whole:
                pass
        if whole.size != size:
            raise IntegrityError(f"the target holds {whole.size} bytes after the resumed upload, {size} expected")
        entry = self.target.confirm(user, path, size, whole.sha1)  # type: ignore[attr-defined]
        whole.counted = tail.size  # only the tail was read from the source this time
        return entry, whole, ""


def over_our_file(item: dict[str, Any]) -> str | None:
    """The etag of the file we wrote at this item's target path (an edit `sync` sends over it), else None: the
    upload then carries it as a condition, so a person's write since our check is never overwritten. Not for
    the same source version sent again (a reset after a kill, a gap `verify` found): that replaces nothing."""
    if item["placed_path"] is None or not item["placed_etag"]:
        return None
    if (item["size"], item["quick_xor_hash"]) == (item.get("placed_source_size"), item.get("placed_source_hash")):
        return None
    if (item["placed_user"] or "") != (item["target_user"] or "") or \
            item["placed_path"].strip("/") != (item["target_path"] or "").strip("/"):
        return None
    return str(item["placed_etag"])


def _guard(item: dict[str, Any]) -> dict[str, str]:
    etag = over_our_file(item)
    return {"if_match": etag} if etag else {}


def source_version(item: dict[str, Any]) -> str:
    """What identifies the source bytes an upload session was reading: size, listed hash and content tag."""
    return f"{item['size']}:{item['quick_xor_hash'] or ''}:{item.get('ctag') or ''}"


def target_notes(target: Target, item: dict[str, Any]) -> list[str]:
    """What the target recorded it changed or could not keep for this item's path (taken: asked once)."""
    take = getattr(target, "take_notes", None)
    return list(take(item["target_user"] or "", item["target_path"])) if callable(take) else []


def expected_mtime(mtime: float) -> int:
    """The time a target stores for a source time: Nextcloud refuses times ≤ 86400 (they break its clients), so
    targets that keep times store earlier ones as EARLIEST_MTIME and say so in a note."""
    return max(int(mtime), EARLIEST_MTIME)


def check_entry(entry: RemoteEntry | None, *, size: int, sha1: str | None, mtime: float | None, features: Any) -> str:
    """'' when the target's view of a file matches what we sent; else what differs, in words."""
    if entry is None:
        return "no file at the path"
    if entry.size != size:
        return f"size {entry.size}, expected {size}"
    if sha1 and features.stored_checksum and entry.checksums:
        sums = {c.split(":", 1)[0].upper(): c.split(":", 1)[1].lower() for c in entry.checksums if ":" in c}
        if "SHA1" in sums and sums["SHA1"] != sha1.lower():
            return f"checksum SHA1:{sums['SHA1']}, expected SHA1:{sha1}"
    if mtime and features.set_mtime and entry.mtime is not None and abs(entry.mtime - expected_mtime(mtime)) > 1:
        return f"modification time {entry.mtime:.0f}, expected {mtime:.0f}"
    return ""
