"""The sandbox's WSGI front: routing, Basic auth with brute-force blocking, and Nextcloud rules around WsgiDAV."""

from __future__ import annotations

import base64
import logging
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from xml.sax.saxutils import escape

from . import gfdav, names
from .bulk import Bulk
from .caldav import CAL_PREFIX, CARD_PREFIX, Groupware
from .chunking import UPLOADS_PREFIX, Chunking
from .dav import build_wsgidav
from .files import FILES_PREFIX, FileOps, split_files_path
from .gfdav import GF_DAV_PREFIX
from .groupfolders import GroupFolders, PlainError
from .ocs import STATUS, OCSError, Request, capabilities, csrf_failed, envelope, provisioning
from .sessions import Sessions
from .shares import RateLimited, Shares
from .state import State
from .trash import TRASH_PREFIX, Trash
from .versions import VERSIONS_PREFIX, Versions
from .wire import (
    MULTISTATUS,
    Environ,
    StartResponse,
    header,
    json_body,
    respond,
    sabre_error,
    sabre_xml,
    status_line,
    wsgi_to_text,
)

log = logging.getLogger(__name__)

DAV_FEATURES = ("1, 3, extended-mkcol, access-control, calendarserver-principal-property-search, nc-paginate, "
                "nextcloud-checksum-update, nc-calendar-search, nc-enable-birthday-calendar")
SHARES_PREFIX = "/apps/files_sharing/api/v1"
GROUPFOLDERS_PREFIX = "/index.php/apps/groupfolders"
WRITE_METHODS = {"PUT", "MKCOL", "MOVE", "COPY", "DELETE", "PROPPATCH", "POST", "PATCH", "LOCK", "UNLOCK"}


