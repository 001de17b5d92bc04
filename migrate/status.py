"""What `status` shows: progress per batch and drive, failures with reasons, and what to do next."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from migrate.engine import meter
from migrate.engine.files.versions_late import late_files
from migrate.engine.mail.plan import mail_totals
from migrate.models import ItemStatus
from migrate.reports.grants import report_path
from migrate.session import Selection
from migrate.store import StateStore
from migrate.store.lock import run_alive

RESUMABLE = ("scan", "copy", "share", "sync", "cutover")   # a rerun carries on from the state database


def collect(store: StateStore, selection: Selection = Selection(), *,
            version_limit_for: Callable[[str], int | None] | None = None) -> dict[str, Any]:
    """A JSON-ready picture of the migration, read from the store only (no network); `version_limit_for` (drive
    id -> its version policy) counts the files copied before versions were enabled."""
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
    recent = [_run_view(store, r) for r in store.runs(limit=5)]
    ids = [d["id"] for d in drives]
    shares = store.planned_share_counts(ids)
    share_failures = store.planned_share_problems(ids) if shares else []
    visibility = store.share_visibility_counts(ids) if shares else {}
    unseen = store.shares_not_visible(ids) if visibility.get("not visible") else []
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
        "share_visibility": visibility,
        "shares_not_visible": unseen,
        "grants_not_carried_over": {"count": sum(lost.values()), "by_category": lost,
                                    "report": str(report) if report.exists() else None},
        "versions": {**store.version_counts(ids),
                     "late_files": late_files(store, ids, version_limit_for) if version_limit_for else 0},
        "mail": mail_totals(store, selection.users),   # per mailbox: `status --what mail`
        "failures": store.failures(limit=20),
        "recent_runs": recent,
        "graph": meter.status_view(store),
        "next_step": next_step(drives, totals, shares, waiting, recent[0] if recent else None,
                               visibility.get("not visible", 0)),
    }


def _every_status(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Every item status with its files and bytes, 0 where none: one shape for scripts (`--json`), whatever the
    drive holds."""
    return {st.value: dict(counts.get(st.value) or {"files": 0, "bytes": 0}) for st in ItemStatus}


def _run_view(store: StateStore, run: dict[str, Any]) -> dict[str, Any]:
    """A run as status shows it: one recorded as running whose process is gone is shown as interrupted, when it
    last wrote something, and the command that resumes it."""
    import json

    view = {k: run[k] for k in ("id", "command", "status", "started_at", "ended_at", "pid", "host")}
    view["alive"] = None
    view["interrupted_at"] = None
    if run["status"] == "running":
        view["alive"] = run_alive(run, Path(store.path))
        if view["alive"] is False:
            view["status"] = "interrupted"
            view["interrupted_at"] = store.run_last_activity(run["id"]) or run["started_at"]
    elif run["status"] == "interrupted":
        view["interrupted_at"] = run["ended_at"] or run["started_at"]
    try:
        args = json.loads(run.get("args") or "{}")
    except ValueError:
        args = {}
    view["resume"] = resume_command(run["command"], args if isinstance(args, dict) else {})
    return view


def resume_command(command: str, args: dict[str, Any]) -> str:
    """The command line that runs a step again on the same selection (`copy --batch pilot`)."""
    verb, _, kinds = command.partition("-")
    words = ["m365-migrate", verb]
    if kinds:
        words += ["--what", ",".join(kinds.split("+"))]
    for key, flag in (("batch", "--batch"), ("drive", "--drive"), ("user", "--user")):
        value = args.get(key) or []
        for v in [value] if isinstance(value, str) else value:
            words += [flag, str(v)]
    return " ".join(words)


def next_step(drives: list[dict[str, Any]], totals: dict[str, dict[str, int]],
              shares: dict[str, int] | None = None, waiting: dict[str, int] | None = None,
              last_run: dict[str, Any] | None = None, not_visible: int = 0) -> str:
    """One sentence telling a busy admin what to run next."""
    if last_run and last_run["status"] == "running":
        return (f"`{last_run['command']}` is running (pid {last_run['pid']} on {last_run['host']}, since "
                f"{_when(last_run['started_at'])}); run `m365-migrate status` again to follow it")
    if last_run and last_run["status"] == "interrupted":
        verb = last_run["command"].partition("-")[0]
        why = "to resume" if verb in RESUMABLE else "to finish it"
        return (f"`{last_run['command']}` was interrupted at {_when(last_run['interrupted_at'])}; run "
                f"`{last_run['resume']}` again {why}")
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
    if not_visible:
        return (f"files are verified and shares made, but {not_visible} shares are not seen by every recipient yet "
                "(pending for them): run `m365-migrate share`, which accepts them as the recipient")
    return "everything scanned is verified; run `m365-migrate verify` before cutover"


def _when(ts: str | None) -> str:
    """'2026-12-07T10:05:12.123456+00:00' → '2026-12-07 10:05:12 UTC'."""
    return f"{ts[:10]} {ts[11:19]} UTC" if ts and len(ts) >= 19 else (ts or "an unknown time")
