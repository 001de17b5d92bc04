"""Bulk upload `POST /remote.php/dav/bulk` (multipart/related) with NC 32.0.1's per-part results and aborts (§4.2)."""

from __future__ import annotations

import hashlib
import os
import secrets
import time
import zlib
from collections.abc import Iterable
from typing import Any

from . import names
from .files import MtimeError, sanitize_mtime
from .state import CREATE, UPDATE, State
from .versions import keep_version
from .wire import Environ, StartResponse, json_body, sabre_error

HTML = "text/html; charset=UTF-8"


class _Adler32:
    def __init__(self) -> None:
        self.value = 1

    def update(self, data: bytes) -> None:
        self.value = zlib.adler32(data, self.value)

    def hexdigest(self) -> str:
        return f"{self.value:08x}"


def hasher_for(algo: str) -> Any:
    """PHP hash_init names; unknown ones are the 500 `ValueError` of §4.2."""
    algo = algo.lower()
    if algo == "adler32":
        return _Adler32()
    if algo in ("md5", "sha1", "sha256", "sha512", "sha3-256"):
        return hashlib.new(algo.replace("sha3-256", "sha3_256"))
    return None


class _Reader:
    """Buffered reads over wsgi.input: lines for part headers, exact byte counts for bodies."""

    def __init__(self, stream: Any, length: int | None) -> None:
        self.stream = stream
        self.remaining = length
        self.buf = b""

    def _fill(self) -> bool:
        n = 65536 if self.remaining is None else min(65536, self.remaining)
        if n <= 0:
            return False
        data = self.stream.read(n)
        if not data:
            return False
        if self.remaining is not None:
            self.remaining -= len(data)
        self.buf += data
        return True

    def readline(self, limit: int = 65536) -> bytes:
        while b"\n" not in self.buf and len(self.buf) < limit and self._fill():
            pass
        i = self.buf.find(b"\n")
        end = i + 1 if i >= 0 else len(self.buf)
        line, self.buf = self.buf[:end], self.buf[end:]
        return line

    def read(self, n: int) -> bytes:
        while len(self.buf) < n and self._fill():
            pass
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class BulkAbort(Exception):
    """A parsing failure: stop and answer `code` (400 lists what was written, 500 loses the list)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Bulk:
    """One request = many files, each streamed to disk; results keyed by the path exactly as sent."""

    def __init__(self, state: State) -> None:
        self.state = state

    def handle(self, environ: Environ, start_response: StartResponse, user: str) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] != "POST":
            return sabre_error(start_response, 405, "Method not allowed")
        ctype = environ.get("CONTENT_TYPE", "")
        if not ctype.lower().startswith("multipart/related"):
            return sabre_error(start_response, 400, "Content-Type must be multipart/related")
        boundary = None
        for param in ctype.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "boundary":
                boundary = value.strip('"')
        if not boundary:
            return sabre_error(start_response, 400, "Boundary not found")
        length = environ.get("CONTENT_LENGTH")
        reader = _Reader(environ["wsgi.input"], int(length) if length else None)
        results: dict[str, dict[str, Any]] = {}
        try:
            self._parse(reader, boundary.encode(), user, results)
        except BulkAbort as exc:
            if exc.code == 500:
                return sabre_error(start_response, 500, str(exc))
            return json_body(start_response, 400, results or [], HTML, escape_slashes=True)
        return json_body(start_response, 200, results, HTML, escape_slashes=True)

    def _parse(self, reader: _Reader, boundary: bytes, user: str, results: dict[str, dict[str, Any]]) -> None:
        delim = b"--" + boundary
        line = reader.readline()
        while line and line.strip() == b"":
            line = reader.readline()
        if line.strip() != delim:
            raise BulkAbort(400, "Unable to parse boundary")
        while True:
            headers: dict[str, str] = {}
            while True:
                line = reader.readline()
                if not line:
                    raise BulkAbort(400, "Unexpected end of body")
                text = line.decode("utf-8", "replace").strip()
                if not text:
                    break
                key, _, value = text.partition(":")
                headers[key.strip().lower()] = value.strip()
            self._part(reader, headers, user, results)
            if reader.read(2) != b"\r\n":
                raise BulkAbort(400, "Part body not followed by CRLF")
            line = reader.readline().strip()
            if line == delim + b"--":
                return
            if line != delim:
                raise BulkAbort(400, "Unable to parse boundary")

    def _part(self, reader: _Reader, headers: dict[str, str], user: str, results: dict[str, dict[str, Any]]) -> None:
        st = self.state
        if "content-length" not in headers or not headers["content-length"].isdigit():
            raise BulkAbort(400, "The Content-Length header must be set")
        size = int(headers["content-length"])
        checksum = headers.get("oc-checksum")
        md5 = headers.get("x-file-md5")
        if checksum:
            algo, _, expected = checksum.partition(":")
        elif md5:
            algo, expected = "md5", md5
        else:
            raise BulkAbort(400, "The X-File-MD5 header must not be null")
        hasher = hasher_for(algo)
        if hasher is None:
            raise BulkAbort(500, "hash_init(): Argument #1 ($algo) must be a valid hashing algorithm")
        sent_path = headers.get("x-file-path", "")
        tmp = st.data_dir / "tmp" / f"bulk-{secrets.token_hex(8)}.part"
        try:
            with open(tmp, "wb") as out:
                remaining = size
                while remaining > 0:
                    block = reader.read(min(1024 * 1024, remaining))
                    if not block:
                        raise BulkAbort(400, "Unexpected end of body")
                    out.write(block)
                    hasher.update(block)
                    remaining -= len(block)
            if hasher.hexdigest() != expected.strip():       # case-sensitive, as on 32.0.1
                raise BulkAbort(400, "Computed hash is incorrect")
            results[sent_path] = self._store(tmp, sent_path, headers, user)
        finally:
            tmp.unlink(missing_ok=True)

    def _store(self, tmp: Any, sent_path: str, headers: dict[str, str], user: str) -> dict[str, Any]:
        st = self.state
        rel = names.nfc(sent_path.replace("\\", "/").strip("/"))
        segments = rel.split("/")
        if names.is_part_name(segments[-1]):
            raise BulkAbort(500, "Call to a member function getETag() on null")
        full = f"/{user}/files/{rel}"
        msg = names.check_path(segments)
        if msg == "Filename is too long":
            return {"error": True, "message": ""}
        if msg:
            return {"error": True, "message": f"Invalid path: files/{rel}"}
        mtime_raw = headers.get("x-file-mtime") or headers.get("x-oc-mtime")
        mtime = None
        if mtime_raw is not None:
            try:
                mtime = sanitize_mtime(mtime_raw)
            except MtimeError as exc:
                return {"error": True, "message": str(exc)}
        node = st.resolve(user, rel)
        parent = st.resolve(user, rel.rpartition("/")[0])
        exists = node.real.is_file()
        if not parent.real.is_dir() or node.real.is_dir():
            return {"error": True, "message": f'Could not create path "{full}"'}
        if not st.permissions(node if exists else parent, not exists) & (UPDATE if exists else CREATE):
            return {"error": True, "message": f'Could not create path "{full}"'}
        if st.is_locked(node.real):
            return {"error": True, "message": f'"/{rel}" is locked'}
        free = st.free_space(node)
        size = os.path.getsize(tmp)
        if free is not None and size > free:
            return {"error": True, "message": f"Insufficient space in /{rel}, {size} required, {free} available"}
        meta = st.meta_for(node.real)
        if exists:
            keep_version(st, node.real, mtime if mtime is not None else int(time.time()))
        os.replace(tmp, node.real)
        meta.author = user
        meta.checksum = None                          # bulk verifies but never stores (§4.2)
        st.propagate(node.real, node.storage_root)
        if mtime is not None:
            os.utime(node.real, (mtime, mtime))
        meta.upload_time = int(time.time())
        perms = st.permissions(node, False)
        return {"error": False, "etag": st.etag(node.real), "fileid": st.oc_id(meta.fileid),
                "permissions": st.perm_string(perms, is_dir=False, mounted=node.folder is not None)}

