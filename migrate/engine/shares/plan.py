"""The share plan: what each stored source grant becomes at the target, or why it is dropped.

Never broader than the source: write is never granted where the source had read, a public link is never planned
where the source had none, the re-share bit is never set, and an expiry is never later than the source's (a
Nextcloud expiry date ends the share at 00:00 of that day, so the date part of the source's instant is used).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrate.models import PlannedShare

if TYPE_CHECKING:
    from migrate.store import StateStore

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
        return out(DROP, "the item was deleted at the source", category="item deleted")
    if "owner" in roles or g.get("kind") == "owner":
        return out(NONE, "owner: becomes ownership of the target files, not a share")
    if g.get("inherited"):
        return out(NONE, "inherited from a parent: comes with the parent folder's share, not re-shared")
    if not path:
        return out(DROP, "the item is not migrated (no target path)", category="item not migrated")
    expire, expired = _expiry(g.get("expires"), ctx.today)
    if expired:
        return out(DROP, f"expired at the source ({g.get('expires')})", category="expired")
    kind = g.get("kind") or ""
    scope = (g.get("link_scope") or "").lower()

    if kind == "external":
        if ctx.policy.external_guests == "drop":
            return out(DROP, f"external guest {who} (policy external_guests = drop)", category="guest")
        return out(REPORT, f"external guest {who} (policy external_guests = report): decide by hand",
                   category="guest")

    if kind == "link" and scope not in ("users", ""):
        bits, why = _link_bits(g.get("link_type") or "", roles, is_folder)
        if scope == "anonymous":
            pol = ctx.policy.anonymous_links
            if pol != "public-link-with-password":
                act = DROP if pol == "drop" else REPORT
                return out(act, f"anonymous link (policy anonymous_links = {pol})", category="anonymous link")
            if bits is None:
                return out(DROP, why, category="unsupported kind")
            return out(CREATE_SHARE, "anonymous link → public link with a password (policy)",
                       share_type=SHARE_LINK, share_with="", permissions=bits, expire_date=expire,
                       password=True, hide_download=(g.get("link_type") or "").lower() == "blocksdownload")
        if scope == "organization":
            pol = ctx.policy.organization_links
            if pol.startswith("group:"):
                if bits is None:
                    return out(DROP, why, category="unsupported kind")
                return out(CREATE_SHARE, f"organisation link → share with group {pol[6:]} (policy)",
                           share_type=SHARE_GROUP, share_with=pol[6:], permissions=bits, expire_date=expire,
                           password=False)
            act = DROP if pol == "drop" else REPORT
            return out(act, f"organisation-wide link (policy organization_links = {pol})",
                       category="organisation link")
        if scope == "existingaccess":
            return out(NONE, "link for people who already have access: grants nothing new")
        return out(REPORT, f"link with scope {scope!r}: no Nextcloud equivalent, decide by hand",
                   category="unsupported kind")

    if kind == "group":
        target = ctx.group_for(g.get("grantee_id") or "", g.get("grantee_name") or "")
        if not target:
            return out(DROP, f"group {g.get('grantee_name') or g.get('grantee_id')} has no target group in groups.csv",
                       category="unmapped group")
        bits, why = role_bits(roles, is_folder)
        if bits is None:
            return out(DROP, why, category="unsupported kind")
        return out(CREATE_SHARE, "group share", share_type=SHARE_GROUP, share_with=target, permissions=bits,
                   expire_date=expire, password=False)

    # a user grant, or a "specific people" link naming one user
    target = ctx.user_for(g.get("grantee_email") or "") if g.get("grantee_email") else None
    if not target:
        return out(DROP, f"user {who or '?'} is not mapped to a Nextcloud user in users.csv (or not migrated)",
                   category="unmapped user")
    if owner and target.casefold() == owner.casefold():
        return out(NONE, "the grantee owns the target files")
    bits, why = role_bits(roles, is_folder)
    if bits is None:
        return out(DROP, why, category="unsupported kind")
    return out(CREATE_SHARE, "user share" if kind != "link" else "specific-people link → user share",
               share_type=SHARE_USER, share_with=target, permissions=bits, expire_date=expire, password=False)


# ------------------------------------------------------------------------------------------- merging
def _bits_count(bits: int) -> int:
    return bin(bits).count("1")


def merge_grants(drive_id: str, item_id: str, planned: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[PlannedShare]:
    """One planned share per recipient of one item, from its grants planned as `create` (grant row, detail).

    Every grant reaching the same recipient (a direct grant, a link naming them, a group or an organisation link
    mapped to the same target group) counts: the share gets the union of their permissions when that union is what
    one of them grants (Graph's roles nest: read within write), else the broadest single grant's, so it is never
    broader than the broadest grant. Its expiry is the latest of the grants that give those permissions (none if
    one has none). A public link carries a password if any grant asks for one and hides downloads only if all do.
    """
    groups: dict[tuple[int, str], list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for g, d in planned:
        groups.setdefault((int(d["share_type"]), d.get("share_with") or ""), []).append((g, d))
    out = []
    for (share_type, share_with), members in groups.items():
        bits = [int(d["permissions"]) for _, d in members]
        union = 0
        for b in bits:
            union |= b
        note = ""
        perms = union if union in bits else max(bits, key=lambda b: (_bits_count(b), b))
        if perms != union:
            note = (f"the grants do not nest (permissions {sorted(set(bits))}): shared with the broadest single "
                    f"grant's permissions {perms}, never their union {union}")
        full = [d for _, d in members if int(d["permissions"]) & perms == perms]
        expiries = [d.get("expire_date") for d in full]
        expire = None if any(e is None for e in expiries) else max(e for e in expiries if e)
        rest = [d.get("expire_date") for _, d in members if int(d["permissions"]) & perms != perms]
        if expire is not None and any(e is None or e > expire for e in rest):
            note = (note + "; " if note else "") + (f"the share ends on {expire} with its broadest grant; a narrower "
                                                     "grant that lasts longer is not carried past that day")
        first = members[0][1]
        grants = tuple({"perm_id": g["perm_id"], "grant": g.get("kind") or "", "link_scope": g.get("link_scope") or "",
                        "link_type": g.get("link_type") or "", "roles": g.get("roles") or "",
                        "grantee": d.get("grantee") or "", "permissions": int(d["permissions"]),
                        "expire_date": d.get("expire_date"), "reason": d.get("reason") or ""} for g, d in members)
        out.append(PlannedShare(
            drive_id=drive_id, item_id=item_id, share_type=share_type, share_with=share_with,
            owner=first.get("owner") or "", path=first.get("path") or "", permissions=perms, expire_date=expire,
            password=any(bool(d.get("password")) for _, d in members),
            hide_download=share_type == SHARE_LINK and all(bool(d.get("hide_download")) for _, d in members),
            grants=grants, note=note))
    return out


def refresh_share_plan(store: StateStore, drive_ids: Iterable[str], ctx: ShareContext, *,
                       items: Iterable[tuple[str, str]] | None = None,
                       on_grant: Callable[[dict[str, Any], str, dict[str, Any]], None] | None = None) -> int:
    """Plan every grant of these drives (or only of these (drive, item) pairs) and store one planned share per
    item and recipient; returns the number of planned shares.

    Each grant keeps its own action and detail (permissions.plan_action/plan_detail); planned shares no grant
    asks for any more are dropped, except shares we made, which stay marked for removal by `apply_share_plan`.
    `on_grant(grant row, action, detail)` sees every grant (the plan report's grant list). `sync` calls this for
    the items whose grants changed, then `apply_share_plan` for the same items.
    """
    by_drive: dict[str, list[str] | None] = {d: None for d in drive_ids}
    if items is not None:
        by_drive = {}
        for drive_id, item_id in items:
            by_drive.setdefault(drive_id, []).append(item_id)  # type: ignore[union-attr]
    total = 0
    for drive_id, only in by_drive.items():
        store.begin_share_plan(drive_id, only)
        plans: list[tuple[str, dict[str, Any], int]] = []
        shares: list[PlannedShare] = []
        for group in store.iter_item_grants(drive_id, only):
            creates = []
            for g in group:
                action, detail = plan_grant(g, ctx)
                plans.append((action, detail, g["id"]))
                if on_grant is not None:
                    on_grant(g, action, detail)
                if action == CREATE_SHARE:
                    creates.append((g, detail))
            shares += merge_grants(drive_id, group[0]["item_id"], creates)
            if len(plans) >= 2000 or len(shares) >= 2000:
                store.set_permission_plans(plans)
                total += store.save_planned_shares(shares)
                plans, shares = [], []
        store.set_permission_plans(plans)
        total += store.save_planned_shares(shares)
        store.finish_share_plan(drive_id, only)
    return total


# ------------------------------------------------------------------------------------------- not carried over
NOT_CARRIED_COLUMNS = ["category", "action", "reason", "owner", "source_path", "grant", "link_scope", "link_type",
                       "roles", "grantee", "expires", "drive_id", "item_id", "perm_id"]


def grants_not_carried_over(store: StateStore, drive_ids: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Every source grant the plan does not carry over (anonymous, guest, unmapped user or group, policy drop,
    unsupported kind, expired, item not migrated), with the reason; one dict per grant (NOT_CARRIED_COLUMNS).

    Grants that need no share (the owner, inherited entries, links for people who already have access) are not
    losses and are not listed. The plan report, `status` and the cutover report read this one list.
    """
    for r in store.iter_lost_grants(drive_ids):
        d = r["plan_detail"]
        yield {"category": d.get("category") or "other", "action": r["plan_action"], "reason": d.get("reason") or "",
               "owner": d.get("owner") or "", "source_path": r["item_path"] or r["item_name"] or "",
               "grant": r["kind"], "link_scope": r["link_scope"], "link_type": r["link_type"], "roles": r["roles"],
               "grantee": d.get("grantee") or r["grantee_email"] or r["grantee_name"] or "", "expires": r["expires"],
               "drive_id": r["drive_id"], "item_id": r["item_id"], "perm_id": r["perm_id"]}
