"""`plan --what mail` and `status --what mail`: what the scan found per mailbox and what cannot be carried.

The plan writes nothing to the server and does not sign in to it. Per mailbox: folders with their messages and
(approximate, Exchange's own) bytes and the IMAP folder each one goes to (the one `copy` recorded, else the one
expected with the usual special-use names and `/`: the server's own answers decide at the first copy), the
folders left out and why (hidden, Outlook artefacts, by policy), messages over [mail] max_message_size or without
MIME, the online archives the v1.0 mail API cannot read (with what the usage report tells of them), and an
estimate from Outlook's per-mailbox request limit (one MIME export per message, [transfer] workers mailboxes in
parallel). The reports themselves are rendered by migrate/reports/mail_plan.py.
"""

from __future__ import annotations

import datetime as dt
import heapq
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrate.engine.mail.folders import NOT_CARRIED, FolderIn, map_folders, path_parts, path_text

if TYPE_CHECKING:
    from migrate.config import MailSettings
    from migrate.store import StateStore
    from migrate.store.mail import MailFolderRow

OUTLOOK_REQUESTS_PER_SECOND = 10_000 / 600 * 0.95   # the pacer stays just under Outlook's per-mailbox cap
CRLF_NOTE = ("verify compares each message's bytes as the server keeps them: Dovecot gives lines that ended in a "
             "bare LF back with CRLF (reference §2.10), so the digest is taken of the CRLF form; all else is byte "
             "for byte")
# Where Outlook's well-known folders usually land (Dovecot's stock special-use names), for folders copy has not
# placed yet; the server's LIST (SPECIAL-USE) answer decides at the first copy
EXPECTED_SPECIAL = {"\\Sent": "Sent", "\\Drafts": "Drafts", "\\Trash": "Trash", "\\Junk": "Junk",
                    "\\Archive": "Archive"}
TARGET_NOTE = ("IMAP folders marked 'expected' are not placed yet: the first `copy --what mail` decides them with the "
               "server's special-use folders and hierarchy separator (a name the server refuses is renamed then and "
               "listed in copy's summary)")
QUOTA_NOTE = ("the plan does not sign in to the IMAP server: `m365-migrate doctor` compares each IMAP user's quota "
              "with the mailbox's size plus 10 % (a full mailbox stops that mailbox's copy, exit 5)")


