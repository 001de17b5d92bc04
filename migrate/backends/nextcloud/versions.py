"""A file's version history over WebDAV (`/remote.php/dav/versions/{uid}/versions/{fileid}`, reference §9.1).

Nextcloud names each version by the mtime the content had while it was current, lists the current content as
the newest entry, and keeps a label per version (`nc:version-label`, set by PROPPATCH); labelled versions are
never expired by the retention job. A file is addressed by its file id, read from its path first.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import AbstractContextManager
from urllib.parse import quote, unquote, urlsplit
from xml.sax.saxutils import escape

from migrate.backends.nextcloud.dav import XML, NextcloudDav
from migrate.backends.webdav.wire import DAV, NC, OC, clean_path, propfind_body
from migrate.errors import TargetItemError
from migrate.models import TargetVersion

VERSION_PROPS = "<d:getcontentlength/><d:getlastmodified/><nc:version-label/><nc:version-author/>"


class NextcloudVersions:
    """List, label and read the versions of a file in a user's tree (home or team folder alike)."""

    def __init__(self, dav: NextcloudDav) -> None:
        self.dav = dav

    def url(self, user: str, fileid: str, timestamp: int | None = None) -> str:
        base = f"{self.dav.base}/remote.php/dav/versions/{quote(user, safe='')}/versions/{quote(fileid, safe='')}"
        return base + (f"/{int(timestamp)}" if timestamp is not None else "")

    def file_id(self, user: str, path: str) -> str | None:
        """The file id of `path` (oc:fileid), or None when nothing is there."""
        resp = self.dav.send(user, "PROPFIND", self.dav.files_url(user, clean_path(path)),
                             f"PROPFIND (file id) {user}:{path!r}", headers={"Depth": "0", **XML},
                             body=propfind_body("<oc:fileid/>"), ok=(404,))
        if resp.status_code == 404:
            return None
        el = ET.fromstring(resp.content).find(f".//{OC}fileid")  # noqa: S314 - the target's own answer
        return (el.text or "").strip() or None if el is not None else None

    def list(self, user: str, fileid: str) -> list[TargetVersion]:
        """Every version, oldest first; the current content is the last entry."""
        url = self.url(user, fileid)
        resp = self.dav.send(user, "PROPFIND", url, f"PROPFIND versions {user}:{fileid}",
                             headers={"Depth": "1", **XML}, body=propfind_body(VERSION_PROPS), ok=(404,))
        if resp.status_code == 404:
            return []
        base = unquote(urlsplit(url).path).rstrip("/")
        out = []
        for r in ET.fromstring(resp.content).iter(f"{DAV}response"):  # noqa: S314 - the target's own answer
            href = unquote(r.findtext(f"{DAV}href") or "").rstrip("/")
            name = href.rsplit("/", 1)[-1]
            if href == base or not name.isdigit():
                continue
            size, label, author = 0, None, ""
            for ps in r.iter(f"{DAV}propstat"):
                if "200" not in (ps.findtext(f"{DAV}status") or ""):
                    continue
                prop = ps.find(f"{DAV}prop")
                if prop is None:
                    continue
                size = int(prop.findtext(f"{DAV}getcontentlength") or size or 0)
                lab = prop.find(f"{NC}version-label")
                if lab is not None:
                    label = lab.text or ""
                author = prop.findtext(f"{NC}version-author") or author
            out.append(TargetVersion(int(name), size, label, author))
        return sorted(out, key=lambda v: v.timestamp)

    def label(self, user: str, fileid: str, timestamp: int, text: str) -> None:
        """PROPPATCH `nc:version-label`; a version the server does not have is the caller's TargetItemError."""
        body = ('<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:nc="http://nextcloud.org/ns">'
                f"<d:set><d:prop><nc:version-label>{escape(text)}</nc:version-label></d:prop></d:set>"
                "</d:propertyupdate>").encode()
        resp = self.dav.send(user, "PROPPATCH", self.url(user, fileid, timestamp),
                             f"PROPPATCH version-label {user}:{fileid}/{timestamp}", headers=XML, body=body)
        if b"200 OK" not in resp.content and resp.status_code == 207:
            raise TargetItemError(f"{user}: version {timestamp} of file {fileid}: the label was not stored "
                                  f"({resp.text[:200]})")

    def restore(self, user: str, fileid: str, timestamp: int) -> None:
        """MOVE the version to `…/versions/{uid}/restore/target` (§9.1): the file gets its bytes and time, and
        the content it replaces is kept as a version named by its own time."""
        dest = f"{self.dav.base}/remote.php/dav/versions/{quote(user, safe='')}/restore/target"
        self.dav.send(user, "MOVE", self.url(user, fileid, timestamp),
                      f"MOVE (restore version) {user}:{fileid}/{timestamp}", headers={"Destination": dest})

    def open(self, user: str, fileid: str, timestamp: int) -> AbstractContextManager[Iterator[bytes]]:
        """The bytes of one earlier version (the current one: read the file itself; a home folder answers 404)."""
        return self.dav.session.open_download(self.url(user, fileid, timestamp), auth=self.dav.auth(user), user=user,
                                              what=f"GET version {user}:{fileid}/{timestamp}")
