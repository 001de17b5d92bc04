"""Team folders (groupfolders app, reference §7) for SharePoint libraries: list them, check the writer sees one.

The API lives under `/index.php/apps/groupfolders/…` (OCS v1 envelope, admin only). A folder shows up in WebDAV
only for members of its groups, so the service account that writes a library must be in one of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from migrate.backends.nextcloud import ocs
from migrate.backends.nextcloud.dav import NextcloudDav
from migrate.backends.webdav.wire import NC
from migrate.errors import AuthError, TargetError

API = "/index.php/apps/groupfolders/folders"


@dataclass(frozen=True, slots=True)
class TeamFolder:
    id: int
    mount_point: str
    groups: dict[str, int] = field(default_factory=dict)
    quota: int = -3
    acl: bool = False


class TeamFolders:
    """Team-folder reads as `admin`, and a mount check as the writing account."""

    def __init__(self, dav: NextcloudDav, admin: str) -> None:
        self.dav = dav
        self.admin = admin

    def list(self) -> list[TeamFolder]:
        res = ocs.call(self.dav, self.admin, "GET", API)
        if not res.ok:
            if res.status in (401, 403, 997):
                raise AuthError(f"list team folders as {self.admin!r}: {res.message or 'not allowed'}",
                                hint="the service account must be a Nextcloud admin (or delegated admin)")
            raise TargetError(f"list team folders: HTTP {res.http_status}, OCS {res.status} {res.message}")
        data = res.data or {}
        folders = data.values() if isinstance(data, dict) else data
        out = []
        for f in folders:
            groups = f.get("groups") or {}
            out.append(TeamFolder(id=int(f["id"]), mount_point=str(f.get("mount_point") or ""),
                                  groups={str(k): int(v) for k, v in groups.items()} if isinstance(groups, dict)
                                  else {}, quota=int(f.get("quota") or -3), acl=bool(f.get("acl"))))
        return out

    def find(self, mount_point: str) -> TeamFolder | None:
        want = mount_point.strip("/")
        return next((f for f in self.list() if f.mount_point.strip("/") == want), None)

    def visible_to(self, user: str, mount_point: str) -> bool:
        """True when `user` sees the folder mounted at `/{mount_point}` in its files (nc:mount-type = group)."""
        props = "<d:resourcetype/><nc:mount-type/>"
        resp = self.dav.send(user, "PROPFIND", self.dav.files_url(user, mount_point),
                             f"PROPFIND team folder {mount_point!r} as {user}",
                             headers={"Depth": "0", "Content-Type": "application/xml; charset=utf-8"},
                             body=('<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:nc="http://nextcloud.org/'
                                   f'ns"><d:prop>{props}</d:prop></d:propfind>').encode(), ok=(404,))
        if resp.status_code == 404:
            return False
        import xml.etree.ElementTree as ET

        root = ET.fromstring(resp.content)  # noqa: S314
        return any((el.text or "").strip() == "group" for el in root.iter(f"{NC}mount-type"))
