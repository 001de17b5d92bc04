"""Generic WebDAV target (Apache mod_dav, nginx, plain SabreDAV, the sandbox in plain mode) on webdav4.

Only RFC 4918 is assumed: PROPFIND, MKCOL (405 = exists), PUT, DELETE. Nothing the protocol cannot keep is
pretended: `features` says modification times, checksums, shares and versions are *not preserved*
(`NOT_PRESERVED` names them for the report), and every upload is checked by a follow-up PROPFIND of
`getcontentlength`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from migrate.backends.webdav.session import DavSession, make_http, replayable
from migrate.backends.webdav.wire import (
    CONDITIONAL_OK,
    PLAIN_PROPS,
    clean_path,
    conditional_outcome,
    encode_path,
    if_match_headers,
    parent_of,
    parse_multistatus,
    propfind_body,
    walk_breadth_first,
)
from migrate.errors import ChangedAtTarget, ConfigError, IntegrityError, TargetItemError
from migrate.models import Features, RemoteEntry
from migrate.transport.pacer import Pacer

if TYPE_CHECKING:
    import httpx

    from migrate.backends.nextcloud.credentials import CredentialProblem

log = logging.getLogger(__name__)

NOT_PRESERVED = ("modification times", "checksums", "shares", "versions")
REPLAYABLE_LIMIT = 4 * 1024 * 1024  # bodies up to this size are held so the pacer may re-send them


def plain_features() -> Features:
    """What any RFC 4918 server can do: store bytes under a name of at most 255 bytes (ext4/NTFS)."""
    return Features(max_name_bytes=255, forbidden_chars=frozenset({"/", "\0"}))


class WebDAVTarget:
    """protocols.Target for a plain WebDAV root at `url`; the only user is '' (the configured account).

    `auth` is (login, password) or None. Raises ConfigError for a non-empty user: plain WebDAV has no homes.
    """

    def __init__(self, url: str, auth: tuple[str, str] | None = None, *, ca_bundle: str | None = None,
                 pacer: Pacer | None = None, http: httpx.Client | None = None) -> None:
        from webdav4.client import Client

        self.url = url.rstrip("/") + "/"
        self.auth = auth
        self.session = DavSession(http or make_http(ca_bundle), pacer or Pacer("webdav"))
        # webdav4 holds the connection and parses OPTIONS; paths are encoded by us (see wire.py).
        self.client = Client(self.url, auth=auth, http_client=self.session.http, retry=False)  # type: ignore[arg-type]
        self.root_path = unquote(urlsplit(self.url).path)
        self.features = plain_features()
        self.not_preserved = NOT_PRESERVED
        self._known: set[str] = {""}
        self._known_lock = threading.Lock()

    def close(self) -> None:
        self.session.close()

    # --- helpers ---------------------------------------------------------------------------------------------
    def _check_user(self, user: str) -> None:
        if user:
            raise ConfigError(f"a plain WebDAV target has no per-user trees (asked for user {user!r})",
                              hint='use [target] kind = "nextcloud" for per-user homes, or map to paths')

    def url_for(self, path: str, *, folder: bool = False) -> str:
        enc = encode_path(path)
        return self.url + enc + ("/" if folder and enc else "")

    def dav_compliance(self) -> set[str]:
        """The DAV classes the server announces in OPTIONS (webdav4's feature detection)."""
        from webdav4.client import FeatureDetection

        resp = self.session.send("OPTIONS", self.url, auth=self.auth, what="OPTIONS", ok=(401, 403, 404, 405))
        return FeatureDetection(resp).dav_compliances - {""}

    def _propfind(self, path: str, depth: str) -> list[RemoteEntry] | None:
        resp = self.session.send("PROPFIND", self.url_for(path), auth=self.auth, what=f"PROPFIND {path!r}",
                                 headers={"Depth": depth, "Content-Type": "application/xml; charset=utf-8"},
                                 body=propfind_body(PLAIN_PROPS), ok=(404,))
        if resp.status_code == 404:
            return None
        return list(parse_multistatus(resp.content, self.root_path))

    # --- protocols.Target --------------------------------------------------------------------------------------
    def stat(self, user: str, path: str) -> RemoteEntry | None:
        self._check_user(user)
        entries = self._propfind(path, "0")
        if not entries:
            return None
        want = clean_path(path)
        return next((e for e in entries if e.path == want), entries[0])

    def walk(self, user: str, path: str) -> Iterator[RemoteEntry]:
        """Depth-1 PROPFIND per folder, breadth first (Depth: infinity is often disabled)."""
        self._check_user(user)
        yield from walk_breadth_first(path, lambda folder: self._propfind(folder, "1"))

    def list_folder(self, user: str, path: str) -> list[RemoteEntry] | None:
        """One Depth-1 PROPFIND: the folder and its children, or None when it is missing."""
        self._check_user(user)
        return self._propfind(path, "1")

    def open_read(self, user: str, path: str) -> AbstractContextManager[Iterator[bytes]]:
        """The bytes of a file as the server holds them, streamed (to hash a file already there)."""
        self._check_user(user)
        return self.session.open_download(self.url_for(clean_path(path)), auth=self.auth, what=f"GET {path!r}")

    def ensure_folder(self, user: str, path: str) -> None:
        self._check_user(user)
        segs = clean_path(path).split("/") if clean_path(path) else []
        for i in range(1, len(segs) + 1):
            sub = "/".join(segs[:i])
            with self._known_lock:
                if sub in self._known:
                    continue
            self.session.send("MKCOL", self.url_for(sub, folder=True), auth=self.auth, what=f"MKCOL {sub!r}",
                              ok=(405,))
            with self._known_lock:
                self._known.add(sub)

    def validate_credentials(self, users: Iterable[str] = ()) -> list[CredentialProblem]:
        """One PROPFIND of the root with the configured account (plain WebDAV has no per-user passwords)."""
        from migrate.backends.nextcloud.credentials import CredentialProblem

        login = self.auth[0] if self.auth else "(anonymous)"
        resp = self.session.send("PROPFIND", self.url, auth=self.auth, what="check credentials",
                                 headers={"Depth": "0"}, check=False)
        if resp.status_code == 207:
            return []
        kind = "wrong-password" if resp.status_code in (401, 403) else "error"
        return [CredentialProblem(login, kind, f"the WebDAV server answered HTTP {resp.status_code} at {self.url}")]

    def forget_folders(self) -> None:
        """Drop the cache of folders known to exist (after deletes made outside this object)."""
        with self._known_lock:
            self._known = {""}

    def upload(self, user: str, path: str, chunks: Iterable[bytes], size: int, *, mtime: float | None = None,
               sha1: str | Callable[[], str] | None = None, if_match: str | None = None) -> RemoteEntry:
        """Plain PUT streaming `chunks` (≤ 4 MiB: held to allow re-sending, see session.replayable); with `if_match`
        only over that version (`If-Match`, or a PROPFIND just before for a weak etag, see `_guard`)."""
        self._check_user(user)
        path = clean_path(path)
        self.ensure_folder("", parent_of(path))
        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        what = f"PUT {path!r}"
        guard, outcome = self._guard(path, if_match)
        changed = ChangedAtTarget(f"{what}: the file there is no longer the one we wrote; nothing was written")
        if outcome:
            raise changed
        ok = (412,) if guard else ()
        if size <= REPLAYABLE_LIMIT:
            resp = self.session.send("PUT", self.url_for(path), auth=self.auth, what=what,
                                     headers={**headers, **guard}, body=replayable(chunks, size, what), ok=ok)
        else:
            resp = self.session.send_stream("PUT", self.url_for(path), chunks, auth=self.auth, what=what,
                                            headers={**headers, **guard}, ok=ok)
        if resp.status_code == 412:
            raise changed
        entry = self.stat("", path)
        if entry is None or entry.is_folder:
            raise IntegrityError(f"{what}: nothing at the path after a successful PUT")
        if entry.size != size:
            raise IntegrityError(f"{what}: the server stores {entry.size} bytes, {size} were sent")
        return entry

    def delete(self, user: str, path: str) -> None:
        self._check_user(user)
        if not clean_path(path):
            raise TargetItemError("refusing to delete the target root")
        self.session.send("DELETE", self.url_for(path), auth=self.auth, what=f"DELETE {path!r}", ok=(404,))
        with self._known_lock:
            cp = clean_path(path)
            self._known = {k for k in self._known if k != cp and not k.startswith(cp + "/")}

    def move(self, user: str, src: str, dest: str, *, if_match: str | None = None) -> str:
        """Server-side MOVE with `Overwrite: F` (and `If-Match` when given); an outcome of webdav.wire."""
        self._check_user(user)
        src, dest = clean_path(src), clean_path(dest)
        guard, outcome = self._guard(src, if_match)
        if outcome:
            return outcome
        resp = self.session.send("MOVE", self.url_for(src), auth=self.auth, what=f"MOVE {src!r}",
                                 headers={"Destination": self.url_for(dest), "Overwrite": "F", **guard},
                                 ok=CONDITIONAL_OK)
        with self._known_lock:
            self._known = {k for k in self._known if k != src and not k.startswith(src + "/")}
        return conditional_outcome(resp)

    def delete_if(self, user: str, path: str, etag: str | None) -> str:
        """DELETE only while the item still has `etag` (when given): done/missing/changed."""
        self._check_user(user)
        cp = clean_path(path)
        if not cp:
            raise TargetItemError("refusing to delete the target root")
        guard, outcome = self._guard(cp, etag)
        if outcome:
            return outcome
        resp = self.session.send("DELETE", self.url_for(cp), auth=self.auth, what=f"DELETE {cp!r}",
                                 headers=guard, ok=CONDITIONAL_OK)
        with self._known_lock:
            self._known = {k for k in self._known if k != cp and not k.startswith(cp + "/")}
        return conditional_outcome(resp)

    def _guard(self, path: str, etag: str | None) -> tuple[dict[str, str], str]:
        """`If-Match` for a strong etag. A weak one (Apache gives `W/"…"` for a file changed within the last
        second) never matches under If-Match's strong comparison, so it is compared here by a PROPFIND instead:
        returns (headers, "") to go on, or ({}, missing | changed) to stop."""
        if not etag or not etag.startswith("W/"):
            return if_match_headers(etag), ""
        now = self.stat("", path)
        if now is None:
            return {}, "missing"
        return ({}, "") if (now.etag or "").removeprefix("W/") == etag.removeprefix("W/") else ({}, "changed")
