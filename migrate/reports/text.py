"""Plain-text renderings for the terminal: status tables and end-of-run summaries."""

from __future__ import annotations

from typing import Any


def human_bytes(n: float) -> str:
    """1536 → '1.5 KiB'; binary units, as Nextcloud and OneDrive show them."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def human_duration(seconds: float) -> str:
    """42 → '42 s', 3725 → '1 h 2 min'; under a second reads '1 s', never '0.0 min'."""
    s = max(1, int(round(seconds))) if seconds > 0 else 0
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


# Nextcloud's share permission bits, in the words of its sharing dialog (the bitmask is for machines: CSV, --json)
PERMISSION_WORDS = ((1, "read"), (2, "edit"), (4, "create"), (8, "delete"), (16, "re-share"))


def permission_words(perms: Any) -> str:
    """3 → 'read, edit'; 31 → 'read, edit, create, delete, re-share'; anything else as it is."""
    if not isinstance(perms, int) or isinstance(perms, bool):
        return "" if perms is None else str(perms)
    return ", ".join(w for bit, w in PERMISSION_WORDS if perms & bit) or "none"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A left-aligned text table with a rule under the header."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in cells]
    return "\n".join(lines)


STATUS_ORDER = ("pending", "transferring", "uploaded", "verified", "failed", "skipped", "conflict")


def _waiting(w: dict[str, int]) -> str:
    """Changes scan recorded that sync has not applied yet, e.g. "2 moved, 1 deleted" ('-' when none)."""
    return ", ".join(f"{v} {k}" for k, v in w.items() if v) or "-"


def render_status(data: dict[str, Any]) -> str:
    out = [f"state: {data['state']}", ""]
    if data["drives"]:
        rows = []
        for d in data["drives"]:
            c = d["counts"]
            files = sum(v["files"] for v in c.values())
            size = sum(v["bytes"] for v in c.values())
            done = c.get("verified", {}).get("files", 0)
            rows.append([d["kind"], d["name"][:30], d["owner"] or "", d["batch"] or "-",
                         d["scan_state"] if d.get("migrated", True) else "not migrated",
                         files, human_bytes(size), done, c.get("failed", {}).get("files", 0),
                         _waiting(d.get("waiting") or {})])
        out.append(table(["kind", "drive", "owner", "batch", "scan", "files", "bytes", "verified", "failed",
                          "changes waiting"], rows))
    else:
        out.append("no drives recorded yet")
    t = {s: c for s, c in data["totals"].items() if c["files"]}
    if t:
        out += ["", "totals: " + ", ".join(f"{s} {t[s]['files']} ({human_bytes(t[s]['bytes'])})" for s in STATUS_ORDER if s in t)]
    adopted = data.get("adopted") or {}
    if adopted.get("files"):
        out.append(f"of the verified: already at the target, recorded without sending: {adopted['files']} files "
                   f"({human_bytes(adopted['bytes'])})")
    shares = data.get("shares") or {}
    if shares:
        out += ["", f"shares: {sum(shares.values())} planned: "
                + ", ".join(f"{k} {v}" for k, v in sorted(shares.items(), key=lambda kv: kv[0] != "created"))]
    seen = data.get("share_visibility") or {}
    if seen:
        out.append("shares seen by their recipients: " + ", ".join(
            f"{k} {seen[k]}" for k in ("visible", "not visible", "not checked") if seen.get(k)))
    lost = data.get("grants_not_carried_over") or {}
    if lost.get("count"):
        where = lost.get("report") or "the plan report (run `m365-migrate plan` to write it)"
        out += [f"grants not carried over: {lost['count']} ("
                + ", ".join(f"{k} {v}" for k, v in lost["by_category"].items()) + f"), listed with the reason in {where}"]
    out += version_lines(data.get("versions") or {})
    m = data.get("mail")
    if m:
        out += ["", f"mail: {m['mailboxes']} mailboxes, {m['done']} of {m['messages']} messages done, {m['left']} "
                f"left, {m['failed']} failed, {m['not_carried']} not carried (per mailbox: `m365-migrate status "
                "--what mail`)"]
    if data["failures"] or data.get("share_failures") or data.get("shares_not_visible"):
        out += ["", "needs attention:"]
        out += [f"  {f['status']:8} {f['path'] or f['item_id']}: {f['last_error'] or ''}" for f in data["failures"]]
        out += [f"  share    {f['owner']}:{f['path']} → {f['share_with']}: {f['share_error'] or f['share_status']}"
                for f in data.get("share_failures") or []]
        out += [f"  share    {f['owner']}:{f['path']} → {f['share_with']}: not seen yet by "
                + "; ".join(f"{m['user']} ({m['reason']})" for m in f["not_visible"])
                for f in data.get("shares_not_visible") or []]
    if data["recent_runs"]:
        r = data["recent_runs"][0]
        line = f"last run: {r['command']} ({r['status']}) started {r['started_at']}"
        if r.get("interrupted_at"):
            gone = f"; its process, pid {r['pid']} on {r['host']}, is gone" if r.get("alive") is False else ""
            line = f"last run: {r['command']} interrupted at {r['interrupted_at']} (started {r['started_at']}{gone})"
        out += ["", line]
    g = data.get("graph") or {}
    if g.get("runs"):
        line = f"Graph: {g['ru_last_24h']:,} resource units in the last 24 hours"
        if g.get("day_used") is not None:
            line += f" ({g['day_used']:.1%} of the 24-hour budget, {g['budget']['ru_per_day']:,} RU)"
        if g.get("last_ru_per_file"):
            line += f"; the last copy spent {g['last_ru_per_file']:.2f} RU per file"
        out.append(line)
    out += ["", f"next: {data['next_step']}"]
    return "\n".join(out)


LATE_LINE = ("not carried yet: {n} files were copied before versions were enabled (or raised); run `copy` or "
             "`sync` to put their history under them")


def version_lines(v: dict[str, Any]) -> list[str]:
    """Earlier versions carried, missing at the source and not carried (each reason), for status and copy."""
    by = v.get("by_status") or {}
    if not by and not v.get("late_files"):
        return []
    out = ["", "earlier versions: " + (", ".join(f"{k} {by[k]}" for k in ("carried", "pending", "sent", "missing",
                                                                           "not-carried") if by.get(k)) or "none yet")]
    if v.get("late_files"):
        out.append(f"  {LATE_LINE.format(n=v['late_files'])}")
    out += [f"  missing at the source ({n}): {why}" for why, n in sorted((v.get("missing") or {}).items())]
    out += [f"  not carried ({n}): {why}" for why, n in sorted((v.get("not_carried") or {}).items())]
    return out


def render_verify(summary: Any) -> str:
    """The end-of-verify summary: every gap on its own line."""
    lines = [f"checked {summary.checked} files at the target: {summary.ok} whole, {len(summary.gaps)} with gaps"]
    if summary.not_copied:
        lines.append(f"{summary.not_copied} files of the selection are not copied yet (see `m365-migrate status`)")
    if getattr(summary, "versions_checked", 0):
        lines.append(f"checked {summary.versions_checked} carried versions (time, bytes, label)")
    if getattr(summary, "versions_late", 0):
        lines.append(LATE_LINE.format(n=summary.versions_late))
    for gap in summary.gaps[:200]:
        lines.append(f"  {gap['target']}: {gap['problem']}")
    if len(summary.gaps) > 200:
        lines.append(f"  … and {len(summary.gaps) - 200} more (`--json` lists them all)")
    if summary.shares_checked or summary.shares_not_visible:
        lines.append(f"checked {summary.shares_checked} user and group shares as their recipients: "
                     f"{len(summary.shares_not_visible)} not seen by every recipient yet")
    for r in summary.shares_not_visible[:200]:
        who = "; ".join(f"{m['user']}: {m['reason']}" for m in r["not_visible_to"])
        lines.append(f"  share {r['share_id']} of {r['owner']}:{r['path']} → {r['share_with']}: {who}")
    if summary.gaps:
        lines.append("next: run `m365-migrate copy` to send the files with gaps again")
    if summary.shares_not_visible:
        lines.append("next: run `m365-migrate share` to accept the pending shares as their recipients")
    return "\n".join(lines)
