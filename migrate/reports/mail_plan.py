"""Mail plan (dry-run) reports: mail-plan.md, one self-contained mail-plan.html, mail-plan.json and
mail-not-carried.csv, in the files plan's look and under its escaping rules.

Folder and user names come from the tenant and are untrusted text: each is escaped for its format (HTML
entities, Markdown pipes and backticks, CSV cells that would start a spreadsheet formula).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from migrate.reports.plan import CSS, _csv_safe, _h, _md, _table
from migrate.reports.text import human_bytes
from migrate.reports.text import human_duration as _dur

FILE_NAME = "mail-plan.html"
NOT_CARRIED_COLS = ["user", "folder", "message", "items", "bytes", "reason"]
FOLDER_COLS = ["folder", "messages", "size", "IMAP folder", "target", "note"]
RENAME_COLS = ["user", "folder", "IMAP folder", "target", "reason"]
ROWS = 2000   # per list in the HTML and Markdown; mail-plan.json and mail-not-carried.csv hold every row


def _n(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _estimate(e: dict[str, Any]) -> str:
    from migrate.engine.mail.plan import estimate_text

    return estimate_text(e, _dur)


def _not_carried_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"user": n["user"], "folder": n["folder"], "message": n.get("message", ""), "items": n["items"],
             "bytes": "" if n.get("bytes") is None else f"{n['bytes']:,}", "reason": n["reason"]}
            for n in doc["not_carried"]]


def _folder_rows(box: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"folder": f["folder"], "messages": f["messages"], "size": human_bytes(f["bytes"]),
             "IMAP folder": f["target"], "target": f["target_state"], "note": f["note"]}
            for f in box.get("folder_list", [])]


def _rename_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"user": r["user"], "folder": r["folder"], "IMAP folder": r["target"], "target": r["target_state"],
             "reason": r["reason"]} for r in doc.get("renames", [])]


def _summary(doc: dict[str, Any]) -> list[tuple[str, str]]:
    t, e, q = doc["totals"], doc["estimate"], doc.get("quota") or {}
    return [("Mailboxes", str(t["mailboxes"])),
            ("Folders carried", str(t["folders"])),
            ("Messages to carry", f"{t['messages']} ({human_bytes(t['bytes'])}, Exchange's sizes)"),
            ("Folders renamed at the server", str(t.get("renames", len(doc.get("renames", []))))),
            ("Not carried", f"{t['not_carried']} (folders, messages and online archives; see mail-not-carried.csv)"),
            ("Estimate", _estimate(e)),
            ("Estimate basis", e["basis"]),
            ("IMAP quota", q.get("note") or "not checked by the plan: run `m365-migrate doctor`")]


# ---------------------------------------------------------------------------------------------- Markdown
def render_mail_markdown(doc: dict[str, Any]) -> str:
    out = ["# Mail plan (dry run)", "", f"Generated {_md(doc.get('generated_at', ''))}. Nothing was written to the "
           "IMAP server.", "", "| item | value |", "|---|---|"]
    out += [f"| {k} | {_md(v)} |" for k, v in _summary(doc)]
    out += [""] + [f"- note: {_md(n)}" for n in doc["notes"]]
    out += ["", "## Mailboxes", "", "| mailbox | IMAP user | folders | messages | bytes | folders not carried | "
            "messages not carried | at least |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    out += [f"| {_md(r['user'])} | {_md(r['imap_user'])} | {r['folders']} | {r['messages']} | {r['bytes']:,} | "
            f"{r['not_carried_folders']} | {r['not_carried_messages']} | "
            f"{_dur(r.get('seconds_at_outlook_limit', 0))} |" for r in doc["mailboxes"]]
    for r in doc["mailboxes"]:
        rows = _folder_rows(r)
        out += ["", f"### {_md(r['user'])} → {_md(r['imap_user'])} ({_n(len(rows), 'folder')})", ""]
        out += ["| " + " | ".join(FOLDER_COLS) + " |", "|" + "---|" * len(FOLDER_COLS)]
        out += ["| " + " | ".join(_md(x[c]) for c in FOLDER_COLS) + " |" for x in rows[:ROWS]]
    renames = _rename_rows(doc)
    out += ["", f"## Folders renamed at the server ({len(renames)})", ""]
    out += (["| " + " | ".join(RENAME_COLS) + " |", "|" + "---|" * len(RENAME_COLS)]
            + ["| " + " | ".join(_md(x[c]) for c in RENAME_COLS) + " |" for x in renames[:ROWS]]
            if renames else ["None."])
    out += ["", "## Not carried", ""]
    out += [f"- {_md(n['user'])} / {_md(n['folder'])}{' / ' + _md(n['message']) if n.get('message') else ''}: "
            f"{_md(n['reason'])} ({n['items']} items)" for n in doc["not_carried"][:ROWS]] or ["None."]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------- HTML
def _cards(doc: dict[str, Any]) -> str:
    t, e = doc["totals"], doc["estimate"]
    every = e.get("seconds_all_mailboxes", e["seconds_at_outlook_limit"])
    cards = [("mailboxes", str(t["mailboxes"]), False), ("messages to carry", str(t["messages"]), False),
             ("bytes to carry", human_bytes(t["bytes"]), False), ("estimated duration", _dur(every), False),
             ("folders renamed", str(t.get("renames", 0)), t.get("renames", 0) > 0),
             ("not carried", str(t["not_carried"]), bool(doc.get("attention")))]
    return "<div class=cards>" + "".join(f"<div class='card{' warn' if w else ''}'><b>{_h(v)}</b><span>{_h(k)}"
                                         "</span></div>" for k, v, w in cards) + "</div>"


def render_mail_html(doc: dict[str, Any]) -> str:
    nc = _not_carried_rows(doc)
    renames = _rename_rows(doc)
    h = ["<!doctype html><html lang=en><head><meta charset=utf-8>",
         "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
         f"<title>Mail plan {_h(doc.get('generated_at', ''))}</title><style>{CSS}</style></head><body>",
         f"<h1>Mail plan (dry run)</h1><p class=note>Generated {_h(doc.get('generated_at', ''))}. Nothing was "
         "written to the IMAP server and nothing is ever sent.</p>", _cards(doc),
         "<h2>Summary</h2>" + _table(["item", "value"], [{"item": k, "value": v} for k, v in _summary(doc)]),
         "".join(f"<p class=note>{_h(n)}</p>" for n in doc["notes"])]
    mrows = [{"mailbox": r["user"], "IMAP user": r["imap_user"], "folders": r["folders"], "messages": r["messages"],
              "size": human_bytes(r["bytes"]), "folders not carried": r["not_carried_folders"],
              "messages not carried": r["not_carried_messages"],
              "at least": _dur(r.get("seconds_at_outlook_limit", 0))} for r in doc["mailboxes"]]
    h.append("<h2>Mailboxes</h2>" + (_table(list(mrows[0]), mrows, {"folders", "messages", "size",
                                                                   "folders not carried", "messages not carried",
                                                                   "at least"})
                                     if mrows else "<p>None: run `m365-migrate scan --what mail`.</p>"))
    quota = (doc.get("quota") or {}).get("needs") or []
    if quota:
        qrows = [{"mailbox": q["user"], "IMAP user": q["imap_user"], "size": human_bytes(q["bytes"]),
                  "quota needed (size + 10 %)": human_bytes(q["with_margin"])} for q in quota]
        h.append("<h2>IMAP quota</h2><p class=note>" + _h(doc["quota"]["note"]) + "</p>"
                 + _table(list(qrows[0]), qrows, {"size", "quota needed (size + 10 %)"}))
    for r in doc["mailboxes"]:
        rows = _folder_rows(r)
        more = f"<p class=note>Showing {ROWS} of {len(rows)}; every folder is in mail-plan.json.</p>" \
            if len(rows) > ROWS else ""
        h.append(f"<h2>{_h(r['user'])} → {_h(r['imap_user'])} ({_n(len(rows), 'folder')})</h2><details"
                 f"{' open' if len(rows) <= 200 else ''}><summary>{_n(len(rows), 'folder')}</summary>"
                 + _table(FOLDER_COLS, rows[:ROWS], {"messages", "size"}) + more + "</details>")
    h.append(f"<h2>Folders renamed at the server ({len(renames)})</h2><details"
             f"{' open' if 0 < len(renames) <= 200 else ''}><summary>{_n(len(renames), 'row')}</summary>"
             + (_table(RENAME_COLS, renames[:ROWS]) if renames else "<p>None.</p>") + "</details>")
    h.append(f"<h2>Not carried, and why ({len(nc)})</h2><details{' open' if 0 < len(nc) <= 200 else ''}>"
             f"<summary>{_n(len(nc), 'row')}</summary>"
             + (_table(NOT_CARRIED_COLS, nc[:ROWS], {"items", "bytes"}) if nc else "<p>None.</p>")
             + (f"<p class=note>Showing {ROWS} of {len(nc)}; every row is in mail-not-carried.csv.</p>"
                if len(nc) > ROWS else "") + "</details>")
    h.append("</body></html>")
    return "\n".join(h)


def mail_section_html(doc: dict[str, Any]) -> str:
    """The mail part of the files plan's plan.html: the totals, and a link to mail-plan.html beside it."""
    t = doc["totals"]
    rows = [{"item": k, "value": v} for k, v in _summary(doc)]
    return (f"<h2>Mail ({t['mailboxes']} mailboxes)</h2><p class=note>Folders per mailbox, their IMAP folders and "
            f"what is not carried: <a href=\"{FILE_NAME}\">{FILE_NAME}</a> (also mail-plan.md, mail-plan.json and "
            "mail-not-carried.csv in this folder).</p>" + _table(["item", "value"], rows))


def mail_section_markdown(doc: dict[str, Any]) -> list[str]:
    t = doc["totals"]
    return (["", f"## Mail ({t['mailboxes']} mailboxes)", "", f"Folders per mailbox, their IMAP folders and what is "
             f"not carried: [{FILE_NAME}]({FILE_NAME}) (also mail-plan.md).", "", "| item | value |", "|---|---|"]
            + [f"| {k} | {_md(v)} |" for k, v in _summary(doc)])


# ---------------------------------------------------------------------------------------------- files
def write_mail_plan(doc: dict[str, Any], folder: Path) -> Path:
    """mail-plan.md, mail-plan.html, mail-plan.json and mail-not-carried.csv into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mail-plan.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    (folder / "mail-plan.md").write_text(render_mail_markdown(doc), encoding="utf-8")
    (folder / FILE_NAME).write_text(render_mail_html(doc), encoding="utf-8")
    with open(folder / "mail-not-carried.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(NOT_CARRIED_COLS)
        for n in doc["not_carried"]:
            w.writerow([_csv_safe(x) for x in (n["user"], n["folder"], n.get("message", ""), n["items"],
                                               n.get("bytes") or "", n["reason"])])
    return folder
