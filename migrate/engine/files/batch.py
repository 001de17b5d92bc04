"""Many small files in one request: group pending files per target user and send them with `upload_many`.

A batch keeps every promise of `Transfer.run` for each of its files: the same state-machine walk (pending →
transferring → uploaded → verified, or failed with the reason), the QuickXorHash checked against the source
*before* anything is sent (a mismatch is re-read once, then failed, never sent), the SHA1 recorded, one audit
record per file written and a check of what the target reports. A fatal error (target full, credentials) puts
every file of the batch that is not finished back to pending and stops the run, as a single transfer does.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from migrate.engine.files.transfer import (
    Outcome,
    Transfer,
    _enriched,
    check_entry,
    over_our_file,
    resilient_stream,
    target_notes,
)
from migrate.errors import Fatal, IntegrityError, MigrateError, Terminal, TransientError
from migrate.models import ItemStatus, RemoteEntry, SmallFile
from migrate.transport.hashing import HashingStream

log = logging.getLogger(__name__)

_CONTROL = re.compile("[\x00-\x1f]")  # a header value cannot carry these (one regex: this runs per file)
SMALL_LIMIT = 1024 * 1024  # files up to this size go in batches
MAX_FILES = 100  # per batch (the Nextcloud desktop client's batch size)
MAX_BYTES = 4 * 1024 * 1024  # per batch; each running batch is held in memory (twice, once encoded)


@dataclass
class Bucket:
    """Files waiting for one target user's next batch."""

    items: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0


