"""The share plan: what each stored source grant becomes at the target, or why it is dropped.

Never broader than the source: write is never granted where the source had read, a public link is never planned
where the source had none, the re-share bit is never set, and an expiry is never later than the source's (a
Nextcloud expiry date ends the share at 00:00 of that day, so the date part of the source's instant is used).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Nextcloud permission bits (reference §6.2).
READ, UPDATE, CREATE, DELETE, SHARE = 1, 2, 4, 8, 16
SHARE_USER, SHARE_GROUP, SHARE_LINK = 0, 1, 3
NO_EXPIRY = "0001-01-01"

# Actions stored in permissions.plan_action
CREATE_SHARE = "create"  # a user, group or public-link share will be created
NONE = "none"  # nothing to do at the target (ownership, inherited): not a loss
REPORT = "report"  # not created; listed for a person to decide (policy report)
DROP = "drop"  # not created, by policy or because it cannot be mapped


@dataclass(frozen=True, slots=True)
class SharePolicy:
    """[policy] values that decide what happens to links and guests."""

    anonymous_links: str = "report"  # report | public-link-with-password | drop
    organization_links: str = "report"  # group:<name> | report | drop
    external_guests: str = "report"  # report | drop


@dataclass(frozen=True, slots=True)
class ShareContext:
    """Lookups the share plan needs: users.csv and groups.csv, and today's date for expired grants."""

    user_for: Callable[[str], str | None]  # UPN/e-mail → Nextcloud uid (None: unmapped or not migrated)
    group_for: Callable[[str, str], str | None]  # (Entra id, display name) → Nextcloud group
    policy: SharePolicy
    today: dt.date


def role_bits(roles: list[str], is_folder: bool) -> tuple[int | None, str]:
    """Nextcloud bits for Graph roles, or (None, why) for roles with no safe equivalent. Never adds share (16)."""
    known = {r for r in roles if r in ("read", "write")}
    unknown = [r for r in roles if r not in ("read", "write", "owner")]
    if "write" in known:
        return (READ | UPDATE | CREATE | DELETE if is_folder else READ | UPDATE), ""
    if "read" in known:
        return READ, ""
    if unknown:
        return None, f"role(s) {', '.join(unknown)} have no safe Nextcloud equivalent"
    return None, "no read or write role"


def _link_bits(link_type: str, roles: list[str], is_folder: bool) -> tuple[int | None, str]:
    """Bits for a sharing link: view-like links are read-only whatever else is listed; edit needs the write role."""
    t = (link_type or "").lower()
    if t in ("view", "embed", "blocksdownload"):
        return READ, ""
    if t == "edit":
        return role_bits(["write"], is_folder) if "write" in roles else (READ, "")
    if t == "createonly" and is_folder and "write" in roles:
        return CREATE, ""
    if t == "":
        return role_bits(roles, is_folder)
    return None, f"link type {link_type!r} has no Nextcloud equivalent"


def _expiry(expires: str | None, today: dt.date) -> tuple[str | None, bool]:
    """(YYYY-MM-DD or None for no expiry, already expired?)."""
    if not expires or expires.startswith(NO_EXPIRY):
        return None, False
    try:
        when = dt.datetime.fromisoformat(expires.replace("Z", "+00:00"))
    except ValueError:
        return None, True  # an unreadable expiry: treat as expired rather than grant forever
    day = when.astimezone(dt.UTC).date() if when.tzinfo else when.date()
    return day.isoformat(), day <= today


def plan_grant(g: dict[str, Any], ctx: ShareContext) -> tuple[str, dict[str, Any]]:
    """(action, detail) for one stored permission row joined with its item's target (see store.plan)."""
    roles = [r for r in (g.get("roles") or "").split(",") if r]
    is_folder = bool(g.get("item_is_folder"))
    owner, path = g.get("item_target_user"), g.get("item_target_path")
    who = g.get("grantee_email") or g.get("grantee_name") or g.get("grantee_id") or ""
    base = {"path": path, "owner": owner, "source_roles": roles, "grantee": who}

    def out(action: str, reason: str = "", **kw: Any) -> tuple[str, dict[str, Any]]:
        return action, {**base, **kw, "reason": reason}

    if g.get("item_deleted"):
        return out(DROP, "the item was deleted at the source")
    if "owner" in roles or g.get("kind") == "owner":
        return out(NONE, "owner: becomes ownership of the target files, not a share")
    if g.get("inherited"):
        return out(NONE, "inherited from a parent: comes with the parent folder's share, not re-shared")
    if not path:
        return out(DROP, "the item is not migrated (no target path)")
    expire, expired = _expiry(g.get("expires"), ctx.today)
    if expired:
        return out(DROP, f"expired at the source ({g.get('expires')})")
    kind = g.get("kind") or ""
    scope = (g.get("link_scope") or "").lower()

    if kind == "external":
        if ctx.policy.external_guests == "drop":
            return out(DROP, f"external guest {who} (policy external_guests = drop)")
        return out(REPORT, f"external guest {who} (policy external_guests = report): decide by hand")

    if kind == "link" and scope not in ("users", ""):
        bits, why = _link_bits(g.get("link_type") or "", roles, is_folder)
        if scope == "anonymous":
            pol = ctx.policy.anonymous_links
            if pol != "public-link-with-password":
                act = DROP if pol == "drop" else REPORT
                return out(act, f"anonymous link (policy anonymous_links = {pol})")
            if bits is None:
                return out(DROP, why)
            return out(CREATE_SHARE, "anonymous link → public link with a password (policy)",
                       share_type=SHARE_LINK, share_with="", permissions=bits, expire_date=expire,
                       password=True, hide_download=(g.get("link_type") or "").lower() == "blocksdownload")
        if scope == "organization":
            pol = ctx.policy.organization_links
            if pol.startswith("group:"):
                if bits is None:
                    return out(DROP, why)
                return out(CREATE_SHARE, f"organisation link → share with group {pol[6:]} (policy)",
                           share_type=SHARE_GROUP, share_with=pol[6:], permissions=bits, expire_date=expire,
                           password=False)
            act = DROP if pol == "drop" else REPORT
            return out(act, f"organisation-wide link (policy organization_links = {pol})")
        if scope == "existingaccess":
            return out(NONE, "link for people who already have access: grants nothing new")
        return out(REPORT, f"link with scope {scope!r}: no Nextcloud equivalent, decide by hand")

    if kind == "group":
        target = ctx.group_for(g.get("grantee_id") or "", g.get("grantee_name") or "")
        if not target:
            return out(DROP, f"group {g.get('grantee_name') or g.get('grantee_id')} has no target group in groups.csv")
        bits, why = role_bits(roles, is_folder)
        if bits is None:
            return out(DROP, why)
        return out(CREATE_SHARE, "group share", share_type=SHARE_GROUP, share_with=target, permissions=bits,
                   expire_date=expire, password=False)

    # a user grant, or a "specific people" link naming one user
    target = ctx.user_for(g.get("grantee_email") or "") if g.get("grantee_email") else None
    if not target:
        return out(DROP, f"user {who or '?'} is not mapped to a Nextcloud user in users.csv (or not migrated)")
    if owner and target.casefold() == owner.casefold():
        return out(NONE, "the grantee owns the target files")
    bits, why = role_bits(roles, is_folder)
    if bits is None:
        return out(DROP, why)
    return out(CREATE_SHARE, "user share" if kind != "link" else "specific-people link → user share",
               share_type=SHARE_USER, share_with=target, permissions=bits, expire_date=expire, password=False)
