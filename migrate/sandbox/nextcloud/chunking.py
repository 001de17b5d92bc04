"""Chunked upload on `/remote.php/dav/uploads/{uid}/{id}` as NC 32.0.1 runs it on local storage (§4.1, v1 assembly)."""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape

from . import ifheader
from .files import FILES_PREFIX, FileOps, destination, split_files_path, stream_body, text_path
from .state import CREATE, UPDATE, State
from .wire import MULTISTATUS, Environ, StartResponse, header, invalid_path, respond, sabre_error

UPLOADS_PREFIX = "/remote.php/dav/uploads/"
V2_MARKER = ".chunking-v2"


def natural_key(name: str) -> list[object]:
    """Chunks are assembled in natural name order: `1, 2, 10, abc` (§4.1, verified on 32.0.1)."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.findall(r"\d+|\D+", name)]


class Chunking:
    """MKCOL / PUT chunk / GET chunk / PROPFIND / MOVE `.file` / DELETE on the upload area."""

    def __init__(self, state: State, ops: FileOps) -> None:
        self.state = state
        self.ops = ops

    def folder(self, uid: str, upload_id: str) -> Path:
        return self.state.data_dir / "uploads" / uid / upload_id

    def handle(self, environ: Environ, start_response: StartResponse, user: str, path: str) -> Iterable[bytes]:
        rest = path[len(UPLOADS_PREFIX):].strip("/")
        parts = rest.split("/") if rest else []
        method = environ["REQUEST_METHOD"]
        if not parts or parts[0] != user:
            if parts and parts[0] not in self.state.users:
                return sabre_error(start_response, 404, f"Principal with name {parts[0]} not found")
            return sabre_error(start_response, 403, "Permission denied")
        if len(parts) == 1:
            if method == "PROPFIND":
                return self.propfind(start_response, user, None)
            return sabre_error(start_response, 405, "Method not allowed on the uploads home")
        upload = self.folder(user, parts[1])
        if len(parts) == 2:
            if method == "MKCOL":
                if upload.exists():
                    return sabre_error(start_response, 405, "The resource you tried to create already exists")
                upload.mkdir(parents=True)
                if self.state.chunking_v2 and header(environ, "Destination"):
                    (upload / V2_MARKER).touch()     # v2 engages only with a Destination (§4.1)
                return respond(start_response, 201)
            if method == "DELETE":
                if not upload.is_dir():
                    return sabre_error(start_response, 404, f"File with name {parts[1]} could not be located")
                shutil.rmtree(upload, ignore_errors=True)
                return respond(start_response, 204)
            if method == "PROPFIND":
                if not upload.is_dir():
                    return sabre_error(start_response, 404, f"File with name {parts[1]} could not be located")
                return self.propfind(start_response, user, parts[1], depth=environ.get("HTTP_DEPTH", "1"))
            return sabre_error(start_response, 405, "Method not allowed")
        if len(parts) != 3 or not upload.is_dir():
            return sabre_error(start_response, 404, f"File with name {'/'.join(parts[1:])} could not be located")
        name = parts[2]
        v2 = (upload / V2_MARKER).exists()
        if v2 and method in ("PUT", "GET", "HEAD") and name != ".file":
            if method != "PUT":
                return sabre_error(start_response, 405, "GET requests on an incomplete upload are not allowed")
            if not name.isdigit() or not 1 <= int(name) <= 10000:
                return sabre_error(start_response, 400, "Invalid chunk name, must be numeric between 1 and 10000")
        if method == "PUT":
            return self.put_chunk(environ, start_response, user, upload / name)
        if method in ("GET", "HEAD"):
            chunk = upload / name
            if not chunk.is_file():
                return sabre_error(start_response, 404, f"File with name {name} could not be located")
            return _file_response(environ, start_response, chunk, head=(method == "HEAD"))
        if method == "MOVE" and name == ".file":
            return self.assemble(environ, start_response, user, upload, v2=v2)
        if method == "DELETE":
            (upload / name).unlink(missing_ok=True)
            return respond(start_response, 204)
        return sabre_error(start_response, 405, "Method not allowed")

    def put_chunk(self, environ: Environ, start_response: StartResponse, user: str, chunk: Path) -> Iterable[bytes]:
        """Any chunk name is accepted on the v1 path; 507 early with Destination + OC-Total-Length (§4.1, §8.1)."""
        dest = destination(environ)
        total = header(environ, "OC-Total-Length")
        if dest and total and total.isdigit() and dest.startswith(FILES_PREFIX):
            duid, drel = split_files_path(dest)
            if duid == user:
                node = self.state.resolve(user, drel)
                free = self.state.free_space(node)
                if free is not None and int(total) > free:
                    where = "/" + drel.rpartition("/")[0]
                    return sabre_error(start_response, 507, f"Insufficient space in {where}, {total} required, "
                                                            f"{free} available")
        existed = chunk.exists()
        tmp = chunk.with_name(f".{chunk.name}.{secrets.token_hex(4)}.tmp")
        try:
            with open(tmp, "wb") as out:
                stream_body(environ, out)
            tmp.replace(chunk)
        finally:
            tmp.unlink(missing_ok=True)
        return respond(start_response, 204 if existed else 201)

    def chunks(self, upload: Path) -> list[Path]:
        return sorted((p for p in upload.iterdir() if p.is_file() and not p.name.startswith(".")),
                      key=lambda p: natural_key(p.name))

    def assemble(self, environ: Environ, start_response: StartResponse, user: str, upload: Path, *, v2: bool = False
                 ) -> Iterable[bytes]:
        """The final MOVE: validate, check sum/quota/lock, assemble by streaming, apply mtime and checksum.

        v1 (local storage): a bad X-OC-MTime is a 500 after assembly and OC-Checksum is stored. v2 (S3 + Redis):
        the mtime only has to be numeric and is checked first, and the checksum is not persisted (§3.1, §3.3).
        """
        st = self.state
        v2_mtime = None
        if v2 and header(environ, "X-OC-MTime") is not None:
            raw = header(environ, "X-OC-MTime") or ""
            try:
                v2_mtime = int(float(raw))
            except ValueError:
                return sabre_error(start_response, 400, f'X-OC-MTime header must be a valid integer (unix '
                                                        f'timestamp), got "{raw}".')
        dest = destination(environ)
        if not dest:
            return sabre_error(start_response, 400, "The destination header was not supplied")
        duid, drel = split_files_path(dest)
        if not dest.startswith(FILES_PREFIX) or duid != user or not drel:
            return sabre_error(start_response, 403, "Permission denied to move to this destination")
        msg = self.ops.check_names(start_response, drel)
        if msg:
            return msg
        node = st.resolve(user, drel)
        parent = st.resolve(user, drel.rpartition("/")[0])
        if not parent.real.is_dir():
            return sabre_error(start_response, 409, "The destination node is not found")
        exists = node.real.exists()
        if header(environ, "If-Match"):
            # 32.0.1 judges If-Match on this MOVE against the upload's `.file`, whose etag no client can know:
            # it always fails. A tagged `If` naming the destination is what holds for the destination.
            return sabre_error(start_response, 412, "An If-Match header was specified, but none of the specified "
                                                    "ETags matched.", extra="<s:header>If-Match</s:header>")
        err = ifheader.check(environ, start_response, text_path(environ), self.ops.etag_at)  # untagged: the .file
        if err is not None:
            return err
        if exists and header(environ, "Overwrite", "T").upper() == "F":
            return sabre_error(start_response, 412, "The destination node already exists, and the overwrite header "
                                                    "is set to false", extra="<s:header>Overwrite</s:header>")
        if node.real.is_dir():
            return invalid_path(start_response, "The destination is a folder")
        err = self.ops.locked_error(start_response, node)
        if err:
            return err
        chunks = self.chunks(upload)
        size = sum(c.stat().st_size for c in chunks)
        total = header(environ, "OC-Total-Length")
        if total and total.isdigit() and int(total) != size:
            return sabre_error(start_response, 400, f"Chunks on server do not sum up to {total} but to {size} bytes")
        free = st.free_space(node)
        if free is not None and size > free:
            where = "/" + drel.rpartition("/")[0]
            return sabre_error(start_response, 507, f"Insufficient space in {where}, {size} required, {free} available")
        if not st.permissions(node if exists else parent, not exists) & (UPDATE if exists else CREATE):
            return sabre_error(start_response, 403, f"Permission denied to create file (filename {node.real.name})")
        key = str(node.real)
        with st.lock:
            if key in st.busy:
                return sabre_error(start_response, 423, f'"/{drel}.upload.part" is locked')
            st.busy.add(key)
        tmp = st.data_dir / "tmp" / f"assembly-{secrets.token_hex(8)}.part"
        try:
            with open(tmp, "wb") as out:
                for c in chunks:
                    with open(c, "rb") as src:
                        append(src, out)
            status: list[str] = []

            def capture(s: str, h: list, exc_info=None):  # noqa: ANN001
                status.append(s)
                return start_response(s, h, exc_info) if exc_info else start_response(s, h)

            body = self.ops.finish_write(environ, capture, node, tmp, exists, keep_checksum_header=not v2,
                                         mtime_secs=v2_mtime)
            if status and status[0].startswith("2"):
                shutil.rmtree(upload, ignore_errors=True)       # a failed mtime leaves the folder behind (§3.1)
            return body
        finally:
            tmp.unlink(missing_ok=True)
            with st.lock:
                st.busy.discard(key)

    def propfind(self, start_response: StartResponse, user: str, upload_id: str | None, depth: str = "1"
                 ) -> Iterable[bytes]:
        """Resume needs a listing: the folder, `.file` (assembled size) and the chunks (§4.1)."""
        base = UPLOADS_PREFIX + user + "/"
        entries: list[tuple[str, int | None]] = []
        if upload_id is None:
            entries.append((base, None))
        else:
            upload = self.folder(user, upload_id)
            href = base + quote(upload_id) + "/"
            entries.append((href, None))
            if depth != "0":
                chunks = self.chunks(upload)
                entries.append((href + ".file", sum(c.stat().st_size for c in chunks)))
                entries += [(href + quote(c.name), c.stat().st_size) for c in chunks]
        out = [MULTISTATUS]
        for href, size in entries:
            prop = ("<d:resourcetype><d:collection/></d:resourcetype>" if size is None else
                    f"<d:resourcetype/><d:getcontentlength>{size}</d:getcontentlength>")
            out.append(f"<d:response><d:href>{escape(href)}</d:href><d:propstat><d:prop>{prop}</d:prop>"
                       "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>")
        out.append("</d:multistatus>")
        return respond(start_response, 207, "".join(out).encode(), "application/xml; charset=utf-8")


def _file_response(environ: Environ, start_response: StartResponse, path: Path, head: bool) -> Iterable[bytes]:
    size = path.stat().st_size
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
    if head:
        return [b""]
    fh = open(path, "rb")  # noqa: SIM115 - closed by the server via file_wrapper
    wrapper = environ.get("wsgi.file_wrapper")
    return wrapper(fh, 1024 * 1024) if wrapper else iter(lambda: fh.read(1024 * 1024), b"")


def append(src, out) -> None:  # noqa: ANN001 - binary files
    """Append all of `src` to `out`, in the kernel where it can (copy_file_range), else in 1 MiB blocks."""
    out.flush()
    start = os.fstat(out.fileno()).st_size
    if hasattr(os, "copy_file_range"):
        try:
            left = os.fstat(src.fileno()).st_size
            while left > 0:
                n = os.copy_file_range(src.fileno(), out.fileno(), left)
                if n == 0:
                    break
                left -= n
            if left == 0:
                out.seek(0, os.SEEK_END)
                return
        except OSError:
            pass
        out.truncate(start)  # start again with the portable copy
        out.seek(start)
        src.seek(0)
    shutil.copyfileobj(src, out, 1024 * 1024)
