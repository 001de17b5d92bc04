"""The end-of-`share` summary for the terminal: counts, then each share that needs a person, with its next step."""

from __future__ import annotations

from typing import Any

from migrate.engine.share import BROADER_NEXT, FAIL_NEXT, WAIT_NEXT, ShareSummary


def render_share(summary: ShareSummary) -> str:
    """What a person reads at the end: counts, then each problem with its next step."""
    head = "share dry run (nothing written to the target)" if summary.dry_run else "share"
    lines = [f"{head}: {summary.planned} planned shares",
             f"  {'would create' if summary.dry_run else 'created'}: "
             f"{len(summary.would_create) if summary.dry_run else summary.created}",
             f"  already there: {summary.already}",
             f"  waiting for copy: {len(summary.waiting)}"]
    if not summary.dry_run:
        lines += [f"  failed: {len(summary.failed)}", f"  refused as broader than the source: {len(summary.refused_broader)}"]
    if summary.rate_limited or summary.paced_seconds >= 1:
        lines.append(f"  paced {summary.paced_seconds:.0f} s for the createShare rate limit "
                     f"({summary.rate_limited} answers 429)")
    for r in summary.would_create:
        lines.append(f"  + {_describe(r)}")
    for title, rows in (("waiting for copy", summary.waiting), ("failed", summary.failed),
                        ("refused as broader", summary.refused_broader)):
        for r in rows[:50]:
            lines.append(f"  {title}: {_describe(r)}: {r.get('reason', '')}")
        if len(rows) > 50:
            lines.append(f"  … and {len(rows) - 50} more {title} (see --json)")
    if summary.link_passwords:
        lines.append(f"{summary.link_passwords} link passwords are in {summary.passwords_file} (mode 0600): hand them "
                     "to the link owners, then delete the file")
    nexts = [WAIT_NEXT if summary.waiting else "", FAIL_NEXT if summary.failed else "",
             BROADER_NEXT if summary.refused_broader else ""]
    lines += [f"next: {n}" for n in nexts if n]
    if not summary.attention and not summary.dry_run:
        lines.append("next: `m365-migrate verify`, then the cutover runbook")
    return "\n".join(lines)


def _describe(r: dict[str, Any]) -> str:
    kind = {0: "user", 1: "group", 3: "link"}.get(r.get("share_type"), "?")  # type: ignore[arg-type]
    who = f" {r['share_with']}" if r.get("share_with") else ""
    return f"{r.get('owner')}:/{str(r.get('path') or '').lstrip('/')} → {kind}{who} (permissions {r.get('permissions')})"
