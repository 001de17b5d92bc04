"""Small WSGI response helpers shared by the sandbox layers: Sabre error bodies, OCS envelopes, JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from xml.sax.saxutils import escape

StartResponse = Callable[..., Any]
Environ = dict[str, Any]

EXC = {
    400: "Sabre\\DAV\\Exception\\BadRequest",
    403: "Sabre\\DAV\\Exception\\Forbidden",
    404: "Sabre\\DAV\\Exception\\NotFound",
    405: "Sabre\\DAV\\Exception\\MethodNotAllowed",
    409: "Sabre\\DAV\\Exception\\Conflict",
    412: "Sabre\\DAV\\Exception\\PreconditionFailed",
    423: "OCA\\DAV\\Connector\\Sabre\\Exception\\FileLocked",
    429: "OCA\\DAV\\Connector\\Sabre\\Exception\\TooManyRequests",
    500: "Sabre\\DAV\\Exception",
    503: "Sabre\\DAV\\Exception\\ServiceUnavailable",
    507: "Sabre\\DAV\\Exception\\InsufficientStorage",
}


def status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Unknown"


def respond(start_response: StartResponse, code: int, body: bytes = b"", content_type: str | None = None,
            headers: list[tuple[str, str]] | None = None) -> Iterable[bytes]:
    hdrs = list(headers or [])
    if content_type:
        hdrs.append(("Content-Type", content_type))
    hdrs.append(("Content-Length", str(len(body))))
    start_response(status_line(code), hdrs)
    return [body]


def sabre_error(start_response: StartResponse, code: int, message: str, *, exception: str | None = None,
                reason: bool = False, extra: str = "", headers: list[tuple[str, str]] | None = None
                ) -> Iterable[bytes]:
    """A Sabre `<d:error>` body; InvalidPath adds `o:retry`/`o:reason` re-declaring `xmlns:o="o:"` (§1.4)."""
    exc = exception or EXC.get(code, "Sabre\\DAV\\Exception")
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<d:error xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns">',
             f"<s:exception>{escape(exc)}</s:exception>", f"<s:message>{escape(message)}</s:message>"]
    if reason:
        parts.append('<o:retry xmlns:o="o:">false</o:retry>')
        parts.append(f'<o:reason xmlns:o="o:">{escape(message)}</o:reason>')
    parts.append(extra)
    parts.append("</d:error>\n")
    return respond(start_response, code, "".join(parts).encode(), "application/xml; charset=utf-8", headers)


def invalid_path(start_response: StartResponse, message: str) -> Iterable[bytes]:
    return sabre_error(start_response, 400, message,
                       exception="OCA\\DAV\\Connector\\Sabre\\Exception\\InvalidPath", reason=True)


def json_body(start_response: StartResponse, code: int, data: Any, content_type: str = "application/json; charset=utf-8",
              escape_slashes: bool = False) -> Iterable[bytes]:
    text = json.dumps(data)
    if escape_slashes:
        text = text.replace("/", "\\/")
    return respond(start_response, code, text.encode(), content_type)


def read_body(environ: Environ, limit: int = 16 * 1024 * 1024) -> bytes:
    """Read a small request body (OCS forms, PROPPATCH XML); file bodies are streamed elsewhere."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        return stream.read(min(int(length), limit))
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        return stream.read(limit)
    return b""


def header(environ: Environ, name: str, default: str | None = None) -> str | None:
    return environ.get("HTTP_" + name.upper().replace("-", "_"), default)


def wsgi_to_text(value: str) -> str:
    """PEP 3333 strings carry latin-1-decoded bytes; clients send UTF-8."""
    try:
        return value.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def text_to_wsgi(value: str) -> str:
    return value.encode("utf-8").decode("iso-8859-1")