class Batcher:
    """Collects eligible items per target user and hands out full batches (then the rest, at the end)."""

    def __init__(self, transfer: Transfer, *, enabled: bool = True, max_files: int = MAX_FILES,
                 max_bytes: int = MAX_BYTES, small_limit: int = SMALL_LIMIT) -> None:
        target = transfer.target
        self.enabled = (enabled and bool(getattr(target.features, "bulk_upload", False))
                        and hasattr(target, "upload_many"))
        self.max_files, self.max_bytes, self.small_limit = max_files, max_bytes, small_limit
        self.buckets: dict[str, Bucket] = {}

    def eligible(self, item: dict[str, Any], drive_kind: str) -> bool:
        """Small, not an Office file SharePoint may rewrite on download (those need the single-file path), and
        with a path a part header can carry: header values lose trailing blanks, so "a.txt " would land as "a.txt".
        """
        path = item["target_path"] or ""
        return (self.enabled and (item["size"] or 0) <= self.small_limit and not _enriched(item, drive_kind)
                and path == path.rstrip() and not _CONTROL.search(path)
                and over_our_file(item) is None)  # a bulk request carries no condition: edits go one by one

    def add(self, item: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Queue `item`; returns a full batch when this user's bucket would overflow, else None."""
        user = item["target_user"] or ""
        b = self.buckets.setdefault(user, Bucket())
        out = None
        if b.items and (len(b.items) >= self.max_files or b.size + (item["size"] or 0) > self.max_bytes):
            out, self.buckets[user] = b.items, Bucket()
            b = self.buckets[user]
        b.items.append(item)
        b.size += item["size"] or 0
        return out

    def drain(self) -> Iterator[list[dict[str, Any]]]:
        """The partial batches left at the end of the work list."""
        for user in list(self.buckets):
            b = self.buckets.pop(user)
            if b.items:
                yield b.items



@dataclass
class _Read:
    item: dict[str, Any]
    data: bytes = b""
    hs: HashingStream | None = None


def run_batch(transfer: Transfer, items: list[dict[str, Any]]) -> list[Outcome]:
    """Copy the files of one target user in one `upload_many` call; item problems are recorded, fatal raised."""
    store, acct, target = transfer.store, transfer.acct, transfer.target
    user = items[0]["target_user"] or ""
    # Rows go to `transferring` only once their bytes are read and about to leave, with the SHA1 and size they
    # will have at the target: a kill while reading leaves them pending, and a kill during the request leaves
    # what a rerun needs to recognise them in a folder listing.
    open_: dict[tuple[str, str], dict[str, Any]] = {}
    outcomes: list[Outcome] = []

    def fail(it: dict[str, Any], exc: BaseException) -> None:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        d, i = it["drive_id"], it["item_id"]
        if (d, i) in open_:
            store.transition(d, i, ItemStatus.FAILED, last_error=reason)
        elif it["status"] == "failed":  # failed again before anything was sent
            store.update_item(d, i, attempts=it["attempts"] + 1, last_error=reason)
        else:
            store.transition(d, i, ItemStatus.FAILED, expect=it["status"], attempts=it["attempts"] + 1,
                             last_error=reason)
        acct.file_failed()
        open_.pop((d, i), None)
        outcomes.append(Outcome(ItemStatus.FAILED, error=reason))

    try:
        _prefetch_urls(transfer, items)
        ready: list[_Read] = []
        for it in items:
            try:
                ready.append(_read_checked(transfer, it))
            except MigrateError as exc:
                if not isinstance(exc, Terminal | TransientError):
                    raise
                fail(it, exc)
        if not ready:
            return outcomes
        files = [SmallFile(r.item["target_path"], r.data, r.item["mtime"], r.hs.sha1) for r in ready if r.hs]
        with store.atomic():
            for r in ready:
                it, hs = r.item, r.hs
                assert hs is not None
                store.transition(it["drive_id"], it["item_id"], ItemStatus.TRANSFERRING, expect=it["status"],
                                 attempts=it["attempts"] + 1, last_error=None, target_checksum=f"SHA1:{hs.sha1}",
                                 target_size=hs.size)
                open_[(it["drive_id"], it["item_id"])] = it
        try:
            results: dict[str, Any] = target.upload_many(user, files)  # type: ignore[attr-defined]
        except MigrateError as exc:
            if not isinstance(exc, Terminal | TransientError):
                raise
            for r in ready:
                fail(r.item, exc)
            return outcomes
        # One transaction for the whole batch's records (a file's record is still complete or absent): per file,
        # eight workers queued on the store's lock for most of their time (profile in the README).
        with store.atomic():
            for r in ready:
                _finish(transfer, r, _result_for(results, r.item["target_path"]), fail, outcomes)
        for r in ready:
            open_.pop((r.item["drive_id"], r.item["item_id"]), None)
        return outcomes
    except MigrateError as exc:
        # Fatal (target full, credentials): every unfinished file waits, unharmed, for the next run.
        _back_to_pending(transfer, open_.values(), str(exc).splitlines()[0])
        raise
    except BaseException:
        _back_to_pending(transfer, open_.values(), "interrupted")
        raise


def _prefetch_urls(transfer: Transfer, items: list[dict[str, Any]]) -> None:
    """Ask the source for the batch's download URLs in a few requests (Graph `$batch`), when it can: small
    files are dominated by round trips. A failure here only means each file asks for its own URL."""
    prefetch = getattr(transfer.source, "prefetch_download_urls", None)
    wanted = [(it["drive_id"], it["item_id"]) for it in items]
    if not callable(prefetch) or not wanted:
        return
    try:
        prefetch(wanted)
    except MigrateError as exc:
        if isinstance(exc, Fatal):
            raise
        log.info("download URLs not fetched ahead (%s); each file asks for its own", str(exc).splitlines()[0])


def _read_checked(transfer: Transfer, item: dict[str, Any]) -> _Read:
    """The file's bytes with their hashes; a QuickXorHash differing from the listing is read once more."""
    for attempt in (1, 2):
        hs = HashingStream(resilient_stream(transfer.source, item["drive_id"], item["item_id"],
                                            max_reopens=transfer.opt.max_reopens))
        parts: list[bytes] = []
        for chunk in hs:
            parts.append(chunk)
            transfer.acct.bytes(len(chunk))
        listed = item["quick_xor_hash"]
        if not listed or hs.quick_xor_hash == listed:
            data = b"".join(parts)
            if len(data) != item["size"]:
                raise IntegrityError(f"read {len(data)} bytes from the source, but it lists {item['size']}")
            return _Read(item, data, hs)
        transfer.acct.rewind(hs.size)
        if attempt == 2:
            raise IntegrityError(
                f"QuickXorHash differs from the source's after two reads ({hs.quick_xor_hash} != {listed}); "
                "the file may be changing at the source, `sync` will retry it"
            )
    raise AssertionError("unreachable")


def _result_for(results: dict[str, Any], path: str) -> Any:
    key = "/".join(s for s in path.split("/") if s)
    return results.get(key, results.get(path, IntegrityError("the target reported no result for this file")))


def _finish(transfer: Transfer, r: _Read, res: Any, fail: Any, outcomes: list[Outcome]) -> None:
    store, it, hs = transfer.store, r.item, r.hs
    assert hs is not None
    if isinstance(res, BaseException):
        if isinstance(res, MigrateError) and not isinstance(res, Terminal | TransientError):
            raise res
        fail(it, res)
        return
    entry: RemoteEntry = res
    d, i = it["drive_id"], it["item_id"]
    problem = check_entry(entry, size=hs.size, sha1=hs.sha1, mtime=it["mtime"], features=transfer.target.features)
    # uploaded, then verified when the target's report holds: one write per file (CPU per small file, README)
    steps = (ItemStatus.UPLOADED,) if problem else (ItemStatus.UPLOADED, ItemStatus.VERIFIED)
    with store.atomic():
        store.walk(d, i, steps, sha1=hs.sha1, target_size=hs.size, target_etag=entry.etag,
                   target_checksum=f"SHA1:{hs.sha1}", target_mtime=entry.mtime,
                   note="; ".join(target_notes(transfer.target, it)) or None)
        store.audit("upload", f"{it['target_user'] or ''}:{it['target_path']}", drive=d, item=i, size=hs.size,
                    sha1=hs.sha1, quick_xor_hash=hs.quick_xor_hash, bulk=True)
    if problem:
        fail(it, IntegrityError(f"after upload the target reports {problem}"))
        return
    transfer.acct.file_done()
    outcomes.append(Outcome(ItemStatus.VERIFIED))


def _back_to_pending(transfer: Transfer, items: Any, reason: str) -> None:
    for it in list(items):
        try:
            transfer.store.transition(it["drive_id"], it["item_id"], ItemStatus.PENDING, last_error=reason)
        except MigrateError:  # pragma: no cover - a row another path already settled
            log.warning("could not reset %s/%s to pending", it["drive_id"], it["item_id"])
