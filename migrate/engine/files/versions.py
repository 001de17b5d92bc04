"""Version history: a file's earlier versions replayed into the target oldest first, each labelled, then the current.

Nextcloud builds its versions from successive uploads: each overwrite keeps the previous content as a version
named by the mtime it had, so sending every earlier version with its own source time, then the current bytes,
leaves versions named by the source's times (reference nextcloud-api.md §9.2). Each is labelled with the source
version id, who changed it and when: Nextcloud records the uploading account as author, and its retention job
expires unlabelled versions older than 30 days within the hour, never labelled ones.

Every version has a row in the store (`item_versions`) that says what became of it; a row goes to `sent` with
its SHA1 before its bytes leave, so a kill at any point resumes with the next version: what landed is recognised
in the target's version list (time and size) and only labelled, nothing is sent twice and nothing out of order.
A version the source refuses or no longer has is `missing` and listed; it never fails the file.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from migrate.engine.files.transfer import Outcome, Transfer, expected_mtime
from migrate.errors import (
    AuthError,
    Fatal,
    IntegrityError,
    MigrateError,
    SourceError,
    Terminal,
    TransientError,
)
from migrate.models import ItemStatus, SourceVersion, TargetVersion
from migrate.transport.hashing import HashingStream

log = logging.getLogger(__name__)

_COUNTER = re.compile(r",(\d+)\"?\s*$")
EMPTY = "empty: Nextcloud keeps no version of an empty file"
SAME_SECOND = "saved in the same second as the next version: Nextcloud keeps one version per second"
NOT_BEFORE = "its time is not before the next version's: Nextcloud names versions by time, so it would be out of order"
SUPERSEDED = "edited again at the source before this pass: the target receives the newest edit only"
LATE = "the file was copied before versions were asked for: its history cannot be put before the current bytes"


def beyond(limit: int) -> str:
    return f"beyond [transfer] versions = {limit} (the most recent earlier versions only)"


def version_counter(tag: str | None) -> int | None:
    """N of an ODB eTag `"{GUID},N"` or cTag `"c:{GUID},N"`; None when the tag has another shape."""
    m = _COUNTER.search(tag or "")
    return int(m.group(1)) if m else None


def may_have_history(item: dict[str, Any]) -> bool:
    """Whether earlier versions can exist, from the item's facts alone (asking costs 2 RU a file).

    The content tag's counter (cTag, when the scan saw one) or else the eTag's counts the item's changes; 1 means
    the file was never changed since it was created, so it has no earlier version. A tag of another shape is
    asked about: skipping a file that has history would lose it.
    """
    n = version_counter(item.get("ctag")) or version_counter(item.get("etag"))
    return n is None or n > 1


def label_for(version_id: str, author: str, mtime: float | None) -> str:
    """The label a carried version gets: the source version, who saved it and when (UTC)."""
    when = dt.datetime.fromtimestamp(mtime, dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if mtime else "time unknown"
    return f"Microsoft 365 version {version_id}, {author or 'author unknown'}, {when}"


def choose(listing: list[SourceVersion], limit: int | None, source_etag: str | None,
           current_mtime: float | None) -> list[dict[str, Any]]:
    """Store rows for a listing (newest first at the source): oldest first, the current version last, each
    earlier one `pending` or `not-carried` with the reason."""
    if not listing:
        return []
    current, earlier = listing[0], listing[1:]
    rows: list[dict[str, Any]] = []
    nxt = expected_mtime(current_mtime) if current_mtime else (expected_mtime(current.mtime) if current.mtime else None)
    for n, v in enumerate(earlier):  # newest first, so each is judged against the one carried after it
        status, reason = "pending", None
        ts = expected_mtime(v.mtime) if v.mtime else None
        if limit is not None and n >= limit:
            status, reason = "not-carried", beyond(limit)
        elif v.size == 0:
            status, reason = "not-carried", EMPTY
        elif ts is None or (nxt is not None and ts > nxt):
            status, reason = "not-carried", NOT_BEFORE
        elif nxt is not None and ts == nxt:
            status, reason = "not-carried", SAME_SECOND
        if status == "pending":
            nxt = ts
        rows.append({"version_id": v.id, "current": 0, "mtime": v.mtime, "size": v.size, "author": v.author,
                     "source_etag": source_etag, "status": status, "reason": reason})
    rows.reverse()
    rows.append({"version_id": current.id, "current": 1, "mtime": current_mtime or current.mtime,
                 "size": current.size, "author": current.author, "source_etag": source_etag, "status": "pending",
                 "reason": None})
    return rows


@dataclass(frozen=True, slots=True)
class VersionPolicy:
    """`[transfer] versions` as a number: 0 none, None all, else the most recent N earlier versions."""

    limit: int | None = 0

    @property
    def wanted(self) -> bool:
        return self.limit != 0


def can_replay(source: Any, target: Any) -> bool:
    """Both ends can: the source lists versions, the target keeps them with labels."""
    return bool(getattr(target.features, "versions", False)) and callable(getattr(source, "list_versions", None)) \
        and callable(getattr(target, "label_version", None))


class VersionReplay:
    """Copies one file with its history: earlier versions oldest first, then the current bytes via Transfer."""

    def __init__(self, transfer: Transfer, policy: VersionPolicy) -> None:
        self.transfer = transfer
        self.store = transfer.store
        self.source: Any = transfer.source
        self.target: Any = transfer.target
        self.policy = policy

    def wants(self, item: dict[str, Any]) -> bool:
        """Whether this pending file goes through the replay (else it is copied as before)."""
        return self.policy.wanted and may_have_history(item) and can_replay(self.source, self.target)

    # ------------------------------------------------------------------------------------------------ one file
    def run(self, item: dict[str, Any], drive_kind: str = "onedrive") -> Outcome:
        d, i = item["drive_id"], item["item_id"]
        user, path = item["target_user"] or "", item["target_path"]
        try:
            urls = self._listing(item)
            rows = self.store.versions_of(d, i)
            earlier = [r for r in rows if not r["current"] and r["status"] in ("pending", "sent")]
            if earlier:
                self._replay(item, earlier, urls, user, path)
        except MigrateError as exc:
            if isinstance(exc, Fatal) or not isinstance(exc, Terminal | TransientError):
                raise
            reason = "version history: " + str(exc).splitlines()[0]
            if item["status"] == "failed":
                self.store.update_item(d, i, attempts=item["attempts"] + 1, last_error=reason)
            else:
                self.store.transition(d, i, ItemStatus.FAILED, expect=item["status"], attempts=item["attempts"] + 1,
                                      last_error=reason)
            self.transfer.acct.file_failed()
            return Outcome(ItemStatus.FAILED, error=reason)
        fresh = self.store.item(d, i) or item
        outcome = self.transfer.run(fresh, drive_kind)
        if outcome.status == ItemStatus.VERIFIED:
            try:
                label_current(self.store, self.target, fresh)
            except MigrateError as exc:
                if isinstance(exc, Fatal):
                    raise
                log.info("%s:%s: the current version's label waits for the next run (%s)", user, path, exc)
        return outcome

    def _listing(self, item: dict[str, Any]) -> dict[str, SourceVersion]:
        """List the source's versions unless the recorded list is of this source state; returns the versions
        (with their download URLs) read now, by id."""
        d, i = item["drive_id"], item["item_id"]
        rows = self.store.versions_of(d, i)
        if rows and rows[-1]["source_etag"] == item["etag"]:
            return {}
        listing = self.source.list_versions(d, i)
        new = choose(listing, self.policy.limit, item["etag"], item["mtime"])
        placed = item.get("placed_path") is not None
        if placed:
            # Our copy is at the target already (a sync edit): earlier versions it does not hold cannot go
            # before it; only the newest edit goes up, as one new version over ours.
            known = {r["version_id"] for r in rows}
            for r in new:
                if not r["current"] and r["status"] == "pending" and r["version_id"] not in known:
                    r["status"], r["reason"] = "not-carried", SUPERSEDED if rows else LATE
                elif not r["current"] and r["version_id"] in known and r["status"] == "pending":
                    old = next(x for x in rows if x["version_id"] == r["version_id"])
                    if old["status"] != "carried":
                        r["status"], r["reason"] = old["status"], old["reason"]
        self.store.save_version_list(d, i, new)
        if placed:
            # the version we placed before is now an earlier one at the target, carried under its own label
            for r in self.store.versions_of(d, i):
                prev = next((x for x in rows if x["version_id"] == r["version_id"] and x["current"]), None)
                if prev is not None and not r["current"] and prev["status"] == "carried":
                    self.store.set_version(d, i, r["seq"], status="carried", label=prev["label"],
                                           target_mtime=prev["target_mtime"], sha1=prev["sha1"], reason=None)
        return {v.id: v for v in listing}

    def _replay(self, item: dict[str, Any], todo: list[dict[str, Any]], urls: dict[str, SourceVersion],
                user: str, path: str) -> None:
        d, i = item["drive_id"], item["item_id"]
        fid: str | None = None
        there: dict[int, TargetVersion] | None = None
        if any(r["status"] == "sent" for r in todo) or any(
                r["status"] == "carried" for r in self.store.versions_of(d, i) if not r["current"]):
            fid = self.target.file_id(user, path)
            there = {v.timestamp: v for v in self.target.list_versions(user, fid)} if fid else {}
        for r in todo:
            ts = expected_mtime(r["mtime"])
            label = label_for(r["version_id"], r["author"], r["mtime"])
            if r["status"] == "sent" and there is not None and ts in there and there[ts].size == r["size"]:
                # (a `sent` row holds the size served, which is what the target holds when it landed)
                # landed before the kill: only its label may be missing
                if there[ts].label != label:
                    self.target.label_version(user, fid, ts, label)
                self.store.set_version(d, i, r["seq"], status="carried", label=label, target_mtime=ts)
                continue
            version = urls.get(r["version_id"]) or SourceVersion(r["version_id"], r["mtime"], r["size"], r["author"])
            sent = self._send(item, r, version, user, path)
            if sent is None:
                continue
            fid = fid or self.target.file_id(user, path)
            if fid is None:
                raise IntegrityError(f"{user}:{path}: the target shows no file after writing version {r['version_id']}")
            self.target.label_version(user, fid, ts, label)
            self.store.set_version(d, i, r["seq"], status="carried", label=label, target_mtime=ts)
            self.store.audit("version", f"{user}:{path}", drive=d, item=i, version=r["version_id"], mtime=ts,
                             size=sent[1], sha1=sent[0], label=label)

    def _send(self, item: dict[str, Any], r: dict[str, Any], version: SourceVersion, user: str, path: str
              ) -> tuple[str, int] | None:
        """Write one earlier version with its own time. None when the source refused it or no longer has it
        (recorded as missing; the target is left as it was)."""
        d, i = item["drive_id"], item["item_id"]
        try:
            if r["size"] <= self.transfer.opt.small_file_limit:
                sha1, size, entry = self._send_read_first(d, i, r, version, user, path)
            else:
                sha1, size, entry = self._send_streamed(d, i, r, version, user, path)
        except (SourceError, AuthError) as exc:
            if isinstance(exc, TransientError):
                raise
            why = str(exc).splitlines()[0]
            log.info("%s:%s: version %s not carried: %s", user, path, version.id, why)
            self.store.set_version(d, i, r["seq"], status="missing", reason=f"the source refused it: {why}")
            return None
        # what sits at the path is ours (an earlier version): a plan refresh must not call it a conflict
        self.store.update_item(d, i, target_etag=entry.etag)
        return sha1, size

    def _send_read_first(self, d: str, i: str, r: dict[str, Any], version: SourceVersion, user: str, path: str
                         ) -> tuple[str, int, Any]:
        """A small version is read into memory first, so its SHA1 and size are recorded before the bytes leave."""
        opt = self.transfer.opt
        with tempfile.SpooledTemporaryFile(max_size=opt.small_file_limit) as spool:
            hs = HashingStream(self._stream(d, i, version))
            for chunk in hs:
                spool.write(chunk)
                self.transfer.acct.bytes(len(chunk))
            with self.store.atomic():  # before the bytes leave: what the target will hold, ours on any rerun
                # the size served (SharePoint may serve other bytes than it lists), which the target will hold
                self.store.set_version(d, i, r["seq"], status="sent", sha1=hs.sha1, size=hs.size)
                self.store.update_item(d, i, target_checksum=f"SHA1:{hs.sha1}", target_size=hs.size)
            spool.seek(0)
            entry = self.target.upload(user, path, iter(lambda: spool.read(opt.read_size), b""), hs.size,
                                       mtime=r["mtime"], sha1=hs.sha1)
        return hs.sha1, hs.size, entry

    def _send_streamed(self, d: str, i: str, r: dict[str, Any], version: SourceVersion, user: str, path: str
                       ) -> tuple[str, int, Any]:
        """A large version streams from the source to the target (chunked upload), never held whole; its SHA1
        goes with the final request and is recorded once it is known."""
        self.store.set_version(d, i, r["seq"], status="sent", sha1=None)
        hs = HashingStream(self._stream(d, i, version))

        def counting() -> Iterator[bytes]:
            for chunk in hs:
                self.transfer.acct.bytes(len(chunk))
                yield chunk

        entry = self.target.upload(user, path, counting(), r["size"], mtime=r["mtime"], sha1=lambda: hs.sha1)
        if hs.size != r["size"]:
            raise IntegrityError(f"read {hs.size} bytes of version {r['version_id']}, the source lists {r['size']}")
        with self.store.atomic():
            self.store.set_version(d, i, r["seq"], sha1=hs.sha1)
            self.store.update_item(d, i, target_checksum=f"SHA1:{hs.sha1}", target_size=hs.size)
        return hs.sha1, hs.size, entry

    def _stream(self, d: str, i: str, version: SourceVersion) -> Iterator[bytes]:
        """The version's bytes; a break re-opens at the byte where it stopped (a fresh URL after a 401)."""
        pos, reopens = 0, 0
        while True:
            try:
                with self.source.open_version(d, i, version, pos) as chunks:
                    for chunk in chunks:
                        pos += len(chunk)
                        yield chunk
                return
            except TransientError:
                reopens += 1
                if reopens > self.transfer.opt.max_reopens:
                    raise
                version = SourceVersion(version.id, version.mtime, version.size, version.author)  # no stale URL


