"""Plan (dry-run) report renderers: Markdown, one self-contained HTML file, and CSV + JSON for every list.

File names are hostile: every value is escaped for its format (HTML entities, Markdown pipes and backticks, CSV
cells that would start a spreadsheet formula), so `<script>` in a name renders as text.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import json
import shutil
from pathlib import Path
from typing import Any

from migrate.engine.files.teamfolders import describe_permissions
from migrate.engine.shares.plan import NOT_CARRIED_COLUMNS
from migrate.reports.text import human_bytes, permission_words
from migrate.reports.text import human_duration as _dur

LISTS: dict[str, tuple[str, list[str]]] = {
    "renames": ("Renames forced by the target's name rules",
                ["source_path", "target_path", "target_user", "reasons", "drive_id", "item_id"]),
    "conflicts": ("Conflicts with what the target already holds",
                  ["path", "target_user", "target_path", "problem", "policy", "action", "renamed_to", "drive_id",
                   "item_id"]),
    "unsupported": ("Unsupported and risky items", ["path", "kind", "size", "reason", "action", "drive_id",
                                                     "item_id"]),
    "unmapped": ("Drives not migrated (unmapped or blank target)",
                 ["kind", "name", "owner", "status", "reason", "mapping_row", "files", "bytes", "drive_id"]),
    "shares": ("Share plan: one share per item and recipient",
               ["owner", "path", "kind", "share_with", "permissions", "expire_date", "password", "grants",
                "from_grants", "note", "drive_id", "item_id"]),
    "not_carried_over": ("Grants not carried over, and why", NOT_CARRIED_COLUMNS),
    "grants": ("Source grants and what each becomes",
               ["source_path", "grant", "link_scope", "roles", "grantee", "action", "share_with", "permissions",
                "expire_date", "password", "owner", "path", "reason", "drive_id", "item_id"]),
    "versions_not_carried": ("Earlier versions not carried (listed files), and why",
                             ["path", "version_id", "mtime", "size", "author", "status", "reason", "target_user",
                              "target_path", "drive_id", "item_id"]),
}
TEAM_FOLDER_COLS = ["team_folder", "rows", "writer", "writer_sees", "action", "changes", "groups", "not_carried",
                    "notes"]
# Column headings people read in plan.html and plan.md (the CSV and JSON keep the field names for scripts)
HEADINGS = {"rows": "sites.csv rows", "writer": "written by", "writer_sees": "what the writer sees",
            "action": "copy will", "changes": "changes", "groups": "groups and rights",
            "not_carried": "not carried over", "team_folder": "team folder"}


HTML_ROWS = 2000  # per list in the HTML and Markdown; the CSV and JSON files always hold every row


def heading(col: str) -> str:
    """A column's heading for people: 'source_path' reads 'source path'."""
    return HEADINGS.get(col) or col.replace("_", " ")


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list | tuple):
        return "; ".join(str(x) for x in v)
    return str(v)


def _csv_safe(v: Any) -> str:
    s = _cell(v)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def _shown(col: str, v: Any) -> Any:
    """What a person reads in plan.html and plan.md: share permissions in words (the CSV keeps the bitmask)."""
    return permission_words(v) if col == "permissions" else v


