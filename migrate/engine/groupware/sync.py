"""`sync --what calendars,contacts`: carry every source change since the last pass to CalDAV/CardDAV.

A rescan (delta where a collection has a delta link) brings the state database up to date: new and changed
objects go back to pending, objects gone at the source are marked deleted. Then new collections are created and
pending objects written exactly like `copy` (If-Match on the stored ETag; a 412 whose content is not ours is a
conflict, listed and never overwritten). Deletions come last, by `[policy] deletions`: `keep` leaves our copy,
`trash` DELETEs it with If-Match and the headers that stop Nextcloud 32.0.1 from mailing cancellations (reference
groupware.md §6.5). Every step is recorded per object, so a rerun after kill -9 applies only the rest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrate.engine.groupware.steps import GwCopySummary, Say, copy_groupware, scan_groupware
from migrate.engine.summary import StepSummary
from migrate.errors import TargetError, TransientError

if TYPE_CHECKING:
    from migrate.backends.dav.target import DavTarget
    from migrate.backends.graph.source import GraphSource
    from migrate.mapping import Mappings
    from migrate.store import StateStore


@dataclass
class GwSyncSummary(StepSummary):
    dry_run: bool = False
    deletions_policy: str = "keep"
    read: dict[str, Any] = field(default_factory=dict)
    new_collections: list[str] = field(default_factory=list)
    renamed_collections: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    removed: int = 0
    kept: int = 0
    attachments: dict[str, int] = field(default_factory=dict)   # carried to Files, shared, removed, kept
    conflicts: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0

    @property
    def attention(self) -> bool:
        return bool(self.conflicts or self.failed)


def sync_groupware(store: StateStore, source: GraphSource, target: DavTarget | None, mappings: Mappings,
                   kinds: tuple[str, ...], *, deletions: str = "keep", dry_run: bool = False,
                   upns: tuple[str, ...] = (), workers: int = 4, say: Say = lambda m: None,
                   attach: Any = None) -> GwSyncSummary:
    """Rescan, then (unless dry_run) write new/changed objects and apply deletions by policy. `attach`
    (groupware_attach.Carrier) carries large attachments to Files, new ones added and removed ones dropped."""
    s = GwSyncSummary(dry_run=dry_run, deletions_policy=deletions)
    started = time.monotonic()
    scan = scan_groupware(store, source, mappings, kinds, upns=upns, workers=workers, say=say)
    s.read = scan.to_dict()
    s.failed += scan.failed
    colls = [c for c in store.gw_collections(kinds, upns) if not c.skip_reason and c.target_user]
    for c in colls:
        where = f"{c.upn} {c.kind} {c.name!r}"
        if not c.created:
            s.new_collections.append(where)
        elif c.target_name is not None and c.target_name != c.name:
            s.renamed_collections.append(f"{c.upn} {c.kind} {c.target_name!r} → {c.name!r}")
        for obj in store.iter_gw_objects(c.id, ("pending", "failed")):
            (s.changed if obj.target_etag else s.new).append(f"{where}: {obj.title!r}")
        for obj in _gone(store, c.id):
            s.deleted.append(f"{where}: {obj['title']!r}")
    if dry_run or target is None:
        s.seconds = round(time.monotonic() - started, 3)
        return s
    before = target.requests
    for c in colls:
        if c.created and c.target_name is not None and c.target_name != c.name:
            try:
                target.set_display_name(c.kind, c.target_user or "", c.target_uri, c.name)
                store.set_gw_collection(c.id, target_name=c.name)
                store.audit("groupware.rename", f"{c.target_user}/{c.target_uri}", name=c.name, was=c.target_name)
            except (TargetError, TransientError) as exc:
                s.failed.append(f"{c.upn} {c.name}: rename: {exc}")
    copied: GwCopySummary = copy_groupware(store, target, kinds, upns=upns, workers=workers, say=say, attach=attach)
    s.created, s.updated = copied.created + copied.adopted, copied.updated
    s.attachments = copied.attachments
    for f in copied.failed:
        (s.conflicts if "changed at the target" in f else s.failed).append(f)
    for c in colls:
        for obj in _gone(store, c.id):
            _delete_one(store, target, c, obj, deletions, s)
            if attach is not None:   # its attachments in Files go (or stay) with it
                for row in store.gw_attachments(obj["id"]):
                    if row.status in ("uploaded", "verified", "failed"):
                        try:
                            attach.remove(c.target_user or "", row, s)
                        except (TargetError, TransientError) as exc:
                            s.failed.append(f"{c.upn} {c.name}: {obj['title']!r}: attachment {row.name!r}: {exc}")
    s.requests = target.requests - before + (attach.requests if attach is not None else 0)
    s.seconds = round(time.monotonic() - started, 3)
    return s


def _gone(store: StateStore, collection_id: int) -> list[dict[str, Any]]:
    """Objects deleted at the source whose copy is still at the target (not yet removed or kept by policy)."""
    return store.query("SELECT id, uid, href, title, target_etag FROM gw_objects WHERE collection_id=? AND deleted=1 "
                       "AND status IN ('uploaded','verified') ORDER BY id", (collection_id,))


def _delete_one(store: StateStore, target: DavTarget, coll: Any, obj: dict[str, Any], deletions: str,
                s: GwSyncSummary) -> None:
    from migrate.backends.dav.target import PreconditionFailed

    where = f"{coll.target_user}/{coll.target_uri}/{obj['href']}"
    if deletions != "trash":
        store.set_gw_object(obj["id"], status="kept", last_error="deleted at the source; kept at the target "
                            "([policy] deletions = keep)")
        store.audit("groupware.keep", where, uid=obj["uid"])
        s.kept += 1
        return
    try:
        target.delete(coll.kind, coll.target_user or "", coll.target_uri, obj["href"], etag=obj["target_etag"])
    except PreconditionFailed:
        s.conflicts.append(f"{coll.upn} {coll.name}: {obj['title']!r}: deleted at the source but changed at the "
                           "target since it was written; not deleted (remove it there by hand if it should go)")
        store.set_gw_object(obj["id"], last_error="deleted at the source, changed at the target: not deleted")
        return
    except (TargetError, TransientError) as exc:   # a 5xx after the pacer's retries: this deletion waits for a rerun
        s.failed.append(f"{coll.upn} {coll.name}: {obj['title']!r}: DELETE: {exc}")
        store.set_gw_object(obj["id"], last_error=str(exc)[:500])
        return
    store.set_gw_object(obj["id"], status="removed", target_etag=None, body_sha256=None, last_error=None)
    store.audit("groupware.delete", where, uid=obj["uid"], etag=obj["target_etag"])
    s.removed += 1


def render_sync(s: GwSyncSummary) -> str:
    head = "groupware sync (dry run: nothing written)" if s.dry_run else "groupware sync"
    lines = [f"{head}: {len(s.new)} new, {len(s.changed)} changed, {len(s.deleted)} deleted at the source "
             f"([policy] deletions = {s.deletions_policy}); {len(s.new_collections)} new and "
             f"{len(s.renamed_collections)} renamed collections"]
    if not s.dry_run:
        from migrate.engine.groupware.run import attachments_text

        lines.append(f"  written: {s.created} created, {s.updated} updated, {s.removed} deleted at the target, "
                     f"{s.kept} kept; {len(s.conflicts)} conflicts, {len(s.failed)} failed; {s.requests} requests "
                     f"in {s.seconds:.1f} s" + attachments_text(s.attachments))
    for label, items in (("new collection", s.new_collections), ("renamed", s.renamed_collections), ("new", s.new),
                         ("changed", s.changed), ("deleted", s.deleted)):
        lines += [f"  {label}: {x}" for x in items[:50]]
    lines += [f"  CONFLICT: {x}" for x in s.conflicts] + [f"  FAILED: {x}" for x in s.failed]
    return "\n".join(lines)
