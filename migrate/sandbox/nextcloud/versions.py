"""File versions `/remote.php/dav/versions/{uid}/versions/{fileid}` as NC 32.0.1 keeps them on upload and expires
them in its background jobs (§9.1, §9.2)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from xml.sax.saxutils import escape

from .files import MtimeError, sanitize_mtime
from .state import State
from .wire import MULTISTATUS, Environ, StartResponse, header, read_body, respond, sabre_error

VERSIONS_PREFIX = "/remote.php/dav/versions/"


def intended_mtime(environ: Environ | None, mtime_header: str | None = None) -> int:
    """The mtime an upload will end with: a valid X-OC-MTime, else the server's time (§3.1)."""
    raw = mtime_header if mtime_header is not None else (header(environ, "X-OC-MTime") if environ else None)
    if raw is not None:
        try:
            return sanitize_mtime(raw)
        except MtimeError:
            pass
    return int(time.time())


def keep_version(state: State, real: Path, new_mtime: int) -> None:
    """Before an overwrite, keep the current content as version `<old mtime>` — not for empty files, and not when
    the new mtime equals the old one (the row is updated instead, §9.2 points 2-3)."""
    try:
        st = os.stat(real)
    except OSError:
        return
    old_mtime = int(st.st_mtime)
    if st.st_size == 0 or old_mtime == new_mtime:
        return
    meta = state.meta_for(real)
    folder = state.data_dir / "versions" / str(meta.fileid)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(real, folder / str(old_mtime))
    with state.lock:
        record = state.versions.setdefault(meta.fileid, {}).setdefault(str(old_mtime), {})
        record["author"] = meta.author


# files_versions' automatic retention (`versions_retention_obligation = auto`): (interval ends after seconds of
# age, keep one version per step seconds); versions older than 30 days keep one per week (§9.2 point 4).
INTERVALS = ((10, 2), (60, 10), (3600, 60), (86400, 3600), (2592000, 86400), (-1, 604800))


def auto_expire_list(newest_first: list[int], now: int) -> list[int]:
    """The timestamps the retention job deletes, as files_versions' Storage::getAutoExpireList picks them: walk
    the versions newest first, keep the first, drop any closer than its interval's step to the last one kept."""
    if not newest_first:
        return []
    interval = 0
    step = INTERVALS[0][1]
    next_interval = now - INTERVALS[0][0]
    prev = newest_first[0]
    next_version = prev - step
    out = []
    for ts in newest_first[1:]:
        while True:
            if next_interval == -1 or prev > next_interval:
                if ts > next_version:
                    out.append(ts)
                else:
                    next_version, prev = ts - step, ts
                break
            interval += 1
            ends, step = INTERVALS[interval]
            next_version = prev - step
            next_interval = -1 if ends == -1 else now - ends
    return out


def expire(state: State, *, team_folders: bool, now: int | None = None) -> list[tuple[int, int]]:
    """One run of the background job: the user cron job (`cron.php`, home folders) or groupfolders' own
    (`occ groupfolders:expire`, team folders): unlabelled earlier versions thinned by `auto_expire_list`.
    Labelled versions are never expired (§9.2 point 4, verified on 32.0.1). Returns (fileid, timestamp) removed."""
    now = int(time.time()) if now is None else now
    gone: list[tuple[int, int]] = []
    with state.lock:
        files = {fid: dict(recs) for fid, recs in state.versions.items()}
    for fid, recs in files.items():
        real = state.path_of(fid)
        if real is None:
            continue
        if ("/__groupfolders/" in str(real)) != team_folders:
            continue
        current = str(int(os.stat(real).st_mtime))
        stored = sorted((int(ts) for ts, r in recs.items() if ts != current and not r.get("label")
                         and (state.data_dir / "versions" / str(fid) / ts).is_file()), reverse=True)
        for ts in auto_expire_list(stored, now):
            (state.data_dir / "versions" / str(fid) / str(ts)).unlink(missing_ok=True)
            with state.lock:
                state.versions.get(fid, {}).pop(str(ts), None)
            gone.append((fid, ts))
    return gone