def _md(v: Any) -> str:
    s = _cell(v).replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`").replace("<", "&lt;")
    return " ".join(s.split()) if s.strip() else s.replace("\n", " ")


def _h(v: Any) -> str:
    return html.escape(_cell(v), quote=True)


def team_folder_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per team folder the plan checked (what copy will do, which groups get what, what is not)."""
    out = []
    for f in doc.get("team_folders", []):
        groups = [f"{g['group']}: {g['rights']}" + (" + ACL management" if g["manage"] else "") for g in f["grants"]]
        out.append({"team_folder": f["mount_point"], "rows": f["rows"], "writer": f["writer"],
                    "writer_sees": f["seen_as"] + ("" if f["seen_as"] != "team folder" else
                                                   " (writable)" if f["writable"] else " (read-only)"),
                    "action": f["action"], "changes": f["changes"] or ["none"],
                    "groups": groups or [f"{g}: {describe_permissions(p)}" for g, p in
                                         sorted(f["current_groups"].items())],
                    "not_carried": f["not_carried"], "notes": f["notes"]})
    return out


def _summary_rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    s, e = doc["summary"], doc["estimate"]
    return [
        ("Drives selected", f"{s['drives']} ({s['drives_mapped']} mapped, {s['drives_unmapped']} not migrated)"),
        ("Files / bytes at the source", f"{s['files']} files, {human_bytes(s['bytes'])} ({s['bytes']} bytes)"),
        ("Files to copy", f"{s['planned_files']} files, {human_bytes(s['planned_bytes'])} ({s['planned_bytes']} bytes)"),
        ("Already at the target", f"{s['already_files']} files, {human_bytes(s['already_bytes'])} (same size at the "
                                  "target path; `copy` checks their hash there and records the whole ones without "
                                  "sending them)"),
        ("Renames", str(s["renames"])),
        ("Conflicts", str(s["conflicts"])),
        ("Unsupported / risky", str(s["unsupported"])),
        ("Share plan", f"{s.get('shares_planned', 0)} shares to create (one per item and recipient, from "
                       f"{s.get('grants_shared', 0)} grants); {s.get('grants_not_needed', 0)} grants need none"),
        ("Grants not carried over", f"{s.get('grants_not_carried_over', 0)} ({s.get('grants_reported', 0)} to decide "
                                    f"by hand, {s.get('grants_dropped', 0)} dropped): see {list_file('not_carried_over')}"),
        ("Estimated duration", f"{_dur(e['seconds'])} ({e['basis']})"),
        ("Graph cost", f"{e['graph_requests']} requests, {e['resource_units']} resource units "
                       f"({e.get('ru_per_file', 0):.2f} per file); {e.get('budget_minutes', 0):,.0f} min or "
                       f"{e.get('budget_days', 0):.2f} days of the budget"),
        ("Final sync on switchover day", _final_sync(e)),
    ] + _groupware_rows(doc.get("groupware"))


def _final_sync(e: dict[str, Any]) -> str:
    f = e.get("final_sync") or {}
    if not f:
        return "-"
    verdict = "fits" if f["fits"] else "does NOT fit"
    return (f"about {f['ru']:,} RU, {_dur(f['seconds'])}: {verdict} the {f['window_hours']:g}-hour window "
            f"({f['assumption']})")


def _groupware_rows(gw: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not gw:
        return []
    from migrate.engine.groupware.run import estimate_text

    t = gw["totals"]
    return [("Calendars and contacts", f"{t['events']} events/series, {t['contacts']} contacts in "
                                       f"{len(gw['collections'])} collections; {t['puts']} objects to write "
                                       f"({human_bytes(t['bytes'])})"),
            ("Calendars/contacts not carried", f"{t['unsupported']} cannot be carried, {len(gw['notes'])} carried "
                                               f"with a note, {len(gw['skipped'])} collections skipped: see "
                                               "groupware_unsupported.csv"),
            ("Calendars/contacts estimate", estimate_text(gw.get("estimate") or {}).removeprefix("estimate: "))] + (
        [("Calendar attachments to Files", f"{t['attachment_files']} files, {human_bytes(t['attachment_file_bytes'])}"
                                           " in the owners' Files (they count against the users' quotas)")]
        if t.get("attachment_files") else [])


GW_COLS = ["user", "kind", "collection", "target_user", "target_uri", "objects", "series", "instances",
           "unsupported", "bytes", "files", "file_bytes"]
GW_PROBLEM_COLS = ["user", "collection", "title", "what", "detail"]


def groupware_problem_rows(gw: dict[str, Any]) -> list[dict[str, Any]]:
    """Every calendar/contact item that is not carried as is: unsupported, carried with a note, skipped."""
    return ([{**{k: u[k] for k in ("user", "collection", "title")}, "what": "unsupported", "detail": u["reason"]}
             for u in gw["unsupported"]]
            + [{**{k: n[k] for k in ("user", "collection", "title")}, "what": "note", "detail": n["note"]}
               for n in gw["notes"]]
            + [{"user": x["user"], "collection": x["collection"], "title": "", "what": "skipped",
                "detail": x["reason"]} for x in gw["skipped"]])


# ---------------------------------------------------------------------------------------------- Markdown
VERSION_COLS = ["batch", "policy", "files asked", "earlier versions", "bytes", "Graph RU"]


def version_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Per batch: what carrying earlier versions costs (engine.versions_plan), for every format."""
    v = doc.get("versions") or {}
    return [{"batch": b["batch"], "policy": b.get("policy", v.get("policy")), "files asked": b["files_asked"],
             "earlier versions": b["versions"], "bytes": human_bytes(b["bytes"]), "Graph RU": b["ru"]} for b in v.get("batches") or []]


def version_text(doc: dict[str, Any]) -> list[str]:
    """The version-history lines of the plan: policy, per batch cost, what counts against each account's quota."""
    v = doc.get("versions") or {}
    if not v:
        return []
    if not v.get("wanted", v.get("policy") != "none"):
        return ["version history: not carried ([transfer] versions = \"none\"" +
                (", and no mapping row asks for versions)" if v.get("overrides") else ")")]
    if not v.get("supported"):
        return [f"version history: the target keeps no versions; [transfer] versions = {v['policy']!r} is not "
                "carried out (listed as not preserved)"]
    t = v.get("totals") or {"files_asked": 0, "versions": 0, "bytes": 0, "ru": 0}
    rows = f"; {v['overrides']} drive(s) follow the versions column of their mapping row" \
        if v.get("overrides") else ""
    out = [f"version history ([transfer] versions = {v['policy']!r}{rows}): {t['files_asked']} files asked, up to "
           f"{t['versions']} earlier versions, {human_bytes(t['bytes'])}, {t['ru']} Graph RU ({v['note']})"]
    if v.get("copied_without_history"):
        out.append(f"  {v['copied_without_history']} files were copied before versions were enabled (or raised): "
                   "the next `copy` or `sync` puts their history under them (counted above)")
    out += [f"  versions count against {a['user']}'s quota: up to {human_bytes(a['bytes'])} ({a['versions']} "
            "versions)" for a in v.get("accounts") or [] if a["versions"]]
    return out


def render_markdown(doc: dict[str, Any]) -> str:
    out = [f"# Migration plan (dry run) — {_md(doc['generated_at'])}", "",
           "Nothing was written to the target. Figures come from the state database and read-only checks of the "
           "target.", "", "## Summary", "", "| | |", "|---|---|"]
    out += [f"| {_md(k)} | {_md(v)} |" for k, v in _summary_rows(doc)]
    out += ["", f"*Estimate basis:* {_md(doc['estimate']['assumption'])}", ""]
    if doc["warnings"]:
        out += ["## Warnings", ""] + [f"- {_md(w)}" for w in doc["warnings"]] + [""]
    out += ["## Batches", "", "| batch | drives | files | bytes | duration | Graph requests | RU | days of budget | "
            "final sync |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for b in doc["batches"]:
        e = b["estimate"]
        out.append(f"| {_md(b['batch'])} | {b['drives']} | {b['files']} | {human_bytes(b['bytes'])} | "
                   f"{_dur(e['seconds'])} | {e['graph_requests']} | {e['resource_units']} | "
                   f"{e.get('budget_days', 0):.2f} | {_md(_final_sync(e))} |")
    vrows = version_rows(doc)
    out += ["", "## Version history", ""] + [_md(line) for line in version_text(doc)] + [""]
    if vrows:
        out += ["| " + " | ".join(VERSION_COLS) + " |", "|---|" + "---:|" * (len(VERSION_COLS) - 1)]
        out += ["| " + " | ".join(_md(r[c]) for c in VERSION_COLS) + " |" for r in vrows]
    out += ["", "## Drives", "", "| kind | drive | owner | batch | target | files | bytes | to copy | renames | "
            "conflicts | unsupported |", "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for d in doc["drives"]:
        tgt = f"{d['target_user'] or ''}:{d['target_root']}" if d["status"] == "mapped" else d["status"]
        out.append(f"| {_md(d['kind'])} | {_md(d['name'])} | {_md(d['owner'])} | {_md(d['batch'])} | {_md(tgt)} | "
                   f"{d['files']} | {human_bytes(d['bytes'])} | {d['planned_files']} | {d['renames']} | "
                   f"{d['conflicts']} | {d['unsupported']} |")
    tf = team_folder_rows(doc)
    if tf:
        out += ["", f"## Team folders ({len(tf)})", "", "| " + " | ".join(map(heading, TEAM_FOLDER_COLS)) + " |",
                "|" + "---|" * len(TEAM_FOLDER_COLS)]
        out += ["| " + " | ".join(_md(r.get(c)) for c in TEAM_FOLDER_COLS) + " |" for r in tf]
    if doc.get("quota"):
        out += ["", "## Quota", "", "| target user | planned | free | verdict |", "|---|---:|---:|---|"]
        for q in doc["quota"]:
            free = quota_free(q["free"])
            out.append(f"| {_md(q['target_user'])} | {human_bytes(q['planned_bytes'])} | {free} | {_md(q['verdict'])} |")
    for key, (title, cols) in LISTS.items():
        rows = doc.get(key) or []
        out += ["", f"## {title} ({len(rows)})", ""]
        if not rows:
            out.append("None.")
            continue
        out += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        out += ["| " + " | ".join(_md(_shown(c, r.get(c))) for c in cols) + " |" for r in rows[:HTML_ROWS]]
        if len(rows) > HTML_ROWS:
            out.append(f"\n… {len(rows) - HTML_ROWS} more rows in {list_file(key)}")
    gw = doc.get("groupware")
    if gw:
        out += ["", f"## Calendars and contacts ({len(gw['collections'])} collections)", "",
                "| " + " | ".join(GW_COLS) + " |", "|" + "---|" * len(GW_COLS)]
        out += ["| " + " | ".join(_md(r.get(c)) for c in GW_COLS) + " |" for r in gw["collections"]]
        probs = groupware_problem_rows(gw)
        out += ["", f"### Calendars and contacts not carried as is ({len(probs)})", ""]
        out += (["| " + " | ".join(GW_PROBLEM_COLS) + " |", "|" + "---|" * len(GW_PROBLEM_COLS)]
                + ["| " + " | ".join(_md(r.get(c)) for c in GW_PROBLEM_COLS) + " |" for r in probs[:HTML_ROWS]]
                if probs else ["None."])
    if doc.get("mail"):
        from migrate.reports.mail_plan import mail_section_markdown

        out += mail_section_markdown(doc["mail"])
    out += ["", "## Rules and policies", "", "```json",
            json.dumps({"policies": doc["policies"], "name_rules": doc["name_rules"]}, indent=2,
                       ensure_ascii=False).replace("`", "'"), "```", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- HTML
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1200px;color:#1d2433;padding:0 16px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:2px solid #e3e8ef;padding-bottom:4px}
.note{color:#556;margin:4px 0 16px}.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:10px}
.card{border:1px solid #dfe4ec;border-radius:8px;padding:10px 12px;background:#f8fafc}
.card b{display:block;font-size:20px}.card span{color:#556;font-size:12px}.warn{background:#fff6e5;border-color:#f0c36d}
table{border-collapse:collapse;width:100%;margin:6px 0 12px;font-size:13px}th,td{border:1px solid #e3e8ef;padding:4px 6px;text-align:left;vertical-align:top;word-break:break-word}
th{background:#f1f4f8;word-break:normal;overflow-wrap:normal;hyphens:none}td.n{text-align:right;white-space:nowrap}.ok{color:#1a7f37}.bad{color:#b42318;font-weight:600}
details{margin:6px 0}summary{cursor:pointer;font-weight:600}svg text{font:12px system-ui,sans-serif}
@media print{details{display:block}details>summary{list-style:none}}
"""


def list_file(key: str) -> str:
    """The CSV a list of the plan is written to; the grants not carried over keep the one name `share`, `status`
    and the state folder's current copy use."""
    from migrate.reports.grants import FILE_NAME

    return FILE_NAME if key == "not_carried_over" else f"{key}.csv"


def quota_free(free: int | None) -> str:
    """Nextcloud reports an unlimited quota as a negative free space (-3); None: the target did not say."""
    return "unknown" if free is None else "unlimited" if free < 0 else human_bytes(free)


def _table(cols: list[str], rows: list[dict[str, Any]], numeric: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    head = "".join(f"<th>{_h(heading(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td class=n>{_h(_shown(c, r.get(c)))}</td>" if c in numeric else
                                    f"<td>{_h(_shown(c, r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _chart(drives: list[dict[str, Any]]) -> str:
    """Bytes per drive as horizontal bars, inline SVG (no script, no external asset)."""
    rows = sorted((d for d in drives if d["bytes"]), key=lambda d: -d["bytes"])[:40]
    if not rows:
        return "<p class=note>No bytes to show.</p>"
    top = max(d["bytes"] for d in rows)
    bar_h, label_w, width = 22, 330, 1100
    parts = [f'<svg role="img" aria-label="Bytes per drive" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{bar_h * len(rows) + 10}">']
    for i, d in enumerate(rows):
        y = i * bar_h + 4
        w = max(2, int((width - label_w - 110) * d["bytes"] / top))
        color = "#3b82f6" if d["status"] == "mapped" else "#9aa4b2"
        label = f"{d['name']} — {d['owner'] or ''}"
        if len(label) > 48:
            label = label[:47] + "…"
        parts.append(f'<text x="0" y="{y + 14}">{_h(label)}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h - 6}" fill="{color}" rx="3">'
                     f'<title>{_h(d["name"])}: {d["bytes"]} bytes</title></rect>'
                     f'<text x="{label_w + w + 6}" y="{y + 14}">{_h(human_bytes(d["bytes"]))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(doc: dict[str, Any]) -> str:
    s, e = doc["summary"], doc["estimate"]
    cards = [("files to copy", f"{s['planned_files']}", False), ("bytes to copy", human_bytes(s["planned_bytes"]), False),
             ("estimated duration", _dur(e["seconds"]), False), ("resource units", str(e["resource_units"]), False),
             ("renames", str(s["renames"]), s["renames"] > 0), ("conflicts", str(s["conflicts"]), s["conflicts"] > 0),
             ("unsupported / risky", str(s["unsupported"]), s["unsupported"] > 0),
             ("shares to create", str(s.get("shares_planned", 0)), False),
             ("grants not carried over", str(s.get("grants_not_carried_over", 0)),
              s.get("grants_not_carried_over", 0) > 0),
             ("drives not migrated", str(s["drives_unmapped"]), s["drives_unmapped"] > 0)]
    h = ["<!doctype html><html lang=en><head><meta charset=utf-8>",
         "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
         f"<title>Migration plan {_h(doc['generated_at'])}</title><style>{CSS}</style></head><body>",
         f"<h1>Migration plan (dry run)</h1><p class=note>Generated {_h(doc['generated_at'])} from "
         f"{_h(doc.get('state', ''))}. Nothing was written to the target.</p>",
         "<div class=cards>" + "".join(f"<div class='card{' warn' if w else ''}'><b>{_h(v)}</b><span>{_h(k)}</span></div>"
                                       for k, v, w in cards) + "</div>",
         "<h2>Summary</h2>" + _table(["item", "value"], [{"item": k, "value": v} for k, v in _summary_rows(doc)]),
         f"<p class=note><b>Estimate basis:</b> {_h(e['assumption'])}</p>"]
    if doc["warnings"]:
        h.append("<h2>Warnings</h2><ul>" + "".join(f"<li>{_h(w)}</li>" for w in doc["warnings"]) + "</ul>")
    brows = [{"batch": b["batch"], "drives": b["drives"], "files": b["files"], "size": human_bytes(b["bytes"]),
              "bytes": b["bytes"], "duration": _dur(b["estimate"]["seconds"]),
              "Graph requests": b["estimate"]["graph_requests"], "RU": b["estimate"]["resource_units"],
              "days of budget": f"{b['estimate'].get('budget_days', 0):.2f}",
              "final sync": _final_sync(b["estimate"])}
             for b in doc["batches"]]
    h.append("<h2>Batches</h2>" + _table(list(brows[0]) if brows else ["batch"], brows,
                                         {"drives", "files", "size", "bytes", "Graph requests", "RU"}))
    if doc.get("versions"):
        h.append("<h2>Version history</h2>" + "".join(f"<p class=note>{_h(x)}</p>" for x in version_text(doc))
                 + (_table(VERSION_COLS, version_rows(doc), {"files asked", "earlier versions", "bytes", "Graph RU"})
                    if version_rows(doc) else ""))
    h.append("<h2>Bytes per drive</h2>" + _chart(doc["drives"]))
    drows = [{"kind": d["kind"], "drive": d["name"], "owner": d["owner"], "batch": d["batch"],
              "target": f"{d['target_user'] or ''}:{d['target_root']}" if d["status"] == "mapped" else d["status"],
              "files": d["files"], "size": human_bytes(d["bytes"]), "to copy": d["planned_files"],
              "already": d["already_files"], "renames": d["renames"], "conflicts": d["conflicts"],
              "unsupported": d["unsupported"]} for d in doc["drives"]]
    h.append("<h2>Drives</h2>" + _table(list(drows[0]) if drows else ["drive"], drows,
                                        {"files", "size", "to copy", "already", "renames", "conflicts", "unsupported"}))
    if team_folder_rows(doc):
        h.append("<h2>Team folders</h2>" + _table(TEAM_FOLDER_COLS, team_folder_rows(doc)))
    if doc.get("quota"):
        qrows = [{"target user": q["target_user"], "planned": human_bytes(q["planned_bytes"]),
                  "free": quota_free(q["free"]),
                  "verdict": q["verdict"]} for q in doc["quota"]]
        h.append("<h2>Quota</h2>" + _table(list(qrows[0]), qrows, {"planned", "free"}))
    for key, (title, cols) in LISTS.items():
        rows = doc.get(key) or []
        more = (f"<p class=note>Showing {HTML_ROWS} of {len(rows)}; every row is in {list_file(key)} and its "
                f".json.</p>"
                if len(rows) > HTML_ROWS else "")
        body = _table(cols, rows[:HTML_ROWS], {"size", "bytes", "files"}) if rows else "<p>None.</p>"
        h.append(f"<h2>{_h(title)} ({len(rows)})</h2><details{' open' if 0 < len(rows) <= 200 else ''}>"
                 f"<summary>{len(rows)} rows</summary>{body}{more}</details>")
    gw = doc.get("groupware")
    if gw:
        probs = groupware_problem_rows(gw)
        h.append(f"<h2>Calendars and contacts ({len(gw['collections'])} collections)</h2>"
                 + _table(GW_COLS, gw["collections"], {"objects", "series", "instances", "unsupported", "bytes"}))
        h.append(f"<h2>Calendars and contacts not carried as is ({len(probs)})</h2><details"
                 f"{' open' if 0 < len(probs) <= 200 else ''}><summary>{len(probs)} rows</summary>"
                 + (_table(GW_PROBLEM_COLS, probs[:HTML_ROWS]) if probs else "<p>None.</p>") + "</details>")
    if doc.get("mail"):   # plan --what files,mail: one report for the cutover, the mail details beside it
        from migrate.reports.mail_plan import mail_section_html

        h.append(mail_section_html(doc["mail"]))
    h.append("<h2>Rules and policies</h2><pre>" + _h(json.dumps({"policies": doc["policies"],
                                                                 "name_rules": doc["name_rules"]}, indent=2,
                                                                ensure_ascii=False)) + "</pre>")
    h.append("</body></html>")
    return "\n".join(h)


# ---------------------------------------------------------------------------------------------- files
def write_plan_reports(doc: dict[str, Any], base: Path, *, output: Path | None = None,
                       now: dt.datetime | None = None, shared: bool = True) -> Path:
    """Write plan.md, plan.html, plan.json and <list>.csv/.json into `output`, or into
    `base/plan-<timestamp>/` mirrored to `base/plan-latest/`. Returns the folder written."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(output) if output else Path(base) / f"plan-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plan.md").write_text(render_markdown(doc), encoding="utf-8")
    (folder / "plan.html").write_text(render_html(doc), encoding="utf-8")
    (folder / "plan.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    lists = {**LISTS, "drives": ("", []), "team_folders": ("", TEAM_FOLDER_COLS)}
    gw = doc.get("groupware")
    if gw:
        lists.update(groupware_collections=("", GW_COLS), groupware_unsupported=("", GW_PROBLEM_COLS))
    from migrate.reports.grants import write_not_carried_over

    write_not_carried_over(doc.get("not_carried_over") or [], folder)
    if doc.get("mail"):   # mail-plan.html etc. beside plan.html, which links to it (and into plan-latest/)
        from migrate.reports.mail_plan import write_mail_plan

        write_mail_plan(doc["mail"], folder)
    if shared:  # the state's own copy of the list (`report plan -o` leaves the state's folder alone)
        write_not_carried_over(doc.get("not_carried_over") or [], Path(base))
    for key, (_title, cols) in lists.items():
        if key == "not_carried_over":
            continue  # written above, under the one name share and status use
        rows = (team_folder_rows(doc) if key == "team_folders" else gw["collections"] if key ==
                "groupware_collections" else groupware_problem_rows(gw) if key == "groupware_unsupported"
                else doc.get(key) or [])
        cols = cols or (list(rows[0]) if rows else ["drive_id"])
        with open(folder / f"{key}.csv", "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for r in rows:
                w.writerow([_csv_safe(r.get(c)) for c in cols])
        (folder / f"{key}.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False, default=str),
                                            encoding="utf-8")
    if not output:
        latest = Path(base) / "plan-latest"
        tmp = Path(base) / ".plan-latest.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(folder, tmp)
        shutil.rmtree(latest, ignore_errors=True)
        tmp.rename(latest)
    return folder


def render_summary_text(doc: dict[str, Any], folder: Path) -> str:
    """The terminal summary printed after `plan` and `report plan`."""
    lines = [f"{k}: {v}" for k, v in _summary_rows(doc)]
    lines.append(f"estimate basis: {doc['estimate']['assumption']}")
    lines += version_text(doc)
    lines += [f"warning: {w}" for w in doc["warnings"]]
    for r in team_folder_rows(doc):
        lines.append(f"team folder {r['team_folder']} ({', '.join(r['rows'])}): {r['writer']} sees {r['writer_sees']}; "
                     f"copy will: {'; '.join(r['changes'])}")
        if r["groups"]:
            lines.append(f"  groups: {'; '.join(r['groups'])}")
        lines += [f"  not carried over: {n}" for n in r["not_carried"]]
        lines += [f"  note: {n}" for n in r["notes"]]
    if doc.get("mail"):
        from migrate.engine.mail.plan import estimate_text

        m = doc["mail"]["totals"]
        lines.append(f"mail: {m['messages']} messages ({human_bytes(m['bytes'])}) in {m['folders']} folders of "
                     f"{m['mailboxes']} mailboxes, {m['not_carried']} not carried; "
                     f"{estimate_text(doc['mail']['estimate'], _dur)}")
    lines.append(f"reports: {folder / 'plan.html'} (also plan.md, plan.json and a CSV/JSON per list"
                 + ("; the mail plan in mail-plan.html, linked from plan.html)" if doc.get("mail") else ")"))
    lines.append("next: read the report; fix mappings or conflicts and run `plan` again, or run `m365-migrate copy`")
    return "\n".join(lines)
