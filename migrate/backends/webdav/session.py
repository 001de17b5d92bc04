"""One HTTP session per target: per-request Basic auth, no cookies, every call through the Pacer.

Nextcloud answers every Basic-auth request with session cookies, and a request carrying them runs as the
session's user whatever its credentials say; the client comes from transport.http, whose jar refuses all cookies. Bodies are either replayable (bytes, or a
callable giving a fresh iterator: the Pacer may re-send them) or one-shot iterators, which are sent once: a
transient failure after the first byte left becomes StreamConsumed (Terminal), because only a new read of the
source can produce the bytes again (the engine's per-item tier).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from migrate.backends.webdav.wire import StreamConsumed, classify, transport_error
from migrate.errors import IntegrityError, Transient, TransientError, Unanswered
from migrate.transport.pacer import Pacer

if TYPE_CHECKING:
    import httpx

Body = bytes | Callable[[], Iterable[bytes]] | None


def replayable(chunks: Iterable[bytes], size: int, what: str) -> Callable[[], Iterator[bytes]]:
    """A body the pacer can send again, of exactly `size` bytes: re-iterable `chunks` (a list, a
    transport.spool.Spool) are sent piece by piece as they are; a one-shot stream is joined once (keep it small)."""
    pieces: Iterable[bytes] = [b"".join(chunks)] if isinstance(chunks, Iterator) else chunks
    got = sum(len(p) for p in pieces)
    if got != size:
        raise IntegrityError(f"{what}: got {got} bytes to send, expected {size}")
    return lambda: iter(pieces)


def make_http(ca_bundle: str | None = None, *, timeout: float = 300.0, max_connections: int = 32) -> httpx.Client:
    """The project's httpx client (transport.http: no cookies) with the target's timeout."""
    from migrate.transport.http import make_client

    return make_client(ca_bundle=ca_bundle, timeout=timeout, max_connections=max_connections)


class DavSession:
    """Send requests with the right credentials through the pacer; raise the classified error on failure."""

    def __init__(self, http: httpx.Client, pacer: Pacer) -> None:
        self.http = http
        self.pacer = pacer
        self.requests = 0   # HTTP requests sent (attempts included), for the step summaries

    def close(self) -> None:
        self.http.close()

    def send(self, method: str, url: str, *, auth: tuple[str, str] | None, what: str, user: str = "",
             headers: Mapping[str, str] | None = None, body: Body = None, ok: tuple[int, ...] = (),
             check: bool = True) -> httpx.Response:
        """One logical request, retried by the pacer on Transient errors. `ok` statuses are returned, not raised."""
        import httpx

        def attempt() -> httpx.Response:
            self.requests += 1
            content = body() if callable(body) else body
            try:
                resp = self.http.request(method, url, auth=auth, headers=dict(headers or {}), content=content)
            except httpx.TransportError as exc:
                raise transport_error(exc, what) from exc
            if check and resp.status_code not in ok:
                err = classify(resp, what, user=user)
                if err is not None:
                    raise err
            return resp

        return self.pacer.call(attempt, what=what)

    def send_stream(self, method: str, url: str, chunks: Iterable[bytes], *, auth: tuple[str, str] | None,
                    what: str, user: str = "", headers: Mapping[str, str] | None = None,
                    ok: tuple[int, ...] = ()) -> httpx.Response:
        """Send a one-shot body; retried only while none of it has been consumed."""
        import httpx

        started = False
        source = iter(chunks)

        def gen() -> Iterator[bytes]:
            nonlocal started
            for chunk in source:
                started = True
                yield chunk

        def attempt() -> httpx.Response:
            self.requests += 1
            try:
                resp = self.http.request(method, url, auth=auth, headers=dict(headers or {}), content=gen())
            except httpx.TransportError as exc:
                err: BaseException = transport_error(exc, what)
            else:
                if resp.status_code in ok:
                    return resp
                found = classify(resp, what, user=user)
                if found is None:
                    return resp
                err = found
            if started and isinstance(err, Transient):
                # The body is spent; a connection that died under it still counts against the fault budget.
                if isinstance(err, Unanswered) and self.pacer.faults.unanswered(err):
                    raise self.pacer.faults.unreachable() from None
                raise StreamConsumed(f"{err} (after the body had started; the item is retried from the source)")
            raise err

        return self.pacer.call(attempt, what=what)

    @contextmanager
    def open_download(self, url: str, *, auth: tuple[str, str] | None, what: str, user: str = "",
                      block: int = 1024 * 1024) -> Iterator[Iterator[bytes]]:
        """GET a file as a stream of blocks; opening is retried by the pacer, a break mid-body is Transient."""
        import httpx

        def attempt() -> httpx.Response:
            self.requests += 1
            try:
                resp = self.http.send(self.http.build_request("GET", url), auth=auth, stream=True)
            except httpx.TransportError as exc:
                raise transport_error(exc, what) from exc
            if resp.status_code >= 400:
                resp.read()  # the error text is in the body
                resp.close()
                err = classify(resp, what, user=user)
                if err is not None:
                    raise err
            return resp

        resp = self.pacer.call(attempt, what=what)

        def blocks() -> Iterator[bytes]:
            try:
                yield from resp.iter_bytes(block)
            except httpx.TransportError as exc:
                raise TransientError(f"{what} broke: {type(exc).__name__}") from None

        try:
            yield blocks()
        finally:
            resp.close()
