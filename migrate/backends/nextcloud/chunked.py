"""Chunked upload v2 (reference §4.1): MKCOL an upload folder, PUT numbered chunks, MOVE `.file` into place.

Each chunk is gathered from the caller's stream into a spool (memory up to SPOOL_MEMORY, then a temp file), so
only one chunk is ever held and each chunk PUT can be re-sent by the pacer. `Destination` and `OC-Total-Length`
go on every request, so a full quota answers 507 at the first chunk, before the rest is read. The final MOVE
carries `X-OC-MTime` and `OC-Checksum`; a 423 there is TargetLocked (Transient) and the pacer retries it. On any
failure the upload folder is deleted.
"""

from __future__ import annotations

import logging
import math
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import IO

from migrate.backends.nextcloud.dav import NextcloudDav
from migrate.errors import IntegrityError, MigrateError, TargetItemError

log = logging.getLogger(__name__)

MIN_CHUNK = 5 * 1024 * 1024
MAX_CHUNK = 5 * 1024 * 1024 * 1024
MAX_CHUNKS = 10000
SPOOL_MEMORY = 8 * 1024 * 1024
READ_BLOCK = 1024 * 1024


def chunk_size_for(size: int, configured: int) -> int:
    """max(configured, ceil(size / 10000)) kept within 5 MiB–5 GiB (only the last chunk may be smaller)."""
    return min(MAX_CHUNK, max(MIN_CHUNK, configured, math.ceil(size / MAX_CHUNKS)))


def _spooled_chunks(chunks: Iterable[bytes], chunk_size: int) -> Iterator[tuple[IO[bytes], int]]:
    """Regroup the caller's stream into spools of exactly `chunk_size` bytes (the last one shorter)."""
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
    filled = 0
    try:
        for piece in chunks:
            view = memoryview(piece)
            while view:
                take = min(len(view), chunk_size - filled)
                spool.write(view[:take])
                filled += take
                view = view[take:]
                if filled == chunk_size:
                    yield spool, filled
                    spool.close()
                    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
                    filled = 0
        if filled:
            yield spool, filled
    finally:
        spool.close()


def _replay(spool: IO[bytes]) -> Callable[[], Iterator[bytes]]:
    def body() -> Iterator[bytes]:
        spool.seek(0)
        while block := spool.read(READ_BLOCK):
            yield block

    return body


class ChunkedUpload:
    """One chunked upload of `size` bytes to `user:path`; `run()` returns the MOVE response headers."""

    def __init__(self, dav: NextcloudDav, user: str, path: str, size: int, *, chunk_size: int,
                 mtime: int | None, sha1: str | Callable[[], str] | None) -> None:
        self.dav = dav
        self.user = user
        self.path = path
        self.size = size
        self.chunk_size = chunk_size_for(size, chunk_size)
        self.mtime = mtime
        self.sha1 = sha1
        self.transfer_id = f"m365-migrate-{uuid.uuid4().hex}"
        self.chunks_sent = 0

    def _headers(self) -> dict[str, str]:
        return {"Destination": self.dav.files_url(self.user, self.path), "OC-Total-Length": str(self.size)}

    def run(self, chunks: Iterable[bytes]) -> dict[str, str]:
        dav, user = self.dav, self.user
        folder = dav.uploads_url(user, self.transfer_id)
        dav.send(user, "MKCOL", folder, f"MKCOL upload folder for {user}:{self.path!r}", headers=self._headers())
        try:
            sent = 0
            for spool, length in _spooled_chunks(chunks, self.chunk_size):
                self.chunks_sent += 1
                if self.chunks_sent > MAX_CHUNKS:
                    raise TargetItemError(f"{user}:{self.path}: more than {MAX_CHUNKS} chunks (more bytes than the "
                                          f"{self.size} announced)")
                name = f"{self.chunks_sent:05d}"
                dav.send(user, "PUT", dav.uploads_url(user, self.transfer_id, name),
                         f"PUT chunk {name} of {user}:{self.path!r}", body=_replay(spool),
                         headers={**self._headers(), "Content-Length": str(length)})
                sent += length
            if sent != self.size:
                raise IntegrityError(f"{user}:{self.path}: the stream gave {sent} bytes, {self.size} were announced")
            headers = {**self._headers(), "Overwrite": "T"}
            if self.mtime is not None:
                headers["X-OC-MTime"] = str(self.mtime)
            sha1 = self.sha1() if callable(self.sha1) else self.sha1
            if sha1:
                headers["OC-Checksum"] = f"SHA1:{sha1.lower()}"
            resp = dav.send(user, "MOVE", dav.uploads_url(user, self.transfer_id, ".file"),
                            f"MOVE assembled upload to {user}:{self.path!r}", headers=headers)
            return dict(resp.headers)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Delete the upload folder (best effort: the server also expires it after 24 h of inactivity)."""
        try:
            self.dav.send(self.user, "DELETE", self.dav.uploads_url(self.user, self.transfer_id),
                          f"DELETE upload folder of {self.user}:{self.path!r}", ok=(404,))
        except MigrateError as exc:
            log.warning("could not delete upload folder %s of %s: %s", self.transfer_id, self.user, exc)
