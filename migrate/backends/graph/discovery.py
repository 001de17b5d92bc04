"""Discovery through msgraph-sdk: users (with or without a OneDrive), Teams/group drives, sites and libraries.

Order matters for de-duplication: a drive is reported once, as the first kind that finds it — a user's OneDrive,
then a group's (Team's) drive, then a site library. Users' drives are looked up in parallel (`workers`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from migrate.backends.graph.sdk import SdkRunner
from migrate.errors import AuthError, ItemNotFound, SourceError
from migrate.models import Drive, DriveKind
from migrate.protocols import DiscoveredUser

log = logging.getLogger(__name__)

USER_SELECT = ["id", "userPrincipalName", "displayName", "mail", "userType", "accountEnabled"]
DRIVE_SELECT = ["id", "name", "driveType", "webUrl", "owner", "quota", "sharepointIds"]
GROUP_SELECT = ["id", "displayName", "mail", "groupTypes", "resourceProvisioningOptions"]
BATCH = 64


def _config(builder_cls: type, **params: Any) -> Any:
    from kiota_abstractions.base_request_configuration import RequestConfiguration

    qp_cls = next(v for k, v in vars(builder_cls).items() if k.endswith("GetQueryParameters"))
    return RequestConfiguration(query_parameters=qp_cls(**params))


def _identity(ident: Any) -> tuple[str, str, str]:
    """(id, email, name) of an SDK Identity (ODB puts `email` in additional_data)."""
    if ident is None:
        return "", "", ""
    extra = getattr(ident, "additional_data", None) or {}
    return ident.id or "", str(extra.get("email") or ""), ident.display_name or ""


def drive_record(d: Any, kind: DriveKind, *, owner_upn: str = "", owner_id: str = "", owner_name: str = "",
                 site_id: str = "", site_url: str = "", group_id: str = "") -> Drive:
    """A models.Drive from an SDK Drive model plus what the caller knows about its container."""
    owner = getattr(d, "owner", None)
    oid, email, name = _identity(getattr(owner, "user", None) if owner else None)
    gid, gmail, gname = _identity(getattr(owner, "group", None) if owner else None)
    quota = getattr(d, "quota", None)
    ids = getattr(d, "sharepoint_ids", None)
    return Drive(
        id=d.id, kind=kind, name=d.name or "", web_url=d.web_url or "",
        owner_id=owner_id or oid or gid, owner_upn=owner_upn or email or gmail, owner_name=owner_name or name or gname,
        site_id=site_id, site_url=site_url or (getattr(ids, "site_url", None) or "" if ids else ""),
        group_id=group_id, quota_used=getattr(quota, "used", None) if quota else None,
        quota_total=getattr(quota, "total", None) if quota else None,
    )


class Discovery:
    """Walks the tenant with the SDK; every request goes through `sdk.call` (pacer, error mapping)."""

    def __init__(self, sdk: SdkRunner, client: Any, *, workers: int = 8,
                 on_progress: Callable[[str, int], None] | None = None) -> None:
        self.sdk = sdk
        self.client = client
        self.workers = max(1, workers)
        self.on_progress = on_progress
        self.seen: set[str] = set()
        self.notes: list[str] = []

    def _tick(self, what: str) -> None:
        if self.on_progress:
            self.on_progress(what, 1)

    def _pages(self, builder: Any, first: Callable[[], Any], what: str) -> Iterator[Any]:
        page = self.sdk.call(first, what)
        while page is not None:
            yield from page.value or ()
            link = page.odata_next_link
            if not link:
                return
            page = self.sdk.call(lambda link=link: builder.with_url(link).get(), what)

    # users and their OneDrives --------------------------------------------------------------------
    def users(self) -> Iterator[Any]:
        from msgraph.generated.users.users_request_builder import UsersRequestBuilder

        b = self.client.users
        cfg = _config(UsersRequestBuilder, select=USER_SELECT, top=999)
        yield from self._pages(b, lambda: b.get(request_configuration=cfg), "list users")

    def user_drive(self, user: Any) -> Drive | None:
        """The user's OneDrive, or None for the 'no mysite' answers (404, or 400 'Unable to retrieve ... mysite')."""
        from msgraph.generated.users.item.drive.drive_request_builder import DriveRequestBuilder

        rb = self.client.users.by_user_id(user.id).drive
        cfg = _config(DriveRequestBuilder, select=DRIVE_SELECT)
        try:
            d = self.sdk.call(lambda: rb.get(request_configuration=cfg), f"OneDrive of {user.user_principal_name}")
        except ItemNotFound:
            return None
        except SourceError as exc:
            if "mysite" in str(exc).lower() or " 400" in str(exc):
                return None
            raise
        if d is None or not d.id:
            return None
        return drive_record(d, DriveKind.ONEDRIVE, owner_upn=user.user_principal_name or "",
                            owner_id=user.id, owner_name=user.display_name or "")

    def _user_batch(self, pool: ThreadPoolExecutor, batch: list[Any]) -> Iterator[Drive | DiscoveredUser]:
        for user, drive in zip(batch, pool.map(self.user_drive, batch), strict=True):
            self._tick("user")
            yield DiscoveredUser(id=user.id, upn=user.user_principal_name or "", display_name=user.display_name or "",
                                 mail=user.mail or "", has_drive=drive is not None)
            if drive is not None and drive.id not in self.seen:
                self.seen.add(drive.id)
                yield drive

    # groups (Teams) ----------------------------------------------------------------------------------
    def group_drives(self) -> Iterator[Drive]:
        from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
        from msgraph.generated.groups.item.drive.drive_request_builder import DriveRequestBuilder

        b = self.client.groups
        cfg = _config(GroupsRequestBuilder, select=GROUP_SELECT, top=999)
        dcfg = _config(DriveRequestBuilder, select=DRIVE_SELECT)
        for g in self._pages(b, lambda: b.get(request_configuration=cfg), "list groups"):
            if "Unified" not in (g.group_types or []):
                continue  # security and distribution groups have no files
            rb = self.client.groups.by_group_id(g.id).drive
            try:
                d = self.sdk.call(lambda rb=rb: rb.get(request_configuration=dcfg), f"drive of group {g.display_name}")
            except ItemNotFound:
                self.notes.append(f"group {g.display_name} has no drive")
                continue
            if d is None or not d.id or d.id in self.seen:
                continue
            self.seen.add(d.id)
            self._tick("group")
            yield drive_record(d, DriveKind.TEAM, owner_upn=g.mail or "", owner_id=g.id,
                               owner_name=g.display_name or "", group_id=g.id)

    # sites and their libraries ----------------------------------------------------------------------
    def sites(self) -> Iterator[Any]:
        """getAllSites (application permission); falls back to search=* where it is refused or unknown."""
        from msgraph.generated.sites.sites_request_builder import SitesRequestBuilder

        b = self.client.sites.get_all_sites
        try:
            yield from self._pages(b, lambda: b.get(), "list all sites")
            return
        except (SourceError, AuthError) as exc:
            log.info("getAllSites refused (%s); listing sites with search=*", str(exc).splitlines()[0])
            self.notes.append("getAllSites was refused; sites were listed with search=*")
        s = self.client.sites
        cfg = _config(SitesRequestBuilder, search="*")
        yield from self._pages(s, lambda: s.get(request_configuration=cfg), "search sites")

    def site_drives(self, site: Any) -> Iterator[Drive]:
        rb = self.client.sites.by_site_id(site.id).drives
        try:
            drives = list(self._pages(rb, lambda: rb.get(), f"libraries of site {site.web_url}"))
        except ItemNotFound:
            self.notes.append(f"site {site.web_url} vanished during discovery")
            return
        for d in drives:
            if not d.id or d.id in self.seen:
                continue
            self.seen.add(d.id)
            self._tick("library")
            yield drive_record(d, DriveKind.LIBRARY, site_id=site.id, site_url=site.web_url or "",
                               owner_name=site.display_name or site.name or "")

    def run(self) -> Iterator[Drive | DiscoveredUser]:
        with ThreadPoolExecutor(self.workers, thread_name_prefix="discover") as pool:
            batch: list[Any] = []
            for user in self.users():
                batch.append(user)
                if len(batch) >= BATCH:
                    yield from self._user_batch(pool, batch)
                    batch = []
            if batch:
                yield from self._user_batch(pool, batch)
        yield from self.group_drives()
        for site in self.sites():
            if "-my.sharepoint." in (site.web_url or "").lower():
                continue  # personal sites: their drives are the users' OneDrives
            yield from self.site_drives(site)
