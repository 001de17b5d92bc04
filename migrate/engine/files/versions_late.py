"""History added after the fact: earlier versions of a file already at the target put *under* its current bytes.

A file copied while `versions` was "none" (or a smaller N, since raised) holds only its current bytes at the
target. Nextcloud builds versions only from overwrites (reference nextcloud-api.md §9.2), so its history can
only go in by replaying the missing earlier versions oldest first over it. Sending the current bytes again at
the end would leave the first overwrite's copy of them as a stray version of the same time; instead the last
step *restores* that copy (MOVE to `…/restore`, §9.1, verified on 32.0.1): the file gets those bytes and their
time back, server-side, no byte sent again, the file id and its shares unchanged. A version that is already at
the target (carried before, under a smaller N) is put back in its turn the same way, so the order stays exact.
The restored bytes are then hashed by the server and compared with the SHA1 recorded when they were copied.

Resumable per version: the current row goes to `sent` (with the current bytes' SHA1 and size) before the first
overwrite; each earlier version is recorded as the normal replay does; on a rerun the target's current time
says which step was the last done. A file changed at the target since we copied it is left alone and its
versions listed as not carried, with what to do.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import Any

from migrate.engine.files.transfer import expected_mtime
from migrate.engine.files.versions import (
    LATE_PREFIX,
    VersionReplay,
    beyond,
    choose,
    label_for,
    may_have_history,
)
from migrate.errors import Fatal, IntegrityError, MigrateError, Terminal, TransientError
from migrate.models import SourceVersion

log = logging.getLogger(__name__)

CHANGED_AT_TARGET = ("the file was changed at the target after it was copied: its history is not put under "
                     "someone's edit (move their file aside and run `copy` again to carry it)")
NO_RESTORE = "the target cannot restore a version: history cannot be put under a file already copied"


def can_restore(target: Any) -> bool:
    return callable(getattr(target, "restore_version", None)) and callable(getattr(target, "stat", None))


BEYOND = beyond(0).split(" = ")[0]  # "beyond [transfer] versions": a smaller N left it out


def wants_late(store: Any, item: dict[str, Any], limit: int | None) -> bool:
    """Whether a verified file's history still has versions to put under it under this policy."""
    if limit == 0 or not may_have_history(item):
        return False
    rows = store.versions_of(item["drive_id"], item["item_id"])
    if not rows:
        return True
    if rows[-1]["current"] and rows[-1]["status"] == "sent":
        return True  # a late replay a kill interrupted
    earlier = [r for r in rows if not r["current"]]
    for n, r in enumerate(reversed(earlier)):  # newest first, as the limit counts
        if r["status"] == "not-carried" and ((r["reason"] or "").startswith(LATE_PREFIX) or (
                (r["reason"] or "").startswith(BEYOND) and (limit is None or n < limit))):
            return True
    return False


def late_candidates(store: Any, drive_ids: list[str], limit_for: Any) -> Iterator[dict[str, Any]]:
    """Verified files of `drive_ids` whose history can still be put under them (listed or not yet)."""
    for d in drive_ids:
        limit = limit_for(d)
        if limit == 0:
            continue
        for item in store.unlisted_history(d):
            if may_have_history(item):
                yield item
        for item in store.items_with_late_history(d, LATE_PREFIX, beyond(limit) if limit is not None else ""):
            if item["status"] == "verified" and wants_late(store, item, limit):
                yield item


def late_files(store: Any, drive_ids: list[str], limit_for: Any) -> int:
    """How many verified files still wait for their history (for status and verify: not carried yet)."""
    return sum(1 for _ in late_candidates(store, drive_ids, limit_for))


