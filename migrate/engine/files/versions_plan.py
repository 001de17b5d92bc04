"""What carrying version history costs, for `plan` (per batch) and `doctor` (per target account).

Before a file's versions are listed, its change counter (cTag, else eTag `"{GUID},N"`) bounds how many earlier
versions it can have (N - 1, capped by the drive's `versions` policy), and the current size stands in for theirs:
an estimate, said to be one. Files already listed count exactly. Graph cost: 2 RU per listing (only files whose
facts allow history are asked), 1 RU per version downloaded from the listing's URL. Each drive follows its
mapping row's `versions` when the row sets one, else `[transfer] versions`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migrate.engine.files.versions import LATE_PREFIX, beyond, may_have_history, policy_text, version_counter
from migrate.engine.files.versions_late import wants_late

RU_LISTING = 2
RU_DOWNLOAD = 1


def _bound(item: dict[str, Any], limit: int | None) -> int:
    n = version_counter(item.get("ctag")) or version_counter(item.get("etag"))
    earlier = (n - 1) if n else 1
    return max(0, earlier if limit is None else min(earlier, limit))


def plan_versions(store: Any, drives: list[dict[str, Any]], limit: int | None, *, supported: bool,
                  by_drive: Mapping[str, int | None] | None = None) -> dict[str, Any]:
    """Per batch and per target account: files asked, earlier versions, bytes and Graph RU of carrying them;
    `by_drive` holds the drives whose mapping row sets its own policy (versions.drive_limits)."""
    by_drive = by_drive or {}
    out: dict[str, Any] = {"policy": policy_text(limit), "supported": supported, "batches": [], "accounts": [],
                           "note": "estimate: files not listed yet count their change counter (N - 1 earlier "
                                   "versions at most, the eTag counts renames too) at the current size; listed "
                                   "files count exactly"}
    mapped = {d["drive_id"]: d for d in drives if d.get("status") == "mapped"}
    out["overrides"] = sum(1 for i in mapped if i in by_drive)

    def limit_of(drive_id: str) -> int | None:
        return by_drive[drive_id] if drive_id in by_drive else limit

    wanted = [i for i in mapped if limit_of(i) != 0]
    out["wanted"] = bool(wanted)
    if not wanted or not supported:
        return out
    batches: dict[str, dict[str, Any]] = {}
    accounts: dict[str, dict[str, int]] = {}
    for drive_id in mapped:
        name = mapped[drive_id].get("batch") or "(no batch)"
        b = batches.setdefault(name, {"batch": name, "policy": [], "files_asked": 0, "versions": 0, "bytes": 0,
                                      "ru": 0})
        shown = policy_text(limit_of(drive_id))
        if shown not in b["policy"]:
            b["policy"].append(shown)

    def add(drive_id: str, user: str | None, files: int, versions: int, bytes_: int, ru: int) -> None:
        b = batches[mapped[drive_id].get("batch") or "(no batch)"]
        b["files_asked"] += files
        b["versions"] += versions
        b["bytes"] += bytes_
        b["ru"] += ru
        a = accounts.setdefault(user or "(WebDAV)", {"versions": 0, "bytes": 0})
        a["versions"] += versions
        a["bytes"] += bytes_

    for r in store.candidate_history(wanted):
        if not may_have_history(r):
            continue
        n = _bound(r, limit_of(r["drive_id"]))
        add(r["drive_id"], r["target_user"], 1, n, n * (r["size"] or 0), RU_LISTING + n * RU_DOWNLOAD)
    for r in store.listed_history(wanted):
        add(r["drive_id"], r["target_user"], 0, r["n"], r["bytes"], r["n"] * RU_DOWNLOAD)
    # files copied before their drive asked for (more) history: the next copy or sync puts it under them
    late = 0
    for d in wanted:
        for r in store.unlisted_history(d):
            if may_have_history(r):
                n = _bound(r, limit_of(d))
                add(d, r["target_user"], 1, n, n * (r["size"] or 0), RU_LISTING + n * RU_DOWNLOAD)
                late += 1
        limit = limit_of(d)
        for item in store.items_with_late_history(d, LATE_PREFIX, beyond(limit) if limit is not None else ""):
            if item["status"] == "verified" and wants_late(store, item, limit):
                rows = [v for v in store.versions_of(d, item["item_id"]) if not v["current"]]
                n = len(rows) if limit_of(d) is None else min(len(rows), limit_of(d) or 0)
                todo = [v for v in rows[len(rows) - n:] if v["status"] != "carried"]
                add(d, item["target_user"], 1, len(todo), sum(v["size"] or 0 for v in todo),
                    RU_LISTING + len(todo) * RU_DOWNLOAD)
                late += 1
    for b in batches.values():
        b["policy"] = ", ".join(str(p) for p in b["policy"])
    out["copied_without_history"] = late
    out["batches"] = [batches[k] for k in sorted(batches)]
    out["accounts"] = [{"user": u, **v} for u, v in sorted(accounts.items())]
    out["totals"] = {k: sum(b[k] for b in out["batches"]) for k in ("files_asked", "versions", "bytes", "ru")}
    return out