def plan_mail(store: StateStore, mail: MailSettings, *, upns: tuple[str, ...] = (),
              archives: list[dict[str, Any]] | None = None, workers: int = 4) -> dict[str, Any]:
    per: dict[str, dict[str, Any]] = {}
    not_carried: list[dict[str, Any]] = []
    # in tree order (a folder before what is inside it), as Outlook shows them
    folders = {f.id: f for f in sorted(store.mail_folders(upns), key=lambda f: (f.upn, path_parts(f.path)))}
    counts: dict[int, list[int]] = {}
    for r in store.mail_counts(upns):
        if r["status"]:
            c = counts.setdefault(r["folder_id"], [0, 0])
            c[0] += r["n"]
            c[1] += r["bytes"]
    targets = _targets(list(folders.values()))
    for f in folders.values():
        box = per.setdefault(f.upn, {"user": f.upn, "imap_user": f.imap_user, "folders": 0, "messages": 0,
                                     "bytes": 0, "not_carried_folders": 0, "not_carried_messages": 0,
                                     "folder_list": []})
        n, size = counts.get(f.id, (0, 0))
        row = {"folder": path_text(f.path), "messages": n if not f.skip_reason else f.total, "bytes": size,
               "target": "", "target_state": "", "note": f.skip_reason or ""}
        box["folder_list"].append(row)
        if f.skip_reason:
            row["target"], row["target_state"] = "not carried", "not carried"
            box["not_carried_folders"] += 1
            box["not_carried_messages"] += f.total
            # Outlook's own folders (Outbox, Sync Issues, ...) are left out by design: listed, nothing to decide
            decide = f.well_known not in NOT_CARRIED and not f.skip_reason.startswith("inside") and f.total > 0
            not_carried.append({"user": f.upn, "folder": path_text(f.path), "items": f.total,
                                "reason": f.skip_reason, "decide": decide})
            continue
        box["folders"] += 1
        box["messages"] += n
        box["bytes"] += size
        target, state, reason = targets.get(f.id, ("", "expected", None))
        row.update(target=target, target_state=state, note=reason or "")
    limit = mail.max_message_size
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
                            "it into the mailbox first or carry it another way (runbooks/mail.md)", "decide": True,
                            "archive": True, "primary_bytes": a.get("primary_bytes")})
    rows = sorted(per.values(), key=lambda r: r["user"])
    renames = [{"user": r["user"], "folder": x["folder"], "target": x["target"], "target_state": x["target_state"],
                "reason": x["note"]} for r in rows for x in r["folder_list"]
               if x["target_state"] != "not carried" and x["note"]]
    for r in rows:
        r["seconds_at_outlook_limit"] = round(r["messages"] / OUTLOOK_REQUESTS_PER_SECOND, 1)
    busiest = max((r["messages"] for r in rows), default=0)
    lanes = max(1, min(workers, len(rows) or 1))
    estimate = {"requests_per_mailbox_max": busiest,
                "seconds_at_outlook_limit": round(busiest / OUTLOOK_REQUESTS_PER_SECOND, 1),
                "mailboxes_in_parallel": lanes,
                "seconds_all_mailboxes": _makespan([r["seconds_at_outlook_limit"] for r in rows], lanes),
                "basis": "one MIME export per message, each mailbox under Outlook's 10,000 requests per 10 minutes, "
                         f"{lanes} mailboxes in parallel ([transfer] workers)"}
    totals = {"mailboxes": len(rows), "folders": sum(r["folders"] for r in rows),
              "messages": sum(r["messages"] for r in rows), "bytes": sum(r["bytes"] for r in rows),
              "not_carried": len(not_carried), "renames": len(renames)}
    notes = [CRLF_NOTE, TARGET_NOTE] + ([scanned["archive_note"]] if scanned.get("archive_note") else [])
    quota = {"checked": False, "note": QUOTA_NOTE,
             "needs": [{"user": r["user"], "imap_user": r["imap_user"], "bytes": r["bytes"],
                        "with_margin": int(r["bytes"] * 1.1)} for r in rows]}
    return {"generated_at": f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC", "mailboxes": rows,
            "renames": renames, "not_carried": not_carried, "totals": totals, "estimate": estimate,
            "quota": quota, "notes": notes, "attention": any(n["decide"] for n in not_carried)}


def _targets(rows: list[MailFolderRow]) -> dict[int, tuple[str, str, str | None]]:
    """Per folder row id: (IMAP folder, 'placed' | 'expected', why it is not the plain source name)."""
    out: dict[int, tuple[str, str, str | None]] = {}
    by_user: dict[str, list[MailFolderRow]] = {}
    for r in rows:
        by_user.setdefault(r.user_id, []).append(r)
    for boxrows in by_user.values():
        fixed = {r.source_id: r for r in boxrows if r.created and r.target_name}
        mapped = map_folders([FolderIn(r.source_id, r.parent_id, path_parts(r.path)[-1], r.well_known,
                                       r.skip_reason is None, r.target_name if r.created else None)
                              for r in boxrows], EXPECTED_SPECIAL, "/")
        for r in boxrows:
            if r.source_id in fixed:
                out[r.id] = (r.target_name or "", "placed", r.rename_reason)
            elif r.source_id in mapped:
                o = mapped[r.source_id]
                out[r.id] = (o.target, "expected", o.reason)
    return out


def _makespan(seconds: list[float], lanes: int) -> float:
    """Longest first onto the least busy of `lanes` workers: when the last mailbox is done."""
    busy = [0.0] * lanes
    for s in sorted(seconds, reverse=True):
        heapq.heapreplace(busy, busy[0] + s)
    return round(max(busy), 1)


def write_plan(doc: dict[str, Any], reports: Path, output: Path | None) -> Path:
    """mail-plan.md/.html/.json and mail-not-carried.csv into `output`, or a new stamped folder under `reports`."""
    from migrate.reports.mail_plan import write_mail_plan

    folder = output or reports / f"mail-plan-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"
    return write_mail_plan(doc, folder)


