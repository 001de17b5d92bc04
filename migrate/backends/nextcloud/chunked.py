"""Chunked upload v2 (reference §4.1): MKCOL an upload folder, PUT numbered chunks, MOVE `.file` into place.

Each chunk is gathered from the caller's stream into a buffer (in memory while the process-wide file-memory
budget allows, else a temp file; transport.spool), so each chunk PUT can be re-sent by the pacer and memory stays bounded
whatever the number of workers and the file sizes. Up to `parallel` chunk PUTs run at once while the caller's stream
fills the next spool (the server advertises how many it welcomes, `max_parallel_count`; it assembles chunks by
name, not by arrival). `Destination` and `OC-Total-Length` go on every request, so a full quota answers 507 at
the first chunk, before the rest is read. The final MOVE carries `X-OC-MTime` and `OC-Checksum`; a 423 or 5xx
there is retried by the pacer. A retried MOVE can find the upload folder gone (404) because the first attempt
did assemble the file and only its answer was lost (a proxy timing out a long assembly): then the destination
is looked at, and the caller's size and checksum check decides. On any failure the upload folder is deleted.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from migrate.backends.nextcloud.dav import NextcloudDav
from migrate.backends.webdav.wire import PLAIN_PROPS, if_match_headers, raise_for
from migrate.errors import ChangedAtTarget, IntegrityError, MigrateError, TargetItemError, Transient
from migrate.transport.spool import FILE_MEMORY, MemoryBudget, Spool

log = logging.getLogger(__name__)

MIN_CHUNK = 5 * 1024 * 1024
MAX_CHUNK = 5 * 1024 * 1024 * 1024
MAX_CHUNKS = 10000


def chunk_size_for(size: int, configured: int) -> int:
    """max(configured, ceil(size / 10000)) kept within 5 MiB–5 GiB (only the last chunk may be smaller)."""
    return min(MAX_CHUNK, max(MIN_CHUNK, configured, math.ceil(size / MAX_CHUNKS)))


# Chunk data in memory counts against the process-wide budget shared with small files' whole reads.
CHUNK_MEMORY = FILE_MEMORY
ChunkBuffer = Spool


def _chunk_buffers(chunks: Iterable[bytes], chunk_size: int, budget: MemoryBudget
                   ) -> Iterator[tuple[ChunkBuffer, int]]:
    """Regroup the caller's stream into buffers of exactly `chunk_size` bytes (the last one shorter).

    The consumer owns (and closes) each buffer it is given; a buffer not yet handed over is closed here.
    """
    buf: ChunkBuffer | None = None
    filled = 0
    try:
        for piece in chunks:
            pos = 0
            while pos < len(piece):
                if buf is None:
                    buf = ChunkBuffer(budget, chunk_size)
                take = min(len(piece) - pos, chunk_size - filled)
                buf.write(piece if (pos == 0 and take == len(piece)) else piece[pos:pos + take])
                filled += take
                pos += take
                if filled == chunk_size:
                    full, buf, filled = buf, None, 0
                    yield full, chunk_size
        if buf is not None and filled:
            full, buf = buf, None
            yield full, filled
    finally:
        if buf is not None:
            buf.close()


def new_transfer_id() -> str:
    return f"m365-migrate-{uuid.uuid4().hex}"


def resume_point(dav: NextcloudDav, user: str, transfer_id: str, size: int, chunk_size: int) -> int | None:
    """How many chunks of an earlier upload the server holds, whole and in a row from the first; None when the
    upload folder is gone (expired after 24 h of inactivity, or never made).

    Everything else in the folder is deleted: the server assembles every file the folder holds (§4.1), so a
    half-written chunk or one past a gap must not stay. The last chunk is always sent again.
    """
    root = f"{dav.base_path}/remote.php/dav/uploads/{user}/{transfer_id}/"
    entries = dav.propfind_url(user, dav.uploads_url(user, transfer_id), root, "1", PLAIN_PROPS,
                               what=f"PROPFIND upload folder of {user}")
    if entries is None:
        return None
    sizes = {e.path: e.size for e in entries if e.path and not e.is_folder}
    last = math.ceil(size / chunk_size)
    kept = 0
    while kept + 1 < last and sizes.get(f"{kept + 1:05d}") == chunk_size:
        kept += 1
    keep = {f"{n:05d}" for n in range(1, kept + 1)} | {".file"}
    for name in sorted(set(sizes) - keep):
        dav.send(user, "DELETE", dav.uploads_url(user, transfer_id, name), f"DELETE stale chunk {name} of {user}",
                 ok=(404,))
    return kept


class ChunkedUpload:
    """One chunked upload of `size` bytes to `user:path`; `run()` returns the MOVE response headers."""

    def __init__(self, dav: NextcloudDav, user: str, path: str, size: int, *, chunk_size: int,
                 mtime: int | None, sha1: str | Callable[[], str] | None, parallel: int = 1,
                 budget: MemoryBudget = CHUNK_MEMORY, transfer_id: str | None = None, done_chunks: int = 0,
                 if_match: str | None = None) -> None:
        self.dav = dav
        self.user = user
        self.path = path
        self.size = size
        self.chunk_size = chunk_size_for(size, chunk_size)
        self.mtime = mtime
        self.sha1 = sha1
        self.parallel = max(1, parallel)
        self.budget = budget
        self.transfer_id = transfer_id or new_transfer_id()
        self.done_chunks = done_chunks  # chunks 1..done_chunks are on the server already (a resumed upload)
        self.chunks_sent = done_chunks
        self.if_match = if_match  # the etag the destination must still have for the final MOVE to replace it
        self.resumable = False  # set by callers that record the session: then transient failures keep the chunks

    def _headers(self) -> dict[str, str]:
        return {"Destination": self.dav.files_url(self.user, self.path), "OC-Total-Length": str(self.size)}

    def _put_chunk(self, name: str, buf: ChunkBuffer, length: int) -> None:
        try:
            self.dav.send(self.user, "PUT", self.dav.uploads_url(self.user, self.transfer_id, name),
                          f"PUT chunk {name} of {self.user}:{self.path!r}", body=buf.body(),
                          headers={**self._headers(), "Content-Length": str(length)})
        finally:
            buf.close()

    def run(self, chunks: Iterable[bytes]) -> dict[str, str]:
        dav, user = self.dav, self.user
        if not self.done_chunks:
            folder = dav.uploads_url(user, self.transfer_id)
            dav.send(user, "MKCOL", folder, f"MKCOL upload folder for {user}:{self.path!r}", headers=self._headers(),
                     ok=(405,))  # 405: a session we were about to resume had nothing worth keeping
        pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="chunk") if self.parallel > 1 else None
        pending: dict[Future[None], ChunkBuffer] = {}
        try:
            sent = 0
            for buf, length in _chunk_buffers(chunks, self.chunk_size, self.budget):
                self.chunks_sent += 1
                if self.chunks_sent > MAX_CHUNKS:
                    buf.close()
                    raise TargetItemError(f"{user}:{self.path}: more than {MAX_CHUNKS} chunks (more bytes than the "
                                          f"{self.size} announced)")
                name = f"{self.chunks_sent:05d}"
                if pool is None:
                    self._put_chunk(name, buf, length)
                else:
                    while len(pending) >= self.parallel:  # at most `parallel` in flight besides the one filling
                        done, _ = wait(pending, return_when=FIRST_COMPLETED)
                        for f in done:
                            del pending[f]
                            f.result()
                    pending[pool.submit(self._put_chunk, name, buf, length)] = buf
                sent += length
            for f in list(pending):
                f.result()
                del pending[f]
            if sent + self.done_chunks * self.chunk_size != self.size:
                raise IntegrityError(f"{user}:{self.path}: the stream gave {sent} bytes after the "
                                     f"{self.done_chunks * self.chunk_size} already sent, {self.size} were announced")
            return self._move()
        except BaseException as exc:
            for f, buf in pending.items():
                if f.cancel():
                    buf.close()
            if pool is not None:
                pool.shutdown(wait=True)  # running PUTs end first, so the DELETE below is the last word
                pool = None
            if not (self.resumable and isinstance(exc, Transient | KeyboardInterrupt)):
                self.abort()  # a network failure or Ctrl-C keeps the chunks for the next run to resume
            raise
        finally:
            if pool is not None:
                pool.shutdown(wait=True)

    def _move(self) -> dict[str, str]:
        dav, user = self.dav, self.user
        headers = {**self._headers(), "Overwrite": "T"}
        if self.mtime is not None:
            headers["X-OC-MTime"] = str(self.mtime)
        sha1 = self.sha1() if callable(self.sha1) else self.sha1
        if sha1:
            headers["OC-Checksum"] = f"SHA1:{sha1.lower()}"
        if self.if_match:
            # Tagged: 32.0.1 judges a plain If-Match here against the upload's `.file`, never the destination.
            headers["If"] = f"<{headers['Destination']}> ([{if_match_headers(self.if_match)['If-Match']}])"
        resp = dav.send(user, "MOVE", dav.uploads_url(user, self.transfer_id, ".file"),
                        f"MOVE assembled upload to {user}:{self.path!r}", headers=headers, ok=(404, 412))
        if resp.status_code == 412 and self.if_match:
            raise ChangedAtTarget(f"{user}:{self.path}: the file there is no longer the one we wrote (the final "
                                  "chunk MOVE answered 412); nothing was written")
        if resp.status_code == 412:
            raise_for(resp, f"MOVE assembled upload to {user}:{self.path!r}", user=user)
        if resp.status_code != 404:
            return dict(resp.headers)
        # The upload folder is gone: either an earlier attempt of this MOVE assembled the file and its answer was
        # lost, or the server expired the folder. Only the first leaves a file of our size at the destination;
        # the caller then compares the checksum the server stores with ours.
        entry = dav.stat(user, self.path)
        if entry is None or entry.is_folder or entry.size != self.size:
            raise TargetItemError(f"{user}:{self.path}: the upload folder vanished before the final MOVE (expired "
                                  "after 24 h without activity, or deleted) and the file is not in place",
                                  hint="rerun `copy`: the file is sent again")
        log.info("%s:%s: the final MOVE's answer was lost but the file is in place; checking it", user, self.path)
        return {}

    def abort(self) -> None:
        """Delete the upload folder (best effort: the server also expires it after 24 h of inactivity)."""
        try:
            self.dav.send(self.user, "DELETE", self.dav.uploads_url(self.user, self.transfer_id),
                          f"DELETE upload folder of {self.user}:{self.path!r}", ok=(404,))
        except MigrateError as exc:
            log.warning("could not delete upload folder %s of %s: %s", self.transfer_id, self.user, exc)
