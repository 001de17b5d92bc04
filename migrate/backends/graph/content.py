"""Downloads: a pre-authenticated URL per file, streamed with a plain client and Range.

A download URL costs a Graph request to learn, so `copy` learns them many at a time: from a fresh delta page or a
folder listing asked only for ids and URLs (1–2 RU for up to a page of files, see `offer`), or, for a few files,
from `$batch` steps (`prefetch`). Each is held in memory only (never stored or logged), used once for its file's
first open, and dropped oldest first when many are held. A file without one (or whose URL has expired: 401 on it)
asks `/content` for a fresh one (1 RU); a broken body re-opens with a fresh URL at the byte where it stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from migrate.backends.graph.client import (
    DEFAULT_429_PAUSE,
    GraphClient,
    MalwareBlocked,
    SourceRefused,
    classify,
)
from migrate.errors import Fatal, ItemNotFound, MigrateError, ThrottledError, TransientError, Unanswered
from migrate.transport.pacer import parse_retry_after

log = logging.getLogger(__name__)

# Pieces handed on from a download. 256 KiB: few enough per file that per-piece costs stay small, and at the
# fixed mmap threshold (transport.heap), so each is its own mapping, returned whole when freed; every stream holds
# up to two while it gathers one (1 MiB pieces: 10-20 MB more peak RSS at 8 workers on large files, memory_curve).
READ_SIZE = 1 << 18
BATCH_MAX = 20  # steps per Graph JSON batch
URL_FRESH = 50 * 60.0  # a held URL older than this is not tried (Microsoft says "1 hour" and "a few minutes";
# an expired one answers 401 and costs one /content request, so the real check is the try itself)
URL_CACHE_MAX = 8192   # two delta pages of 999 files and the in-flight work around them; oldest dropped first


class ContentReader:
    """Opens item content; shares the Graph client's pacer and a separate client without Authorization."""

    def __init__(self, client: GraphClient, *, ca_bundle: str | None = None, org: str = "Unknown",
                 max_connections: int = 32, read_size: int = READ_SIZE) -> None:
        from migrate.transport.http import make_client

        self.client = client
        self.read_size = read_size
        # a plain client: the download URL is pre-authenticated and may live on another host
        self.http = make_client(ca_bundle=ca_bundle, org=org, max_connections=max_connections)
        self._urls: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def close(self) -> None:
        self.http.close()

    def _download_url(self, drive_id: str, item_id: str) -> str:
        path = f"drives/{quote(drive_id, safe='!')}/items/{quote(item_id, safe='')}/content"
        resp = self.client.request_once("GET", path, kind="content", what=f"download of {drive_id}/{item_id}")
        location = resp.headers.get("location")
        if resp.status_code in (301, 302, 303, 307, 308) and location:
            return location
        raise SourceRefused(f"download of {drive_id}/{item_id}: expected a redirect, got HTTP {resp.status_code}")

    def _hold(self, key: tuple[str, str], url: str, now: float) -> None:
        with self._lock:
            self._urls[key] = (url, now)
            self._urls.move_to_end(key)
            while len(self._urls) > URL_CACHE_MAX:
                self._urls.popitem(last=False)

    def holds(self, drive_id: str, item_id: str) -> bool:
        with self._lock:
            return (drive_id, item_id) in self._urls

    def offer(self, drive_id: str, entries: Iterable[dict[str, Any]]) -> list[str]:
        """Keep the download URLs a listing or delta page carried; returns the ids of the files that had one."""
        now, ids = time.monotonic(), []
        for e in entries:
            url = e.get("@microsoft.graph.downloadUrl") if isinstance(e, dict) else None
            if isinstance(url, str) and url.startswith(("https://", "http://")) and e.get("id"):
                self._hold((drive_id, str(e["id"])), url, now)
                ids.append(str(e["id"]))
        return ids

    def prefetch(self, items: Sequence[tuple[str, str]]) -> int:
        """Download URLs for many files in `$batch` requests; returns how many came back.

        Only a shortcut: a file whose URL did not come (throttled, refused, gone) is opened the usual way. A
        throttled step pauses the shared pacer for its Retry-After, as a throttled request would.
        """
        kept = 0
        items = [it for it in items if not self.holds(*it)]   # URLs a listing already brought cost nothing more
        for start in range(0, len(items), BATCH_MAX):
            group = list(items[start:start + BATCH_MAX])
            steps = [{"id": str(n), "method": "GET",
                      "url": f"/drives/{quote(d, safe='!')}/items/{quote(i, safe='')}"
                             "?$select=id,@microsoft.graph.downloadUrl"} for n, (d, i) in enumerate(group)]
            data = self._batch(steps)
            if data is None:
                continue
            now, pause = time.monotonic(), 0.0
            for answer in data.get("responses") or ():
                if not isinstance(answer, dict) or not str(answer.get("id", "")).isdigit():
                    continue
                n = int(answer["id"])
                if n >= len(group):
                    continue
                body = answer.get("body") if isinstance(answer.get("body"), dict) else {}
                url = body.get("@microsoft.graph.downloadUrl")
                status = int(answer.get("status") or 0)
                if status == 200 and isinstance(url, str) and url.startswith(("https://", "http://")):
                    self._hold(group[n], url, now)
                    kept += 1
                elif status in (429, 503):
                    self.client.books.throttle("item")
                    headers = {str(k).lower(): str(v) for k, v in (answer.get("headers") or {}).items()}
                    wait = parse_retry_after(headers.get("retry-after"))
                    pause = max(pause, wait if wait is not None else DEFAULT_429_PAUSE)
            if pause:
                log.info("Graph throttled steps of a $batch; pausing %.1f s", pause)
                self.client.pacer.pause(pause)
        return kept

    def _batch(self, steps: list[dict[str, Any]]) -> dict[str, Any] | None:
        """One `$batch` attempt, no retries: when it fails, each file asks for its own URL (and that path has
        the retries). Throttling still pauses every worker, as the pacer would."""
        what = f"$batch of {len(steps)} download URLs"
        try:
            resp = self.client.request_once("POST", "$batch", json_body={"requests": steps}, kind="batch", what=what)
            data = resp.json()
        except ThrottledError as exc:
            self.client.pacer.pause(exc.retry_after or DEFAULT_429_PAUSE)
            log.info("%s: throttled; the files ask for their own URLs", what)
            return None
        except (MigrateError, ValueError) as exc:
            if isinstance(exc, Fatal):
                raise
            log.info("%s failed (%s); the files ask for their own URLs", what, str(exc).splitlines()[0])
            return None
        return data if isinstance(data, dict) else None

    def _prefetched(self, drive_id: str, item_id: str) -> str | None:
        with self._lock:
            got = self._urls.pop((drive_id, item_id), None)
        if got is None or time.monotonic() - got[1] > URL_FRESH:
            return None
        return got[0]

    def _open(self, drive_id: str, item_id: str, offset: int) -> Any:
        import httpx

        url = self._prefetched(drive_id, item_id) or self._download_url(drive_id, item_id)
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        what = f"download of {drive_id}/{item_id}"
        self.client.count("download")
        try:
            req = self.http.build_request("GET", url, headers=headers)
            resp = self.http.send(req, stream=True)
        except httpx.TransportError as exc:
            # the download host, named without its URL (a pre-authenticated link is a secret)
            text = str(exc) if "://" not in str(exc) else ""
            reason = f"download host: {type(exc).__name__}" + (f": {text}" if text else "")
            raise Unanswered(f"{what}: connection failed ({reason})", reason=reason) from None
        self.client.observe("download", resp)
        if resp.status_code == 401:
            resp.close()
            raise TransientError(f"{what}: the download URL expired before use; asking for a new one")
        if resp.status_code == 416:
            resp.close()
            raise ItemNotFound(f"{what}: the file is shorter than {offset} bytes now (changed at the source)")
        if resp.status_code >= 400:
            body: Any = None
            try:
                resp.read()
                body = resp.json()
            except Exception:  # noqa: BLE001 - the body is only decoration for the message
                body = None
            finally:
                resp.close()
            err = classify(resp.status_code, body, resp.headers, what)
            raise err if err is not None else SourceRefused(what)
        return resp

    @contextmanager
    def open(self, drive_id: str, item_id: str, offset: int = 0) -> Iterator[Iterator[bytes]]:
        """Stream the bytes from `offset`; a server that ignores Range (200) has the skipped bytes discarded."""
        import httpx

        resp = self.client.pacer.call(lambda: self._open(drive_id, item_id, offset),
                                      what=f"download of {drive_id}/{item_id}")
        skip = offset if (offset and resp.status_code == 200) else 0

        def chunks() -> Iterator[bytes]:
            """Bytes as they arrive, gathered up to read_size; on a break what arrived is yielded first, so the
            re-open starts at the byte where the connection broke (not at the last full read_size)."""
            nonlocal skip
            held: list[bytes] = []
            count = 0
            try:
                for chunk in resp.iter_bytes():
                    if skip:
                        if len(chunk) <= skip:
                            skip -= len(chunk)
                            continue
                        chunk, skip = chunk[skip:], 0
                    held.append(chunk)
                    count += len(chunk)
                    if count >= self.read_size:
                        yield b"".join(held)  # one copy; fewer, larger pieces keep per-piece costs down the line
                        held, count = [], 0
            except httpx.TransportError as exc:
                if held:
                    yield b"".join(held)
                raise TransientError(f"download of {drive_id}/{item_id} broke: {type(exc).__name__}") from None
            if held:
                yield b"".join(held)

        try:
            yield chunks()
        finally:
            resp.close()


__all__ = ["ContentReader", "MalwareBlocked"]
