"""Nextcloud's WebDAV endpoints as one user at a time: `/remote.php/dav/files/{uid}/…` with that user's app password.

Every path segment is percent-encoded here (`#`, `%`, `?`, spaces, NFC and NFD unicode alike); names are sent
as given (Nextcloud itself normalises to NFC) and entries come back as the server names them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from migrate.backends.webdav.session import Body, DavSession
from migrate.backends.webdav.wire import (
    NC_PROPS,
    clean_path,
    encode_path,
    parse_multistatus,
    propfind_body,
    raise_for,
)
from migrate.errors import AuthError, IntegrityError
from migrate.models import RemoteEntry

if TYPE_CHECKING:
    import httpx

XML = {"Content-Type": "application/xml; charset=utf-8"}


def reveal(secret: Any) -> str:
    """A plain str, or the value of a config.Secret (revealed only here, where it is sent)."""
    return secret.reveal() if hasattr(secret, "reveal") else str(secret)


class NextcloudDav:
    """URLs and authenticated WebDAV calls for the users whose app passwords we hold."""

    def __init__(self, url: str, passwords: Mapping[str, Any], session: DavSession) -> None:
        self.base = url.rstrip("/")
        self.base_path = unquote(urlsplit(self.base).path).rstrip("/")
        self.passwords = dict(passwords)
        self.session = session

    # --- identities and URLs -------------------------------------------------------------------------------
    def auth(self, user: str) -> tuple[str, str]:
        pw = self.passwords.get(user)
        if pw is None or not reveal(pw):
            raise AuthError(f"no app password for Nextcloud user {user!r}",
                            hint="add a line for this user to the [target] credentials file "
                            "(`occ user:auth-tokens:add <user>` mints one)")
        return user, reveal(pw)

    def files_url(self, user: str, path: str = "", *, folder: bool = False) -> str:
        enc = encode_path(path)
        return f"{self.base}/remote.php/dav/files/{quote(user, safe='')}/" + enc + ("/" if folder and enc else "")

    def root_path(self, user: str) -> str:
        """The decoded URL path of the user's files root, as hrefs carry it."""
        return f"{self.base_path}/remote.php/dav/files/{user}/"

    def uploads_url(self, user: str, transfer_id: str, name: str = "") -> str:
        url = f"{self.base}/remote.php/dav/uploads/{quote(user, safe='')}/{quote(transfer_id, safe='')}"
        return url + (f"/{quote(name, safe='')}" if name else "")

    # --- calls -------------------------------------------------------------------------------------------
    def send(self, user: str, method: str, url: str, what: str, **kw: Any) -> httpx.Response:
        return self.session.send(method, url, auth=self.auth(user), user=user, what=what, **kw)

    def propfind(self, user: str, path: str, depth: str = "0", props: str = NC_PROPS) -> list[RemoteEntry] | None:
        """Entries of a PROPFIND in the user's files, or None on 404."""
        return self.propfind_url(user, self.files_url(user, path), self.root_path(user), depth, props,
                                 what=f"PROPFIND {user}:{path!r}")

    def propfind_url(self, user: str, url: str, root: str, depth: str = "0", props: str = NC_PROPS, *,
                     what: str = "") -> list[RemoteEntry] | None:
        """Entries of a PROPFIND of any DAV URL (files, uploads), paths relative to `root`; None on 404."""
        resp = self.send(user, "PROPFIND", url, what or f"PROPFIND {url}", headers={"Depth": depth, **XML},
                         body=propfind_body(props), ok=(404,))
        if resp.status_code == 404:
            return None
        return list(parse_multistatus(resp.content, root))

    def stat(self, user: str, path: str) -> RemoteEntry | None:
        entries = self.propfind(user, path, "0")
        if not entries:
            return None
        return entries[0]

    def mkcol(self, user: str, path: str) -> int:
        """201 created or 405 already there; anything else raises (409: parent missing).

        Two MKCOLs of one path at the same moment: Nextcloud answers the later one 403 "Could not create
        directory" (both passed its exists check); when the folder is there now, that is 405 to us.
        """
        what = f"MKCOL {user}:{path!r}"
        resp = self.send(user, "MKCOL", self.files_url(user, path, folder=True), what, ok=(405, 403))
        if resp.status_code == 403:
            entry = self.stat(user, path)
            if entry is not None and entry.is_folder:
                return 405
            raise_for(resp, what, user=user)
        return resp.status_code

    def put(self, user: str, path: str, body: Body, headers: Mapping[str, str], *, ok: tuple[int, ...] = ()
            ) -> httpx.Response:
        return self.send(user, "PUT", self.files_url(user, path), f"PUT {user}:{path!r}", headers=headers, body=body,
                         ok=ok)

    def put_stream(self, user: str, path: str, chunks: Iterable[bytes], headers: Mapping[str, str], *,
                   ok: tuple[int, ...] = ()) -> httpx.Response:
        return self.session.send_stream("PUT", self.files_url(user, path), chunks, auth=self.auth(user), user=user,
                                        what=f"PUT {user}:{path!r}", headers=headers, ok=ok)

    def open_download(self, user: str, path: str) -> AbstractContextManager[Iterator[bytes]]:
        return self.session.open_download(self.files_url(user, path), auth=self.auth(user), user=user,
                                          what=f"GET {user}:{path!r}")

    def delete(self, user: str, path: str) -> None:
        self.send(user, "DELETE", self.files_url(user, path), f"DELETE {user}:{path!r}", ok=(404,))

    def move(self, user: str, src: str, dest: str, *, overwrite: bool = True, headers: Mapping[str, str] | None = None,
             ok: tuple[int, ...] = ()) -> httpx.Response:
        return self.send(user, "MOVE", self.files_url(user, src), f"MOVE {user}:{src!r}", ok=ok,
                         headers={"Destination": self.files_url(user, dest), "Overwrite": "T" if overwrite else "F",
                                  **(headers or {})})

    def recalculate_sha1(self, user: str, path: str) -> str:
        """`PATCH` + `X-Recalculate-Hash: sha1` (§3.3): the server hashes the stored bytes and keeps the result."""
        resp = self.send(user, "PATCH", self.files_url(user, path), f"PATCH (recalculate hash) {user}:{path!r}",
                         headers={"X-Recalculate-Hash": "sha1"})
        value = resp.headers.get("OC-Checksum", "")
        if not value.upper().startswith("SHA1:"):
            raise IntegrityError(f"{user}:{path}: the server computed no SHA1 (answer {value!r})")
        return value

    def set_mtime(self, user: str, path: str, mtime: int) -> None:
        """PROPPATCH `d:lastmodified` (the only way for folders, §3.2); set folder times last, deepest first."""
        body = ('<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:"><d:set><d:prop>'
                f"<d:lastmodified>{int(mtime)}</d:lastmodified></d:prop></d:set></d:propertyupdate>").encode()
        self.send(user, "PROPPATCH", self.files_url(user, clean_path(path)), f"PROPPATCH {user}:{path!r}",
                  headers=XML, body=body)
