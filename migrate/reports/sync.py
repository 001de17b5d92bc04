"""The change list of `sync` (and its dry run): Markdown, one self-contained HTML file, CSV and JSON.

Names are hostile: values are escaped per format as in the plan report (reports.plan helpers).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

from migrate.csvfile import write_atomic
from migrate.reports.plan import _csv_safe, _h, _md

CHANGE_COLS = ["kind", "source_path", "user", "from_path", "to_path", "is_folder", "size", "edited", "covered_by",
               "drive_id", "item_id"]
CONFLICT_COLS = ["source_path", "target_user", "target_path", "problem", "action", "ours_at", "target_version",
                 "source_version", "drive_id", "item_id"]
KEPT_COLS = ["source_path", "target_user", "target_path", "folder", "inside", "drive_id", "item_id"]
LISTS = {"changes": ("Changes", CHANGE_COLS), "conflicts": ("Conflicts (both versions kept)", CONFLICT_COLS),
         "kept": ("Deleted at the source, kept at the target (policy keep)", KEPT_COLS),
         "renames": ("Renames forced by the name rules", ["source_path", "target_path", "target_user", "reasons"]),
         "failed": ("Failed", ["path", "error", "drive_id", "item_id"])}
MAX_ROWS = 2000


def _val(v: Any) -> Any:
    return json.dumps(v, sort_keys=True, default=str) if isinstance(v, dict) else v


def write_csv(path: Path, cols: list[str], rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for r in rows:
        w.writerow([_csv_safe(_val(r.get(c))) for c in cols])
    write_atomic(path, buf.getvalue().encode("utf-8"))


def _lists(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {k: doc.get(k) or [] for k in LISTS}


def markdown(title: str, summary_rows: list[tuple[str, Any]], lists: dict[str, list[dict[str, Any]]]) -> str:
    out = [f"# {title}", "", "| | |", "|---|---|"]
    out += [f"| {_md(k)} | {_md(v)} |" for k, v in summary_rows]
    for key, rows in lists.items():
        head, cols = LISTS.get(key, (key, sorted({c for r in rows for c in r})))
        out += ["", f"## {head} ({len(rows)})", ""]
        if not rows:
            out.append("none")
            continue
        out += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        out += ["| " + " | ".join(_md(_val(r.get(c))) for c in cols) + " |" for r in rows[:MAX_ROWS]]
        if len(rows) > MAX_ROWS:
            out.append(f"\n… {len(rows) - MAX_ROWS} more in the CSV/JSON files")
    return "\n".join(out) + "\n"


def html_page(title: str, summary_rows: list[tuple[str, Any]], lists: dict[str, list[dict[str, Any]]]) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_h(title)}</title><style>"
             "body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}"
             ".bad{color:#a00;font-weight:bold}</style></head><body>", f"<h1>{_h(title)}</h1><table>"]
    parts += [f"<tr><th>{_h(k)}</th><td>{_h(v)}</td></tr>" for k, v in summary_rows]
    parts.append("</table>")
    for key, rows in lists.items():
        head, cols = LISTS.get(key, (key, sorted({c for r in rows for c in r})))
        cls = " class='bad'" if key in ("conflicts", "failed", "gaps") and rows else ""
        parts.append(f"<h2{cls}>{_h(head)} ({len(rows)})</h2>")
        if rows:
            parts.append("<table><tr>" + "".join(f"<th>{_h(c)}</th>" for c in cols) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{_h(_val(r.get(c)))}</td>" for c in cols) + "</tr>"
                      for r in rows[:MAX_ROWS]]
            parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_bundle(folder: Path, stem: str, title: str, doc: dict[str, Any], summary_rows: list[tuple[str, Any]],
                 lists: dict[str, list[dict[str, Any]]]) -> Path:
    """`stem`.md, `stem`.html, `stem`.json and one CSV per list in `folder`; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / f"{stem}.md", markdown(title, summary_rows, lists).encode("utf-8"))
    write_atomic(folder / f"{stem}.html", html_page(title, summary_rows, lists).encode("utf-8"))
    write_atomic(folder / f"{stem}.json",
                 json.dumps(doc, indent=2, default=str, ensure_ascii=False).encode("utf-8"))
    for key, rows in lists.items():
        write_csv(folder / f"{key}.csv", LISTS.get(key, (key, sorted({c for r in rows for c in r})))[1], rows)
    return folder


def _summary_rows(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    counts = doc.get("counts") or {}
    rows: list[tuple[str, Any]] = [("mode", "dry run (nothing written to the target)" if doc.get("dry_run")
                                    else "applied"), ("deletions policy", doc.get("deletions"))]
    rows += [(f"{k} (found)", v) for k, v in counts.items()]
    rows += [(f"{k} (done)", v) for k, v in (doc.get("applied") or {}).items()]
    rows += [("conflicts", len(doc.get("conflicts") or [])), ("failed", len(doc.get("failed") or [])),
             ("seconds", round(doc.get("seconds") or 0, 1))]
    graph = (doc.get("scan") or {}).get("graph") or {}
    if graph.get("requests"):
        rows.append(("Graph requests (delta pass)", sum(graph["requests"].values())))
    return rows


def write_sync_reports(summary: Any, base: Path, *, output: Path | None = None) -> Path:
    doc = summary.to_dict()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    folder = output or base / f"sync-{stamp}"
    title = "m365-migrate sync" + (" (dry run)" if doc["dry_run"] else "")
    write_bundle(folder, "sync", title, doc, _summary_rows(doc), _lists(doc))
    return folder


SHOWN = 20  # changes listed on the terminal; every one is in the change list


def change_line(c: dict[str, Any]) -> str:
    """One change as a person reads it: `move  alice:/a.txt → /b/a.txt`."""
    what = c["kind"] + (" (folder)" if c["is_folder"] else "")
    frm, to = c.get("from_path"), c.get("to_path")
    where = f"{frm} → {to}" if frm and to and frm != to else (to or frm or c["source_path"])
    return f"{what:<18} {c['user']}:{where}"


def render_sync_text(summary: Any, folder: Path) -> str:
    doc = summary.to_dict()
    counts = doc["counts"]
    found = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "no changes"
    lines = [("sync --dry-run: " if doc["dry_run"] else "sync: ") + found]
    if not doc["dry_run"]:
        done = ", ".join(f"{v} {k}" for k, v in doc["applied"].items() if v) or "nothing to do"
        lines.append(f"applied: {done}")
    shown = [c for c in doc["changes"] if not c.get("covered_by")]
    for c in shown[:SHOWN]:
        lines.append("  " + change_line(c))
    if len(shown) > SHOWN:
        lines.append(f"  … and {len(shown) - SHOWN} more (in the change list)")
    for c in doc["conflicts"][:20]:
        lines.append(f"  CONFLICT {c['target_user']}:{c['target_path']}: {c['problem']} ({c['action']})")
    for k in doc["kept"][:20]:
        lines.append(f"  kept (deleted at the source, policy keep): {k['target_user']}:{k['target_path']}")
    for f in doc["failed"][:20]:
        lines.append(f"  FAILED {f.get('path')}: {f.get('error')}")
    lines.append(f"change list: {folder}/sync.html (also .md, .json, changes.csv)")
    return "\n".join(lines)
