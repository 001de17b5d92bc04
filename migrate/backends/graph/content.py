"""Downloads: `/content` answers 302 to a short-lived pre-authenticated URL, streamed with a plain client and Range.

The download URL is fetched just before use and never stored or logged; an expired URL (401 on it) or a broken
body raises TransientError, so the caller re-opens with a fresh URL at the byte where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from migrate.backends.graph.client import GraphClient, MalwareBlocked, SourceRefused, classify
from migrate.errors import ItemNotFound, TransientError

READ_SIZE = 1 << 20


class ContentReader:
    """Opens item content; shares the Graph client's pacer and a separate client without Authorization."""

    def __init__(self, client: GraphClient, *, ca_bundle: str | None = None, org: str = "Unknown",
                 max_connections: int = 32, read_size: int = READ_SIZE) -> None:
        from migrate.transport.http import make_client

        self.client = client
        self.read_size = read_size
        # a plain client: the download URL is pre-authenticated and may live on another host
        self.http = make_client(ca_bundle=ca_bundle, org=org, max_connections=max_connections)

    def close(self) -> None:
        self.http.close()

    def _download_url(self, drive_id: str, item_id: str) -> str:
        path = f"drives/{quote(drive_id, safe='!')}/items/{quote(item_id, safe='')}/content"
        resp = self.client.request_once("GET", path, kind="content", what=f"download of {drive_id}/{item_id}")
        location = resp.headers.get("location")
        if resp.status_code in (301, 302, 303, 307, 308) and location:
            return location
        raise SourceRefused(f"download of {drive_id}/{item_id}: expected a redirect, got HTTP {resp.status_code}")

    def _open(self, drive_id: str, item_id: str, offset: int) -> Any:
        import httpx

        url = self._download_url(drive_id, item_id)
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        what = f"download of {drive_id}/{item_id}"
        self.client.count("download")
        try:
            req = self.http.build_request("GET", url, headers=headers)
            resp = self.http.send(req, stream=True)
        except httpx.TransportError as exc:
            raise TransientError(f"{what}: connection failed ({type(exc).__name__})") from None
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