def render_plan(doc: dict[str, Any], folder: Path) -> str:
    """The terminal summary of `plan --what mail`."""
    from migrate.reports.text import human_bytes, human_duration

    t, e = doc["totals"], doc["estimate"]
    lines = ["mail plan:",
             f"{t['messages']} messages ({human_bytes(t['bytes'])}, Exchange's sizes) in {t['folders']} folders of "
             f"{t['mailboxes']} mailboxes; {t['not_carried']} not carried (listed)",
             f"estimate: {estimate_text(e, human_duration)}"]
    lines += [f"note: {n}" for n in doc["notes"]]
    lines += [f"  {r['user']} → {r['imap_user']}: {r['folders']} folders, {r['messages']} messages, "
              f"{human_bytes(r['bytes'])}" for r in doc["mailboxes"]]
    lines += [f"  folder renamed: {r['user']} / {r['folder']} → {r['target']} ({r['reason']})"
              for r in doc.get("renames", [])[:30]]
    lines += [f"  not carried: {n['user']} / {n['folder']}: {n['reason']} ({n['items']} items)"
              for n in doc["not_carried"][:30]]
    lines.append(f"reports: {folder / 'mail-plan.html'} (also mail-plan.md, mail-plan.json, mail-not-carried.csv)")
    return "\n".join(lines) + "\n"


def estimate_text(e: dict[str, Any], duration: Any) -> str:
    """The estimate in one sentence (plans stored before the parallel figure was added still read)."""
    every = e.get("seconds_all_mailboxes")
    return (f"the largest mailbox needs at least {duration(e['seconds_at_outlook_limit'])} at Outlook's per-mailbox "
            f"limit ({e['requests_per_mailbox_max']} MIME exports)"
            + (f"; all mailboxes, {e['mailboxes_in_parallel']} at a time, at least {duration(every)}"
               if every is not None else "; mailboxes run in parallel"))


def status_mail(store: StateStore, upns: tuple[str, ...] = ()) -> dict[str, Any]:
    """Per mailbox: messages done, left, failed and not carried (with the raw ledger statuses beside them),
    folders carried and not, and the problems to look at."""
    per: dict[str, dict[str, Any]] = {}
    for r in store.mail_counts(upns):
        box = per.setdefault(r["upn"], {"user": r["upn"], "messages": 0, "done": 0, "left": 0, "failed": 0,
                                        "not_carried": 0, "folders": 0, "not_carried_folders": 0, "bytes": 0,
                                        "statuses": {}})
        if r["skip_reason"]:
            box["not_carried_folders"] += 1
            continue
        if r["status"]:
            st = r["status"]
            box["statuses"][st] = box["statuses"].get(st, 0) + r["n"]
            if st != "removed":
                box["messages"] += r["n"]
            key = STATUS_GROUPS.get(st)
            if key:
                box[key] += r["n"]
            box["bytes"] += r["bytes"] if st == "done" else 0
    for f in store.mail_folders(upns):
        if f.upn not in per:
            continue
        if not f.skip_reason:
            per[f.upn]["folders"] += 1
        else:   # the messages of a folder left out: counted from the folder (the scan does not list them)
            per[f.upn]["not_carried"] += f.total
    return {"mail": [per[k] for k in sorted(per)], "mail_problems": store.mail_problems(upns, 200)}


def mail_totals(store: StateStore, upns: tuple[str, ...] = ()) -> dict[str, int] | None:
    """The mail line of plain `status`: mailboxes and messages done/left/failed/not carried (None: no mail scanned)."""
    boxes = status_mail(store, upns)["mail"]
    if not boxes:
        return None
    keys = ("messages", "done", "left", "failed", "not_carried")
    return {"mailboxes": len(boxes), **{k: sum(b[k] for b in boxes) for k in keys}}


# The ledger's statuses as an admin asks about them: done, still to do, failed, not carried
STATUS_GROUPS = {"done": "done", "new": "left", "appending": "left", "failed": "failed", "skipped": "not_carried"}


def render_status(data: dict[str, Any]) -> str:
    lines = ["mail:"]
    for r in data["mail"]:
        lines.append(f"  {r['user']}: {r['done']} of {r['messages']} messages done, {r['left']} left, "
                     f"{r['failed']} failed, {r['not_carried']} not carried; {r['folders']} folders "
                     f"({r['not_carried_folders']} not carried)")
    for p in data["mail_problems"][:20]:
        lines.append(f"  {p['status']}: {p['upn']} / {path_text(p['path'])} / {p['internet_message_id'] or p['message_id']}"
                     f": {p['reason'] or ''}")
    if len(data["mail_problems"]) > 20:
        lines.append(f"  … and {len(data['mail_problems']) - 20} more (see --json)")
    if len(lines) == 1:
        lines.append("  nothing scanned yet: run `m365-migrate scan --what mail`")
    return "\n".join(lines)
