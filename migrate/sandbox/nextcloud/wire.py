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


# Sabre's namespace map on Nextcloud's files endpoints: every multistatus declares these four on its root and
# uses these prefixes; a namespace outside the map gets `x1`, `x2`, … declared where it is used.
SABRE_NS = {"DAV:": "d", "http://sabredav.org/ns": "s", "http://owncloud.org/ns": "oc",
            "http://nextcloud.org/ns": "nc"}
MULTISTATUS = ('<?xml version="1.0"?>\n<d:multistatus xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns" '
               'xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">')


def sabre_xml(root: Any) -> bytes:
    """Serialise an ElementTree element as Sabre writes it: `d:`/`s:`/`oc:`/`nc:` declared on the root."""
    out: list[str] = ['<?xml version="1.0"?>\n']
    _write(root, out, {}, top=True)
    return "".join(out).encode()


def _qname(tag: str, adhoc: dict[str, str], decls: list[str]) -> str:
    if not tag.startswith("{"):
        return tag
    uri, _, local = tag[1:].partition("}")
    prefix = SABRE_NS.get(uri) or adhoc.get(uri)
    if prefix is None:
        prefix = adhoc[uri] = f"x{len(adhoc) + 1}"
        decls.append(f' xmlns:{prefix}="{escape(uri, {chr(34): "&quot;"})}"')
    return f"{prefix}:{local}"


def _write(el: Any, out: list[str], inherited: dict[str, str], *, top: bool = False) -> None:
    adhoc = dict(inherited)      # ad-hoc prefixes are scoped to the element that declares them
    decls: list[str] = []
    name = _qname(el.tag, adhoc, decls)
    attrs = "".join(f' {_qname(k, adhoc, decls)}="{escape(v, {chr(34): "&quot;"})}"' for k, v in el.attrib.items())
    if top:
        decls[:0] = [f' xmlns:{p}="{u}"' for u, p in SABRE_NS.items()]
    out.append(f"<{name}{''.join(decls)}{attrs}")
    if el.text is None and not len(el):
        out.append("/>")
    else:
        out.append(">" + escape(el.text or ""))
        for child in el:
            _write(child, out, adhoc)
            if child.tail:
                out.append(escape(child.tail))
        out.append(f"</{name}>")


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
