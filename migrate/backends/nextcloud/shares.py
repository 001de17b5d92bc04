"""OCS Share API as the file's owner (reference §6): create, list, delete; and as a recipient: pending shares,
accepting them, what they see (§6.5a). Kept small for the `share` command.

createShare is rate-limited to 20 calls per user per 10 minutes on NC 32 (429, no Retry-After; §8.2), a
duplicate user/group share returns the existing share, and the server may add bit 16 to link permissions:
callers compare the returned `permissions` with the plan ("never broader").
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from migrate.backends.nextcloud import ocs
from migrate.backends.nextcloud.dav import NextcloudDav
from migrate.errors import TargetItemError, ThrottledError

API = "/ocs/v2.php/apps/files_sharing/api/v1/shares"
USER, GROUP, LINK, EMAIL = 0, 1, 3, 4
# createShare answers returned to the caller rather than retried by the pacer: the OCS refusals, and 429, which
# the `share` engine paces per owner (a blind retry would only count against the same window). 401 stays fatal.
_ANSWERED = tuple(s for s in range(400, 500) if s != 401)


class ShareRateLimited(ThrottledError):
    """createShare answered 429 (empty body, no Retry-After, §8.2): the owner's window is full, wait and retry."""


class Shares:
    """Share calls authenticated as `owner` (shares are created in the caller's own tree)."""

    def __init__(self, dav: NextcloudDav) -> None:
        self.dav = dav

    def create(self, owner: str, path: str, share_type: int, share_with: str | None = None, *,
               permissions: int | None = None, password: str | None = None, expire_date: str | None = None,
               note: str | None = None, label: str | None = None, hide_download: bool = False) -> dict[str, Any]:
        """Create a share of `/path` in owner's tree; mail is never sent.

        Raises TargetItemError when refused (with the server's message), ShareRateLimited on 429 (not retried
        here), AuthError on 401.
        """
        form = {"path": "/" + path.strip("/"), "shareType": share_type, "shareWith": share_with,
                "permissions": permissions, "password": password, "expireDate": expire_date, "note": note,
                "label": label, "hideDownload": "true" if hide_download else None, "sendMail": "false"}
        res = ocs.call(self.dav, owner, "POST", API, form=form, ok=_ANSWERED)
        what = f"share {owner}:{path!r} with {share_with or 'a link'}"
        if res.http_status == 429:
            raise ShareRateLimited(f"{what}: HTTP 429 (createShare rate limit)")
        if not res.ok:
            raise TargetItemError(f"{what}: HTTP {res.http_status} {res.message}".rstrip())
        return dict(res.data or {})

    def list(self, owner: str, path: str | None = None) -> list[dict[str, Any]]:
        params = {"path": "/" + path.strip("/"), "reshares": "true"} if path else {}
        res = ocs.call(self.dav, owner, "GET", API, params=params)
        if res.http_status == 404 or res.status == 404:
            return []
        if not res.ok:
            raise TargetItemError(f"list shares of {owner}:{path!r}: HTTP {res.http_status} {res.message}")
        return [dict(s) for s in res.data or []]

    def pending(self, recipient: str) -> list[dict[str, Any]]:
        """The user and group shares `recipient` has not accepted (`GET shares/pending`, as the recipient; §6.5a).
        Nextcloud lists declined ones here too, and formats them all with `permissions` 0."""
        res = ocs.call(self.dav, recipient, "GET", f"{API}/pending")
        if not res.ok:
            raise TargetItemError(f"list the pending shares of {recipient}: HTTP {res.http_status} {res.message}")
        return [dict(s) for s in res.data or []]

    def accept(self, recipient: str, share_id: str | int) -> None:
        """Accept a share as its recipient (`POST shares/pending/{id}`): it shows in their files from now on.

        Raises TargetItemError when refused (with the server's message), AuthError on 401."""
        res = ocs.call(self.dav, recipient, "POST", f"{API}/pending/{quote(str(share_id), safe='')}")
        if not res.ok:
            raise TargetItemError(f"accept share {share_id} as {recipient}: HTTP {res.http_status} "
                                  f"{res.message}".rstrip())

    def shared_with_me(self, recipient: str) -> list[dict[str, Any]]:
        """The shares `recipient` sees (accepted), read as the recipient (`shared_with_me=true`)."""
        res = ocs.call(self.dav, recipient, "GET", API, params={"shared_with_me": "true"})
        if not res.ok:
            raise TargetItemError(f"list the shares {recipient} sees: HTTP {res.http_status} {res.message}")
        return [dict(s) for s in res.data or []]

    def update(self, owner: str, share_id: str | int, *, permissions: int | None = None,
               expire_date: str | None = None) -> dict[str, Any]:
        """Change a share's permissions (and expiry: "" removes it) with one PUT; not rate-limited (§6.4).

        Raises TargetItemError when refused, AuthError on 401."""
        form = {"permissions": permissions, "expireDate": expire_date}
        res = ocs.call(self.dav, owner, "PUT", f"{API}/{quote(str(share_id), safe='')}",
                       form={k: v for k, v in form.items() if v is not None})
        if not res.ok:
            raise TargetItemError(f"update share {share_id} of {owner}: HTTP {res.http_status} {res.message}".rstrip())
        return dict(res.data or {})

    def delete(self, owner: str, share_id: str | int) -> None:
        """Delete a share; an already missing one is fine."""
        res = ocs.call(self.dav, owner, "DELETE", f"{API}/{quote(str(share_id), safe='')}")
        if not res.ok and res.status != 404 and res.http_status != 404:
            raise TargetItemError(f"delete share {share_id} of {owner}: HTTP {res.http_status} {res.message}")

