"""Calendar attachments too large to inline, carried as files (reference groupware.md §4.8, option 2).

Scan reads only the attachments' metadata, and the bytes of those that will be inlined (they fit the inline
budget). Copy, before it writes an event, puts each large attachment (and each attached item) into the owner's
Files under `Calendar/<event> (<id>)/`: streamed from Graph's `$value` into a spool file (memory holds at most
SPOOL_MEMORY bytes of it; the rest goes to disk) while hashing, then uploaded from the spool with its SHA1,
read back (size, checksum, file id) and linked from the event the way the Nextcloud Calendar app links files.
When the owner organised the meeting, the attendees who are mapped users got it from Outlook too: the file is
shared with them read-only. An attachment gone from its event is deleted from Files under `[policy] deletions =
trash`, kept otherwise. `verify_attachments` checks each file (there, same size and SHA1, same file id) and its
shares.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from migrate.engine.groupware.steps import IN_FLIGHT
from migrate.errors import AuthError, ItemNotFound, MigrateError, TargetError, Transient, TransientError

if TYPE_CHECKING:
    from migrate.backends.nextcloud.target import NextcloudTarget
    from migrate.store import StateStore
    from migrate.store.groupware import GwCollection, GwObject
    from migrate.store.gw_attachments import GwAttachment

log = logging.getLogger(__name__)
SPOOL_MEMORY = 256 * 1024       # bytes of an attachment held in memory before its spool goes to disk
UPLOAD_ATTEMPTS = 3             # whole uploads from the spool (a broken stream cannot be resent by the pacer)
READ_ONLY = 1                   # OCS share permission: read (never broader than what attendees received)
FOLDER = "Calendar"             # where the Nextcloud Calendar app keeps attachments (its default folder)
_BAD = re.compile(r'[\\/<>:"|?*\x00-\x1f]')
_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Link:
    """Where an attachment lives in Files, as the event's ATTACH names it."""

    url: str
    path: str
    file_id: str
    has_preview: bool
    content_type: str


def read_inline(client: Any, user_id: str, event_id: str, atts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The metadata of an event's attachments with the bytes of those that are inlined (they fit the budget, so
    they are small); large ones stay metadata until copy streams them into Files."""
    from migrate.backends.graph import calendars as cal_api
    from migrate.backends.graph.client import SourceRefused
    from migrate.groupware.attachments import INLINE, INLINE_LIMIT, placements

    places = placements(atts, files=False)
    inline = {p.id for p in places if p.where == INLINE}
    whole = None
    if len(inline) > 1 and not any(p.kind == "file" and p.where != INLINE for p in places):
        # every file is small: one list with their bytes instead of a `$value` each (nothing large rides along)
        whole = {str(a.get("id")): a.get("contentBytes") for a in cal_api.attachments(
            client, user_id, event_id, content=True)}
    out = []
    for a in atts:
        if whole is not None:
            a = {**a, **({"contentBytes": whole[str(a.get("id"))]} if whole.get(str(a.get("id"))) else {})}
            out.append(a)
            continue
        a = {k: v for k, v in a.items() if k != "contentBytes"}
        if str(a.get("id") or a.get("name") or "attachment") in inline and a.get("id"):
            try:
                with cal_api.open_attachment(client, user_id, event_id, str(a["id"])) as (_type, chunks):
                    data = bytearray()
                    for chunk in chunks:
                        data += chunk
                        if len(data) > INLINE_LIMIT:
                            break
                if len(data) <= INLINE_LIMIT:
                    a["contentBytes"] = base64.b64encode(bytes(data)).decode()
            except (ItemNotFound, SourceRefused):   # removed since the list was read, or no bytes served for
                pass                                 # it: the event says "not carried"
        out.append(a)
    return out


def _clean(name: str, limit: int = 120) -> str:
    text = _BAD.sub("_", name).strip().rstrip(".") or "attachment"
    while len(text.encode()) > limit:
        text = text[:-1]
    return text


def folder_for(obj: GwObject) -> str:
    """The event's folder under Calendar/: its subject and a short hash of its id (two events never share one)."""
    return f"{FOLDER}/{_clean(obj.title or 'Event', 80)} ({hashlib.sha1(obj.source_id.encode()).hexdigest()[:6]})"


def sharees(event: dict[str, Any], owner: str, target_of: Callable[[str], str | None]) -> list[str]:
    """Who gets the file shared: when the owner organised the meeting (the attendees received its attachments),
    each attendee who is a mapped user; rooms and resources never."""
    if not event.get("isOrganizer"):
        return []
    out = set()
    for att in event.get("attendees") or ():
        if str(att.get("type") or "").lower() == "resource":
            continue
        uid = target_of(str((att.get("emailAddress") or {}).get("address") or ""))
        if uid and uid != owner:
            out.add(uid)
    return sorted(out)


