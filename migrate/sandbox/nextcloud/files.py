"""Nextcloud behaviour on `/remote.php/dav/files/{uid}/…` around WsgiDAV: PUT, name rules, quota, locks (§2, §3, §5)."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

from . import ifheader, names
from .state import CREATE, DELETE, UPDATE, Node, State
from .wire import Environ, StartResponse, header, invalid_path, read_body, respond, sabre_error

FILES_PREFIX = "/remote.php/dav/files/"
BLOCK = 1024 * 1024
_NUMERIC = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


class MtimeError(ValueError):
    """The MtimeSanitizer's refusal; the real server answers 500 with this text (§3.1)."""


def sanitize_mtime(value: str, name: str = "X-OC-MTime") -> int:
    """MtimeSanitizer: numeric (no hex) and > 86400, else the exact 32.0.1 messages (§3.1)."""
    if not _NUMERIC.match(value) or value.strip().lower().startswith(("0x", "-0x", "+0x")):
        raise MtimeError(f'{name} header must be a valid integer (unix timestamp), got "{value}".')
    secs = int(float(value))
    if secs <= 86400:
        raise MtimeError(f'{name} header must be a valid positive unix timestamp greater than one day, got "{value}".')
    return secs


def stream_body(environ: Environ, out, hashers: list | None = None) -> int:
    """Copy the request body to `out` in 1 MiB blocks; never the whole body in memory."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    remaining = int(length) if length else None
    total = 0
    while remaining is None or remaining > 0:
        block = stream.read(BLOCK if remaining is None else min(BLOCK, remaining))
        if not block:
            break
        out.write(block)
        for h in hashers or []:
            h.update(block)
        total += len(block)
        if remaining is not None:
            remaining -= len(block)
    return total


def split_files_path(path: str) -> tuple[str, str]:
    """`/remote.php/dav/files/alice/a/b` -> ("alice", "a/b"), NFC-normalised (§5.3)."""
    rest = path[len(FILES_PREFIX):] if path.startswith(FILES_PREFIX) else ""
    uid, _, rel = rest.partition("/")
    return uid, names.nfc(rel.strip("/"))


def destination(environ: Environ) -> str | None:
    """The Destination header as a decoded, NFC, path-absolute path (full URL or path-absolute, §2.4)."""
    raw = header(environ, "Destination")
    if not raw:
        return None
    path = unquote(urlparse(raw).path or raw, encoding="utf-8")
    return names.nfc(path)


def text_path(environ: Environ) -> str:
    """The request's files path as text (the handlers set PATH_INFO to the decoded path)."""
    return names.nfc(environ.get("PATH_INFO", ""))


def set_destination(environ: Environ, path: str) -> None:
    environ["HTTP_DESTINATION"] = quote(path, safe="/")