class Versions:
    """PROPFIND the list (current content included, newest), GET old content, label by PROPPATCH, restore by MOVE."""

    def __init__(self, state: State) -> None:
        self.state = state

    def handle(self, environ: Environ, start_response: StartResponse, user: str, path: str) -> Iterable[bytes]:
        parts = [p for p in path[len(VERSIONS_PREFIX):].split("/") if p]
        method = environ["REQUEST_METHOD"]
        if not parts or parts[0] != user:
            return sabre_error(start_response, 404 if parts and parts[0] not in self.state.users else 403,
                               "Permission denied")
        if len(parts) < 3 or parts[1] != "versions" or not parts[2].isdigit():
            return sabre_error(start_response, 404, "File not found")
        fileid = int(parts[2])
        real = self.state.path_of(fileid)
        if real is None or not real.is_file() or self.state.rel_for(user, real) is None:
            return sabre_error(start_response, 404, f"Versions for file {fileid} not found")
        entries = self.entries(fileid, real)
        if len(parts) == 3:
            if method == "PROPFIND":
                return self.propfind(start_response, user, fileid, entries, environ.get("HTTP_DEPTH", "1"))
            return sabre_error(start_response, 405, "Method not allowed")
        ts = parts[3]
        if ts not in entries:
            return sabre_error(start_response, 404, f"Version {ts} not found")
        current = ts == str(int(os.stat(real).st_mtime))
        if method in ("GET", "HEAD"):
            node = self.state.resolve(user, self.state.rel_for(user, real) or "")
            if current and node.folder is None:
                return sabre_error(start_response, 404, "Current version not found")   # home: 404, §9.1
            source = real if current else self.stored(fileid, ts)
            data_len = source.stat().st_size
            start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(data_len))])
            if method == "HEAD":
                return [b""]
            fh = open(source, "rb")  # noqa: SIM115 - closed by the server via file_wrapper
            wrapper = environ.get("wsgi.file_wrapper")
            return wrapper(fh, 1024 * 1024) if wrapper else iter(lambda: fh.read(1024 * 1024), b"")
        if method == "PROPPATCH":
            return self.label(environ, start_response, fileid, ts, path)
        if method == "MOVE":
            return self.restore(environ, start_response, user, fileid, ts, real, current)
        return sabre_error(start_response, 405, "Method not allowed")

    def stored(self, fileid: int, ts: str) -> Path:
        return self.state.data_dir / "versions" / str(fileid) / ts

    def entries(self, fileid: int, real: Path) -> dict[str, dict[str, Any]]:
        """Timestamp -> {size, author, label}; the current content is the newest entry."""
        with self.state.lock:
            records = {ts: dict(r) for ts, r in self.state.versions.get(fileid, {}).items()}
        out: dict[str, dict[str, Any]] = {}
        for ts, rec in records.items():
            stored = self.stored(fileid, ts)
            if stored.is_file():
                out[ts] = {"size": stored.stat().st_size, "author": rec.get("author", ""), "label": rec.get("label")}
        st = os.stat(real)
        cur = str(int(st.st_mtime))
        meta = self.state.meta_for(real)
        out[cur] = {"size": st.st_size, "author": meta.author, "label": records.get(cur, {}).get("label")}
        return dict(sorted(out.items(), key=lambda kv: int(kv[0])))

    def propfind(self, start_response: StartResponse, user: str, fileid: int, entries: dict[str, dict[str, Any]],
                 depth: str) -> Iterable[bytes]:
        base = f"{VERSIONS_PREFIX}{user}/versions/{fileid}"
        out = [MULTISTATUS + "<d:response><d:href>" + escape(base) + "/</d:href><d:propstat>"
               "<d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK"
               "</d:status></d:propstat></d:response>"]
        if depth != "0":
            for ts, rec in entries.items():
                modified = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(int(ts)))
                found = (f"<d:getlastmodified>{modified}</d:getlastmodified><d:getcontentlength>{rec['size']}"
                         f'</d:getcontentlength><d:getetag>"{ts}"</d:getetag><d:resourcetype/>'
                         f"<nc:version-author>{escape(rec['author'])}</nc:version-author>")
                missing = ""
                if rec["label"] is not None:
                    found += f"<nc:version-label>{escape(rec['label'])}</nc:version-label>"
                else:
                    missing = ("<d:propstat><d:prop><nc:version-label/></d:prop><d:status>HTTP/1.1 404 Not Found"
                               "</d:status></d:propstat>")
                out.append(f"<d:response><d:href>{escape(base)}/{ts}</d:href><d:propstat><d:prop>{found}</d:prop>"
                           f"<d:status>HTTP/1.1 200 OK</d:status></d:propstat>{missing}</d:response>")
        out.append("</d:multistatus>")
        return respond(start_response, 207, "".join(out).encode(), "application/xml; charset=utf-8")

    def label(self, environ: Environ, start_response: StartResponse, fileid: int, ts: str, path: str
              ) -> Iterable[bytes]:
        """PROPPATCH `nc:version-label`; labelled versions are never expired (§9.1, §9.2 point 4)."""
        from defusedxml.ElementTree import fromstring

        try:
            root = fromstring(read_body(environ))
        except Exception:  # noqa: BLE001 - malformed XML is the client's 400
            return sabre_error(start_response, 400, "Invalid XML")
        el = next(root.iter("{http://nextcloud.org/ns}version-label"), None)
        if el is None:
            return sabre_error(start_response, 400, "Only nc:version-label can be set on a version")
        with self.state.lock:
            self.state.versions.setdefault(fileid, {}).setdefault(ts, {})["label"] = (el.text or "").strip()
        body = (MULTISTATUS + "<d:response>"
                f"<d:href>{escape(path)}</d:href><d:propstat><d:prop><nc:version-label/></d:prop>"
                "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>")
        return respond(start_response, 207, body.encode(), "application/xml; charset=utf-8")

    def restore(self, environ: Environ, start_response: StartResponse, user: str, fileid: int, ts: str, real: Path,
                current: bool) -> Iterable[bytes]:
        """MOVE to `…/versions/{uid}/restore/<name>`: the version becomes current with its mtime (§9.1)."""
        dest = unquote(urlparse(header(environ, "Destination") or "").path)
        if not dest.startswith(f"{VERSIONS_PREFIX}{user}/restore/"):
            return sabre_error(start_response, 403, "Versions can only be moved to the restore folder")
        if current:
            return respond(start_response, 204)
        stored = self.stored(fileid, ts)
        keep_version(self.state, real, int(ts))
        tmp = self.state.data_dir / "tmp" / f"restore-{fileid}-{ts}"
        shutil.copyfile(stored, tmp)
        os.replace(tmp, real)
        os.utime(real, (int(ts), int(ts)))
        with self.state.lock:
            meta = self.state.meta_for(real)
            meta.author = user
            meta.checksum = None  # the stored checksum was the replaced content's
        return respond(start_response, 201)