def target_lookup(store: StateStore, mappings: Any) -> Callable[[str], str | None]:
    """Address (UPN or mail) → mapped Nextcloud user, for the users recorded in the state database."""
    table: dict[str, str] = {}
    for u in store.users():
        target = mappings.users.target_for(u["upn"])
        if target:
            for key in (u["upn"], u.get("mail") or ""):
                if key:
                    table[key.lower()] = target
    return lambda address: table.get(address.lower())


class Carrier:
    """Puts an event's large attachments into Files before the event is written (one per copy run).

    `open_files` opens the Nextcloud files target (on first need: a copy with nothing to carry sends nothing),
    `base_url` is the server's address the links name,
    `client` is the Graph client (downloads count as kind="attachment"), `target_of` maps an attendee address to
    a mapped Nextcloud user. Thread-safe (one event per call)."""

    def __init__(self, store: StateStore, open_files: Callable[[], NextcloudTarget], client: Any,
                 target_of: Callable[[str], str | None], *, base_url: str, deletions: str = "keep") -> None:
        self.store, self.client, self.target_of, self.base_url = store, client, target_of, base_url
        self.deletions = deletions
        self._open_files = open_files
        self._files: NextcloudTarget | None = None
        self._base = 0
        self._mailboxes: dict[str, threading.Semaphore] = {}   # Outlook serves ≤ 4 requests of a mailbox at once

    @property
    def files(self) -> NextcloudTarget:
        with _LOCK:
            if self._files is None:
                self._files = self._open_files()
                self._base = self._files.session.requests   # capability detection is not this copy's work
            return self._files

    @property
    def requests(self) -> int:
        return self._files.session.requests - self._base if self._files is not None else 0

    def close(self) -> None:
        from migrate.connect import close_quietly

        if self._files is not None:
            close_quietly(self._files)

    def _count(self, summary: Any, what: str, n: int = 1) -> None:
        with _LOCK:
            summary.attachments[what] = summary.attachments.get(what, 0) + n

    def prepare(self, coll: GwCollection, obj: GwObject, summary: Any) -> dict[str, Link | str] | None:
        """`carry` for copy: None when an attachment could not be carried (the event is marked failed, listed,
        and waits for the next copy: it is never written without its attachments)."""
        if obj.kind != "event" or not obj.payload.get("attachments"):
            return {}
        try:
            return self.carry(coll, obj, summary)
        except (MigrateError, OSError) as exc:
            if isinstance(exc, AuthError):
                raise
            self.store.set_gw_object(obj.id, status="failed", attempts=obj.attempts + 1, last_error=str(exc)[:500])
            with _LOCK:
                summary.failed.append(f"{coll.upn} {coll.name}: {obj.title!r}: attachment: {exc}")
            return None

    def carry(self, coll: GwCollection, obj: GwObject, summary: Any) -> dict[str, Link | str]:
        """Every large attachment of `obj` in Files (uploaded once, shared once), the links by attachment id;
        attachments gone from the event are removed or kept by policy. Raises what stopped an attachment."""
        from migrate.groupware.attachments import FILES, placements

        places = [p for p in placements(obj.payload.get("attachments"), files=True) if p.where == FILES]
        rows = {r.source_id: r for r in self.store.gw_attachments(obj.id)}
        owner = coll.target_user or ""
        wanted = sharees(obj.payload.get("event") or {}, owner, self.target_of)
        links: dict[str, Link | str] = {}   # a str: why it could not be carried
        names: set[str] = set()
        for p in places:
            row = rows.get(p.id)
            if row is None or row.status not in ("uploaded", "verified", "unsupported") or row.source_stamp != p.stamp:
                row = self._upload(coll, obj, p, names)
                self._count(summary, "carried" if row.status == "uploaded" else "not carried")
            if row.status == "unsupported":
                links[p.id] = row.last_error or "Graph serves no bytes for it"
                continue
            names.add((row.target_path or "").rsplit("/", 1)[-1].lower())
            row = self._share(owner, row, wanted, summary)
            links[p.id] = Link(self._link(row), row.target_path or "", row.file_id or "", row.has_preview,
                               row.content_type or p.content_type)
        for gone in set(rows) - {p.id for p in places}:
            if rows[gone].status in ("uploaded", "verified", "failed", "pending"):
                self.remove(owner, rows[gone], summary)
        return links

    def _link(self, row: GwAttachment) -> str:
        from migrate.backends.nextcloud.fileinfo import link_for

        return link_for(self.base_url, row.file_id or "")

    def _upload(self, coll: GwCollection, obj: GwObject, p: Any, taken: set[str]) -> GwAttachment:
        from migrate.backends.graph.client import SourceRefused
        from migrate.backends.nextcloud.fileinfo import file_info
        from migrate.backends.webdav.wire import StreamConsumed
        from migrate.groupware.attachments import file_name

        user = coll.target_user or ""
        listed = obj.payload.get("attachments") or []
        mtime = _mtime(next((a.get("lastModifiedDateTime") for a in listed if str(a.get("id")) == p.id), None))
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY) as spool:
            try:
                ctype, size, sha1 = self._download(coll, obj, p, spool)
            except ItemNotFound:
                raise ItemNotFound(f"attachment {p.name!r} is gone at the source (rescan to see the event now)") \
                    from None
            except SourceRefused as exc:   # e.g. 405: a link to a cloud file listed without its type
                return self.store.upsert_gw_attachment(
                    obj.id, p.id, name=p.name, kind=p.kind, source_size=p.size, source_stamp=p.stamp,
                    status="unsupported", last_error=f"Graph serves no bytes for it ({exc})"[:500])
            spool.seek(0)
            name = file_name(p, ctype, spool.read(64))
            if name.lower() in taken:   # two attachments of one event with one name: the second gets its id's hash
                stem, dot, ext = name.rpartition(".")
                tag = hashlib.sha1(p.id.encode()).hexdigest()[:6]
                name = f"{stem} ({tag}).{ext}" if dot and stem else f"{name} ({tag})"
            path = f"{folder_for(obj)}/{_clean(name, 200)}"
            for attempt in range(1, UPLOAD_ATTEMPTS + 1):
                spool.seek(0)
                try:
                    self.files.upload(user, path, _blocks(spool), size, mtime=mtime, sha1=sha1.hexdigest())
                    break
                except (StreamConsumed, TransientError) as exc:   # the body had started, or the server broke off
                    if attempt == UPLOAD_ATTEMPTS:
                        raise
                    log.info("upload of %s:%s failed (%s); sending it again from the spool", user, path, exc)
        info = file_info(self.files.dav, user, path)
        if info is None:
            raise TargetError(f"{user}:{path}: not there right after its upload")
        row = self.store.upsert_gw_attachment(
            obj.id, p.id, name=p.name, kind=p.kind, source_size=p.size, source_stamp=p.stamp, target_user=user,
            target_path=path, file_id=info.file_id, content_type=(ctype.split(";")[0].strip() or p.content_type),
            size=size, sha1=sha1.hexdigest(), has_preview=int(info.has_preview), status="uploaded", last_error=None,
            shared_with=[])   # a new file: its shares are made again (a duplicate share answers the existing one)
        self.store.audit("groupware.attachment", f"{user}:{path}", uid=obj.uid, source=p.id, size=size,
                         sha1=sha1.hexdigest(), file_id=info.file_id)
        return row

    def _download(self, coll: GwCollection, obj: GwObject, p: Any, spool: Any) -> tuple[str, int, Any]:
        """`$value` into the spool, hashed on the way; a broken download starts again (the pacer retried only
        its start). Returns the content type Graph sent, the size and the SHA1."""
        from migrate.backends.graph import calendars as cal_api

        with _LOCK:
            gate = self._mailboxes.setdefault(coll.user_id, threading.Semaphore(IN_FLIGHT))
        for attempt in range(1, UPLOAD_ATTEMPTS + 1):
            spool.seek(0)
            spool.truncate()
            sha1, size = hashlib.sha1(usedforsecurity=False), 0
            try:
                with gate, cal_api.open_attachment(self.client, coll.user_id, obj.source_id, p.id) as (ctype, chunks):
                    for chunk in chunks:
                        spool.write(chunk)
                        sha1.update(chunk)
                        size += len(chunk)
                return ctype, size, sha1
            except TransientError as exc:
                if attempt == UPLOAD_ATTEMPTS:
                    raise
                log.info("download of attachment %r broke (%s); reading it again", p.name, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _share(self, owner: str, row: GwAttachment, wanted: list[str], summary: Any) -> GwAttachment:
        """Share the file read-only with each wanted user not yet shared with; a refusal is reported, the event is
        still written (its link works for the owner) and the next copy tries the share again."""
        done = set(row.shared_with)
        missing = [u for u in wanted if u not in done]
        extra = done - set(wanted)
        if not missing and not extra:
            return row
        problems = []
        for uid in missing:
            try:
                self.files.shares.create(owner, row.target_path or "", 0, uid, permissions=READ_ONLY)
                done.add(uid)
                self._count(summary, "shared")
                self.store.audit("groupware.attachment-share", f"{owner}:{row.target_path}", share_with=uid,
                                 permissions=READ_ONLY)
            except (TargetError, Transient) as exc:   # incl. the createShare rate limit (429)
                problems.append(f"share {row.target_path!r} with {uid}: {exc}")
        if extra:   # no longer an attendee at the source: no longer shared
            for s in self.files.shares.list(owner, row.target_path or ""):
                if s.get("share_with") in extra:
                    self.files.shares.delete(owner, s["id"])
            done -= extra
        row = self.store.upsert_gw_attachment(row.object_id, row.source_id, shared_with=sorted(done),
                                              last_error="; ".join(problems)[:500] or None)
        for text in problems:
            with _LOCK:
                summary.failed.append(f"attachment {text}; run copy again")
        return row

    def remove(self, owner: str, row: GwAttachment, summary: Any) -> None:
        """An attachment gone at the source: its file is deleted (`trash`, into the owner's trash bin) or kept."""
        where = f"{owner}:{row.target_path}"
        if self.deletions != "trash" or not row.target_path:
            self.store.upsert_gw_attachment(row.object_id, row.source_id, status="kept",
                                            last_error="gone at the source; the file is kept ([policy] deletions)")
            self.store.audit("groupware.attachment-keep", where, source=row.source_id)
            self._count(summary, "kept")
            return
        self.files.delete(owner, row.target_path)
        self.store.upsert_gw_attachment(row.object_id, row.source_id, status="removed", last_error=None)
        self.store.audit("groupware.attachment-delete", where, source=row.source_id, file_id=row.file_id)
        self._count(summary, "removed")


def _blocks(spool: Any, size: int = 256 * 1024) -> Iterator[bytes]:
    while block := spool.read(size):
        yield block


def _mtime(stamp: Any) -> float | None:
    with contextlib.suppress(TypeError, ValueError):
        return dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    return None


@dataclass
class AttachmentCheck:
    """What `verify` found for the attachments carried as files."""

    checked: int = 0
    verified: int = 0
    missing: list[str] = field(default_factory=list)
    differ: list[str] = field(default_factory=list)
    unshared: list[str] = field(default_factory=list)

    @property
    def attention(self) -> bool:
        return bool(self.missing or self.differ or self.unshared)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "attention": self.attention}


