"""The two facts a calendar link to a file needs (reference groupware.md §4.8): its file id and whether it has a
preview, from one PROPFIND as its owner; and the link itself, `/index.php/f/{fileid}` (what the Calendar app
writes, made absolute so other clients can follow it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from migrate.errors import TargetItemError

if TYPE_CHECKING:
    from migrate.backends.nextcloud.dav import NextcloudDav

BODY = (b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" '
        b'xmlns:nc="http://nextcloud.org/ns"><d:prop><oc:fileid/><nc:has-preview/><d:getcontenttype/>'
        b"</d:prop></d:propfind>")
NS = {"d": "DAV:", "oc": "http://owncloud.org/ns", "nc": "http://nextcloud.org/ns"}


@dataclass(frozen=True, slots=True)
class FileInfo:
    file_id: str
    has_preview: bool
    content_type: str


def file_info(dav: NextcloudDav, user: str, path: str) -> FileInfo | None:
    """The file id, preview flag and content type of `path` in `user`'s files; None when nothing is there."""
    from defusedxml import ElementTree as ET

    resp = dav.send(user, "PROPFIND", dav.files_url(user, path), f"PROPFIND {user}:{path!r} (file id)",
                    headers={"Depth": "0", "Content-Type": "application/xml; charset=utf-8"}, body=BODY, ok=(404,))
    if resp.status_code == 404:
        return None
    root = ET.fromstring(resp.content)
    fid = root.findtext(".//oc:fileid", None, NS)
    if not fid:
        raise TargetItemError(f"{user}:{path}: the server named no file id for it")
    return FileInfo(fid.strip(), (root.findtext(".//nc:has-preview", "", NS) or "").strip() == "true",
                    (root.findtext(".//d:getcontenttype", "", NS) or "").strip())


def link_for(base_url: str, file_id: str) -> str:
    return f"{base_url.rstrip('/')}/index.php/f/{file_id}"
