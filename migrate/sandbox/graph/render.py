"""JSON shapes of users, drives, sites and driveItems as Graph sends them (reference §2, §4)."""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote as _quote

from . import perms
from .generate import mime_of
from .tenant import DOMAIN, Drive, Group, Item, Site, Tenant, User

if TYPE_CHECKING:
    from .app import GraphApp

USER_DEFAULT = ("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id")


@lru_cache(maxsize=1 << 17)
def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@lru_cache(maxsize=1 << 17)
def quote(path: str) -> str:
    """Percent-encode a drive path (cached: listings repeat the same parents)."""
    return _quote(path)


def select(obj: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if not fields:
        return obj
    out = {k: obj[k] for k in fields if k in obj}
    if "id" in obj:
        out.setdefault("id", obj["id"])
    return out


def user_json(u: User) -> dict[str, Any]:
    return {"businessPhones": [], "displayName": u.display_name, "givenName": u.given_name,
            "jobTitle": u.job_title, "mail": u.upn, "mobilePhone": None, "officeLocation": None,
            "preferredLanguage": "en-US", "surname": u.surname, "userPrincipalName": u.upn, "id": u.id,
            "accountEnabled": True, "userType": "Member"}


def user_view(u: User, fields: list[str] | None) -> dict[str, Any]:
    full = user_json(u)
    if fields:
        return {k: full.get(k) for k in fields}
    return {k: full[k] for k in USER_DEFAULT}


def group_json(g: Group) -> dict[str, Any]:
    return {"id": g.id, "displayName": g.display_name, "mail": g.mail, "mailEnabled": True,
            "mailNickname": g.mail.split("@")[0], "securityEnabled": False, "groupTypes": ["Unified"],
            "resourceProvisioningOptions": ["Team"], "visibility": "Private", "description": None}


def site_json(s: Site) -> dict[str, Any]:
    host = s.id.split(",")[0]
    out: dict[str, Any] = {"id": s.id, "name": s.name, "displayName": s.display_name, "description": "",
                           "createdDateTime": iso(s.created), "lastModifiedDateTime": iso(s.created + 86400),
                           "webUrl": s.web_url,
                           "siteCollection": {"hostName": host, "dataLocationCode": "EUR"}}
    if s.is_root:
        out["root"] = {}
        out["siteCollection"]["root"] = {}
    return out


def drive_json(t: Tenant, d: Drive, used: int) -> dict[str, Any]:
    total = 1 << 40
    out: dict[str, Any] = {
        "id": d.id, "name": d.name, "description": "", "driveType": d.drive_type, "webUrl": d.web_url,
        "createdDateTime": iso(d.created), "lastModifiedDateTime": iso(max(d.created, 1767225600.0)),
        "createdBy": {"user": {"displayName": "System Account"}},
        "lastModifiedBy": {"user": t.identity(d.owner_user)} if d.owner_user else
        {"user": {"displayName": "System Account"}},
        "owner": d.owner,
        "quota": {"deleted": 0, "remaining": total - used, "state": "normal", "total": total, "used": used}}
    if d.site_id:
        parts = d.site_id.split(",")
        out["sharepointIds"] = {"siteId": parts[1], "webId": parts[2], "siteUrl": d.web_url.rsplit("/", 1)[0]}
    return out


@lru_cache(maxsize=4096)
def _mime_ext(ext: str) -> str:
    return mime_of("x." + ext)


def _mime(name: str) -> str:
    return _mime_ext(name.rsplit(".", 1)[-1].lower() if "." in name else "")


_URL_KEY = "@microsoft.graph.downloadUrl"


def item_text(app: GraphApp, d: Drive, it: Item, delta: bool = False) -> str:
    """item_json serialised, from a per-drive cache (valid until the drive's next change) plus a fresh URL."""
    cache = app.render_cache(d)
    key = (it.id, delta)
    hit = cache.get(key)
    if hit is None:
        obj = item_json(app, d, it, delta, with_url=False)
        text = json.dumps(obj, ensure_ascii=False)
        hit = cache[key] = (text[:-1], it.kind == "file" and not it.malware and not it.deleted)
    if hit[1]:
        assert it.content is not None
        return f'{hit[0]}, "{_URL_KEY}": "{app.download_url(d, it.id, it.content, it.enrich_extra)}"}}'
    return hit[0] + "}"


def item_json(app: GraphApp, d: Drive, it: Item, delta: bool = False, with_url: bool = True) -> dict[str, Any]:
    """One driveItem; in delta: no parentReference.path, no cTag, and deletes as bare tombstones."""
    t = app.tenant
    parent = d.items.get(it.parent_id) if it.parent_id else None
    if it.deleted:
        return {"id": it.id, "deleted": {"state": "deleted"},
                "parentReference": {"driveType": d.drive_type, "driveId": d.id, "id": it.parent_id},
                "lastModifiedDateTime": iso(it.modified),
                **({"file": {}} if it.kind == "file" else {"folder": {}} if it.kind == "folder" else {})}
    qpath = app.quoted_path(d, it)
    out: dict[str, Any] = {
        "id": it.id, "name": it.name if it.kind != "root" else "root",
        "eTag": f'"{{{it.guid}}},{it.etag_n}"',
        "createdDateTime": iso(it.created), "lastModifiedDateTime": iso(it.modified),
        "webUrl": d.web_url + qpath,
        "createdBy": {"user": t.identity(it.created_by)}, "lastModifiedBy": {"user": t.identity(it.modified_by)},
    }
    if it.kind == "file" and not delta:
        out["cTag"] = f'"c:{{{it.guid}}},{it.ctag_n}"'
    out["size"] = it.content.size if it.content is not None else app.folder_size(d, it)
    ref: dict[str, Any] = {"driveType": d.drive_type, "driveId": d.id}
    if parent is not None:
        ref["id"] = parent.id
        ref["name"] = parent.name if parent.kind != "root" else d.name
        if not delta:
            ref["path"] = f"/drives/{d.id}/root:" + app.quoted_path(d, parent)
    if d.site_id:
        ref["siteId"] = d.site_id
    out["parentReference"] = ref
    out["fileSystemInfo"] = {"createdDateTime": iso(it.created), "lastModifiedDateTime": iso(it.modified)}
    if it.kind == "file":
        assert it.content is not None
        hashes = {"quickXorHash": it.content.quick_xor} if it.content.size else {}
        out["file"] = {"mimeType": _mime(it.name), "hashes": hashes}
        if it.malware:
            out["malware"] = {"description": "Trojan:Win32/Sandbox.A"}
        elif with_url:
            out["@microsoft.graph.downloadUrl"] = app.download_url(d, it.id, it.content, it.enrich_extra)
    elif it.kind == "package":
        out["package"] = {"type": "oneNote"}
    else:
        out["folder"] = {"childCount": len(it.children)}
        if it.kind == "root":
            out["root"] = {}
    shared = perms.shared_facet(t, d, it)
    if shared:
        out["shared"] = shared
    return out


def skus_json(tenant: Tenant, licences: int) -> list[dict[str, Any]]:
    """One Microsoft 365 E3 subscription with `licences` seats, all assigned (what a licence count reads), and a
    phone add-on without SharePoint, whose seats a count of SharePoint licences must leave out."""
    plan = {"provisioningStatus": "Success", "appliesTo": "User"}
    e3, phone = "05e9a617-0261-4cee-bb44-138d3ef5d965", "e43b5b99-8dfb-405f-9987-dc307f34bcbd"
    return [{"id": f"{tenant.tenant_id}_{e3}", "skuId": e3, "skuPartNumber": "SPE_E3", "appliesTo": "User",
             "capabilityStatus": "Enabled", "consumedUnits": licences,
             "prepaidUnits": {"enabled": licences, "suspended": 0, "warning": 0, "lockedOut": 0},
             "servicePlans": [{**plan, "servicePlanId": "5dbe027f-2339-4123-9542-606e4d348a72",
                               "servicePlanName": "SHAREPOINTENTERPRISE"},
                              {**plan, "servicePlanId": "efb87545-963c-4e0d-99df-69c6916d9eb0",
                               "servicePlanName": "EXCHANGE_S_ENTERPRISE"}]},
            {"id": f"{tenant.tenant_id}_{phone}", "skuId": phone, "skuPartNumber": "MCOEV", "appliesTo": "User",
             "capabilityStatus": "Enabled", "consumedUnits": 10,
             "prepaidUnits": {"enabled": 25, "suspended": 0, "warning": 0, "lockedOut": 0},
             "servicePlans": [{**plan, "servicePlanId": "4828c8ec-dc2e-4779-b502-87ac9ce28ab7",
                               "servicePlanName": "MCOEV"}]}]


def organization_json(tenant: Tenant) -> dict[str, Any]:
    return {"id": tenant.tenant_id, "displayName": "Sandbox tenant",
            "verifiedDomains": [{"name": DOMAIN, "isDefault": True, "isInitial": False}]}
