"""What `status` shows: progress per batch and drive, failures with reasons, and what to do next."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrate.engine import meter
from migrate.models import ItemStatus
from migrate.reports.grants import report_path
from migrate.session import Selection
from migrate.store import StateStore


def collect(store: StateStore, selection: Selection = Selection()) -> dict[str, Any]:
    """A JSON-ready picture of the migration, read from the store only (no network)."""
    drives = []
    totals = _every_status({})
    for d in selection.drives(store):
        counts = _every_status(store.status_counts(d["id"]))
        for status, c in counts.items():
            t = totals.setdefault(status, {"files": 0, "bytes": 0})
            t["files"] += c["files"]
            t["bytes"] += c["bytes"]
        drives.append(
            {
                "id": d["id"],
                "kind": d["kind"],
                "name": d["name"],
                "owner": d["owner_upn"] or d["site_url"],
                "batch": d["batch"],
                "scan_state": d["scan_state"],
                "migrated": not d.get("not_migrated"),
                "last_scan_at": d["last_scan_at"],
                "last_error": d["last_error"],
                "counts": counts,
                "adopted": store.adopted_counts(d["id"]),
                "waiting": store.waiting_changes(d["id"]),
            }
        )
    waiting = {k: sum(d["waiting"][k] for d in drives) for k in ("new", "moved", "edited", "deleted")}
    adopted = {k: sum(d["adopted"][k] for d in drives) for k in ("files", "bytes")}
    runs = store.runs(limit=5)
    ids = [d["id"] for d in drives]
    shares = store.planned_share_counts(ids)
    share_failures = store.planned_share_problems(ids) if shares else []
    lost = store.lost_grant_counts(ids)
    report = report_path(Path(store.path).parent / "reports")
    return {
        "state": str(store.path),
        "drives": drives,
        "totals": totals,
        "adopted": adopted,  # of the verified files: found whole at the target, recorded without sending
        "waiting": waiting,
        "shares": shares,
        "share_failures": share_failures,
        "grants_not_carried_over": {"count": sum(lost.values()), "by_category": lost,
                                    "report": str(report) if report.exists() else None},
        "failures": store.failures(limit=20),
        "recent_runs": [
            {k: r[k] for k in ("id", "command", "status", "started_at", "ended_at", "pid", "host")} for r in runs
        ],
        "graph": meter.status_view(store),
        "next_step": next_step(drives, totals, shares, waiting),
    }


def _every_status(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Every item status with its files and bytes, 0 where none: one shape for scripts (`--json`), whatever the
    drive holds."""
    return {st.value: dict(counts.get(st.value) or {"files": 0, "bytes": 0}) for st in ItemStatus}


def next_step(drives: list[dict[str, Any]], totals: dict[str, dict[str, int]],
              shares: dict[str, int] | None = None, waiting: dict[str, int] | None = None) -> str:
    """One sentence telling a busy admin what to run next."""
    if not drives:
        return "run `m365-migrate discover` to find drives"
    if any(d["scan_state"] in ("new", "scanning", "enumerating", "failed") and d.get("migrated", True)
           for d in drives):
        return "run `m365-migrate scan` to finish the inventory"
    changed = sum(v for k, v in (waiting or {}).items() if k != "new")
    if changed:
        return (f"{changed} source changes (moves, edits, deletions) wait to be applied: `m365-migrate sync "
                "--dry-run` lists them, `m365-migrate sync` applies them")

    def files(*statuses: str) -> int:
        return sum((totals.get(st) or {}).get("files", 0) for st in statuses)

    if files("failed", "conflict"):
        return "read the failures above, fix their cause, then run `m365-migrate copy` again (it resumes)"
    if files("pending", "transferring", "uploaded"):
        return "run `m365-migrate plan` to review, then `m365-migrate copy` to transfer what is pending"
    open_shares = sum(n for s, n in (shares or {}).items() if s not in ("created",))
    if open_shares:
        return (f"files are verified; {open_shares} planned shares are not made yet: run `m365-migrate share` "
                "(its summary says why any were refused)")
    return "everything scanned is verified; run `m365-migrate verify` before cutover"
