"""A share counts only when its recipients see it: check as each recipient, accept what waits for them.

Nextcloud keeps a user or group share *pending* for a recipient until it is accepted (reference §6.5a): with
`sharing.force_share_accept` on, every share waits for its recipients; and on 32.0.1 a "share created" listener
that fails (sqlite "database is locked") leaves a share pending although createShare answered 200, with nothing
the owner can see. So after `share` (and `sync`'s sharing changes) each recipient we hold an app password for is
asked, as themselves, which shares wait for them (`shares/pending`); those this tool made or adopted are
accepted as the recipient, and what they then see (`shared_with_me`) is the proof. A group share is checked for
each member we can act for. What stays unseen is recorded per share with the reason, and counted by `share`,
`verify`, `status` and the reports.

Nextcloud lists declined shares among the pending ones and formats both alike, so a share of the plan that a
recipient declined is accepted again: the plan says they have access (change the source grant to take it away).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from migrate.engine.shares.plan import SHARE_GROUP, SHARE_USER
from migrate.errors import ConfigError, Fatal, MigrateError
from migrate.models import PlannedShare
from migrate.store import StateStore

log = logging.getLogger(__name__)

NOT_VISIBLE_NEXT = ("the recipient does not see the share yet: run `m365-migrate share` again (it accepts pending "
                    "shares as the recipient), or have them accept it in Files → Shares → Pending shares")


@dataclass
class Visibility:
    """What the recipients of the made shares see, in numbers of shares, and who misses which share."""

    checked: int = 0       # made user/group shares looked at as their recipients
    visible: int = 0       # seen by every recipient we can act for
    accepted: int = 0      # acceptances made as a recipient (a group share counts once per member)
    not_visible: list[dict[str, Any]] = field(default_factory=list)
    members_not_checked: int = 0  # group members without an app password here: Nextcloud alone decides for them

    def to_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "visible": self.visible, "accepted": self.accepted,
                "not_visible": self.not_visible, "members_not_checked": self.members_not_checked}


@dataclass
class _Recipient:
    """One recipient's answers: the share ids waiting for them, accepted now, refused, and seen."""

    pending: set[str] = field(default_factory=set)
    accepted: set[str] = field(default_factory=set)
    refused: dict[str, str] = field(default_factory=dict)   # share id → why it could not be accepted
    seen: set[str] = field(default_factory=set)
    error: str | None = None                                # the recipient could not be asked at all


def confirm_visible(store: StateStore, target: Any, drive_ids: Iterable[str], *,
                    items: Iterable[tuple[str, str]] | None = None, accept: bool = True, recheck: bool = False,
                    workers: int = 4, say: Callable[[str], None] = lambda _m: None) -> Visibility:
    """Check as their recipients the user and group shares made for these drives (or items); with `accept`,
    accept the pending ones as the recipient. Only shares not yet known to be visible are looked at, unless
    `recheck`. Records the outcome per share; a fatal error (credentials) is raised."""
    out = Visibility()
    shares = getattr(target, "shares", None)
    if shares is None or not hasattr(shares, "pending"):
        return out
    made = [s for s in store.iter_planned_shares(list(drive_ids), items)
            if s.planned and s.status == "created" and s.share_id and s.share_type in (SHARE_USER, SHARE_GROUP)
            and (recheck or s.visible is not True)]
    if not made:
        return out
    accounts = set(getattr(getattr(target, "dav", None), "passwords", {}) or {})
    members = _group_members(target, {s.share_with for s in made if s.share_type == SHARE_GROUP})
    wanted: dict[str, set[str]] = {}              # recipient → ids of our shares they should see
    for s in made:
        for uid in _recipients(s, members):
            if uid in accounts and uid != s.owner:
                wanted.setdefault(uid, set()).add(str(s.share_id))
    say(f"share: checking as {len(wanted)} recipients that they see {len(made)} shares"
        + (" (accepting what waits for them)" if accept else ""))
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(wanted) or 1)), thread_name_prefix="accept") as pool:
        answers = dict(zip(wanted, pool.map(lambda uid: _ask(shares, uid, wanted[uid], accept), wanted),
                           strict=True))
    for s in made:
        _record(store, s, members, accounts, answers, out)
    return out


