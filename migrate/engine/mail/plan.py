"""`plan --what mail` and `status --what mail`: what the scan found per mailbox and what cannot be carried.

The plan writes nothing to the server. Per mailbox: folders, messages and (approximate, Exchange's own) bytes,
the folders left out and why (hidden, Outlook artefacts, by policy), messages over [mail] max_message_size or
without MIME, the online archives the v1.0 mail API cannot read (with their size where Graph tells it), and an
estimate from Outlook's per-mailbox request limit (one MIME export per message, mailboxes in parallel).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrate.engine.mail.folders import NOT_CARRIED, path_text

if TYPE_CHECKING:
    from migrate.config import MailSettings
    from migrate.store import StateStore

OUTLOOK_REQUESTS_PER_SECOND = 10_000 / 600 * 0.95   # the pacer stays just under Outlook's per-mailbox cap
CRLF_NOTE = ("verify compares each message's bytes as the server keeps them: Dovecot gives lines that ended in a "
             "bare LF back with CRLF (reference §2.10), so the digest is taken of the CRLF form; all else is byte "
             "for byte")


def plan_mail(store: StateStore, mail: MailSettings, *, upns: tuple[str, ...] = (),
              archives: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    per: dict[str, dict[str, Any]] = {}
    not_carried: list[dict[str, Any]] = []
    folders = {f.id: f for f in store.mail_folders(upns)}
    for f in folders.values():
        box = per.setdefault(f.upn, {"user": f.upn, "imap_user": f.imap_user, "folders": 0, "messages": 0,
                                     "bytes": 0, "not_carried_folders": 0, "not_carried_messages": 0})
        if f.skip_reason:
            box["not_carried_folders"] += 1
            box["not_carried_messages"] += f.total
            # Outlook's own folders (Outbox, Sync Issues, ...) are left out by design: listed, nothing to decide
            decide = f.well_known not in NOT_CARRIED and not f.skip_reason.startswith("inside") and f.total > 0
            not_carried.append({"user": f.upn, "folder": path_text(f.path), "items": f.total,
                                "reason": f.skip_reason, "decide": decide})
        else:
            box["folders"] += 1
    limit = mail.max_message_size
    for r in store.mail_counts(upns):
        f = folders.get(r["folder_id"])
        if f is None or f.skip_reason or not r["status"]:
            continue
        box = per[f.upn]
        box["messages"] += r["n"]
        box["bytes"] += r["bytes"]
    for f in folders.values():
        if f.skip_reason:
            continue
        for m in store.iter_mail_messages(folder_id=f.id):
            too_big = bool(limit and m.size and m.size > limit)
            if too_big or m.status == "skipped":
                reason = m.reason or f"larger than [mail] max_message_size ({m.size:,} bytes)"
                not_carried.append({"user": f.upn, "folder": path_text(f.path), "items": 1, "reason": reason,
                                    "message": m.internet_message_id or m.message_id, "bytes": m.size,
                                    "decide": True})
                per[f.upn]["not_carried_messages"] += 1
    last = store.last_run_summary("scan-mail")
    scanned = (last or {}).get("summary") or {}
    for a in archives if archives is not None else scanned.get("archives") or ():
        not_carried.append({"user": a.get("user", ""), "folder": "online archive", "items": 0, "bytes": None,
                            "reason": "online archive: not readable through the Graph v1.0 mail API; its size is "
                            "not in Graph's report (the primary mailbox holds "
                            f"{a.get('primary_bytes') or 0:,} bytes): see it in the Exchange admin centre, and move "
                            "it into the mailbox first or carry it another way (runbooks/mail.md)", "decide": True})
    rows = sorted(per.values(), key=lambda r: r["user"])
    busiest = max((r["messages"] for r in rows), default=0)
    estimate = {"requests_per_mailbox_max": busiest,
                "seconds_at_outlook_limit": round(busiest / OUTLOOK_REQUESTS_PER_SECOND, 1),
                "basis": "one MIME export per message, mailboxes in parallel, each under Outlook's 10,000 "
                         "requests per 10 minutes"}
    totals = {"mailboxes": len(rows), "folders": sum(r["folders"] for r in rows),
              "messages": sum(r["messages"] for r in rows), "bytes": sum(r["bytes"] for r in rows),
              "not_carried": len(not_carried)}
    notes = [CRLF_NOTE] + ([scanned["archive_note"]] if scanned.get("archive_note") else [])
    return {"mailboxes": rows, "not_carried": not_carried, "totals": totals, "estimate": estimate,
            "notes": notes, "attention": any(n["decide"] for n in not_carried)}


def write_plan(doc: dict[str, Any], reports: Path, output: Path | None) -> Path:
    folder = output or reports / f"mail-plan-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mail-plan.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    (folder / "mail-plan.md").write_text(render_plan(doc, folder, markdown=True), encoding="utf-8")
    with open(folder / "mail-not-carried.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["user", "folder", "message", "items", "bytes", "reason"])
        for n in doc["not_carried"]:
            w.writerow([n["user"], n["folder"], n.get("message", ""), n["items"], n.get("bytes") or "", n["reason"]])
    return folder


def render_plan(doc: dict[str, Any], folder: Path, *, markdown: bool = False) -> str:
    from migrate.reports.text import human_bytes, human_duration

    t, e = doc["totals"], doc["estimate"]
    lines = ["# Mail plan" if markdown else "mail plan:",
             f"{t['messages']} messages ({human_bytes(t['bytes'])}, Exchange's sizes) in {t['folders']} folders of "
             f"{t['mailboxes']} mailboxes; {t['not_carried']} not carried (listed)",
             f"estimate: the largest mailbox needs at least {human_duration(e['seconds_at_outlook_limit'])} at "
             f"Outlook's per-mailbox limit ({e['requests_per_mailbox_max']} MIME exports); mailboxes run in parallel"]
    lines += [f"note: {n}" for n in doc["notes"]]
    if markdown:
        lines += ["", "| mailbox | IMAP user | folders | messages | bytes | folders not carried |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['user']} | {r['imap_user']} | {r['folders']} | {r['messages']} | {r['bytes']:,} | "
                  f"{r['not_carried_folders']} |" for r in doc["mailboxes"]]
        lines += ["", "## Not carried", ""]
        lines += [f"- {n['user']} / {n['folder']}{' / ' + n['message'] if n.get('message') else ''}: {n['reason']} "
                  f"({n['items']} items)" for n in doc["not_carried"]]
    else:
        lines += [f"  {r['user']} → {r['imap_user']}: {r['folders']} folders, {r['messages']} messages, "
                  f"{human_bytes(r['bytes'])}" for r in doc["mailboxes"]]
        lines += [f"  not carried: {n['user']} / {n['folder']}: {n['reason']} ({n['items']} items)"
                  for n in doc["not_carried"][:30]]
        lines.append(f"reports: {folder}")
    return "\n".join(lines) + "\n"


def status_mail(store: StateStore, upns: tuple[str, ...] = ()) -> dict[str, Any]:
    """Messages per mailbox and status, folders per mailbox, and the problems to look at."""
    per: dict[str, dict[str, Any]] = {}
    for r in store.mail_counts(upns):
        box = per.setdefault(r["upn"], {"user": r["upn"], "folders": 0, "not_carried_folders": 0, "bytes": 0})
        if r["skip_reason"]:
            box["not_carried_folders"] += 1
            continue
        if r["status"]:
            box[r["status"]] = box.get(r["status"], 0) + r["n"]
            box["bytes"] += r["bytes"] if r["status"] == "done" else 0
    for f in store.mail_folders(upns):
        if not f.skip_reason and f.upn in per:
            per[f.upn]["folders"] += 1
    return {"mail": [per[k] for k in sorted(per)], "mail_problems": store.mail_problems(upns, 200)}


def render_status(data: dict[str, Any]) -> str:
    lines = ["mail:"]
    for r in data["mail"]:
        counts = ", ".join(f"{k} {v}" for k, v in r.items() if k != "user")
        lines.append(f"  {r['user']}: {counts}")
    for p in data["mail_problems"][:20]:
        lines.append(f"  {p['status']}: {p['upn']} / {path_text(p['path'])} / {p['internet_message_id'] or p['message_id']}"
                     f": {p['reason'] or ''}")
    if len(lines) == 1:
        lines.append("  nothing scanned yet: run `m365-migrate scan --what mail`")
    return "\n".join(lines)
