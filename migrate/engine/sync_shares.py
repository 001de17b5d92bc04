"""Sharing changes for `sync`: grants added at the source become shares (through the share engine), grants
removed at the source remove the share only when we created it.

A share counts as ours when the audit trail holds its `share` record (the share engine made it); a share that
was already there and adopted (`share-existing`), or any share a person made, is left alone and listed.
Added grants are handled only for drives whose shares `share` has already worked on: before the first `share`
run, sharing waits for switchover day like the rest of the share plan.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from migrate.errors import Fatal, MigrateError
from migrate.protocols import Target
from migrate.session import Selection
from migrate.store import StateStore


def apply_share_changes(store: StateStore, target: Target, mappings: Any, drive_ids: list[str], plan_options: Any,
                        *, dry_run: bool = False, workers: int = 4, share_rate: tuple[int, int] = (20, 600),
                        passwords_file: Path | None = None, say: Callable[[str], None] = lambda _m: None
                        ) -> dict[str, Any]:
    """Remove our shares of removed grants, then let the share engine make the added ones; returns what was done
    (`removed`, `left` with the reason, `created`, `problems`)."""
    out: dict[str, Any] = {"removed": [], "left": [], "created": 0, "problems": []}
    api = getattr(target, "shares", None)
    for row in store.removed_grants(drive_ids):
        d = row["plan_detail"]
        owner, path, share_id = d.get("owner") or "", d.get("path") or "", str(row["share_id"] or "")
        view = {"drive_id": row["drive_id"], "item_id": row["item_id"], "owner": owner, "path": path,
                "share_with": d.get("share_with") or "a link", "share_id": share_id}
        if dry_run:
            (out["removed"] if store.share_made_by_us(share_id) else out["left"]).append(view)
            continue
        if api is None or not store.share_made_by_us(share_id):
            out["left"].append({**view, "reason": "not made by m365-migrate: left as it is"})
            store.audit("unshare-left", f"{owner}:{path}", drive=row["drive_id"], item=row["item_id"],
                        perm=row["perm_id"], share_id=share_id)
            store.drop_permission(row["id"])
            continue
        try:
            api.delete(owner, share_id)
        except MigrateError as exc:
            if isinstance(exc, Fatal):
                raise
            out["problems"].append({**view, "reason": f"could not remove the share: {exc.message}"})
            continue
        with store.atomic():
            store.audit("unshare", f"{owner}:{path}", drive=row["drive_id"], item=row["item_id"],
                        perm=row["perm_id"], share_id=share_id)
            store.drop_permission(row["id"])
        out["removed"].append(view)
    added = store.drives_with_new_grants(drive_ids)
    if added and not dry_run and api is not None:
        from migrate.engine.share import run_share

        say(f"sharing: new grants on {len(added)} drives")
        sh = run_share(store, target, mappings, Selection(drive_ids=tuple(added)), plan_options, workers=workers,
                       share_rate=share_rate, passwords_file=passwords_file, say=say)
        out["created"] = sh.created
        out["problems"] += [*sh.failed, *sh.refused_broader]
    elif added:
        out["added_grants_on"] = added
    return out