class NextcloudApp:
    """One WSGI callable for the whole sandbox; `plain=True` leaves only authenticated WebDAV."""

    def __init__(self, state: State, *, plain: bool = False) -> None:
        self.state = state
        self.plain = plain
        self.base_url = ""
        self.dav = build_wsgidav(state, plain=plain)
        self.ops = FileOps(state)
        self.chunking = Chunking(state, self.ops)
        self.bulk = Bulk(state)
        self.shares = Shares(state, "")
        self.groupfolders = GroupFolders(state)
        self.versions = Versions(state)
        self.trash = Trash(state)
        self.sessions = Sessions(state)
        self.groupware = Groupware(state)

    # --- entry ----------------------------------------------------------------------------------------------
    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"].upper()
        path = wsgi_to_text(environ.get("PATH_INFO", ""))
        state = self.state

        def recording(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            with state.lock:
                state.requests.append((method, path, int(status[:3])))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        try:
            state.run_before(method, path)
            fault = state.take_fault(method, path)
            if fault is None:
                with state.mkcol_race(method, path) as lost, state.in_flight(method):
                    rel = split_files_path(path)[1]
                    if lost == 403:  # both passed the exists check; the later mkdir failed
                        return sabre_error(recording, 403, f"Could not create directory /{rel}")
                    if lost == 423:
                        return sabre_error(recording, 423, f'"/{rel}" is locked')
                    return self.route(environ, recording, method, path)
            if fault.after:
                # The work is done (its body consumed so every side effect happens); the client only sees the error.
                result = self.route(environ, lambda s, h, e=None: None, method, path)
                for _ in result:
                    pass
                close = getattr(result, "close", None)
                if callable(close):
                    close()
            return injected(recording, fault.status)
        except Exception:  # noqa: BLE001 - a sandbox bug must show as a 500, not kill the worker
            log.error("sandbox error on %s %s\n%s", method, path, traceback.format_exc())
            return sabre_error(recording, 500, "Internal sandbox error")

    def route(self, environ: Environ, sr: StartResponse, method: str, path: str) -> Iterable[bytes]:
        self.shares.base_url = self.base_url
        if not self.plain and path == "/status.php":
            return json_body(sr, 200, STATUS)
        is_ocs = path.startswith(("/ocs/v1.php/", "/ocs/v2.php/"))
        is_gf = path.startswith(GROUPFOLDERS_PREFIX + "/")
        is_dav = path.startswith("/remote.php/dav/")
        if self.plain and not is_dav:
            return sabre_error(sr, 404, "Not found")
        if not (is_ocs or is_gf or is_dav):
            return sabre_error(sr, 404, "Not found")
        if method == "OPTIONS" and is_dav:
            return self.options(environ, sr, path)
        logged_in: list[str | None] = [None]
        sr = self.sessions.setting_cookies(sr, environ, lambda: logged_in[0])   # every answer, as on 32.0.1
        user, failure = self.authenticate(environ, sr, ocs=is_ocs or is_gf, v1=path.startswith("/ocs/v1.php/"))
        logged_in[0] = user
        if failure is not None:
            return failure
        assert user is not None
        environ["wsgidav.auth.user_name"] = user
        environ["wsgidav.auth.realm"] = "Nextcloud"
        environ["wsgidav.auth.roles"] = []
        if is_ocs or is_gf:
            return self.ocs(environ, sr, user, path, is_gf)
        if self.plain:
            return self.plain_dav(environ, sr, user, path)
        if path.startswith(FILES_PREFIX) or path.rstrip("/") == FILES_PREFIX.rstrip("/"):
            return self.files(environ, sr, user, method, path)
        if path.startswith(UPLOADS_PREFIX):
            return self.chunking.handle(environ, sr, user, path)
        if path.rstrip("/") == "/remote.php/dav/bulk":
            return self.bulk.handle(environ, sr, user)
        if path.startswith(VERSIONS_PREFIX):
            return self.versions.handle(environ, sr, user, path)
        if path.startswith(TRASH_PREFIX):
            return self.trash.handle(environ, sr, user, path)
        if path.startswith(GF_DAV_PREFIX):
            return gfdav.handle(self.state, environ, sr, user, path)
        if path.startswith((CAL_PREFIX, CARD_PREFIX)):
            return self.groupware.handle(environ, sr, user, environ["REQUEST_METHOD"].upper(), path)
        return sabre_error(sr, 404, "Not found")

    # --- auth -----------------------------------------------------------------------------------------------
    def authenticate(self, environ: Environ, sr: StartResponse, *, ocs: bool, v1: bool
                     ) -> tuple[str | None, Iterable[bytes] | None]:
        """A logged-in session wins (§1.2); else Basic auth by app password; > max failed logins from one
        address blocks every login (§8.2)."""
        st = self.state
        session_user = self.sessions.user(environ)
        if session_user is not None:
            return session_user, None
        addr = environ.get("REMOTE_ADDR", "")
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if auth and st.is_blocked(addr):
            if ocs:
                return None, json_body(sr, 429, {"ocs": {"meta": {"status": "failure", "statuscode": 429,
                                                                  "message": "Reached maximum delay"}, "data": []}})
            return None, sabre_error(sr, 429, "Too many requests", extra='<o:hint xmlns:o="o:">too many requests'
                                                                           "</o:hint>")
        uid = None
        if auth.lower().startswith("basic "):
            try:
                login, _, password = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                login, password = "", ""
            user = st.users.get(login)
            if user is not None and user.password == password:
                uid = login
            else:
                st.record_failed_login(addr)
        if uid is not None:
            return uid, None
        challenge = [("WWW-Authenticate", 'Basic realm="Nextcloud", charset="UTF-8"')]
        if ocs:
            body = {"ocs": {"meta": {"status": "failure", "statuscode": 997, "message": "Current user is not logged in"},
                            "data": []}}
            import json
            return None, respond(sr, 401, json.dumps(body).encode(), "application/json; charset=utf-8", challenge)
        return None, sabre_error(sr, 401, "No public access to this resource., Username or password was incorrect",
                                 exception="Sabre\\DAV\\Exception\\NotAuthenticated", headers=challenge)

    # --- OCS and team folders ---------------------------------------------------------------------------------
    def ocs(self, environ: Environ, sr: StartResponse, user: str, path: str, is_gf: bool) -> Iterable[bytes]:
        api_request = (header(environ, "OCS-APIRequest") or "").lower() == "true"
        if not api_request and not environ.get("HTTP_AUTHORIZATION", "").lower().startswith("bearer "):
            return csrf_failed(sr)
        version = 1 if is_gf or path.startswith("/ocs/v1.php/") else 2
        sub = path[len(GROUPFOLDERS_PREFIX):] if is_gf else path[len("/ocs/v2.php"):]
        req = Request(environ, user, sub)
        try:
            if is_gf:
                data = self.groupfolders.handle(req)
            elif sub.startswith("/cloud/capabilities"):
                data = capabilities(self.state, user)
            elif sub.startswith("/cloud/"):
                req.path = sub[len("/cloud/"):]       # the same request: its body is read once
                data = provisioning(self.state, req)
            elif sub.startswith(SHARES_PREFIX + "/"):
                req.path = sub[len(SHARES_PREFIX):]
                data = self.shares.handle(req)
            else:
                raise OCSError(998, "Invalid query, please check the syntax.")
        except RateLimited:
            return respond(sr, 429, b"", "text/html; charset=UTF-8")
        except PlainError as exc:
            return json_body(sr, exc.status, {"message": str(exc)})
        except OCSError as exc:
            return envelope(environ, sr, version, [], exc.status, str(exc))
        return envelope(environ, sr, version, data)

    # --- WebDAV -------------------------------------------------------------------------------------------------
    def options(self, environ: Environ, sr: StartResponse, path: str) -> Iterable[bytes]:
        if self.plain:
            return self.dav(environ, sr)

        def patched(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = [h for h in headers if h[0].lower() != "dav"] + [("DAV", DAV_FEATURES)]
            return sr(status, headers, exc_info) if exc_info else sr(status, headers)

        return self.dav(environ, patched)

    def plain_dav(self, environ: Environ, sr: StartResponse, user: str, path: str) -> Iterable[bytes]:
        """Plain mode: authenticated WebDAV on the user's own tree, nothing else."""
        if not path.startswith(FILES_PREFIX):
            return sabre_error(sr, 404, "Not found")
        uid, _ = split_files_path(path)
        if uid != user:
            return sabre_error(sr, 403, "Permission denied")
        dest = header(environ, "Destination")
        if dest and f"{FILES_PREFIX}{user}/" not in wsgi_to_text(dest) + "/":
            return sabre_error(sr, 403, "Permission denied")
        environ["PATH_INFO"] = path
        return self.dav(environ, sr)

    def files(self, environ: Environ, sr: StartResponse, user: str, method: str, path: str) -> Iterable[bytes]:
        st, ops = self.state, self.ops
        uid, rel = split_files_path(path)
        if not uid:
            return sabre_error(sr, 405, "Listing members of this collection is disabled")
        if uid not in st.users:
            return sabre_error(sr, 404, f"Principal with name {uid} not found")
        if uid != user:
            return self.foreign(environ, sr, method, uid, rel)
        environ["PATH_INFO"] = FILES_PREFIX + uid + ("/" + rel if rel else "/")
        node = st.resolve(uid, rel)
        last = rel.rpartition("/")[2]
        if last and names.is_part_name(last) and not node.real.exists():
            phantom = self.part_phantom(environ, sr, method, uid, rel)
            if phantom is not None:
                return phantom
        if method == "PUT":
            return ops.put(environ, sr, uid, rel)
        if method == "PATCH" and header(environ, "X-Recalculate-Hash"):
            return ops.recalculate_hash(environ, sr, uid, rel)
        err = None
        after: Callable[[int], list[tuple[str, str]]] | None = None
        if method == "MKCOL":
            err = ops.precheck_mkcol(sr, uid, rel)

            def after(code: int) -> list[tuple[str, str]]:
                if code != 201:
                    return []
                st.propagate(node.real, node.storage_root)
                return [("OC-FileId", st.oc_id(st.meta_for(node.real).fileid))]
        elif method == "DELETE":
            err = ops.precheck_delete(sr, uid, rel) or self.conditional(environ, sr, node)

            def after(code: int) -> list[tuple[str, str]]:
                if code < 300:
                    st.propagate(node.real, node.storage_root)
                return []
        elif method in ("MOVE", "COPY"):
            err = self.conditional(environ, sr, node) or ops.precheck_copy_move(environ, sr, uid, rel,
                                                                               method == "MOVE")
            if err is None:
                _, drel = split_files_path(wsgi_to_text(environ["HTTP_DESTINATION"]))
                from urllib.parse import unquote
                dnode = st.resolve(uid, unquote(drel))

                def after(code: int) -> list[tuple[str, str]]:
                    if code < 300:
                        st.propagate(node.real, node.storage_root)
                        st.propagate(dnode.real, dnode.storage_root)
                        if dnode.real.exists():
                            etag = st.etag(dnode.real)
                            return [("ETag", f'"{etag}"'), ("OC-ETag", f'"{etag}"'),
                                    ("OC-FileId", st.oc_id(st.meta_for(dnode.real).fileid))]
                    return []
        elif method == "PROPPATCH":
            err = ops.check_proppatch(environ, sr, uid, rel)
        elif method in ("GET", "HEAD"):
            def after(code: int) -> list[tuple[str, str]]:
                if code < 300 and node.real.is_file():
                    meta = st.meta_for(node.real)
                    out = [("OC-FileId", st.oc_id(meta.fileid))]
                    if meta.checksum:
                        out.append(("OC-Checksum", meta.checksum))
                    return out
                return []
        if err is not None:
            return err
        return self.call_dav(environ, sr, method, rel, after)

    def conditional(self, environ: Environ, sr: StartResponse, node: Any) -> Iterable[bytes] | None:
        """Sabre checks If-Match / If-None-Match / If before every method (MOVE and DELETE too) against its own etags;
        WsgiDAV's differ, so the headers are judged here and not passed on."""
        err = self.ops.preconditions(environ, sr, node, node.real.exists())
        environ.pop("HTTP_IF_MATCH", None)
        environ.pop("HTTP_IF_NONE_MATCH", None)
        environ.pop("HTTP_IF", None)
        return err

    def call_dav(self, environ: Environ, sr: StartResponse, method: str, rel: str,
                 hook: Callable[[int], list[tuple[str, str]]] | None = None) -> Iterable[bytes]:
        """Run WsgiDAV; add headers from `hook(status)`; turn its HTML error pages into Sabre XML (§1.4)."""
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        result = self.dav(environ, capture)
        it = iter(result)
        first: list[bytes] = []
        if "status" not in captured:
            chunk = next(it, None)
            if chunk is not None:
                first.append(chunk)
        status, headers = captured["status"], list(captured["headers"])
        code = int(status[:3])
        is_html = any(k.lower() == "content-type" and "html" in v for k, v in headers)
        if code >= 400 and is_html:
            if hasattr(result, "close"):
                result.close()
            return self.sabre_for(sr, method, code, rel)
        if hook is not None:
            extra = hook(code)
            names_ = {k.lower() for k, _ in extra}
            headers = [h for h in headers if h[0].lower() not in names_] + extra
        if code < 300 and any(k.lower() == "content-type" and "xml" in v for k, v in headers):
            return self.sabre_body(sr, status, headers, first, it, result)
        sr(status, headers)
        return _Chained(first, it, result)

    @staticmethod
    def sabre_body(sr: StartResponse, status: str, headers: list[tuple[str, str]], first: list[bytes], it: Any,
                   result: Any) -> Iterable[bytes]:
        """WsgiDAV's XML (a multistatus, a lock) written again with Nextcloud's `d:`/`oc:`/`nc:`/`s:` prefixes:
        ElementTree would name them `ns0:`, `ns1:`, … and some clients match the prefixed names."""
        from xml.etree import ElementTree

        try:
            raw = b"".join([*first, *it])
        finally:
            if hasattr(result, "close"):
                result.close()
        body = sabre_xml(ElementTree.fromstring(raw))      # our own WsgiDAV's output, not a client's
        headers = [h for h in headers if h[0].lower() != "content-length"] + [("Content-Length", str(len(body)))]
        sr(status, headers)
        return [body]

    @staticmethod
    def sabre_for(sr: StartResponse, method: str, code: int, rel: str) -> Iterable[bytes]:
        """The messages Sabre/Nextcloud give for the errors WsgiDAV detected (§2.2, §2.4)."""
        if method == "MKCOL" and code == 405:
            return sabre_error(sr, 405, "The resource you tried to create already exists")
        if method == "MKCOL" and code == 409:
            return sabre_error(sr, 409, "Parent node does not exist")
        if method in ("MOVE", "COPY") and code == 412:
            return sabre_error(sr, 412, "The destination node already exists, and the overwrite header is set to "
                                        "false", extra="<s:header>Overwrite</s:header>")
        if method in ("MOVE", "COPY") and code == 409:
            return sabre_error(sr, 409, "The destination node is not found")
        if code == 404:
            return sabre_error(sr, 404, f"File with name {rel} could not be located")
        return sabre_error(sr, code, status_line(code)[4:])

    def foreign(self, environ: Environ, sr: StartResponse, method: str, uid: str, rel: str) -> Iterable[bytes]:
        """Another existing user's home: an empty collection, writes 403, reads 404 (§1.2)."""
        if method == "PROPFIND":
            if rel:
                return sabre_error(sr, 404, f"File with name {rel} could not be located")
            body = (MULTISTATUS + f"<d:response><d:href>{escape(FILES_PREFIX + uid)}/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/>"
                    "</d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
                    "</d:multistatus>")
            return respond(sr, 207, body.encode(), "application/xml; charset=utf-8")
        if method == "PUT":
            name = rel.rpartition("/")[2]
            return sabre_error(sr, 403, f"Permission denied to create file (filename {name})")
        if method == "MKCOL":
            return sabre_error(sr, 403, "Permission denied to create directory")
        if method in ("GET", "HEAD"):
            return sabre_error(sr, 404, f"File not found: {rel.rpartition('/')[2]} in '{uid}'")
        return sabre_error(sr, 403, "Permission denied")

    def part_phantom(self, environ: Environ, sr: StartResponse, method: str, uid: str, rel: str
                     ) -> Iterable[bytes] | None:
        """Any missing `*.part` path looks present: PROPFIND 207, MKCOL 405, GET 503, DELETE 204 (§5.1)."""
        if method == "PROPFIND":
            href = escape(environ["PATH_INFO"])
            body = (MULTISTATUS + "<d:response><d:href>" + href +
                    "</d:href><d:propstat><d:prop><d:getcontentlength>0</d:getcontentlength><d:getetag></d:getetag>"
                    "<d:resourcetype/></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
                    "</d:multistatus>")
            return respond(sr, 207, body.encode(), "application/xml; charset=utf-8")
        if method == "MKCOL":
            return sabre_error(sr, 405, "The resource you tried to create already exists")
        if method in ("GET", "HEAD"):
            return sabre_error(sr, 503, f"Could not open file: {rel}, file doesn't seem to exist")
        if method == "DELETE":
            return respond(sr, 204)
        return None


class _Chained:
    """Body iterator that yields an already-pulled first chunk, then the rest, and forwards close()."""

    def __init__(self, first: list[bytes], rest: Any, source: Any) -> None:
        self.first, self.rest, self.source = first, rest, source

    def __iter__(self) -> Any:
        yield from self.first
        yield from self.rest

    def close(self) -> None:
        if hasattr(self.source, "close"):
            self.source.close()


def injected(start_response: StartResponse, status: int) -> Iterable[bytes]:
    """An injected failure: a reverse proxy's page for 502/504, Nextcloud's own Sabre error otherwise."""
    if status in (502, 504):
        text = {502: "Bad Gateway", 504: "Gateway Time-out"}[status]
        page = f"<html><head><title>{status} {text}</title></head><body><h1>{status} {text}</h1></body></html>\n"
        return respond(start_response, status, page.encode(), "text/html")
    if status == 403:
        return sabre_error(start_response, 403, "Permission denied to create directory (injected fault)")
    if status == 500:   # what a Nextcloud on sqlite answers while another request holds the database (groupware §6.14)
        return sabre_error(start_response, 500, "An exception occurred while executing a query: SQLSTATE[HY000]: "
                           "General error: 5 database is locked")
    return sabre_error(start_response, status, "Service Unavailable (injected fault)")
