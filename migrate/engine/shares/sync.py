"""Sharing changes for `sync`: the share plan of the drives is refreshed from the grants the delta pass read,
then carried out by the share engine (`apply_share_plan`): a grant added at the source becomes a share (never
broader, paced, as `share` does), a share this tool made that no grant asks for any more is removed or brought
in line, and a share a person made is left alone and listed.

Only drives whose shares `share` has already worked on are touched: before the first `share` run, sharing waits
for switchover day like the rest of the share plan. The whole drive's plan is refreshed (the grants table holds
only shared items), so a pass killed between the delta and this step loses nothing: the rerun sees the same
difference between grants and planned shares.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from migrate.engine.shares.apply import apply_share_plan, view
from migrate.engine.shares.plan import refresh_share_plan
from migrate.protocols import Target
from migrate.store import StateStore


def apply_share_changes(store: StateStore, target: Target, mappings: Any, drive_ids: list[str], plan_options: Any,
                        *, dry_run: bool = False, workers: int = 4, share_rate: tuple[int, int] = (20, 600),
                        passwords_file: Path | None = None, say: Callable[[str], None] = lambda _m: None
                        ) -> dict[str, Any]:
    """Refresh and apply the share plan of the drives `share` has worked on; returns what was done (`created`,
    `updated`, `removed` (share ids), `left` (shares a person made that no grant asks for, with the reason),
    `problems`), or with `dry_run` what would be done."""
    from migrate.engine.plan import share_context

    out: dict[str, Any] = {"created": 0, "updated": 0, "removed": [], "left": [], "problems": []}
    drives = store.drives_shared_before(drive_ids)
    if not drives:
        return out
    # the refresh forgets a person's share no grant asks for any more at once (only ours stay, to be removed)
    theirs = {s.id: s for s in store.iter_planned_shares(drives) if s.share_id and not s.made_by_us}
    refresh_share_plan(store, drives, share_context(mappings, plan_options, dt.date.today()))
    kept = {s.id: s for s in store.iter_planned_shares(drives)}
    ours = [s for s in kept.values() if not s.planned and s.made_by_us and s.share_id]
    out["left"] = [view(s, share_id=s.share_id, reason="not made by m365-migrate: left as it is")
                   for i, s in theirs.items() if i not in kept]
    if dry_run:
        sh = apply_share_plan(store, target, drives, dry_run=True)
        out["removed"] = [view(s, share_id=s.share_id) for s in ours]
        out["would_create"], out["would_update"] = sh.would_create, sh.would_update
        return out
    for row in out["left"]:
        store.audit("unshare-left", f"{row['owner']}:{row['path']}", drive=row["drive_id"], item=row["item_id"],
                    share_id=row["share_id"])
    say(f"sharing: the share plan of {len(drives)} drives, as `share` does")
    sh = apply_share_plan(store, target, drives, workers=workers, share_rate=share_rate,
                          passwords_file=passwords_file, say=say)
    left = {s.id for s in store.iter_planned_shares(drives) if not s.planned}
    out["created"], out["updated"] = sh.created, sh.updated
    out["removed"] = [view(s, share_id=s.share_id) for s in ours if s.id not in left]
    out["accepted"] = sh.accepted
    out["problems"] = [*sh.failed, *sh.refused_broader, *sh.narrower, *sh.not_visible]
    return out
