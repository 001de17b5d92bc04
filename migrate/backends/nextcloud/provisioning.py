"""User and group existence (OCS provisioning reads, reference §6.6), asked as an admin service account."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from migrate.backends.nextcloud import ocs
from migrate.backends.nextcloud.dav import NextcloudDav
from migrate.errors import AuthError, TargetError


@dataclass(frozen=True, slots=True)
class UserRecord:
    """What the plan needs about a target user; `quota_free` is None when unlimited (NC reports -3)."""

    id: str
    enabled: bool
    quota_free: int | None
    quota_used: int


def _refused(res: ocs.OcsResult, what: str) -> TargetError:
    if res.status in (401, 403, 997):
        return AuthError(f"{what}: {res.message or 'not allowed'}",
                         hint="user and group lookups need an admin account (the [target] service account)")
    return TargetError(f"{what}: HTTP {res.http_status}, OCS {res.status} {res.message}")


class Provisioning:
    """Reads of `/ocs/v2.php/cloud/users|groups` as `admin` (a uid whose app password we hold)."""

    def __init__(self, dav: NextcloudDav, admin: str) -> None:
        self.dav = dav
        self.admin = admin

    def user(self, uid: str) -> UserRecord | None:
        res = ocs.call(self.dav, self.admin, "GET", f"/ocs/v2.php/cloud/users/{quote(uid, safe='')}")
        if res.status == 404 or res.http_status == 404:
            return None
        if not res.ok:
            raise _refused(res, f"look up user {uid!r}")
        data = res.data or {}
        quota = data.get("quota") or {}
        free = quota.get("free")
        return UserRecord(id=str(data.get("id") or uid), enabled=bool(data.get("enabled", True)),
                          quota_free=int(free) if isinstance(free, int | float) and free >= 0 else None,
                          quota_used=int(quota.get("used") or 0))

    def user_exists(self, uid: str) -> bool:
        return self.user(uid) is not None

    def group_exists(self, gid: str) -> bool:
        res = ocs.call(self.dav, self.admin, "GET", f"/ocs/v2.php/cloud/groups/{quote(gid, safe='')}/users")
        if res.status == 404 or res.http_status == 404:
            return False
        if not res.ok:
            raise _refused(res, f"look up group {gid!r}")
        return True

    def group_members(self, gid: str) -> list[str] | None:
        """The uids in group `gid`, or None when the group does not exist."""
        res = ocs.call(self.dav, self.admin, "GET", f"/ocs/v2.php/cloud/groups/{quote(gid, safe='')}/users")
        if res.status == 404 or res.http_status == 404:
            return None
        if not res.ok:
            raise _refused(res, f"look up group {gid!r}")
        users = (res.data or {}).get("users") if isinstance(res.data, dict) else None
        return [str(u) for u in users or []]

    def create_group(self, gid: str) -> None:
        """POST cloud/groups; a group that exists already (OCS 102) is fine."""
        res = ocs.call(self.dav, self.admin, "POST", "/ocs/v2.php/cloud/groups", form={"groupid": gid})
        if not res.ok and res.status != 102:
            raise _refused(res, f"create group {gid!r}")

    def add_to_group(self, uid: str, gid: str) -> None:
        """POST cloud/users/{uid}/groups; adding a member again is not an error."""
        res = ocs.call(self.dav, self.admin, "POST", f"/ocs/v2.php/cloud/users/{quote(uid, safe='')}/groups",
                       form={"groupid": gid})
        if not res.ok:
            raise _refused(res, f"add user {uid!r} to group {gid!r}")