class FileOps:
    """The handlers that differ from plain WebDAV; WsgiDAV does the rest after these checks."""

    def __init__(self, state: State) -> None:
        self.state = state

    # --- shared checks --------------------------------------------------------------------------------------
    def check_names(self, start_response: StartResponse, rel: str) -> Iterable[bytes] | None:
        segments = [s for s in rel.split("/") if s != ""] if rel else []
        msg = names.check_path(segments) if segments else None
        return invalid_path(start_response, msg) if msg else None

    def quota_error(self, start_response: StartResponse, node: Node, needed: int, what: str = ""
                    ) -> Iterable[bytes] | None:
        free = self.state.free_space(node)
        if free is not None and needed > free:
            where = "/" + node.rel
            msg = (f"Insufficient space in {where}. {free} available. Cannot create directory" if what == "dir"
                   else f"Insufficient space in {where}, {needed} required, {free} available")
            return sabre_error(start_response, 507, msg)
        return None

    def locked_error(self, start_response: StartResponse, node: Node) -> Iterable[bytes] | None:
        if self.state.is_locked(node.real):
            return sabre_error(start_response, 423, f'"/{node.rel}.upload.part" is locked')
        return None

    # --- PUT --------------------------------------------------------------------------------------------------
    def put(self, environ: Environ, start_response: StartResponse, uid: str, rel: str) -> Iterable[bytes]:
        st = self.state
        node = st.resolve(uid, rel)
        if not rel:
            return sabre_error(start_response, 405, "PUT is not allowed on non-files.")
        err = self.check_names(start_response, rel)
        if err:
            return err
        parent_rel = rel.rpartition("/")[0]
        parent = st.resolve(uid, parent_rel)
        if not parent.real.is_dir():
            if header(environ, "X-NC-WebDAV-Auto-Mkcol") == "1":
                err = self.auto_mkcol(start_response, uid, parent_rel)
                if err:
                    return err
            else:
                return sabre_error(start_response, 404, f"File with name {self.first_missing(uid, parent_rel)} "
                                   "could not be located")
        if node.real.is_dir():
            return sabre_error(start_response, 405, "PUT is not allowed on non-files.")
        exists = node.real.is_file()
        err = self.preconditions(environ, start_response, node, exists)
        if err:
            return err
        perms = st.permissions(node if exists else parent, is_dir=not exists)
        if not perms & (UPDATE if exists else CREATE):
            return sabre_error(start_response, 403, f"Permission denied to create file (filename {node.real.name})"
                               if not exists else "Permission denied to update file")
        err = self.locked_error(start_response, node)
        if err:
            return err
        sizes = [int(v) for v in (environ.get("CONTENT_LENGTH"), header(environ, "X-Expected-Entity-Length"),
                                  header(environ, "OC-Total-Length")) if v and v.isdigit()]
        err = self.quota_error(start_response, node, max(sizes) if sizes else 0)
        if err:
            return err
        key = str(node.real)
        with st.lock:
            if key in st.busy:
                return sabre_error(start_response, 423, f'"/{rel}.upload.part" is locked')
            st.busy.add(key)
        try:
            return self._write(environ, start_response, node, exists)
        finally:
            with st.lock:
                st.busy.discard(key)

    def _write(self, environ: Environ, start_response: StartResponse, node: Node, exists: bool) -> Iterable[bytes]:
        st = self.state
        want = (header(environ, "X-Hash") or "").lower()
        algos = ["md5", "sha1", "sha256"] if want == "all" else [a for a in ("md5", "sha1", "sha256") if a == want]
        hashers = [hashlib.new(a) for a in algos]
        tmp = st.data_dir / "tmp" / f"{node.real.name[:40]}.ocTransferId{secrets.randbelow(10**10)}.part"
        try:
            with open(tmp, "wb") as out:
                got = stream_body(environ, out, hashers)
            expected = environ.get("CONTENT_LENGTH")
            if expected and int(expected) != got:
                tmp.unlink(missing_ok=True)
                return sabre_error(start_response, 400, f"Expected filesize of {expected} bytes but read (from "
                                   f"Nextcloud client) and wrote (to Nextcloud storage) {got} bytes. Could either be "
                                   "a network problem on the sending side or a problem writing to the storage on the "
                                   "server side.")
            return self.finish_write(environ, start_response, node, tmp, exists,
                                     [(f"X-Hash-{a.upper()}", h.hexdigest()) for a, h in zip(algos, hashers, strict=True)])
        finally:
            tmp.unlink(missing_ok=True)

    def finish_write(self, environ: Environ, start_response: StartResponse, node: Node, tmp: Path, exists: bool,
                     extra: list[tuple[str, str]] | None = None, *, keep_checksum_header: bool = True,
                     mtime_secs: int | None = None) -> Iterable[bytes]:
        """Move the finished body into place and apply X-OC-MTime/CTime and OC-Checksum (§2.3, §3).

        `mtime_secs` is an mtime already checked by the caller (the chunking-v2 MOVE sanitises before assembly).
        """
        st = self.state
        meta = st.meta_for(node.real)          # overwrite keeps the fileid (§5.3)
        if exists:
            from .versions import intended_mtime, keep_version

            keep_version(st, node.real, mtime_secs if mtime_secs is not None else intended_mtime(environ))
        os.replace(tmp, node.real)
        meta.author = node.uid
        checksum = header(environ, "OC-Checksum")
        meta.checksum = checksum.strip() if checksum and checksum.strip() and keep_checksum_header else None
        st.propagate(node.real, node.storage_root)
        headers: list[tuple[str, str]] = list(extra or [])
        ctime = header(environ, "X-OC-CTime")
        if ctime:
            try:
                meta.creation_time = sanitize_mtime(ctime, "X-OC-CTime")
                headers.append(("X-OC-CTime", "accepted"))
            except MtimeError:
                pass
        mtime = header(environ, "X-OC-MTime")
        if mtime_secs is not None:
            os.utime(node.real, (mtime_secs, mtime_secs))
            headers.append(("X-OC-MTime", "accepted"))
        elif mtime is not None:
            try:
                secs = sanitize_mtime(mtime)
            except MtimeError as exc:
                meta.upload_time = 0
                return sabre_error(start_response, 500, str(exc), exception="InvalidArgumentException")
            os.utime(node.real, (secs, secs))
            headers.append(("X-OC-MTime", "accepted"))
        meta.upload_time = int(time.time())
        etag = st.etag(node.real)
        headers += [("ETag", f'"{etag}"'), ("OC-ETag", f'"{etag}"'), ("OC-FileId", st.oc_id(meta.fileid))]
        return respond(start_response, 204 if exists else 201, b"", None, headers)

    def preconditions(self, environ: Environ, start_response: StartResponse, node: Node, exists: bool
                      ) -> Iterable[bytes] | None:
        """Sabre's If-Match / If-None-Match / `If` on PUT, MOVE, DELETE: 412 when they fail (§2.3
        `If-None-Match: *`)."""
        current = f'"{self.state.etag(node.real)}"' if exists else None
        if_match = header(environ, "If-Match")
        if if_match:
            tags = [t.strip() for t in if_match.split(",")]
            if not exists:
                return sabre_error(start_response, 412, "An If-Match header was specified and the resource did not "
                                                        "exist", extra="<s:header>If-Match</s:header>")
            if "*" not in tags and current not in tags:
                return sabre_error(start_response, 412, "An If-Match header was specified, but none of the specified "
                                                        "ETags matched.", extra="<s:header>If-Match</s:header>")
        if_none = header(environ, "If-None-Match")
        if if_none and exists:
            tags = [t.strip() for t in if_none.split(",")]
            if "*" in tags or current in tags:
                return sabre_error(start_response, 412, "An If-None-Match header was specified, but the ETag matched "
                                                        "(or * was specified).",
                                   extra="<s:header>If-None-Match</s:header>")
        return ifheader.check(environ, start_response, text_path(environ), self.etag_at)

    def etag_at(self, path: str) -> str | None:
        """The quoted etag of the resource at a files path, None when there is none (for `If` conditions)."""
        uid, rel = split_files_path(path)
        if not uid or uid not in self.state.users:
            return None
        node = self.state.resolve(uid, rel)
        return f'"{self.state.etag(node.real)}"' if node.real.exists() else None

    def first_missing(self, uid: str, parent_rel: str) -> str:
        """How 32.0.1 names the folder a PUT lacks: the first missing one, "/a/b/missing", or "//missing" when it
        would be at the account's root (checked: "//t4", "/top/have/nope" for top/have/nope/deeper/f.txt)."""
        parts = parent_rel.split("/")
        for i in range(len(parts)):
            if not self.state.resolve(uid, "/".join(parts[:i + 1])).real.exists():
                return f"/{'/'.join(parts[:i])}/{parts[i]}"
        return f"/{parent_rel}"

    def auto_mkcol(self, start_response: StartResponse, uid: str, parent_rel: str) -> Iterable[bytes] | None:
        """`X-NC-WebDAV-Auto-Mkcol: 1` creates missing parents; folder names get the extension rules too (§2.2)."""
        parts = parent_rel.split("/")
        for seg in parts:
            msg = names.check_name(seg, own=True)
            if msg:
                return invalid_path(start_response, msg)
        for i in range(1, len(parts) + 1):
            rel = "/".join(parts[:i])
            node = self.state.resolve(uid, rel)
            if node.real.is_file():
                return sabre_error(start_response, 404, f"Node with name '{node.real.name}' could not be found")
            if node.real.exists():
                continue
            # PUTs racing to make one folder lose as simultaneous MKCOLs do (checked on 32.0.1, six at once:
            # mostly 423 '"/<the folder>" is locked', now and then 403 "Could not create directory /<it>")
            hold = self.state.delays.get("MKCOL", 0.0)
            with self.state.mkcol_race("MKCOL", f"{FILES_PREFIX}{uid}/{rel}", hold) as lost:
                if lost == 403:
                    return sabre_error(start_response, 403, f"Could not create directory /{rel}")
                if lost == 423:
                    return sabre_error(start_response, 423, f'"/{rel}" is locked')
                node.real.mkdir(exist_ok=True)
                self.state.propagate(node.real, node.storage_root)
        return None

    # --- checks before WsgiDAV handles a method ---------------------------------------------------------------
    def precheck_mkcol(self, start_response: StartResponse, uid: str, rel: str) -> Iterable[bytes] | None:
        err = self.check_names(start_response, rel)
        if err:
            return err
        node = self.state.resolve(uid, rel)
        parent = self.state.resolve(uid, rel.rpartition("/")[0])
        if parent.real.is_dir() and not node.real.exists():
            if not self.state.permissions(parent, True) & CREATE:
                return sabre_error(start_response, 403, "Permission denied to create directory")
            return self.quota_error(start_response, node, 4096, "dir")
        return None

    def precheck_delete(self, start_response: StartResponse, uid: str, rel: str) -> Iterable[bytes] | None:
        if not rel:
            return sabre_error(start_response, 403, "Permission denied to delete home folder")
        node = self.state.resolve(uid, rel)
        if node.folder is not None and not node.rel_in_mount:
            return sabre_error(start_response, 403, "Permission denied to delete this file or folder")
        if node.real.exists():
            if not self.state.permissions(node, node.real.is_dir()) & DELETE:
                return sabre_error(start_response, 403, "Permission denied to delete this file or folder")
            return self.locked_error(start_response, node)
        return None

    def precheck_copy_move(self, environ: Environ, start_response: StartResponse, uid: str, rel: str,
                           is_move: bool) -> Iterable[bytes] | None:
        dest = destination(environ)
        if dest is None:
            return sabre_error(start_response, 400, "The destination header was not supplied")
        duid, drel = split_files_path(dest)
        if not dest.startswith(FILES_PREFIX) or duid != uid:
            return sabre_error(start_response, 403, "Permission denied to copy or move to this destination")
        err = self.check_names(start_response, drel)
        if err:
            return err
        src = self.state.resolve(uid, rel)
        dst = self.state.resolve(uid, drel)
        for node in (src, dst) if is_move else (dst,):
            err = self.locked_error(start_response, node)
            if err:
                return err
        mount_root = src.folder is not None and not src.rel_in_mount
        if is_move and src.real.exists() and rel and (mount_root or
                                                       not self.state.permissions(src, src.real.is_dir()) & DELETE):
            return sabre_error(start_response, 403, "Permission denied to move this file or folder")
        if not is_move and src.real.exists():
            size = src.real.stat().st_size if src.real.is_file() else self.state.tree_size(src.real)
            err = self.quota_error(start_response, dst, size)
            if err:
                return err
        set_destination(environ, FILES_PREFIX + uid + "/" + drel)
        return None

    def check_proppatch(self, environ: Environ, start_response: StartResponse, uid: str, rel: str
                        ) -> Iterable[bytes] | None:
        """500 for an invalid `d:lastmodified` and for a non-manager's ACL list, 400 for self-lockout (§3.2, §7.2)."""
        from io import BytesIO

        body = read_body(environ)
        environ["wsgi.input"] = BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        try:
            from defusedxml.ElementTree import fromstring
            root = fromstring(body) if body else None
        except Exception:  # noqa: BLE001 - malformed XML: let WsgiDAV answer 400
            return None
        if root is None:
            return None
        for el in root.iter("{DAV:}lastmodified"):
            try:
                sanitize_mtime((el.text or "").strip())
            except MtimeError as exc:
                return sabre_error(start_response, 500, str(exc), exception="InvalidArgumentException")
        acl = next(root.iter("{http://nextcloud.org/ns}acl-list"), None)
        if acl is not None:
            node = self.state.resolve(uid, rel)
            if node.folder is None or not node.folder.acl or not self.state.can_manage_acl(uid, node.folder):
                return sabre_error(start_response, 500, 'Property "{http://nextcloud.org/ns}acl-list" has an invalid '
                                                        "value of array containing object")
            from .dav import parse_acl
            for rule in parse_acl(acl):
                if rule["type"] == "user" and rule["id"] == uid and rule["mask"] & 1 and not rule["permissions"] & 1:
                    return sabre_error(start_response, 400, "You cannot remove your own read permission.")
        return None

    def recalculate_hash(self, environ: Environ, start_response: StartResponse, uid: str, rel: str
                         ) -> Iterable[bytes]:
        """PATCH + `X-Recalculate-Hash` makes the server hash the file and store it (§3.3)."""
        algo = (header(environ, "X-Recalculate-Hash") or "").lower()
        node = self.state.resolve(uid, rel)
        if algo not in ("md5", "sha1", "sha256") or not node.real.is_file():
            return sabre_error(start_response, 400 if node.real.is_file() else 404, "Unsupported or missing file")
        h = hashlib.new(algo)
        with open(node.real, "rb") as fh:
            for block in iter(lambda: fh.read(BLOCK), b""):
                h.update(block)
        value = f"{algo.upper()}:{h.hexdigest()}"
        self.state.meta_for(node.real).checksum = value
        return respond(start_response, 204, b"", None, [("OC-Checksum", value)])