def label_current(store: Any, target: Any, item: dict[str, Any]) -> bool:
    """Label the current version of a verified file whose history we carried; False when there is none to label."""
    d, i = item["drive_id"], item["item_id"]
    rows = store.versions_of(d, i)
    cur = rows[-1] if rows and rows[-1]["current"] else None
    if cur is None or cur["status"] == "carried":
        return False
    user, path = item["target_user"] or "", item["target_path"]
    fid = target.file_id(user, path)
    if fid is None:
        return False
    ts = expected_mtime(item["mtime"]) if item["mtime"] else int(cur["mtime"] or 0)
    label = label_for(cur["version_id"], cur["author"], cur["mtime"])
    target.label_version(user, fid, ts, label)
    store.set_version(d, i, cur["seq"], status="carried", label=label, target_mtime=ts, size=item["size"])
    return True


def settle_labels(store: Any, target: Any, drive_ids: list[str]) -> int:
    """Label the current versions a killed run left unlabelled (files verified since); returns how many."""
    if not getattr(target.features, "versions", False) or not callable(getattr(target, "label_version", None)):
        return 0
    n = 0
    for d in drive_ids:
        for item in store.items_with_versions(d, ("pending",)):
            if item["status"] != "verified":
                continue
            try:
                n += label_current(store, target, item)
            except MigrateError as exc:
                if isinstance(exc, Fatal):
                    raise
                log.info("%s: label not set: %s", item["target_path"], exc)
    return n