def verify_attachments(store: StateStore, files: NextcloudTarget, *, upns: tuple[str, ...] = ()) -> AttachmentCheck:
    """Each carried file: still there, same size and SHA1 (where the server keeps one), the file id the event
    links, and shared with everyone it was shared with."""
    from migrate.backends.nextcloud.fileinfo import file_info

    out = AttachmentCheck()
    for r in store.gw_attachment_rows(("uploaded", "verified"), upns):
        if r["object_deleted"]:
            continue
        out.checked += 1
        user, path = r["target_user"] or "", r["target_path"] or ""
        where = f"{r['upn']} {r['collection']}: {r['title']!r}: {r['name']!r} ({user}:{path})"
        entry = files.stat(user, path)
        info = file_info(files.dav, user, path) if entry is not None else None
        if entry is None or info is None:
            out.missing.append(where)
            store.upsert_gw_attachment(r["object_id"], r["source_id"], status="failed", last_error="missing in Files")
            continue
        sums = [c.split(":", 1)[1].lower() for c in entry.checksums if c.upper().startswith("SHA1:")]
        if entry.size != r["size"] or (sums and sums[0] != r["sha1"]) or info.file_id != r["file_id"]:
            out.differ.append(where)
            store.upsert_gw_attachment(r["object_id"], r["source_id"], status="failed",
                                       last_error="the file in Files is not the one carried (size, SHA1 or id)")
            continue
        shared = set(json.loads(r["shared_with"] or "[]"))
        if shared:
            have = {s.get("share_with") for s in files.shares.list(user, path)}
            if shared - have:   # the next copy shares it again
                out.unshared.append(f"{where}: not shared with {', '.join(sorted(shared - have))}")
                store.upsert_gw_attachment(r["object_id"], r["source_id"], shared_with=sorted(shared & have),
                                           status="uploaded")
                continue
        out.verified += 1
        if r["status"] != "verified":
            store.upsert_gw_attachment(r["object_id"], r["source_id"], status="verified")
    return out


def open_carrier(settings: Any, store: StateStore, client: Any, kinds: tuple[str, ...], stack: Any
                 ) -> Carrier | None:
    """A Carrier for a Nextcloud target when calendars are copied (its files target closed with `stack`);
    None for other targets, whose large attachments are listed as not carried."""
    if "calendar" not in kinds or getattr(settings.target, "kind", None) != "nextcloud":
        return None
    from migrate.connect import open_target_from_settings
    from migrate.mapping import load_mappings

    carrier = Carrier(store, lambda: open_target_from_settings(settings), client,  # type: ignore[arg-type,return-value]
                      target_lookup(store, load_mappings(settings.mappings)), base_url=settings.target.url,
                      deletions=settings.policy.deletions)
    stack.callback(carrier.close)
    return carrier


__all__ = ["AttachmentCheck", "Carrier", "Link", "open_carrier", "read_inline", "target_lookup", "verify_attachments"]
