"""A lean asyncio HTTP/1.1 server (keep-alive, Content-Length bodies, streamed zero-copy responses, faults)."""

from __future__ import annotations

import asyncio
import email.utils
import json
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote

REASONS = {200: "OK", 201: "Created", 204: "No Content", 206: "Partial Content", 302: "Found",
           304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 410: "Gone", 411: "Length Required",
           416: "Range Not Satisfiable", 429: "Too Many Requests", 500: "Internal Server Error",
           503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass(slots=True)
class Request:
    method: str
    target: str
    path: str                      # raw (still percent-encoded) path
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    listener: str                  # graph | download | auth
    scheme: str
    host: str                      # Host header (links are built from it)


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"
    stream: Iterator[memoryview] | None = None   # streamed body (length given by `length`)
    length: int = 0
    reset_after: int | None = None   # abort the connection after this many body bytes
    delay: float = 0.0               # seconds before the response starts
    rate: float | None = None        # bytes per second (slow body)
    on_sent: Callable[[int], None] | None = None
    on_done: Callable[[], None] | None = None   # after the answer is written or abandoned (in-flight books)


def parse_query(qs: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in qs.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        out[unquote(k.replace("+", " "))] = unquote(v.replace("+", " "))
    return out


_date = ["", 0.0]


def http_date() -> str:
    now = time.time()
    if now - _date[1] >= 1:
        _date[0], _date[1] = email.utils.formatdate(now, usegmt=True), now
    return _date[0]


class HTTPServer:
    """One listener; `handler(request)` is called in the loop thread and returns a Response."""

    def __init__(self, handler: Callable[[Request], Response], listener: str,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.listener = listener
        self.ssl = ssl_context
        self.scheme = "https" if ssl_context else "http"
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.tasks: set[asyncio.Task] = set()

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", port, ssl=self.ssl, limit=1 << 20,
                                                 backlog=512)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self.server:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ssl.SSLError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                try:
                    method, target, version = lines[0].split(" ", 2)
                except ValueError:
                    return
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if line:
                        k, _, v = line.partition(":")
                        headers[k.strip().lower()] = v.strip()
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    body = await _read_chunked(reader)
                else:
                    n = int(headers.get("content-length") or 0)
                    body = await reader.readexactly(n) if n else b""
                path, _, qs = target.partition("?")
                req = Request(method, target, path, parse_query(qs), headers, body, self.listener, self.scheme,
                              headers.get("host", "127.0.0.1"))
                try:
                    resp = self.handler(req)
                except Exception as exc:  # noqa: BLE001 - a sandbox bug must show up as a 500, not a hang
                    import traceback

                    traceback.print_exc()
                    resp = Response(500, json.dumps({"error": {"code": "generalException", "message": str(exc)}}).encode())
                keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
                if not await self._send(writer, req, resp, keep):
                    return
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, asyncio.CancelledError):
            return
        finally:
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass

    async def _send(self, writer: asyncio.StreamWriter, req: Request, resp: Response, keep: bool) -> bool:
        """Write one response; False when the connection was (deliberately) dropped."""
        try:
            return await self._write(writer, req, resp, keep)
        finally:
            if resp.on_done:
                resp.on_done()

    async def _write(self, writer: asyncio.StreamWriter, req: Request, resp: Response, keep: bool) -> bool:
        if resp.delay:
            await asyncio.sleep(resp.delay)
        length = resp.length if resp.stream is not None else len(resp.body)
        head = [f"HTTP/1.1 {resp.status} {REASONS.get(resp.status, 'Status')}", f"Date: {http_date()}",
                f"Content-Length: {length}"]
        if resp.content_type and (length or resp.status not in (204, 302, 304)):
            head.append(f"Content-Type: {resp.content_type}")
        head.extend(f"{k}: {v}" for k, v in resp.headers)
        if not keep:
            head.append("Connection: close")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if req.method == "HEAD":
            await writer.drain()
            return True
        sent = 0
        limit = resp.reset_after
        chunks: Iterator[memoryview | bytes] = resp.stream if resp.stream is not None else iter((resp.body,))
        try:
            for chunk in chunks:
                if resp.rate:
                    chunk_iter: Iterator[memoryview | bytes] = _split(chunk, max(1024, int(resp.rate / 20)))
                else:
                    chunk_iter = iter((chunk,))
                for piece in chunk_iter:
                    if limit is not None and sent + len(piece) >= limit:
                        writer.write(piece[: max(0, limit - sent)])
                        sent = limit
                        await writer.drain()
                        writer.transport.abort()
                        return False
                    writer.write(piece)
                    sent += len(piece)
                    if resp.rate:
                        await writer.drain()
                        await asyncio.sleep(len(piece) / resp.rate)
                    elif writer.transport.get_write_buffer_size() > (1 << 20):
                        await writer.drain()
            await writer.drain()
        finally:
            if resp.on_sent:
                resp.on_sent(sent)
        return True


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked request body (some clients stream form posts that way)."""
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":   # trailers
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _split(chunk: memoryview | bytes, n: int) -> Iterator[memoryview | bytes]:
    mv = memoryview(chunk)
    for i in range(0, len(mv), n):
        yield mv[i:i + n]
