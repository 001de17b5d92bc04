"""The end-of-`share` summary for the terminal: counts of shares, then each share that needs a person, with its
next step, and where the grants not carried over are listed."""

from __future__ import annotations

from typing import Any

from migrate.engine.shares.accept import NOT_VISIBLE_NEXT
from migrate.engine.shares.apply import BROADER_NEXT, FAIL_NEXT, NARROWER_NEXT, WAIT_NEXT, ShareSummary
from migrate.reports.text import permission_words

KINDS = {0: "user", 1: "group", 3: "public link"}


def render_share(summary: ShareSummary) -> str:
    """What a person reads at the end: counts (of shares, one per item and recipient), then each problem."""
    s = summary
    head = "share dry run (nothing written to the target)" if s.dry_run else "share"
    lines = [f"{head}: {s.planned} planned shares (one per item and recipient)"]
    if s.dry_run:
        lines += [f"  would create: {len(s.would_create)}", f"  would update (made by us, plan changed): "
                  f"{len(s.would_update)}", f"  would remove (made by us, no grant left): {len(s.would_remove)}"]
    else:
        lines += [f"  created: {s.created}", f"  updated (made by us earlier, plan changed): {s.updated}",
                  f"  removed (made by us, no grant left): {s.removed}"]
    lines += [f"  already in place (recorded by an earlier run): {s.already}"]
    if not s.dry_run:
        lines += [f"  found as planned (made by someone else before): {s.found}"]
        if s.widened:
            lines.append(f"  widened (made by someone else, narrower than planned): {s.widened}")
    lines.append(f"  waiting for copy: {len(s.waiting)}")
    if not s.dry_run:
        lines += [f"  failed: {len(s.failed)}", f"  refused as broader than the source: {len(s.refused_broader)}",
                  f"  narrower than planned, left as they are: {len(s.narrower)}"]
    if not s.dry_run:
        lines += [f"  accepted as their recipient (were pending for them): {s.accepted}",
                  f"  not seen by every recipient yet: {len(s.not_visible)}"]
    if s.rate_limited or s.paced_seconds >= 1:
        lines.append(f"  paced {s.paced_seconds:.0f} s in all (owners wait in parallel) for the createShare rate limit "
                     f"({s.rate_limited} answers 429)")
    for sign, rows in (("+", s.would_create), ("~", s.would_update), ("-", s.would_remove)):
        lines += [f"  {sign} {describe(r)}" for r in rows]
    for title, rows in (("waiting for copy", s.waiting), ("failed", s.failed), ("refused as broader", s.refused_broader),
                        ("narrower", s.narrower)):
        for r in rows[:50]:
            lines.append(f"  {title}: {describe(r)}: {r.get('reason', '')}")
        if len(rows) > 50:
            lines.append(f"  … and {len(rows) - 50} more {title} (see --json)")
    for r in s.not_visible[:50]:
        who = "; ".join(f"{m['user']}: {m['reason']}" for m in r.get("not_visible_to", []))
        lines.append(f"  not seen yet: {describe(r)}, share {r.get('share_id')}: {who}")
    if len(s.not_visible) > 50:
        lines.append(f"  … and {len(s.not_visible) - 50} more not seen yet (see --json)")
    if s.not_carried_over:
        lines.append(f"{s.not_carried_over} source grants are not carried over (policy, guests, unmapped users or "
                     f"groups): the list with each reason is in {s.not_carried_over_report or 'the plan report'}")
    if s.link_passwords:
        lines.append(f"{s.link_passwords} link passwords are in {s.passwords_file} (mode 0600): hand them "
                     "to the link owners, then delete the file")
    nexts = [WAIT_NEXT if s.waiting else "", FAIL_NEXT if s.failed else "", BROADER_NEXT if s.refused_broader else "",
             NARROWER_NEXT if s.narrower else "", NOT_VISIBLE_NEXT if s.not_visible else ""]
    lines += [f"next: {n}" for n in nexts if n]
    if not s.attention and not s.dry_run:
        lines.append("next: `m365-migrate verify`, then the cutover runbook")
    return "\n".join(lines)


def describe(r: dict[str, Any]) -> str:
    """owner:/path → kind recipient (read, edit; from K grants)."""
    kind = KINDS.get(r.get("share_type"), "?")  # type: ignore[arg-type]
    who = f" {r['share_with']}" if r.get("share_with") else ""
    grants = f"; from {r['grants']} grants" if (r.get("grants") or 0) > 1 else ""
    return (f"{r.get('owner')}:/{str(r.get('path') or '').lstrip('/')} → {kind}{who} "
            f"({permission_words(r.get('permissions'))}{grants})")
