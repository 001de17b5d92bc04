"""The inventory export (`report inventory`): one row per live item, streamed from the store as CSV or JSON."""

from __future__ import annotations

import csv
import datetime as dt
import json
from typing import IO, Any

from migrate.session import Selection
from migrate.store import StateStore

COLUMNS = ("drive_id", "item_id", "path", "kind", "size", "mtime", "quick_xor_hash")


def _kind(row: dict[str, Any]) -> str:
    if row["package_type"]:
        return "notebook" if row["package_type"] == "oneNote" else "package"
    return "folder" if row["is_folder"] else "file"


def _iso(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts is not None else ""


def inventory_rows(store: StateStore, selection: Selection = Selection()) -> Any:
    """Rows of the selected drives in store order, one page at a time (bounded memory); the root is left out."""
    for d in selection.drives(store):
        for row in store.iter_items(d["id"]):
            if row["parent_id"] is None and row["path"] == "":
                continue
            yield {"drive_id": row["drive_id"], "item_id": row["item_id"], "path": row["path"], "kind": _kind(row),
                   "size": row["size"], "mtime": _iso(row["mtime"]), "quick_xor_hash": row["quick_xor_hash"] or ""}


def write_inventory(store: StateStore, out: IO[str], fmt: str = "csv", selection: Selection = Selection()) -> int:
    """Write the inventory as CSV (with a header) or JSON (an array, one object per line); returns the row count."""
    n = 0
    if fmt == "csv":
        w = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for row in inventory_rows(store, selection):
            w.writerow(row)
            n += 1
        return n
    out.write("[")
    for row in inventory_rows(store, selection):
        out.write(("\n" if n == 0 else ",\n") + json.dumps(row, ensure_ascii=False))
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def render_scan(summary: Any) -> str:
    """The end-of-scan text: one line per drive, totals, Graph cost, and what needs attention."""
    lines = []
    for d in sorted(summary.drives, key=lambda d: (d.state != "scanned", d.kind, d.owner, d.name)):
        who = f"{d.name} of {d.owner}" if d.owner else d.name
        if d.error:
            lines.append(f"  {d.state:<11} {d.kind:<8} {who}, {d.drive_id}: {d.error}")
            continue
        extra = f", {d.deleted} deleted" if d.deleted else ""
        extra += f", {d.permissions_read} shared items' permissions read" if d.permissions_read else ""
        extra += f", {d.orphans} without a resolvable path" if d.orphans else ""
        lines.append(f"  {d.mode:<11} {d.kind:<8} {who}: {d.items} items in {d.pages} pages "
                     f"({d.items_per_s:,.0f}/s); now {d.files} files, {d.folders} folders, {_size(d.bytes)}{extra}")
    g = summary.source_stats or {}
    req = g.get("requests") or {}
    lines.append(f"scanned {len(summary.drives)} drives: {summary.items} items in {summary.seconds:.1f} s "
                 f"({summary.items_per_s:,.0f} items/s); {sum(req.values())} Graph requests, "
                 f"{g.get('throttled', 0)} throttled, {g.get('waited_s', 0)} s waited")
    if summary.not_migrated:
        names = ", ".join(summary.not_migrated[:5]) + (f" and {len(summary.not_migrated) - 5} more"
                                                       if len(summary.not_migrated) > 5 else "")
        lines.append(f"not scanned: {len(summary.not_migrated)} drive(s) not migrated (blank target in users.csv / "
                     f"sites.csv): {names}; name one with --drive or --user to scan it anyway")
    if summary.vanished:
        lines.append(f"{len(summary.vanished)} drive(s) no longer exist at the source (recorded as vanished); "
                     "run `m365-migrate discover` to refresh the list")
    if summary.failed:
        lines.append(f"{len(summary.failed)} drive(s) failed; run `m365-migrate scan` again to resume them")
    return "\n".join(lines)
