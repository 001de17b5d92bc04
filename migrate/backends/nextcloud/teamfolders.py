"""Team folders (groupfolders app, reference §7) for SharePoint libraries: list, create and grant them, and check
that the writing account sees one mounted.

The API lives under `/index.php/apps/groupfolders/…` (OCS v1 envelope, admin only; some errors come as HTTP
400/404 with a plain `{"message": …}`). A folder shows up in WebDAV only for members of its groups (§7.3): for
anyone else `/<mount point>/…` is an ordinary path in their own home, so a write there creates a look-alike
folder. `mount()` tells the two apart by `nc:mount-type` = `group` and `nc:group-folder-id`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import quote

from migrate.backends.nextcloud import ocs
from migrate.backends.nextcloud.dav import XML, NextcloudDav
from migrate.backends.webdav.wire import NC, OC, propfind_body
from migrate.errors import AuthError, TargetError

API = "/index.php/apps/groupfolders/folders"
READ, UPDATE, CREATE, DELETE, SHARE = 1, 2, 4, 8, 16
ALL = 31


@dataclass(frozen=True, slots=True)
class TeamFolder:
    id: int
    mount_point: str
    groups: dict[str, int] = field(default_factory=dict)
    quota: int = -3
    acl: bool = False
    manage: tuple[tuple[str, str], ...] = ()  # (mapping type, id) of ACL managers


@dataclass(frozen=True, slots=True)
class Mount:
    """What one account sees at `/<mount point>` in its files: nothing, a plain folder, or the team folder."""

    user: str
    mount_point: str
    exists: bool = False
    mount_type: str = ""  # "group" for a team folder
    folder_id: int | None = None
    permissions: str = ""  # oc:permissions letters (C = may create inside)

    @property
    def is_team_folder(self) -> bool:
        return self.mount_type == "group"

    @property
    def writable(self) -> bool:
        return "C" in self.permissions and ("W" in self.permissions or "NV" in self.permissions)


def _folder(f: dict) -> TeamFolder:
    groups = f.get("groups") or {}
    manage = tuple((str(m.get("type") or ""), str(m.get("id") or "")) for m in (f.get("manage") or [])
                   if isinstance(m, dict))
    return TeamFolder(id=int(f["id"]), mount_point=str(f.get("mount_point") or ""),
                      groups={str(k): int(v) for k, v in groups.items()} if isinstance(groups, dict) else {},
                      quota=int(f.get("quota") or -3), acl=bool(f.get("acl")), manage=manage)


class TeamFolders:
    """Team-folder reads and changes as `admin`, and a mount check as the writing account."""

    def __init__(self, dav: NextcloudDav, admin: str) -> None:
        self.dav = dav
        self.admin = admin

    def _refused(self, res: ocs.OcsResult, what: str) -> TargetError:
        if res.status in (401, 403, 997) or res.http_status in (401, 403):
            return AuthError(f"{what} as {self.admin!r}: {res.message or 'not allowed'}",
                             hint="the service account must be a Nextcloud admin (or delegated admin of Team folders)")
        if res.http_status == 404 and not res.message:
            return TargetError(f"{what}: the Team folders app (groupfolders) does not answer at {API}",
                               hint="enable it: `occ app:enable groupfolders`")
        return TargetError(f"{what}: HTTP {res.http_status}, OCS {res.status} {res.message}")

    def list(self) -> list[TeamFolder]:
        res = ocs.call(self.dav, self.admin, "GET", API)
        if not res.ok:
            raise self._refused(res, "list team folders")
        data = res.data or {}
        folders = data.values() if isinstance(data, dict) else data
        return [_folder(f) for f in folders if isinstance(f, dict)]

    def find(self, mount_point: str) -> TeamFolder | None:
        want = mount_point.strip("/")
        return next((f for f in self.list() if f.mount_point.strip("/") == want), None)

    def create(self, mount_point: str) -> TeamFolder:
        """POST /folders; a mount point that exists is an error (HTTP 400 "Mount point already exists")."""
        res = ocs.call(self.dav, self.admin, "POST", API, form={"mountpoint": mount_point})
        if not res.ok or not isinstance(res.data, dict):
            raise self._refused(res, f"create team folder {mount_point!r}")
        return _folder(res.data)

    def set_group(self, folder_id: int, group: str, permissions: int, *, assigned: bool) -> None:
        """Give `group` access with `permissions` (add it first unless `assigned`); existence is not checked (§7.1)."""
        if not assigned:
            res = ocs.call(self.dav, self.admin, "POST", f"{API}/{folder_id}/groups", form={"group": group})
            if not res.ok and "already assigned" not in res.message:
                raise self._refused(res, f"add group {group!r} to team folder {folder_id}")
        res = ocs.call(self.dav, self.admin, "POST", f"{API}/{folder_id}/groups/{quote(group, safe='')}",
                       form={"permissions": str(permissions)})
        if not res.ok:
            raise self._refused(res, f"set the permissions of group {group!r} on team folder {folder_id}")

    def set_acl_manager(self, folder_id: int, group: str) -> None:
        res = ocs.call(self.dav, self.admin, "POST", f"{API}/{folder_id}/manageACL",
                       form={"mappingType": "group", "mappingId": group, "manageAcl": "1"})
        if not res.ok:
            raise self._refused(res, f"make group {group!r} an ACL manager of team folder {folder_id}")

    def mount(self, user: str, mount_point: str) -> Mount:
        """What `user` sees at `/{mount_point}` (PROPFIND Depth 0 as that user)."""
        props = "<d:resourcetype/><oc:permissions/><nc:mount-type/><nc:group-folder-id/>"
        path = mount_point.strip("/")
        resp = self.dav.send(user, "PROPFIND", self.dav.files_url(user, path),
                             f"PROPFIND team folder {path!r} as {user}",
                             headers={"Depth": "0", **XML}, body=propfind_body(props), ok=(404,))
        if resp.status_code == 404:
            return Mount(user, path)
        root = ET.fromstring(resp.content)  # noqa: S314 - the target's own answer, no entities expanded
        found: dict[str, str] = {}
        for ps in root.iter("{DAV:}propstat"):
            if (ps.findtext("{DAV:}status") or "").split()[1:2] != ["200"]:
                continue
            for el in ps.iter():
                found[el.tag] = (el.text or "").strip()
        fid = found.get(f"{NC}group-folder-id", "")
        return Mount(user, path, exists=True, mount_type=found.get(f"{NC}mount-type", ""),
                     folder_id=int(fid) if fid.isdigit() else None, permissions=found.get(f"{OC}permissions", ""))

    def visible_to(self, user: str, mount_point: str) -> bool:
        """True when `user` sees the folder mounted at `/{mount_point}` in its files (nc:mount-type = group)."""
        return self.mount(user, mount_point).is_team_folder