def _group_members(target: Any, groups: set[str]) -> dict[str, list[str] | None]:
    """Members of each group (None: they cannot be read, e.g. no service account)."""
    if not groups:
        return {}
    found: dict[str, list[str] | None] = dict.fromkeys(groups)
    try:
        prov = target.provisioning()
        for gid in sorted(groups):
            found[gid] = prov.group_members(gid)
    except ConfigError:
        pass               # no service account: each such share is listed as not checked, with that reason
    except MigrateError as exc:
        if isinstance(exc, Fatal):
            raise
    return found


def _recipients(s: PlannedShare, members: dict[str, list[str] | None]) -> list[str]:
    if s.share_type == SHARE_USER:
        return [s.share_with]
    return list(members.get(s.share_with) or [])


def _ask(shares: Any, uid: str, ours: set[str], accept: bool) -> _Recipient:
    """As `uid`: which of our shares wait for them, accept those (when asked to), then what they see."""
    r = _Recipient()
    try:
        r.pending = {str(p.get("id")) for p in shares.pending(uid)} & ours
        for share_id in sorted(r.pending) if accept else ():
            try:
                shares.accept(uid, share_id)
                r.accepted.add(share_id)
            except MigrateError as exc:
                r.refused[share_id] = exc.message
        r.seen = {str(p.get("id")) for p in shares.shared_with_me(uid)} & ours
    except MigrateError as exc:    # one recipient's account (even its app password) stops only its own check
        r.error = exc.message
    return r


def _record(store: StateStore, s: PlannedShare, members: dict[str, list[str] | None], accounts: set[str],
            answers: dict[str, _Recipient], out: Visibility) -> None:
    share_id = str(s.share_id)
    subject = f"{s.owner}:{s.path}"
    missing: list[dict[str, Any]] = []
    audits = []
    if s.share_type == SHARE_GROUP and members.get(s.share_with) is None:
        missing.append({"user": f"group {s.share_with}", "reason": "its members could not be read (the service "
                                                                   "account looks them up)"})
    asked = 0
    for uid in _recipients(s, members):
        if uid == s.owner:
            continue
        if uid not in accounts:
            out.members_not_checked += 1
            continue
        asked += 1
        r = answers.get(uid) or _Recipient(error="not asked")
        if share_id in r.accepted:
            out.accepted += 1
            audits.append(("share-accepted", subject, {"share_id": share_id, "recipient": uid,
                                                       "share_type": s.share_type, "share_with": s.share_with}))
        if share_id in r.seen:
            continue
        if r.error:
            reason = f"could not be checked as {uid}: {r.error}"
        elif share_id in r.refused:
            reason = f"pending for {uid}; accepting it as them failed: {r.refused[share_id]}"
        elif share_id in r.pending:
            reason = f"pending for {uid} (not accepted)"
        else:
            reason = f"{uid} neither sees it nor has it pending (removed from their view?)"
        missing.append({"user": uid, "reason": reason})
    if not missing and not asked:     # no recipient we hold an app password for: not checked, not claimed
        return
    visible = not missing
    store.record_share_visibility(s.id, visible, missing, audits)
    out.checked += 1
    if visible:
        out.visible += 1
    else:
        out.not_visible.append({"drive_id": s.drive_id, "item_id": s.item_id, "owner": s.owner, "path": s.path,
                                "share_type": s.share_type, "share_with": s.share_with, "share_id": share_id,
                                "permissions": s.permissions, "grants": len(s.grants),
                                "not_visible_to": missing, "next": NOT_VISIBLE_NEXT,
                                "reason": "not seen yet by " + "; ".join(f"{m['user']} ({m['reason']})"
                                                                          for m in missing)})
