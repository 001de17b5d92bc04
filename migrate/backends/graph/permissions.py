"""Graph permission entries → `models.Grant` (reference §6): owners, user/group grants, links, guests, inheritance."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from migrate.models import Grant

NO_EXPIRY = "0001-01-01"


def _identity(ids: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(kind, identity) of a sharePointIdentitySet: Entra user/group first, then SharePoint's site principals."""
    for key, kind in (("user", "user"), ("group", "group"), ("siteUser", "user"), ("siteGroup", "group"),
                      ("sharePointGroup", "group"), ("application", "application"), ("device", "device")):
        ident = ids.get(key)
        if isinstance(ident, dict) and ident:
            if kind == "user" and key == "user" and isinstance(ids.get("siteUser"), dict):
                ident = {**ids["siteUser"], **ident}  # keep the loginName of the site user (guests show there)
            return kind, ident
    return "", {}


def is_external(ident: dict[str, Any], internal_domains: frozenset[str]) -> bool:
    """A guest: '#EXT#' in the login or address, or an address outside the tenant's domains (when known)."""
    texts = [str(ident.get(k) or "") for k in ("loginName", "email", "userPrincipalName")]
    if any("#ext#" in t.lower() for t in texts):
        return True
    email = str(ident.get("email") or ident.get("userPrincipalName") or "")
    if internal_domains and "@" in email:
        return email.rsplit("@", 1)[1].lower() not in internal_domains
    return False


def _grant(drive_id: str, item_id: str, perm_id: str, kind: str, roles: tuple[str, ...], ident: dict[str, Any],
           p: dict[str, Any], link: dict[str, Any]) -> Grant:
    expires = p.get("expirationDateTime")
    return Grant(
        drive_id=drive_id, item_id=item_id, perm_id=perm_id, kind=kind, roles=roles,
        grantee_id=str(ident.get("id") or ""),
        grantee_email=str(ident.get("email") or ident.get("userPrincipalName") or ""),
        grantee_name=str(ident.get("displayName") or ident.get("loginName") or ""),
        link_scope=str(link.get("scope") or ""), link_type=str(link.get("type") or ""),
        expires=None if not expires or str(expires).startswith(NO_EXPIRY) else str(expires),
        has_password=bool(p.get("hasPassword")),
        inherited="inheritedFrom" in p,  # business drives send `inheritedFrom: {}` on inherited entries
    )


def to_grants(drive_id: str, item_id: str, values: Iterable[dict[str, Any]],
              internal_domains: frozenset[str] = frozenset()) -> list[Grant]:
    """Normalise one item's `/permissions` answer.

    - a link with scope anonymous/organization → one `link` grant; a `users` link (specific people) → one grant
      per person (kind user/group/external, perm id `<id>/<n>`), carrying the link's scope and type;
    - a direct grant (grantedToV2, falling back to the deprecated grantedTo) → `owner` for the owner role, else
      `user`/`group`, or `external` for guests.
    """
    out: list[Grant] = []
    for p in values:
        pid = str(p.get("id") or "")
        roles = tuple(str(r) for r in p.get("roles") or ())
        link = p.get("link") or {}
        if link:
            people = p.get("grantedToIdentitiesV2") or p.get("grantedToIdentities") or []
            if link.get("scope") in ("users", "existingAccess") and people:
                for n, ids in enumerate(people):
                    kind, ident = _identity(ids or {})
                    if kind == "user" and is_external(ident, internal_domains):
                        kind = "external"
                    out.append(_grant(drive_id, item_id, f"{pid}/{n}", kind or "user", roles, ident, p, link))
            else:
                out.append(_grant(drive_id, item_id, pid, "link", roles, {}, p, link))
            continue
        kind, ident = _identity(p.get("grantedToV2") or p.get("grantedTo") or {})
        if not kind and p.get("invitation"):
            kind, ident = "user", {"email": (p["invitation"] or {}).get("email")}
        if kind == "user" and is_external(ident, internal_domains):
            kind = "external"
        elif "owner" in roles and kind in ("user", "group"):
            kind = "owner"
        out.append(_grant(drive_id, item_id, pid, kind or "user", roles, ident, p, {}))
    return out
