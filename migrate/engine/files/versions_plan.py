"""What carrying version history costs, for `plan` (per batch) and `doctor` (per target account).

Before a file's versions are listed, its change counter (cTag, else eTag `"{GUID},N"`) bounds how many earlier
versions it can have (N - 1, capped by `[transfer] versions`), and the current size stands in for theirs: an
estimate, said to be one. Files already listed count exactly. Graph cost: 2 RU per listing (only files whose
facts allow history are asked), 1 RU per version downloaded from the listing's URL.
"""

from __future__ import annotations

from typing import Any

from migrate.engine.files.versions import may_have_history, version_counter

RU_LISTING = 2
RU_DOWNLOAD = 1


def _bound(item: dict[str, Any], limit: int | None) -> int:
    n = version_counter(item.get("ctag")) or version_counter(item.get("etag"))
    earlier = (n - 1) if n else 1
    return max(0, earlier if limit is None else min(earlier, limit))


def plan_versions(store: Any, drives: list[dict[str, Any]], limit: int | None, *, supported: bool) -> dict[str, Any]:
    """Per batch and per target account: files asked, earlier versions, bytes and Graph RU of carrying them."""
    out: dict[str, Any] = {"policy": "none" if limit == 0 else "all" if limit is None else limit,
                           "supported": supported, "batches": [], "accounts": [],
                           "note": "estimate: files not listed yet count their change counter (N - 1 earlier "
                                   "versions at most, the eTag counts renames too) at the current size; listed "
                                   "files count exactly"}
    if limit == 0 or not supported:
        return out
    mapped = {d["drive_id"]: d for d in drives if d.get("status") == "mapped"}
    batches: dict[str, dict[str, Any]] = {}
    accounts: dict[str, dict[str, int]] = {}

    def add(drive_id: str, user: str | None, files: int, versions: int, bytes_: int, ru: int) -> None:
        name = mapped[drive_id].get("batch") or "(no batch)"
        b = batches.setdefault(name, {"batch": name, "files_asked": 0, "versions": 0, "bytes": 0, "ru": 0})
        b["files_asked"] += files
        b["versions"] += versions
        b["bytes"] += bytes_
        b["ru"] += ru
        a = accounts.setdefault(user or "(WebDAV)", {"versions": 0, "bytes": 0})
        a["versions"] += versions
        a["bytes"] += bytes_

    for r in store.candidate_history(list(mapped)):
        if not may_have_history(r):
            continue
        n = _bound(r, limit)
        add(r["drive_id"], r["target_user"], 1, n, n * (r["size"] or 0), RU_LISTING + n * RU_DOWNLOAD)
    for r in store.listed_history(list(mapped)):
        add(r["drive_id"], r["target_user"], 0, r["n"], r["bytes"], r["n"] * RU_DOWNLOAD)
    # files copied while versions were not asked for: their history cannot go before their current bytes now
    out["copied_without_history"] = sum(1 for r in store.candidate_history(list(mapped), ("verified", "uploaded"))
                                        if may_have_history(r))
    out["batches"] = [batches[k] for k in sorted(batches)]
    out["accounts"] = [{"user": u, **v} for u, v in sorted(accounts.items())]
    out["totals"] = {k: sum(b[k] for b in out["batches"]) for k in ("files_asked", "versions", "bytes", "ru")}
    return out
