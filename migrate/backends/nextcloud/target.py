"""NextcloudTarget: protocols.Target for Nextcloud, writing each file as its owner with per-user app passwords.

Small files: one PUT with `X-OC-MTime` and `OC-Checksum`. Large files (above `chunk_size`, when the server
offers chunking): chunked upload v2, `chunk_parallel` chunks at once. Many small files: `upload_many` (bulk upload, when offered). After every
upload a PROPFIND checks size and stored checksum; where the checksum was not kept (chunking v2 on object
storage) the server is asked to hash the stored bytes (`PATCH` + `X-Recalculate-Hash: sha1`, §3.3).
Modification times ≤ 86400 would make Nextcloud answer 500 *after* writing (§3.1): they are clamped to 86401
and the change is recorded in `notes`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrate.backends.nextcloud.bulk import SmallFile, batches, post
from migrate.backends.nextcloud.capabilities import ServerInfo, detect
from migrate.backends.nextcloud.chunked import ChunkedUpload, chunk_size_for, new_transfer_id, resume_point
from migrate.backends.nextcloud.credentials import CredentialProblem, validate_credentials
from migrate.backends.nextcloud.dav import NextcloudDav
from migrate.backends.nextcloud.provisioning import Provisioning
from migrate.backends.nextcloud.shares import Shares
from migrate.backends.nextcloud.teamfolders import TeamFolders
from migrate.backends.webdav.session import Body, DavSession, make_http, replayable
from migrate.backends.webdav.wire import (
    CONDITIONAL_OK,
    clean_path,
    conditional_outcome,
    if_match_headers,
    parent_of,
    raise_for,
    walk_breadth_first,
)
from migrate.errors import ChangedAtTarget, ConfigError, Fatal, IntegrityError, MigrateError, TargetItemError
from migrate.models import Features, RemoteEntry
from migrate.transport.pacer import Pacer

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

MIN_MTIME = 86401  # X-OC-MTime must be > 86400 (§3.1)
DEFAULT_CHUNK = 32 * 1024 * 1024
DEFAULT_CHUNK_PARALLEL = 3
REPLAYABLE_LIMIT = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a chunked upload starts: its upload folder, chunk size, and the bytes the server already holds."""

    transfer_id: str
    chunk_size: int
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Note:
    """Something the target changed or could not keep for one path (reported by the engine)."""

    user: str
    path: str
    text: str


def send_mtime(mtime: float | None) -> tuple[int | None, str]:
    """The X-OC-MTime value to send for a source time, and a note when it had to be changed."""
    if mtime is None:
        return None, ""
    value = int(mtime)
    if value < MIN_MTIME:
        return MIN_MTIME, (f"modification time {value} is not accepted by Nextcloud (must be after 1970-01-02); "
                           f"stored as {MIN_MTIME}")
    return value, ""


