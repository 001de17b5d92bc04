"""Bulk upload (reference §4.2): many small files in one `POST /remote.php/dav/bulk` (multipart/related).

Each part carries X-File-Path, Content-Length, X-File-MD5 (mandatory before NC 32), OC-Checksum (lower-case
hex: upper case is rejected) and X-File-Mtime. Parents must exist. The answer (JSON sent as text/html) has one
entry per path; an aborted request (400) lists only what was written. Every missing or `error: true` entry is
reported per file so the caller can re-send it by plain PUT. The checksum is verified but never stored.
"""

from __future__ import annotations

import hashlib
import json
import uuid

from migrate.backends.nextcloud.dav import NextcloudDav
from migrate.errors import TargetItemError
from migrate.models import RemoteEntry, SmallFile

MAX_FILES = 100  # the desktop client's batch size
MAX_BYTES = 16 * 1024 * 1024  # each part is read into a PHP string: keep batches small in bytes



def batches(files: list[SmallFile], max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES) -> list[list[SmallFile]]:
    out: list[list[SmallFile]] = []
    cur: list[SmallFile] = []
    size = 0
    for f in files:
        if cur and (len(cur) >= max_files or size + len(f.data) > max_bytes):
            out.append(cur)
            cur, size = [], 0
        cur.append(f)
        size += len(f.data)
    if cur:
        out.append(cur)
    return out


def encode_parts(files: list[SmallFile]) -> tuple[list[bytes], str]:
    """The multipart/related body as pieces, and its boundary: each file's bytes are the caller's own object,
    not a copy (a joined body would hold every file twice, three times while it is built)."""
    boundary = f"m365-migrate-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for f in files:
        sha1 = (f.sha1 or hashlib.sha1(f.data).hexdigest()).lower()
        head = [
            f"X-File-Path: /{f.path.strip('/')}",
            f"X-File-MD5: {hashlib.md5(f.data).hexdigest()}",  # noqa: S324 - protocol field, not security
            f"OC-Checksum: SHA1:{sha1}",
            "Content-Type: application/octet-stream",
            f"Content-Length: {len(f.data)}",
        ]
        if f.mtime is not None:
            head.insert(3, f"X-File-Mtime: {int(f.mtime)}")
        parts += [f"--{boundary}\r\n".encode() + "\r\n".join(head).encode("utf-8") + b"\r\n\r\n", f.data, b"\r\n"]
    parts.append(f"--{boundary}--\r\n".encode())
    return parts, boundary


def encode(files: list[SmallFile]) -> tuple[bytes, str]:
    """The multipart/related body in one piece, and its boundary (benchmarks send it from memory)."""
    parts, boundary = encode_parts(files)
    return b"".join(parts), boundary


def post(dav: NextcloudDav, user: str, files: list[SmallFile]) -> dict[str, RemoteEntry | TargetItemError]:
    """One bulk request; per path, the entry written or the error (missing entries count as errors)."""
    parts, boundary = encode_parts(files)
    # Sent piece by piece (a fresh iterator for each attempt of the pacer), with its length given: not chunked.
    resp = dav.send(user, "POST", f"{dav.base}/remote.php/dav/bulk", f"POST bulk ({len(files)} files) as {user}",
                    headers={"Content-Type": f"multipart/related; boundary={boundary}",
                             "Content-Length": str(sum(map(len, parts)))}, body=lambda: iter(parts), ok=(400,))
    try:
        answer = json.loads(resp.content or b"{}")
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    norm = {k.strip("/"): v for k, v in answer.items() if isinstance(v, dict)}
    out: dict[str, RemoteEntry | TargetItemError] = {}
    for f in files:
        key = f.path.strip("/")
        got = norm.get(key)
        if got is None:
            why = "the bulk request was aborted before this part" if resp.status_code == 400 else "no result"
            out[f.path] = TargetItemError(f"bulk upload {user}:{f.path!r}: {why}")
        elif got.get("error"):
            out[f.path] = TargetItemError(f"bulk upload {user}:{f.path!r}: {got.get('message') or 'refused'}")
        else:
            out[f.path] = RemoteEntry(path=key, is_folder=False, size=len(f.data),
                                      mtime=float(f.mtime) if f.mtime is not None else None,
                                      etag=str(got.get("etag") or "").strip('"') or None)
    return out
