"""Permission payloads in the shapes real ODB/SharePoint returns (reference §6), and the `shared` facet."""

from __future__ import annotations

import random
from typing import Any

from .tenant import DOMAIN, SP_HOST, Drive, Group, Item, Tenant, User, b64id, guid

KINDS = ("user", "group", "organization", "anonymous", "users_link", "guest")


def _site_user(u: dict[str, Any], n: int) -> dict[str, Any]:
    return {"displayName": u["displayName"], "email": u.get("email"), "id": str(n),
            "loginName": f"i:0#.f|membership|{u.get('email', '')}"}


def _link_url(drive: Drive, rng: random.Random, letter: str = "w") -> str:
    token = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") for _ in range(46))
    if "/sites/" in drive.web_url:
        where = "s/" + drive.web_url.split("/sites/", 1)[1].split("/", 1)[0]
    elif "/personal/" in drive.web_url:
        where = "g/personal/" + drive.web_url.split("/personal/", 1)[1].split("/", 1)[0]
    else:
        where = "s/root"
    return f"https://{SP_HOST}/:{letter}:/{where}/{token}"


def make(tenant: Tenant, drive: Drive, kind: str, *, user: User | None = None, group: Group | None = None,
         roles: list[str] | None = None, rng: random.Random | None = None,
         expiration: str | None = None, password: bool = False) -> dict[str, Any]:
    """Build one unique permission of `kind` (see KINDS)."""
    rng = rng or drive.rng
    if kind == "user":
        assert user is not None
        ident = user.identity()
        return {"id": b64id(f"i:0#.f|membership|{user.upn}"), "roles": roles or ["read"],
                "grantedToV2": {"user": ident, "siteUser": _site_user(ident, rng.randrange(7, 99))},
                "grantedTo": {"user": ident}}
    if kind == "group":
        assert group is not None
        ident = group.identity()
        return {"id": b64id(f"c:0o.c|federateddirectoryclaimprovider|{group.id}"), "roles": roles or ["write"],
                "grantedToV2": {"group": ident,
                                "siteUser": {"displayName": group.display_name, "email": group.mail,
                                             "id": str(rng.randrange(7, 99)),
                                             "loginName": f"c:0o.c|federateddirectoryclaimprovider|{group.id}"}},
                "grantedTo": {"user": ident}}
    if kind == "organization":
        return {"id": guid(rng), "roles": roles or ["read"], "hasPassword": False,
                "grantedToIdentitiesV2": [], "grantedToIdentities": [],
                "link": {"scope": "organization", "type": "view", "webUrl": _link_url(drive, rng, "b"),
                         "preventsDownload": False}}
    if kind == "anonymous":
        return {"id": guid(rng), "roles": roles or ["write"], "hasPassword": password,
                "expirationDateTime": expiration or "2027-03-31T00:00:00Z",
                "grantedToIdentitiesV2": [], "grantedToIdentities": [],
                "link": {"scope": "anonymous", "type": "edit" if "write" in (roles or ["write"]) else "view",
                         "webUrl": _link_url(drive, rng), "preventsDownload": False}}
    if kind == "users_link":
        assert user is not None
        ident = user.identity()
        return {"id": guid(rng), "roles": roles or ["read"], "hasPassword": False,
                "grantedToIdentitiesV2": [{"user": ident, "siteUser": _site_user(ident, rng.randrange(7, 99))}],
                "grantedToIdentities": [{"user": ident}],
                "link": {"scope": "users", "type": "view", "webUrl": _link_url(drive, rng, "x"),
                         "preventsDownload": False}}
    if kind == "guest":
        g = tenant.guests[rng.randrange(len(tenant.guests))]
        login = f"i:0#.f|membership|{g['email'].replace('@', '_')}#ext#@{DOMAIN}"
        return {"id": b64id(login), "roles": roles or ["read"],
                "grantedToV2": {"user": dict(g), "siteUser": {"displayName": g["displayName"], "email": g["email"],
                                                              "id": str(rng.randrange(100, 199)), "loginName": login}},
                "grantedTo": {"user": dict(g)},
                "invitation": {"email": g["email"], "signInRequired": True}}
    raise ValueError(f"unknown permission kind {kind!r}; expected one of {KINDS}")


def inherited_base(tenant: Tenant, drive: Drive) -> list[dict[str, Any]]:
    """The entries every item inherits from its drive: the owner, or the site's owners/members/visitors groups."""
    if drive.owner_user:
        ident = tenant.identity(drive.owner_user)
        return [{"id": b64id(f"i:0#.f|membership|{ident.get('email')}"), "roles": ["owner"],
                 "grantedToV2": {"user": ident, "siteUser": _site_user(ident, 3)},
                 "grantedTo": {"user": ident}}]
    site = tenant.site(drive.site_id or "")
    name = site.display_name if site else drive.name
    out = []
    for n, (suffix, role) in enumerate((("Owners", "owner"), ("Members", "write"), ("Visitors", "read")), 3):
        title = f"{name} {suffix}"
        out.append({"id": b64id(title), "roles": [role],
                    "grantedToV2": {"siteGroup": {"displayName": title, "id": str(n), "loginName": title}},
                    "grantedTo": {"user": {"displayName": title}}})
    return out


def list_for(tenant: Tenant, drive: Drive, item: Item) -> list[dict[str, Any]]:
    """Inherited entries (with `inheritedFrom: {}`, as business drives really send) then the item's own."""
    out = [{**p, "inheritedFrom": {}} for p in inherited_base(tenant, drive)]
    for anc in drive.ancestors(item):
        out.extend({**p, "inheritedFrom": {}} for p in anc.perms)
    out.extend(dict(p) for p in item.perms)
    return out


def shared_facet(tenant: Tenant, drive: Drive, item: Item) -> dict[str, Any] | None:
    """Present only on items with unique permissions (the cheap pre-filter before the 5-RU call)."""
    if not item.perms:
        return None
    scopes = {p.get("link", {}).get("scope") for p in item.perms}
    scope = "anonymous" if "anonymous" in scopes else "organization" if "organization" in scopes else "users"
    facet: dict[str, Any] = {"scope": scope}
    if drive.owner_user:
        facet["owner"] = {"user": tenant.identity(drive.owner_user)}
    return facet