class NextcloudTarget:
    """protocols.Target (+ upload_many, shares, provisioning, team folders) for one Nextcloud server.

    `passwords` maps uid → app password (str or config.Secret). `service_account` is the admin uid used for
    provisioning and team-folder reads (and for detection, else the first user). `info` skips detection.
    """

    def __init__(self, url: str, passwords: Mapping[str, Any], *, ca_bundle: str | None = None,
                 pacer: Pacer | None = None, service_account: str | None = None,
                 chunk_size: int = DEFAULT_CHUNK, chunk_parallel: int = DEFAULT_CHUNK_PARALLEL,
                 http: httpx.Client | None = None, info: ServerInfo | None = None) -> None:
        self.url = url.rstrip("/")
        self.session = DavSession(http or make_http(ca_bundle), pacer or Pacer("nextcloud"))
        self.dav = NextcloudDav(self.url, passwords, self.session)
        self.service_account = service_account
        self.chunk_size = chunk_size
        if info is None:
            # a service account without its credentials row is a configuration error (exit 2), said before any call
            probe = self._require_admin() if service_account else next(iter(self.dav.passwords), None)
            info = detect(self.session, self.url, self.dav.auth(probe) if probe else None)
        if info.kind != "nextcloud":
            raise ConfigError(f"{self.url} is not a Nextcloud server (status.php did not answer as one)",
                              hint='use [target] kind = "webdav" for other WebDAV servers')
        self.info = info
        # Chunks of one file sent at once: as configured, but never more than the server says it welcomes.
        self.chunk_parallel = max(1, min(chunk_parallel, info.chunk_parallel or chunk_parallel))
        self.features: Features = info.features
        self.notes: list[Note] = []
        self._known: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self.shares = Shares(self.dav)

    def close(self) -> None:
        self.session.close()

    # --- helpers -----------------------------------------------------------------------------------------------
    def _note(self, user: str, path: str, text: str) -> None:
        if text:
            log.info("%s:%s: %s", user, path, text)
            with self._lock:
                self.notes.append(Note(user, path, text))

    def take_notes(self, user: str, path: str) -> list[str]:
        """Remove and return the notes recorded for one path (the engine stores them with the item)."""
        with self._lock:
            mine = [n for n in self.notes if n.user == user and n.path == clean_path(path)]
            self.notes = [n for n in self.notes if n not in mine]
        return [n.text for n in mine]

    def _is_known(self, user: str, folder: str) -> bool:
        with self._lock:
            return folder == "" or folder in self._known.get(user, set())

    def _mark_known(self, user: str, folder: str) -> None:
        segs = clean_path(folder).split("/") if clean_path(folder) else []
        with self._lock:
            known = self._known.setdefault(user, set())
            for i in range(1, len(segs) + 1):
                known.add("/".join(segs[:i]))

    def _require_admin(self) -> str:
        """The admin uid for provisioning and team-folder calls; a ConfigError that names the key and the row."""
        uid = self.service_account
        if not uid or uid not in self.dav.passwords:
            missing = ("[target] service_account is not set" if not uid else
                       f"[target] service_account is {uid!r}, but the [target] credentials file has no row for it")
            raise ConfigError(
                f"this needs the Nextcloud service account (an admin) and its app password: {missing}",
                hint='set [target] service_account = "<admin uid>" in m365-migrate.toml and add the row '
                     '"<admin uid>,<app password>" to the [target] credentials file '
                     "(mint one with `occ user:auth-tokens:add <admin uid>`)")
        return uid

    # --- protocols.Target ----------------------------------------------------------------------------------------
    def stat(self, user: str, path: str) -> RemoteEntry | None:
        return self.dav.stat(user, clean_path(path))

    def walk(self, user: str, path: str) -> Iterator[RemoteEntry]:
        """Depth-1 PROPFIND per folder, breadth first (cheaper than Depth: infinity on large trees)."""
        yield from walk_breadth_first(path, lambda folder: self.dav.propfind(user, folder, "1"))

    def list_folder(self, user: str, path: str) -> list[RemoteEntry] | None:
        """One Depth-1 PROPFIND: the folder and its children (checksums included), or None when it is missing."""
        return self.dav.propfind(user, clean_path(path), "1")

    def ensure_folder(self, user: str, path: str) -> None:
        """MKCOL each missing level once (201 or 405 both mean it is there); remembered per user."""
        segs = clean_path(path).split("/") if clean_path(path) else []
        for i in range(1, len(segs) + 1):
            sub = "/".join(segs[:i])
            if self._is_known(user, sub):
                continue
            self.dav.mkcol(user, sub)
            self._mark_known(user, sub)

    def begin_resumable(self, user: str, size: int, previous: Mapping[str, Any] | None = None) -> Resume | None:
        """For a file that goes up in chunks: the upload folder to use and the bytes to skip; None otherwise.

        `previous` is the recorded session (`transfer_id`, `chunk_size`) of an earlier, unfinished attempt: when
        the server still holds its folder, the whole chunks in a row from the first are kept and the upload goes
        on after them; else a new session starts.
        """
        if not (self.features.chunked_upload and size > self.chunk_size):
            return None
        if previous:
            kept = resume_point(self.dav, user, previous["transfer_id"], size, previous["chunk_size"])
            if kept is not None:
                return Resume(previous["transfer_id"], previous["chunk_size"], kept * previous["chunk_size"])
        return Resume(new_transfer_id(), chunk_size_for(size, self.chunk_size))

    def open_read(self, user: str, path: str) -> AbstractContextManager[Iterator[bytes]]:
        """The bytes of a file as the target holds them (to check a resumed upload end to end)."""
        return self.dav.open_download(user, clean_path(path))

    def touch(self, user: str, path: str, mtime: float) -> RemoteEntry:
        """Set a file's modification time without rewriting it (PROPPATCH `d:lastmodified`, §3.2; clamped and
        noted like X-OC-MTime); returns the file as the server reports it afterwards (its etag may change)."""
        path = clean_path(path)
        value, note = send_mtime(mtime)
        self._note(user, path, note)
        self.dav.set_mtime(user, path, value if value is not None else MIN_MTIME)
        entry = self.dav.stat(user, path)
        if entry is None or entry.is_folder:
            raise IntegrityError(f"{user}:{path}: no file at the path after setting its modification time")
        return entry

    def confirm(self, user: str, path: str, size: int, sha1: str) -> RemoteEntry:
        """Size and the server's SHA1 (computed by the server when it kept none) against what we read back."""
        return self._verify(user, clean_path(path), size, sha1)

    def upload(self, user: str, path: str, chunks: Iterable[bytes], size: int, *, mtime: float | None = None,
               sha1: str | Callable[[], str] | None = None, resume: Resume | None = None,
               if_match: str | None = None) -> RemoteEntry:
        """One file. With `resume` (from `begin_resumable`) `chunks` starts at `resume.offset`, and a transient
        failure keeps the chunks already sent for the next attempt. With `if_match` the write holds only while
        the file there has that etag: `If-Match` on a single PUT, a tagged `If` naming the destination on the
        final chunk MOVE (32.0.1 judges an If-Match there against the upload's `.file`: it always fails)."""
        path = clean_path(path)
        if not path:
            raise TargetItemError("cannot upload to the root of a user's files")
        value, note = send_mtime(mtime)
        self._note(user, path, note)
        parent = parent_of(path)
        if self.features.chunked_upload and size > self.chunk_size:
            self.ensure_folder(user, parent)
            if resume is None:
                up = ChunkedUpload(self.dav, user, path, size, chunk_size=self.chunk_size, mtime=value, sha1=sha1,
                                   parallel=self.chunk_parallel, if_match=if_match)
            else:
                up = ChunkedUpload(self.dav, user, path, size, chunk_size=resume.chunk_size, mtime=value, sha1=sha1,
                                   parallel=self.chunk_parallel, transfer_id=resume.transfer_id,
                                   done_chunks=resume.offset // resume.chunk_size, if_match=if_match)
                up.resumable = True
            up.run(chunks)
            return self._verify(user, path, size, sha1)
        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream",
                   "OC-Total-Length": str(size)}
        if value is not None:
            headers["X-OC-MTime"] = str(value)
        if isinstance(sha1, str) and sha1:
            headers["OC-Checksum"] = f"SHA1:{sha1.lower()}"
        headers.update(if_match_headers(if_match))
        # Auto-Mkcol only with a body we can send again: PUTs racing to make one folder may lose with 403
        auto = not self._is_known(user, parent) and self.features.auto_mkcol and size <= REPLAYABLE_LIMIT
        if auto:
            headers["X-NC-WebDAV-Auto-Mkcol"] = "1"
        else:
            self.ensure_folder(user, parent)
        ok = (412,) if if_match else ()
        if size <= REPLAYABLE_LIMIT:
            body = replayable(chunks, size, f"{user}:{path}")
            resp = self.dav.put(user, path, body, headers, ok=(*ok, 403, 404) if auto else ok)
            if auto and resp.status_code in (403, 404):
                resp = self._put_after_lost_race(user, path, parent, body, headers, resp, ok)
        else:
            resp = self.dav.put_stream(user, path, chunks, headers, ok=ok)
        if resp.status_code == 412:
            raise ChangedAtTarget(f"{user}:{path}: the file there is no longer the one we wrote (the conditional "
                                  "PUT answered 412); nothing was written")
        if auto:
            self._mark_known(user, parent)
        return self._verify(user, path, size, sha1)

    def _put_after_lost_race(self, user: str, path: str, parent: str, data: Body, headers: dict[str, str],
                             lost: Any, ok: tuple[int, ...]) -> Any:
        """32.0.1 answers an Auto-Mkcol PUT 403 "Could not create directory" when another request made that
        folder at the same moment (checked: six PUTs into one new folder), and now and then 404 "File with name
        /<the folder> could not be located" (seen with eight PUTs of two users, each into a new folder of its
        own: the other request's folder not yet readable). Any other 403 or 404 is what it says."""
        if not ("Could not create directory" in lost.text or "could not be located" in lost.text):
            raise_for(lost, f"PUT {user}:{path!r}", user=user)
        self.ensure_folder(user, parent)
        plain = {k: v for k, v in headers.items() if k != "X-NC-WebDAV-Auto-Mkcol"}
        return self.dav.put(user, path, data, plain, ok=ok)

    def _verify(self, user: str, path: str, size: int, sha1: str | Callable[[], str] | None) -> RemoteEntry:
        """Size and SHA1 as the server reports them; missing checksum → server-side hashing (§3.3)."""
        entry = self.dav.stat(user, path)
        if entry is None or entry.is_folder:
            raise IntegrityError(f"{user}:{path}: nothing at the path after a successful upload")
        if entry.size != size:
            raise IntegrityError(f"{user}:{path}: the server stores {entry.size} bytes, {size} were sent")
        want = (sha1() if callable(sha1) else sha1 or "").lower()
        stored = [c for c in entry.checksums if c.upper().startswith("SHA1:")]
        if want and not stored:
            if not self.info.checksum_update:
                self._note(user, path, "the server kept no checksum and cannot compute one")
                return entry
            stored = [self.dav.recalculate_sha1(user, path)]
            entry = RemoteEntry(path=entry.path, is_folder=False, size=entry.size, mtime=entry.mtime,
                                etag=entry.etag, checksums=(*entry.checksums, stored[0]))
        if want and stored and stored[0].split(":", 1)[1].lower() != want:
            raise IntegrityError(f"{user}:{path}: the server has {stored[0]}, we sent SHA1:{want}")
        return entry

    def delete(self, user: str, path: str) -> None:
        path = clean_path(path)
        if not path:
            raise TargetItemError(f"refusing to delete the home folder of {user!r}")
        self.dav.delete(user, path)
        with self._lock:
            known = self._known.get(user, set())
            self._known[user] = {k for k in known if k != path and not k.startswith(path + "/")}

    def move(self, user: str, src: str, dest: str, *, if_match: str | None = None) -> str:
        """Server-side MOVE (no bytes re-sent), never over an existing destination, only while `src` still has
        etag `if_match` (when given). Returns an outcome of backends.webdav.wire (done/missing/changed/taken/
        no-parent); other errors raise as usual."""
        src, dest = clean_path(src), clean_path(dest)
        resp = self.dav.move(user, src, dest, overwrite=False, headers=if_match_headers(if_match), ok=CONDITIONAL_OK)
        outcome = conditional_outcome(resp)
        if outcome == "done":
            with self._lock:
                known = self._known.get(user, set())
                self._known[user] = {k for k in known if k != src and not k.startswith(src + "/")}
        return outcome

    def delete_if(self, user: str, path: str, etag: str | None) -> str:
        """DELETE (to the trash bin) only while the item still has `etag` (when given): done/missing/changed."""
        path = clean_path(path)
        if not path:
            raise TargetItemError(f"refusing to delete the home folder of {user!r}")
        resp = self.dav.send(user, "DELETE", self.dav.files_url(user, path), f"DELETE {user}:{path!r}",
                             headers=if_match_headers(etag), ok=CONDITIONAL_OK)
        with self._lock:
            known = self._known.get(user, set())
            self._known[user] = {k for k in known if k != path and not k.startswith(path + "/")}
        return conditional_outcome(resp)

    # --- beyond the protocol -----------------------------------------------------------------------------------
    def upload_many(self, user: str, files: list[SmallFile]) -> dict[str, RemoteEntry | MigrateError]:
        """Many small files: bulk upload when offered (batches of ≤ 100 files / 16 MiB), else one PUT each.

        Parents are created first. Every file refused or left out by a bulk request is re-sent by plain PUT, and
        a bulk request that still fails after the pacer's retries has all its files re-sent that way, so the
        result per path is the real outcome: the entry written, or that file's own error (refused, or still
        failing after retries). Only Fatal errors (TargetFull, AuthError) are raised.
        """
        for parent in sorted({parent_of(f.path) for f in files}):
            self.ensure_folder(user, parent)
        results: dict[str, RemoteEntry | MigrateError] = {}
        retry: list[SmallFile] = []
        # Times Nextcloud refuses are clamped once here (and noted below), for the bulk and the PUT path alike.
        clamped = {clean_path(f.path): SmallFile(clean_path(f.path), f.data, send_mtime(f.mtime)[0], f.sha1)
                   for f in files}
        if self.features.bulk_upload:
            for batch in batches(list(clamped.values())):
                try:
                    answers = post(self.dav, user, batch)
                except MigrateError as exc:
                    if isinstance(exc, Fatal):
                        raise
                    log.info("bulk upload of %d files as %s failed (%s); sending them one by one",
                             len(batch), user, str(exc).splitlines()[0])
                    retry.extend(batch)
                    continue
                for p, res in answers.items():
                    if isinstance(res, RemoteEntry):
                        results[p] = res
                    else:
                        retry.append(clamped[p])
        else:
            retry = list(clamped.values())
        for f in files:
            self._note(user, clean_path(f.path), send_mtime(f.mtime)[1])
        for f in retry:
            try:
                results[clean_path(f.path)] = self.upload(user, f.path, [f.data], len(f.data), mtime=f.mtime,
                                                          sha1=f.sha1)
            except MigrateError as exc:
                if isinstance(exc, Fatal):
                    raise
                results[clean_path(f.path)] = exc
        return results

    # --- version history (§9) -----------------------------------------------------------------------------------
    def _versions(self) -> Any:
        from migrate.backends.nextcloud.versions import NextcloudVersions

        return NextcloudVersions(self.dav)

    def file_id(self, user: str, path: str) -> str | None:
        """The file id of `path`, which addresses its versions; None when nothing is there."""
        return self._versions().file_id(user, clean_path(path))

    def list_versions(self, user: str, fileid: str) -> list[Any]:
        """The file's versions (TargetVersion), oldest first, the current content last."""
        return self._versions().list(user, fileid)

    def label_version(self, user: str, fileid: str, timestamp: int, text: str) -> None:
        """Name one version (labelled versions are never expired by the retention job)."""
        self._versions().label(user, fileid, timestamp, text)

    def restore_version(self, user: str, fileid: str, timestamp: int) -> None:
        """Make one earlier version current again, server-side (the replaced content becomes a version)."""
        self._versions().restore(user, fileid, timestamp)

    def recalculate_sha1(self, user: str, path: str) -> str:
        """The server hashes the stored bytes and keeps the result (`SHA1:<hex>`)."""
        return self.dav.recalculate_sha1(user, clean_path(path))

    def open_version(self, user: str, fileid: str, timestamp: int) -> AbstractContextManager[Iterator[bytes]]:
        """The bytes of one earlier version, streamed."""
        return self._versions().open(user, fileid, timestamp)

    def validate_credentials(self, users: Iterable[str]) -> list[CredentialProblem]:
        """Every user's app password checked once, serially (see credentials.validate_credentials)."""
        return validate_credentials(self.dav, users, admin=self.service_account)

    def provisioning(self) -> Provisioning:
        return Provisioning(self.dav, self._require_admin())

    def team_folders(self) -> TeamFolders:
        return TeamFolders(self.dav, self._require_admin())
