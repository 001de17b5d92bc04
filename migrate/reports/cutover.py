"""The cutover report of one batch: Markdown, HTML, JSON, and a CSV per list, in state/reports/cutover-<batch>-<time>/."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from migrate.reports.sync import LISTS, write_bundle
from migrate.reports.text import human_bytes

LISTS.update({
    "steps": ("Steps and durations", ["step", "seconds", "changes", "conflicts", "failed", "checked", "ok", "gaps",
                                      "not_copied", "created", "already", "problems", "new", "moved", "edited",
                                      "deleted", "error"]),
    "gaps": ("Gaps found by verify", ["path", "target", "problem", "drive_id", "item_id"]),
    "share_problems": ("Planned shares not made or not seen by their recipients",
                       ["owner", "path", "share_with", "reason", "next", "drive_id", "item_id"]),
    "late_items": ("Changed at the source after the freeze", ["change", "path", "is_folder", "size", "drive_id",
                                                               "item_id"]),
    "drives": ("Drives of the batch", ["kind", "name", "owner", "id"]),
})
ORDER = ("steps", "late_items", "conflicts", "gaps", "failed", "share_problems", "kept", "drives")


def _rows(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    head = doc.get("audit_head") or {}
    sync = doc.get("sync") or {}
    share = doc.get("share") or {}
    out: list[tuple[str, Any]] = [
        ("verdict", "WHOLE" if doc["whole"] else "NOT WHOLE: " + "; ".join(doc["problems"])),
        ("batch", doc["batch"]), ("drives", len(doc["drives"])),
        ("files verified", doc["files"]), ("bytes verified", f"{doc['bytes']} ({human_bytes(doc['bytes'])})"),
        ("changes applied by the final sync", ", ".join(f"{v} {k}" for k, v in (sync.get("applied") or {}).items()
                                                         if v) or "none"),
        ("conflicts (both versions kept)", len(doc["conflicts"])),
        ("gaps (verify)", len(doc["gaps"])), ("files not copied", doc["not_copied"]),
        ("shares created / already there", f"{share.get('created', 0)} / {share.get('already', 0)}"),
        ("shares accepted as their recipients / not seen by every recipient yet",
         f"{share.get('accepted', 0)} / {share.get('not_visible', 0)}"),
        ("changes after the freeze", sum((doc.get("late_changes") or {}).values())),
        ("duration", f"{doc['seconds']:.1f} s"),
        ("audit trail head", f"record {head.get('seq')} hash {head.get('hash')}"),
    ]
    return out


def write_cutover_report(summary: Any, base: Path, *, output: Path | None = None) -> Path:
    doc = summary.to_dict()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", doc["batch"]) or "batch"
    folder = output or base / f"cutover-{safe}-{stamp}"
    lists = {k: doc.get(k) or [] for k in ORDER}
    title = f"m365-migrate cutover: batch {doc['batch']} — {'WHOLE' if doc['whole'] else 'NOT WHOLE'}"
    write_bundle(folder, "cutover", title, {**doc, "generated_at": stamp}, _rows(doc), lists)
    return folder


def render_cutover_text(summary: Any, folder: Path) -> str:
    doc = summary.to_dict()
    lines = [f"cutover of batch {doc['batch']}: " + ("WHOLE" if doc["whole"] else "NOT WHOLE")]
    for st in doc["steps"]:
        figures = ", ".join(f"{k} {v}" for k, v in st.items() if k not in ("step", "seconds"))
        lines.append(f"  {st['step']}: {st['seconds']} s ({figures})")
    for p in doc["problems"]:
        lines.append(f"  !! {p}")
    for item in doc["late_items"][:20]:
        lines.append(f"  CHANGED AFTER THE FREEZE ({item['change']}): {item['path']}")
    lines.append(f"files {doc['files']} ({human_bytes(doc['bytes'])}), audit head {doc['audit_head'].get('hash')}")
    lines.append(f"report: {folder}/cutover.html (also .md, .json and a CSV per list)")
    return "\n".join(lines)