class LateHistory:
    """Puts one verified file's missing earlier versions under its current bytes (module docstring)."""

    def __init__(self, replay: VersionReplay) -> None:
        self.replay = replay
        self.store = replay.store
        self.target: Any = replay.target
        self.source: Any = replay.source

    def run(self, item: dict[str, Any]) -> str:
        """'carried', 'nothing', or 'not-carried' (rows say why); Fatal errors are raised, the others recorded on
        the file's last_error (it stays verified: its current bytes are whole once the run ends)."""
        d, i = item["drive_id"], item["item_id"]
        try:
            return self._run(item)
        except MigrateError as exc:
            if isinstance(exc, Fatal) or not isinstance(exc, Terminal | TransientError):
                raise
            why = "version history: " + str(exc).splitlines()[0]
            log.warning("%s: %s", item["path"], why)
            self.store.update_item(d, i, last_error=why)
            return "failed"

    def _run(self, item: dict[str, Any]) -> str:
        d, i = item["drive_id"], item["item_id"]
        user, path = item["target_user"] or "", item["target_path"]
        rows = self.store.versions_of(d, i)
        resuming = bool(rows) and rows[-1]["current"] and rows[-1]["status"] == "sent"
        urls: dict[str, SourceVersion] = {}
        if not resuming:
            listing = self.source.list_versions(d, i)
            new = choose(listing, self.replay.policy.limit_for(d), item["etag"], item["mtime"])
            urls = {v.id: v for v in listing}
            if not can_restore(self.target):
                for r in new:
                    if not r["current"] and r["status"] == "pending":
                        r["status"], r["reason"] = "not-carried", NO_RESTORE
            self.store.save_version_list(d, i, new)
            rows = self.store.versions_of(d, i)
        if not any(r["status"] in ("pending", "sent") for r in rows if not r["current"]):
            return "nothing"
        cur = rows[-1]
        cur_ts = expected_mtime(item["mtime"])
        fid = self.target.file_id(user, path)
        if fid is None:
            raise IntegrityError(f"{user}:{path}: not at the target: run `verify`, then `copy`")
        there = {v.timestamp: v for v in self.target.list_versions(user, fid)}
        # the file's own time says which content is current (the listing's newest entry may be the copy of the
        # current bytes the first overwrite kept, of a later time than the version current now)
        entry = self.target.stat(user, path)
        now = int(entry.mtime) if entry is not None and entry.mtime is not None else None
        if not resuming:
            rows = self._already_there(item, rows, there, cur_ts, user, fid)
        # every version that will be at the target, oldest first: the missing ones are sent, those already there
        # (older ones included) put back in their turn; a fresh pass starts at the oldest missing one
        steps = [r for r in rows if not r["current"] and r["status"] in ("pending", "sent", "carried")]
        first = next((n for n, r in enumerate(steps) if r["status"] in ("pending", "sent")), None)
        if first is None and not resuming:
            return "nothing"
        if not resuming:
            if entry is None or (item["placed_etag"] and entry.etag != item["placed_etag"]) \
                    or now != cur_ts or entry.size != (item["target_size"] if item["target_size"] is not None
                                                       else item["size"]):
                for r in steps:
                    if r["status"] == "pending":
                        self.store.set_version(d, i, r["seq"], status="not-carried", reason=CHANGED_AT_TARGET)
                return "not-carried"
            sha1 = (item["target_checksum"] or "").removeprefix("SHA1:") or None
            self.store.set_version(d, i, cur["seq"], status="sent", sha1=sha1,
                                   size=item["target_size"] if item["target_size"] is not None else item["size"],
                                   target_mtime=cur_ts)
            start = first or 0
        else:
            start = self._resume_at(d, i, steps, now, cur_ts, user, fid)
        for r in steps[start:]:
            ts = int(r["target_mtime"]) if r["status"] == "carried" else expected_mtime(r["mtime"])
            if r["status"] == "carried":
                self.target.restore_version(user, fid, ts)  # already at the target: put back in its turn
                continue
            version = urls.get(r["version_id"]) or SourceVersion(r["version_id"], r["mtime"], r["size"], r["author"])
            sent = self.replay._send(item, r, version, user, path)
            if sent is None:
                continue  # refused by the source: listed as missing, the target left as it was
            label = label_for(r["version_id"], r["author"], r["mtime"])
            self.target.label_version(user, fid, ts, label)
            self.store.set_version(d, i, r["seq"], status="carried", label=label, target_mtime=ts)
            self.store.audit("version", f"{user}:{path}", drive=d, item=i, version=r["version_id"], mtime=ts,
                             size=sent[1], sha1=sent[0], label=label, under_current=True)
        self._finish(item, self.store.versions_of(d, i)[-1], fid, cur_ts, user, path)
        return "carried"

    def _already_there(self, item: dict[str, Any], rows: list[dict[str, Any]], there: dict[int, Any], cur_ts: int,
                       user: str, fid: str) -> list[dict[str, Any]]:
        """Earlier versions the target keeps already (a copy sync overwrote while versions were off: Nextcloud
        kept it, unlabelled): labelled and recorded, then put back in their turn, never sent a second time."""
        d, i = item["drive_id"], item["item_id"]
        for r in rows:
            ts = expected_mtime(r["mtime"]) if r["mtime"] else None
            if r["current"] or r["status"] != "pending" or ts is None or ts == cur_ts or ts not in there \
                    or there[ts].size != r["size"]:
                continue
            label = label_for(r["version_id"], r["author"], r["mtime"])
            self.target.label_version(user, fid, ts, label)
            self.store.set_version(d, i, r["seq"], status="carried", label=label, target_mtime=ts)
        return self.store.versions_of(d, i)

    def _resume_at(self, d: str, i: str, steps: list[dict[str, Any]], now: int | None, cur_ts: int, user: str,
                   fid: str) -> int:
        """The index of the first step still to do after a kill: the target's current time is the last step's."""
        if now == cur_ts:
            # killed before the first overwrite landed (start at the oldest missing version), or after the final
            # restore (nothing missing: only the bookkeeping is left)
            return next((n for n, r in enumerate(steps) if r["status"] in ("pending", "sent")), len(steps))
        for n, r in enumerate(steps):
            ts = int(r["target_mtime"]) if r["status"] == "carried" else expected_mtime(r["mtime"])
            if ts == now:
                for done in steps[: n + 1]:  # landed before the kill: only its label may be missing
                    if done["status"] == "sent":
                        label = label_for(done["version_id"], done["author"], done["mtime"])
                        lts = expected_mtime(done["mtime"])
                        self.target.label_version(user, fid, lts, label)
                        self.store.set_version(d, i, done["seq"], status="carried", label=label, target_mtime=lts)
                return n + 1
        raise IntegrityError(f"the target's current version ({now}) is none this run wrote: it was changed at the "
                             "target during the replay; check the file's versions in Nextcloud")

    def _finish(self, item: dict[str, Any], cur: dict[str, Any], fid: str, cur_ts: int, user: str, path: str
                ) -> None:
        """Put the current bytes back on top (restore of the copy the first overwrite kept), prove them by the
        server's own SHA1, and record the file's new etag as ours."""
        d, i = item["drive_id"], item["item_id"]
        if (cur["size"] or 0) == 0:  # Nextcloud keeps no version of an empty file: send the empty bytes again
            self.target.upload(user, path, iter(()), 0, mtime=cur_ts, sha1=hashlib.sha1(b"").hexdigest())  # noqa: S324
        else:
            now = self.target.stat(user, path)
            if now is None or now.mtime is None or int(now.mtime) != cur_ts:
                self.target.restore_version(user, fid, cur_ts)
        entry = self.target.stat(user, path)
        if entry is None or entry.size != (cur["size"] or 0) or (entry.mtime is not None and
                                                                 int(entry.mtime) != cur_ts):
            raise IntegrityError(f"{user}:{path}: after putting the current bytes back the target shows "
                                 f"{entry.size if entry else 'nothing'} bytes at {entry.mtime if entry else '-'}, "
                                 f"expected {cur['size']} at {cur_ts}")
        stored = self.target.recalculate_sha1(user, path) if callable(getattr(self.target, "recalculate_sha1", None)) \
            else None
        sha1 = (stored or "").removeprefix("SHA1:").lower() or None
        if cur["sha1"] and sha1 and sha1 != cur["sha1"].lower():
            raise IntegrityError(f"{user}:{path}: the restored current bytes hash to {sha1}, expected {cur['sha1']}")
        entry = self.target.stat(user, path) or entry  # the etag after the hash was stored
        label = label_for(cur["version_id"], cur["author"], cur["mtime"])
        self.target.label_version(user, fid, cur_ts, label)
        with self.store.atomic():
            self.store.set_version(d, i, cur["seq"], status="carried", label=label, target_mtime=cur_ts)
            self.store.update_item(d, i, target_etag=entry.etag, placed_etag=entry.etag, target_size=cur["size"],
                                   target_checksum=f"SHA1:{cur['sha1']}" if cur["sha1"] else item["target_checksum"],
                                   last_error=None)
        self.store.audit("version-restore", f"{user}:{path}", drive=d, item=i, version=cur["version_id"],
                         mtime=cur_ts, sha1=cur["sha1"], label=label)
