"""One IMAP connection: TLS, tagged commands, literals both ways, responses read in order.

Our own small client rather than `imaplib`: imaplib rewrites line endings on APPEND (reference mail.md §2.12) and
reads whole literals into memory. Here message bytes go out exactly as given, in chunks, only after the server's
`+` (so a refusal before it, e.g. [OVERQUOTA], costs nothing and leaves the connection in step), and a fetched
body streams into a sink. Nothing here logs a command line, so a password never reaches a log or an exception.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from migrate.errors import ImapConnectionLost, IntegrityError, TargetNotTrusted

from .parse import ParseError, Response, Streamed, literal_size, parse
from .types import Endpoint

CHUNK = 256 * 1024
MAX_LINE = 32 * 1024 * 1024        # a SEARCH of a huge folder is one long line; anything beyond is garbage
MAX_MEMORY_LITERAL = 4 * 1024 * 1024  # literals nobody asked to stream are kept up to this, beyond it dropped


class Sink(Protocol):
    def update(self, chunk: bytes) -> None: ...


# Chooses where a literal goes: given the response text before `{n}` and n, a sink, or None for memory.
LiteralRouter = Callable[[bytes, int], Sink | None]


@dataclass(frozen=True)
class Literal:
    """A command argument sent as a synchronizing literal (8-bit or CR/LF text, e.g. a non-ASCII password)."""

    data: bytes

    def __repr__(self) -> str:
        return f"Literal(<{len(self.data)} bytes>)"


class _Void:
    def update(self, chunk: bytes) -> None:
        pass


class Wire:
    """A connected socket plus read buffer; `run` sends one command and returns (tagged, untagged responses)."""

    def __init__(self, endpoint: Endpoint, timeout: float, context: ssl.SSLContext | None) -> None:
        self.endpoint = endpoint
        self._buf = bytearray()
        self._n = 0
        self.closed = False
        self.logging_out = False  # a BYE is expected, not a loss
        where = f"{endpoint.host}:{endpoint.port}"
        try:
            sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
        except OSError as exc:
            raise ImapConnectionLost(f"cannot connect to the IMAP server {where}: {exc}", reason=str(exc),
                                     where=where) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small command lines wait for no ACK
        self._sock: socket.socket = sock
        if context is not None:
            self.start_tls(context)

    @property
    def where(self) -> str:
        return f"{self.endpoint.host}:{self.endpoint.port}"

    @property
    def buffered(self) -> int:
        """Bytes received but not yet read (must be 0 when TLS starts)."""
        return len(self._buf)

    @property
    def tls_version(self) -> str | None:
        """"TLSv1.3" etc. once TLS is up, None on a plain (loopback) connection."""
        return self._sock.version() if isinstance(self._sock, ssl.SSLSocket) else None

    def start_tls(self, context: ssl.SSLContext) -> None:
        """Wrap the socket in TLS, verifying the certificate against the host name."""
        try:
            self._sock = context.wrap_socket(self._sock, server_hostname=self.endpoint.host)
        except ssl.SSLCertVerificationError as exc:
            self.close()
            raise TargetNotTrusted(
                f"the IMAP server {self.where} presented a certificate that does not verify: "
                f"{exc.verify_message or exc}",
                hint="give the CA that signed it in [mail] ca_bundle, or fix the server's certificate") from exc
        except (ssl.SSLError, OSError) as exc:
            self.close()
            raise ImapConnectionLost(f"TLS with the IMAP server {self.where} failed: {exc}", reason=str(exc),
                                     where=self.where) from exc

    # --- reading -------------------------------------------------------------------------------------------------

    def _lost(self, why: str, exc: BaseException | None = None) -> ImapConnectionLost:
        self.close()
        return ImapConnectionLost(f"the IMAP connection to {self.where} {why}", reason=why, where=self.where)

    def _fill(self) -> None:
        try:
            data = self._sock.recv(CHUNK)
        except TimeoutError as exc:
            raise self._lost("timed out waiting for the server", exc) from exc
        except OSError as exc:
            raise self._lost(f"failed: {exc}", exc) from exc
        if not data:
            raise self._lost("was closed by the server")
        self._buf += data

    def read_line(self) -> bytes:
        """One line without its CRLF."""
        start = 0
        while True:
            i = self._buf.find(b"\r\n", start)
            if i >= 0:
                line = bytes(self._buf[:i])
                del self._buf[:i + 2]
                return line
            if len(self._buf) > MAX_LINE:
                raise self._lost("sent a line longer than we accept")
            start = max(0, len(self._buf) - 1)
            self._fill()

    def read_into(self, size: int, sink: Sink) -> None:
        """Exactly `size` bytes into `sink`, in chunks, never all at once."""
        left = size
        while left:
            if not self._buf:
                self._fill()
            take = min(left, len(self._buf))
            sink.update(bytes(self._buf[:take]))
            del self._buf[:take]
            left -= take

    def read_response(self, router: LiteralRouter | None = None) -> Response:
        parts: list[bytes] = []
        literals: list[bytes | Streamed] = []
        while True:
            line = self.read_line()
            parts.append(line)
            n = literal_size(line)
            if n is None or line.startswith(b"+"):
                break
            sink = router(line[:line.rfind(b"{")], n) if router else None
            if sink is not None:
                self.read_into(n, sink)
                literals.append(Streamed(n))
            elif n <= MAX_MEMORY_LITERAL:
                held = bytearray()
                self.read_into(n, _Bytes(held))
                literals.append(bytes(held))
            else:
                self.read_into(n, _Void())
                literals.append(Streamed(n))
        try:
            return parse(parts, literals)
        except ParseError as exc:
            raise self._lost(f"answered something we cannot read ({exc})", exc) from exc

    # --- writing -------------------------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except TimeoutError as exc:
            raise self._lost("timed out while sending", exc) from exc
        except OSError as exc:
            raise self._lost(f"failed while sending: {exc}", exc) from exc

    def next_tag(self) -> str:
        self._n += 1
        return f"m{self._n}"

    def run(self, parts: list[bytes | Literal], router: LiteralRouter | None = None,
            on_continue: Callable[[Response], bytes | None] | None = None) -> tuple[Response, list[Response]]:
        """Send one command (its arguments already formatted; `Literal`s wait for `+`) and read to its tagged
        answer. A tagged answer that comes instead of a `+` ends the command there: the rest is never sent, so
        the connection stays in step. `on_continue` answers further `+` (AUTHENTICATE). Anything that escapes
        half-way (an interrupt, a failing sink) closes the connection: its state is unknown, and an unfinished
        APPEND is then dropped by the server rather than stored."""
        try:
            return self._command(parts, router, on_continue)
        except BaseException:
            self.close()
            raise

    def _command(self, parts: list[bytes | Literal], router: LiteralRouter | None,
                 on_continue: Callable[[Response], bytes | None] | None) -> tuple[Response, list[Response]]:
        tag = self.next_tag()
        untagged: list[Response] = []
        pending = bytearray(tag.encode() + b" ")
        for part in parts:
            if isinstance(part, Literal):
                pending += b"{%d}\r\n" % len(part.data)
                self.send(bytes(pending))
                pending.clear()
                got = self._await_continuation(tag, untagged, router)
                if got is not None:
                    return got, untagged
                pending += part.data
            else:
                pending += part
        pending += b"\r\n"
        self.send(bytes(pending))
        return self.finish(tag, untagged, router, on_continue), untagged

    def _await_continuation(self, tag: str, untagged: list[Response],
                            router: LiteralRouter | None) -> Response | None:
        """Wait for `+`; return the tagged response instead if the server refused first."""
        while True:
            resp = self.read_response(router)
            if resp.tag == "+":
                return None
            if resp.tag == tag:
                return resp
            self._untagged(resp, untagged)

    def finish(self, tag: str, untagged: list[Response], router: LiteralRouter | None = None,
               on_continue: Callable[[Response], bytes | None] | None = None) -> Response:
        while True:
            resp = self.read_response(router)
            if resp.tag == tag:
                return resp
            if resp.tag == "+":
                answer = on_continue(resp) if on_continue else None
                if answer is None:
                    raise self._lost("asked for data the command did not announce")
                self.send(answer + b"\r\n")
                continue
            self._untagged(resp, untagged)

    def _untagged(self, resp: Response, untagged: list[Response]) -> None:
        if resp.tag != "*":
            raise self._lost(f"answered with an unknown tag {resp.tag!r}")
        if resp.kind == "BYE" and not self.logging_out:
            raise self._lost(f"was closed by the server ({resp.text.strip() or 'BYE'})")
        untagged.append(resp)

    def send_literal_from(self, tag: str, head: bytes, message: BinaryIO, size: int,
                          untagged: list[Response]) -> Response:
        """APPEND's shape: `head` ends in `{size}`; after `+`, stream exactly `size` bytes of `message`. Like
        `run`, anything escaping half-way closes the connection."""
        try:
            return self._literal_from(tag, head, message, size, untagged)
        except BaseException:
            self.close()
            raise

    def _literal_from(self, tag: str, head: bytes, message: BinaryIO, size: int,
                      untagged: list[Response]) -> Response:
        self.send(head + b"\r\n")
        refused = self._await_continuation(tag, untagged, None)
        if refused is not None:
            return refused
        left = size
        while left:
            chunk = message.read(min(CHUNK, left))
            if not chunk:
                self.close()  # the server waits for bytes we do not have: this connection cannot recover
                raise IntegrityError(f"the message ended {left} bytes before the announced {size}: nothing was "
                                     "stored, the IMAP connection was closed")
            left -= len(chunk)
            self.send(chunk if left else chunk + b"\r\n")  # the command's end rides with the last chunk
        if not size:
            self.send(b"\r\n")
        return self.finish(tag, untagged)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._sock.close()
        except OSError:
            pass


class _Bytes:
    def __init__(self, into: bytearray) -> None:
        self.into = into

    def update(self, chunk: bytes) -> None:
        self.into += chunk
